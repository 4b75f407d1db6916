package server

// POST /api/v1/query (and Engram's quickstart path /api/v1/query/execute):
// runs one statement of the query language (queryparse.go) against the
// engine. RECALL is a recall (or a lookup by id, or a scan for *) with its
// WHERE conditions applied; SPREAD is spreading activation from one memory
// (core.Engine.SpreadFrom).

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/ops/api"
)

// defaultQueryLimit is how many episodes a RECALL returns without LIMIT
// (recall's default max_results).
const defaultQueryLimit = 10

func (s *Server) queryRoutes() {
	s.handle("POST "+api.PathQuery, s.handleQuery)
	s.handle("POST "+api.PathQueryExecute, s.handleQuery)
}

// queryErr turns a parse error into the envelope, with its position.
func queryErr(e *queryError) error {
	he := httpErrorf(http.StatusBadRequest, e.Code, "query %s", e.Error()).
		with("line", e.Line, "column", e.Col, "offset", e.Offset)
	if e.Found != "" {
		he.with("found", truncateString(e.Found, 40))
	}
	if e.Construct != "" {
		he.with("construct", e.Construct)
	}
	return he
}

func (s *Server) handleQuery(w http.ResponseWriter, r *http.Request) error {
	var req api.QueryRequest
	if err := decodeJSON(w, r, s.cfg.Limits.MaxBodyBytes, &req); err != nil {
		return err
	}
	if err := engramFields(r, &req); err != nil {
		return err
	}
	if strings.TrimSpace(req.QueryText) == "" {
		return httpErrorf(http.StatusBadRequest, "QUERY_SYNTAX_ERROR",
			"query_text is empty; send a statement such as RECALL \"text\" or SPREAD FROM <id> (docs/query-language.md)").
			with("field", "query_text")
	}
	q, qe := parseQuery(req.QueryText)
	if qe != nil {
		return queryErr(qe)
	}
	// Engram's precedence for queries: the body, then the header; the
	// statement's own IN SPACE wins over both.
	space := strings.TrimSpace(req.MemorySpaceID)
	for _, c := range q.Constraints {
		if c.Field == "space" {
			space = c.Text
		}
	}
	if space == "" {
		h, err := singleHeader(r, api.HeaderSpace)
		if err != nil {
			return err
		}
		space = strings.TrimSpace(h)
	}
	space, err := s.checkSpace(r, space)
	if err != nil {
		return err
	}
	// As Engram does, a query never creates its space.
	if _, err := s.eng.Space(space); err != nil {
		return err
	}
	start := time.Now()
	out, err := s.runQuery(r.Context(), space, q)
	s.observe(opRecall, space, start, err)
	if err != nil {
		return err
	}
	out.ExecutionTimeMS = float64(time.Since(start).Microseconds()) / 1000
	s.writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) runQuery(ctx context.Context, space string, q *parsedQuery) (api.QueryResponse, error) {
	var eps []api.QueryEpisode
	var err error
	if q.Kind == stmtSpread {
		eps, err = s.runSpread(ctx, space, q)
	} else {
		eps, err = s.runRecall(ctx, space, q)
	}
	if err != nil {
		return api.QueryResponse{}, err
	}
	if eps == nil {
		eps = []api.QueryEpisode{}
	}
	conf := make([]float64, len(eps))
	for i := range eps {
		conf[i] = eps[i].Confidence
	}
	lo, mean, hi := confidenceInterval(conf)
	return api.QueryResponse{
		Episodes:            eps,
		AggregateConfidence: api.AggregateConfidence{LowerBound: lo, Mean: mean, UpperBound: hi, Width: hi - lo},
		TotalCount:          len(eps),
		Statement:           q.Kind,
		Cost:                q.Cost,
		Space:               space,
		SystemMessage:       fmt.Sprintf("%s returned %d episode(s) from space %s.", q.Kind, len(eps), space),
	}, nil
}

// confidenceInterval is the mean of vs and its 95 % interval under a
// normal approximation (mean ± 1.96·s/√n, s the sample standard
// deviation), clamped to 0..1. One value gives the degenerate interval at
// that value; none gives zeros.
func confidenceInterval(vs []float64) (lo, mean, hi float64) {
	n := float64(len(vs))
	if n == 0 {
		return 0, 0, 0
	}
	for _, v := range vs {
		mean += v
	}
	mean /= n
	if len(vs) == 1 {
		return mean, mean, mean
	}
	var ss float64
	for _, v := range vs {
		ss += (v - mean) * (v - mean)
	}
	half := 1.96 * math.Sqrt(ss/(n-1)) / math.Sqrt(n)
	return max(mean-half, 0), mean, min(mean+half, 1)
}

