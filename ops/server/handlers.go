package server

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/ops/api"
	"github.com/engram-ops/engram-ops/ops/health"
	"github.com/engram-ops/engram-ops/ops/metrics"
)

// Operation names of engram_memory_operation_* metrics.
const (
	opRemember  = "remember"
	opRecall    = "recall"
	opGet       = "get"
	opForget    = "forget"
	opAssociate = "associate"
	opBatch     = "batch"
	opList      = "list"
)

// writeSpace picks the space of a write: X-Memory-Space header › body
// memory_space_id › body space › ?space= › "default". Names are checked
// with the engine's own rule (core.ValidateSpaceName).
func (s *Server) writeSpace(r *http.Request, body bodySpacer) (string, error) {
	space, err := singleHeader(r, api.HeaderSpace)
	if err != nil {
		return "", err
	}
	space = strings.TrimSpace(space)
	if space == "" {
		space = body.BodySpace()
	}
	if space == "" {
		if space, err = querySpace(r); err != nil {
			return "", err
		}
	}
	return s.checkSpace(r, space)
}

// readSpace picks the space of a read: header › ?space= › "default".
func (s *Server) readSpace(r *http.Request) (string, error) {
	space, err := singleHeader(r, api.HeaderSpace)
	if err != nil {
		return "", err
	}
	space = strings.TrimSpace(space)
	if space == "" {
		if space, err = querySpace(r); err != nil {
			return "", err
		}
	}
	return s.checkSpace(r, space)
}

// querySpace is ?space=, which may be given once.
func querySpace(r *http.Request) (string, error) {
	vs := r.URL.Query()["space"]
	switch len(vs) {
	case 0:
		return "", nil
	case 1:
		return strings.TrimSpace(vs[0]), nil
	}
	return "", duplicateParameter("space", len(vs))
}

func (s *Server) checkSpace(r *http.Request, space string) (string, error) {
	if space == "" {
		space = api.DefaultSpace
	}
	if err := core.ValidateSpaceName(space); err != nil {
		return "", err
	}
	setSpace(r, space)
	if err := s.allowSpace(r, space); err != nil {
		return "", err
	}
	if err := s.checkHold(r, space); err != nil {
		return "", err
	}
	return space, nil
}

// spaceLabel is the metric label of space: the name if the space exists,
// otherwise "unknown" (so requests naming nonexistent spaces cannot create
// unbounded label sets). The metrics keep at most metrics.max_space_labels
// names and record the other spaces as "_other".
func (s *Server) spaceLabel(space string) string {
	if _, ok := s.spaceLabels.Load(space); ok {
		return space
	}
	if _, err := s.eng.Space(space); err == nil {
		s.spaceLabels.Store(space, struct{}{})
		return space
	}
	return metrics.UnknownSpace
}

// observe records one engine operation.
func (s *Server) observe(op, space string, start time.Time, err error) {
	s.metrics.ObserveOperation(op, s.spaceLabel(space), time.Since(start), err)
}

// bodySpacer is a request body that may name its space.
type bodySpacer interface{ BodySpace() string }

// afterWriter is an answer that hands memory back once it is written.
type afterWriter interface{ afterWrite() }

// engineOp is the one skeleton of the handlers that call the engine:
// parse the request and pick its space, call the engine timed and
// observed (engram_memory_operation_* under op), write the answer with
// status. Every error, of parsing or of the engine, becomes the envelope.
func engineOp[Req, Resp any](s *Server, op string, status int,
	parse func(w http.ResponseWriter, r *http.Request) (Req, string, error),
	call func(ctx context.Context, space string, req Req) (Resp, error),
) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		req, space, err := parse(w, r)
		if err != nil {
			return err
		}
		start := time.Now()
		resp, err := call(r.Context(), space, req)
		s.observe(op, space, start, err)
		if err != nil {
			return err
		}
		v := any(resp) // boxed once for the three uses below
		auditIDs(r, v)
		s.writeJSON(w, status, v)
		if a, ok := v.(afterWriter); ok {
			a.afterWrite()
		}
		return nil
	}
}

// auditIDs records the memories a write touched for the audit log.
func auditIDs(r *http.Request, resp any) {
	if ids := touchedIDs(resp); ids != nil {
		setIDs(r, ids...)
	}
}