// queryFilter holds a RECALL's conditions.
type queryFilter struct {
	contains   []string // lower-cased
	confidence []queryCompare
	tags       []string
	from, to   time.Time
	result     *queryCompare
}

func newQueryFilter(q *parsedQuery) queryFilter {
	f := queryFilter{result: q.Confidence}
	for _, c := range q.Constraints {
		switch c.Field {
		case "content":
			f.contains = append(f.contains, strings.ToLower(c.Text))
		case "confidence":
			f.confidence = append(f.confidence, queryCompare{Op: c.Op, Value: c.Value})
		case "tags":
			f.tags = append(f.tags, c.Text)
		case "created":
			// BEFORE and AFTER are strict; the engine's range is inclusive.
			if c.Op == "BEFORE" && (f.to.IsZero() || c.Time.Before(f.to)) {
				f.to = c.Time.Add(-time.Nanosecond)
			}
			if c.Op == "AFTER" && c.Time.After(f.from) {
				f.from = c.Time.Add(time.Nanosecond)
			}
		}
	}
	return f
}

// postFilters reports conditions the engine does not apply itself.
func (f *queryFilter) postFilters() bool {
	return len(f.contains) > 0 || len(f.confidence) > 0 || f.result != nil
}

// keep reports whether a memory passes every condition.
func (f *queryFilter) keep(m *core.Memory, confidence float64) bool {
	if (!f.from.IsZero() && m.ObservedAt.Before(f.from)) || (!f.to.IsZero() && m.ObservedAt.After(f.to)) {
		return false
	}
	if !hasAll(m.Tags, f.tags) {
		return false
	}
	if len(f.contains) > 0 {
		lc := strings.ToLower(m.Content)
		for _, c := range f.contains {
			if !strings.Contains(lc, c) {
				return false
			}
		}
	}
	for _, c := range f.confidence {
		if !c.holds(m.Confidence) {
			return false
		}
	}
	return f.result == nil || f.result.holds(confidence)
}

func hasAll(have, want []string) bool {
	for _, w := range want {
		found := false
		for _, h := range have {
			found = found || h == w
		}
		if !found {
			return false
		}
	}
	return true
}

func queryEpisode(m *core.Memory, confidence float64) api.QueryEpisode {
	ep := api.QueryEpisode{
		ID: m.ID, When: m.ObservedAt, What: m.Content,
		Confidence: confidence, ConfidenceCategory: api.QueryCategory(confidence),
		StoredConfidence: m.Confidence, Tags: nonNil(m.Tags),
	}
	if m.Episode != nil {
		ep.When, ep.What, ep.WhereLocation, ep.Who = m.Episode.When, m.Episode.What, m.Episode.Where, m.Episode.Who
	}
	return ep
}

func recalledEpisode(rc *core.Recalled) api.QueryEpisode {
	ep := queryEpisode(&rc.Memory, rc.Score)
	ep.Retrievability = rc.Retrievability
	ep.SimilarityScore = rc.Similarity
	if !rc.Direct {
		ep.ActivationLevel = rc.Activation
		ep.Path = rc.Path
	}
	return ep
}