// touchedIDs are the memories a write's response says it touched.
func touchedIDs(resp any) []string {
	switch v := resp.(type) {
	case api.RememberResponse:
		return []string{v.MemoryID}
	case api.BatchResponse:
		return v.MemoryIDs
	case api.ForgetResponse:
		return []string{v.MemoryID}
	case api.AssociationResponse:
		return []string{v.From, v.To}
	}
	return nil
}

// body parses a JSON request body of type T and picks the space of a
// write.
func body[T any, PT interface {
	*T
	bodySpacer
}](s *Server) func(http.ResponseWriter, *http.Request) (PT, string, error) {
	return func(w http.ResponseWriter, r *http.Request) (PT, string, error) {
		req := PT(new(T))
		if err := decodeJSON(w, r, s.cfg.Limits.MaxBodyBytes, req); err != nil {
			return nil, "", err
		}
		if err := engramFields(r, req); err != nil {
			return nil, "", err
		}
		space, err := s.writeSpace(r, req)
		return req, space, err
	}
}

// query parses a request's query with parse, then picks the space of a
// read.
func query[Req any](s *Server, parse func(r *http.Request) (Req, error)) func(http.ResponseWriter, *http.Request) (Req, string, error) {
	return func(_ http.ResponseWriter, r *http.Request) (Req, string, error) {
		req, err := parse(r)
		if err != nil {
			return req, "", err
		}
		space, err := s.readSpace(r)
		return req, space, err
	}
}

func (s *Server) engineRoutes() {
	remember := engineOp(s, opRemember, http.StatusCreated, body[api.RememberRequest](s), s.remember)
	s.handle("POST "+api.PathRemember, remember)
	s.handle("POST "+api.PathMemories, remember)
	s.handle("POST "+api.PathEpisodes, engineOp(s, opRemember, http.StatusCreated, body[api.EpisodeRequest](s), s.episode))
	s.handle("POST "+api.PathBatch, engineOp(s, opBatch, http.StatusCreated, body[api.BatchRequest](s), s.batch))
	s.handle("GET "+api.PathRecall, engineOp(s, opRecall, http.StatusOK, query(s, recallParams), s.recall))
	s.handle("POST "+api.PathRecall, engineOp(s, opRecall, http.StatusOK, body[api.RecallRequest](s), s.recall))
	s.handle("GET "+api.PathSearch, engineOp(s, opRecall, http.StatusOK, query(s, s.searchParams), s.search))
	s.handle("GET "+api.PathMemory, engineOp(s, opGet, http.StatusOK, query(s, getParams), s.get))
	s.handle("DELETE "+api.PathMemory, engineOp(s, opForget, http.StatusOK, query(s, forgetParams), s.forget))
	s.handle("GET "+api.PathMemories, engineOp(s, opList, http.StatusOK, query(s, listParams), s.list))
	s.handle("POST "+api.PathAssociations, engineOp(s, opAssociate, http.StatusCreated, body[api.AssociationRequest](s), s.associate))
}

func (s *Server) remember(ctx context.Context, space string, req *api.RememberRequest) (api.RememberResponse, error) {
	var clamped string
	req.Confidence, clamped = clampConfidence(req.Confidence, "confidence")
	res, err := s.eng.Remember(ctx, space, rememberInput(req))
	if err != nil {
		return api.RememberResponse{}, err
	}
	reasoning := req.ConfidenceReasoning
	if reasoning == "" {
		reasoning = defaultReasoning
		if req.Confidence != nil {
			reasoning = "Confidence supplied by the client"
		}
	}
	return withNotes(ctx, rememberResponse(res, space, withClamp(reasoning, clamped), "Memory")), nil
}

func (s *Server) episode(ctx context.Context, space string, req *api.EpisodeRequest) (api.RememberResponse, error) {
	var clamped string
	req.Importance, clamped = clampConfidence(req.Importance, "importance (the episode's confidence)")
	res, err := s.eng.Remember(ctx, space, episodeInput(req))
	if err != nil {
		if core.CodeOf(err) == "INVALID_CONFIDENCE" {
			return api.RememberResponse{}, prefixEngineError(err, "importance (the episode's confidence): ")
		}
		return api.RememberResponse{}, err
	}
	reasoning := "Default importance of an episode"
	if req.Importance != nil {
		reasoning = "Episode importance supplied by the client"
	}
	return withNotes(ctx, rememberResponse(res, space, withClamp(reasoning, clamped), "Episode")), nil
}

// withClamp adds the note of a clamped confidence to a reasoning.
func withClamp(reasoning, clamped string) string {
	if clamped == "" {
		return reasoning
	}
	return reasoning + "; " + clamped
}

// withNotes appends the request's notes to a write's system message.
func withNotes(ctx context.Context, resp api.RememberResponse) api.RememberResponse {
	if ri := infoFrom(ctx); ri != nil && len(ri.notes) > 0 {
		resp.SystemMessage += " Note: " + strings.Join(ri.notes, "; ") + "."
	}
	return resp
}

// prefixEngineError returns a copy of an engine error with a message prefix.
func prefixEngineError(err error, prefix string) error {
	if ce, ok := err.(*core.Error); ok {
		c := *ce
		c.Message = prefix + c.Message
		return &c
	}
	return err
}

func (s *Server) batch(ctx context.Context, space string, req *api.BatchRequest) (api.BatchResponse, error) {
	in := core.BatchInput{Memories: make([]core.RememberInput, len(req.Memories))}
	for i := range req.Memories {
		in.Memories[i] = batchMemoryInput(&req.Memories[i])
	}
	if len(req.Associations) > 0 {
		in.Associations = make([]core.Association, len(req.Associations))
		for i, a := range req.Associations {
			in.Associations[i] = core.Association{From: a.From, To: a.To, Weight: a.Weight, Kind: a.Kind}
		}
	}
	if req.Cursor != nil {
		in.Cursor = &core.Cursor{Source: req.Cursor.Source, Value: req.Cursor.Value}
	}
	res, err := s.eng.Batch(ctx, space, in)
	if err != nil {
		return api.BatchResponse{}, err
	}
	ids := res.IDs
	if ids == nil {
		ids = []string{}
	}
	return api.BatchResponse{MemoryIDs: ids, Associations: res.Associations, Sequence: res.Seq, Space: space}, nil
}

func (s *Server) handleCursor(w http.ResponseWriter, r *http.Request) error {
	p := newParams(r, "source")
	source := p.str("source")
	if err := p.check(); err != nil {
		return err
	}
	if source == "" {
		return httpErrorf(http.StatusBadRequest, "MISSING_PARAMETER", "query parameter source is required (the importer's source name)").
			with("parameter", "source")
	}
	value, ok, err := s.eng.Cursor(source)
	if err != nil {
		return err
	}
	if !ok {
		return httpErrorf(http.StatusNotFound, "CURSOR_NOT_FOUND", "no cursor is stored for source %q", echo(source)).
			with("source", echo(source))
	}
	s.writeJSON(w, http.StatusOK, api.CursorResponse{Source: source, Value: value})
	return nil
}

func recallParams(r *http.Request) (*api.RecallRequest, error) { return recallParamsWith(r, nil) }

// recallParamsWith parses GET recall's parameters and, with extra, the
// parameters of a route that adds its own to recall's.
func recallParamsWith(r *http.Request, extra func(p *params)) (*api.RecallRequest, error) {
	p := newParams(r, "query", "embedding", "max_results", "threshold", "required_tags", "from_time", "to_time",
		"mode", "trace_activation", "deep", "include_metadata")
	if extra != nil {
		extra(p)
	}
	req := &api.RecallRequest{
		Query:           p.v.Get("query"),
		Embedding:       p.floats("embedding"),
		MaxResults:      p.int("max_results", 0),
		Threshold:       p.float("threshold"),
		RequiredTags:    p.list("required_tags"),
		FromTime:        p.time("from_time"),
		ToTime:          p.time("to_time"),
		Mode:            p.str("mode"),
		TraceActivation: p.bool("trace_activation"),
		Deep:            p.bool("deep"),
		IncludeMetadata: p.bool("include_metadata"),
	}
	engramRecallQuery(r, p, req)
	return req, p.check()
}

// recallAnswer is a written recall's response; once written, its memory
// and the cue's go back for reuse (the engine keeps nothing of the cue).
type recallAnswer struct {
	*api.RecallResponse
	res *core.RecallResult
	cue []float32
}