func (s *Server) runRecall(ctx context.Context, space string, q *parsedQuery) ([]api.QueryEpisode, error) {
	limit := q.Limit
	if limit == 0 {
		limit = defaultQueryLimit
	}
	if limit > s.cfg.Limits.MaxResults {
		return nil, httpErrorf(http.StatusBadRequest, "INVALID_MAX_RESULTS",
			"LIMIT %d is above the maximum %d (limits.max_results)", limit, s.cfg.Limits.MaxResults).
			with("limit", s.cfg.Limits.MaxResults)
	}
	f := newQueryFilter(q)
	now := time.Now()
	var eps []api.QueryEpisode
	switch q.Pattern.Kind {
	case patternID:
		m, err := s.eng.Get(ctx, space, q.Pattern.ID, false)
		if core.KindOf(err) == core.KindNotFound {
			return nil, nil // no match is an empty answer, not an error
		}
		if err != nil {
			return nil, err
		}
		r := m.Retrievability(now)
		if c := m.Confidence * r; f.keep(&m, c) {
			ep := queryEpisode(&m, c)
			ep.Retrievability = r
			eps = append(eps, ep)
		}
	case patternAll:
		return s.scanQuery(ctx, space, &f, limit, now)
	default:
		rq := core.RecallQuery{Text: q.Pattern.Text, Embedding: q.Pattern.Vector, MaxResults: limit,
			RequiredTags: f.tags, From: f.from, To: f.to}
		if q.Pattern.Kind == patternVector {
			rq.Threshold = defaultVectorCueMin
			if q.Pattern.Threshold != nil {
				rq.Threshold = *q.Pattern.Threshold
			}
		}
		if f.postFilters() {
			// Conditions applied here discard results: ask for more.
			rq.MaxResults = min(limit*4, s.cfg.Limits.MaxResults)
		}
		res, err := s.eng.Recall(ctx, space, rq)
		if err != nil {
			return nil, err
		}
		defer res.Release()
		for _, list := range [][]core.Recalled{res.Vivid, res.Associated} {
			for i := range list {
				if f.keep(&list[i].Memory, list[i].Score) {
					eps = append(eps, recalledEpisode(&list[i]))
				}
			}
		}
	}
	sortEpisodes(eps)
	return eps[:min(len(eps), limit)], nil
}

func sortEpisodes(eps []api.QueryEpisode) {
	sort.SliceStable(eps, func(i, j int) bool { return eps[i].Confidence > eps[j].Confidence })
}

// scanQuery is RECALL *: every memory of the space, paged, filtered, the
// limit best by confidence × retrievability kept.
func (s *Server) scanQuery(ctx context.Context, space string, f *queryFilter, limit int, now time.Time) ([]api.QueryEpisode, error) {
	page := min(1000, s.cfg.Limits.MaxResults)
	var eps []api.QueryEpisode
	for off := 0; ; off += page {
		res, err := s.eng.List(ctx, space, core.ListOptions{AllTiers: true, Offset: off, Limit: page})
		if err != nil {
			return nil, err
		}
		for i := range res.Memories {
			m := &res.Memories[i]
			r := m.Retrievability(now)
			if c := m.Confidence * r; f.keep(m, c) {
				ep := queryEpisode(m, c)
				ep.Retrievability = r
				eps = append(eps, ep)
			}
		}
		if len(eps) > 4*limit {
			sortEpisodes(eps)
			eps = eps[:limit]
		}
		if len(res.Memories) < page || off+page >= res.Total {
			break
		}
	}
	sortEpisodes(eps)
	return eps[:min(len(eps), limit)], nil
}

func (s *Server) runSpread(ctx context.Context, space string, q *parsedQuery) ([]api.QueryEpisode, error) {
	id := q.Pattern.ID
	if q.Pattern.Kind == patternText {
		// SPREAD FROM "text": from the memory most similar to the text.
		res, err := s.eng.Recall(ctx, space, core.RecallQuery{Text: q.Pattern.Text, MaxResults: 1,
			Mode: core.ModeSimilarity, NoReinforce: true})
		if err != nil {
			return nil, err
		}
		defer res.Release()
		if len(res.Vivid) == 0 {
			return nil, nil
		}
		id = res.Vivid[0].Memory.ID
	}
	if q.MaxHops == 0 || q.Decay == 1 {
		return nil, nil // activation never leaves the source
	}
	res, err := s.eng.SpreadFrom(ctx, space, id, core.RecallQuery{
		MaxResults: s.cfg.Limits.MaxResults,
		MaxHops:    q.MaxHops,
		// Engram's DECAY is the share of activation lost per hop; the
		// engine's hop decay is the share kept.
		HopDecay:            1 - q.Decay,
		ActivationThreshold: max(q.Threshold, math.SmallestNonzeroFloat64),
	})
	if core.KindOf(err) == core.KindNotFound && core.CodeOf(err) == "MEMORY_NOT_FOUND" {
		return nil, httpErrorf(http.StatusNotFound, "MEMORY_NOT_FOUND", "SPREAD FROM %s: no memory has this id in space %s", echo(id), space).
			with("id", echo(id))
	}
	if err != nil {
		return nil, err
	}
	defer res.Release()
	eps := make([]api.QueryEpisode, len(res.Associated))
	for i := range res.Associated {
		eps[i] = recalledEpisode(&res.Associated[i])
	}
	return eps, nil
}