func (a recallAnswer) afterWrite() {
	recycleRecallResponse(a.RecallResponse)
	a.res.Release()
	recycleVector(a.cue)
}

func (s *Server) recall(ctx context.Context, space string, req *api.RecallRequest) (recallAnswer, error) {
	q := recallQuery(req)
	res, err := s.eng.Recall(ctx, space, q)
	if err != nil {
		return recallAnswer{}, err
	}
	s.metrics.ObserveRecall(s.spaceLabel(space), res.Confidence, res.Activated)
	resp := recallResponse(req, q, &res, space)
	if ri := infoFrom(ctx); ri != nil {
		resp.QueryAnalysis.Suggestions = append(resp.QueryAnalysis.Suggestions, ri.notes...)
	}
	return recallAnswer{RecallResponse: &resp, res: &res, cue: req.Embedding}, nil
}

type searchRequest struct {
	query     string
	limit     int
	threshold float64
}

func (s *Server) searchParams(r *http.Request) (searchRequest, error) {
	p := newParams(r, "query", "limit", "threshold")
	req := searchRequest{query: p.v.Get("query"), limit: p.int("limit", 10), threshold: p.float("threshold")}
	if err := p.check(); err != nil {
		return req, err
	}
	if req.limit > s.cfg.Limits.MaxResults {
		return req, httpErrorf(http.StatusBadRequest, "INVALID_PARAMETER",
			"query parameter limit=%d is above the maximum %d (limits.max_results)", req.limit, s.cfg.Limits.MaxResults).
			with("parameter", "limit", "limit", s.cfg.Limits.MaxResults)
	}
	if strings.TrimSpace(req.query) == "" {
		return req, httpErrorf(http.StatusBadRequest, "MISSING_PARAMETER", "query parameter query is required (the text to search for)").
			with("parameter", "query")
	}
	return req, nil
}

func (s *Server) search(ctx context.Context, space string, req searchRequest) (api.SearchResponse, error) {
	res, err := s.eng.Recall(ctx, space, core.RecallQuery{
		Text: req.query, MaxResults: req.limit, Threshold: req.threshold, Mode: core.ModeSimilarity,
	})
	if err != nil {
		return api.SearchResponse{}, err
	}
	hits := make([]api.SearchHit, len(res.Vivid))
	for i := range res.Vivid {
		m := &res.Vivid[i].Memory
		hits[i] = api.SearchHit{
			ID: m.ID, Content: m.Content, Confidence: m.Confidence, SimilarityScore: res.Vivid[i].Similarity,
			MemoryType: string(m.Type), Timestamp: m.ObservedAt, Tags: nonNil(m.Tags),
		}
	}
	return api.SearchResponse{Memories: hits, Total: len(hits)}, nil
}

type getRequest struct {
	id            string
	withEmbedding bool
}

func getParams(r *http.Request) (getRequest, error) {
	p := newParams(r, "include_embedding")
	req := getRequest{id: r.PathValue("id"), withEmbedding: p.bool("include_embedding")}
	return req, p.check()
}

func (s *Server) get(ctx context.Context, space string, req getRequest) (api.Memory, error) {
	m, err := s.eng.Get(ctx, space, req.id, req.withEmbedding)
	if err != nil {
		return api.Memory{}, err
	}
	return memoryOut(&m, time.Now()), nil
}

func forgetParams(r *http.Request) (string, error) {
	return r.PathValue("id"), newParams(r).check()
}

func (s *Server) forget(ctx context.Context, space string, id string) (api.ForgetResponse, error) {
	seq, err := s.eng.Forget(ctx, space, id)
	if err != nil {
		return api.ForgetResponse{}, err
	}
	return api.ForgetResponse{Status: "forgotten", MemoryID: id, Space: space, Sequence: seq}, nil
}

// listParams reads a page request. tier defaults to all: Engram defaults
// to hot because it can only list its in-memory map, but here hot is just
// the cache of recently used memories, so a hot-only default would hide
// most of the data.
func listParams(r *http.Request) (core.ListOptions, error) {
	p := newParams(r, "tier", "offset", "limit", "include_embeddings")
	tier := strings.ToLower(p.str("tier"))
	o := core.ListOptions{Offset: p.int("offset", 0), Limit: p.int("limit", 100), IncludeEmbeddings: p.bool("include_embeddings")}
	if err := p.check(); err != nil {
		return o, err
	}
	if tier == "" || tier == "all" {
		o.AllTiers = true
	} else {
		t, err := core.ParseTier(tier)
		if err != nil {
			return o, prefixEngineError(err, "query parameter tier: ")
		}
		o.Tier = t
	}
	return o, nil
}

func (s *Server) list(ctx context.Context, space string, o core.ListOptions) (api.ListResponse, error) {
	res, err := s.eng.List(ctx, space, o)
	if err != nil {
		return api.ListResponse{}, err
	}
	out := api.ListResponse{
		Memories:   make([]api.ListedMemory, len(res.Memories)),
		Count:      res.Total,
		TierCounts: health.TierCounts(res.TierCounts),
	}
	for i := range res.Memories {
		out.Memories[i] = listedOut(&res.Memories[i])
	}
	effLimit := o.Limit // the engine's rule: 0 means 100, and max_results caps it
	if effLimit <= 0 {
		effLimit = 100
	}
	if effLimit > s.cfg.Limits.MaxResults {
		// Engram clamps limit too; the page says so rather than
		// refusing, so Engram's clients keep working.
		out.SystemMessage = fmt.Sprintf("limit %d is above the maximum %d (limits.max_results); this page holds at most %d memories, page on with offset",
			effLimit, s.cfg.Limits.MaxResults, s.cfg.Limits.MaxResults)
		effLimit = s.cfg.Limits.MaxResults
	}
	out.Pagination = api.Pagination{
		Offset:   o.Offset,
		Limit:    effLimit,
		Returned: len(out.Memories),
		HasMore:  o.Offset+len(out.Memories) < res.Total,
	}
	return out, nil
}

func (s *Server) associate(ctx context.Context, space string, req *api.AssociationRequest) (api.AssociationResponse, error) {
	seq, err := s.eng.Associate(ctx, space, core.Association{From: req.From, To: req.To, Weight: req.Weight, Kind: req.Kind})
	if err != nil {
		return api.AssociationResponse{}, err
	}
	kind := req.Kind
	if kind == "" {
		kind = "related"
	}
	return api.AssociationResponse{
		Status: "associated", From: req.From, To: req.To, Weight: req.Weight, Kind: kind, Space: space, Sequence: seq,
	}, nil
}

func (s *Server) handleSpaces(w http.ResponseWriter, r *http.Request) error {
	if err := newParams(r).check(); err != nil {
		return err
	}
	stats := s.eng.Spaces()
	out := api.SpacesResponse{Spaces: make([]api.Space, 0, len(stats))}
	for _, st := range stats {
		if visibleSpace(r, st.Name) {
			out.Spaces = append(out.Spaces, spaceOut(st))
		}
	}
	s.writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) handleCreateSpace(w http.ResponseWriter, r *http.Request) error {
	var req api.CreateSpaceRequest
	if err := decodeJSON(w, r, s.cfg.Limits.MaxBodyBytes, &req); err != nil {
		return err
	}
	name := strings.TrimSpace(req.ID)
	if name != "" {
		if _, err := s.checkSpace(r, name); err != nil {
			return err
		}
	}
	info, created, err := s.eng.CreateSpace(r.Context(), core.SpaceConfig{Name: name, Dimension: req.Dimension, Embedder: req.Embedder})
	if err != nil {
		return err
	}
	setSpace(r, info.Name)
	st, err := s.eng.Space(info.Name)
	if err != nil {
		return err
	}
	out := spaceOut(st)
	out.Created = &created
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	s.writeJSON(w, status, out)
	return nil
}

func (s *Server) handleSpace(w http.ResponseWriter, r *http.Request) error {
	if err := newParams(r).check(); err != nil {
		return err
	}
	name, err := s.checkSpace(r, r.PathValue("name"))
	if err != nil {
		return err
	}
	st, err := s.eng.Space(name)
	if err != nil {
		return err
	}
	setSpace(r, name)
	s.writeJSON(w, http.StatusOK, spaceOut(st))
	return nil
}
