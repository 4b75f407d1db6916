package server

import (
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
func (s *Server) writeSpace(r *http.Request, body api.SpaceFields) (string, error) {
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

func (s *Server) handleRemember(w http.ResponseWriter, r *http.Request) error {
	var req api.RememberRequest
	if err := decodeJSON(w, r, s.cfg.Limits.MaxBodyBytes, &req); err != nil {
		return err
	}
	space, err := s.writeSpace(r, req.SpaceFields)
	if err != nil {
		return err
	}
	start := time.Now()
	res, err := s.eng.Remember(r.Context(), space, rememberInput(&req))
	s.observe(opRemember, space, start, err)
	if err != nil {
		return err
	}
	reasoning := req.ConfidenceReasoning
	if reasoning == "" {
		reasoning = defaultReasoning
		if req.Confidence != nil {
			reasoning = "Confidence supplied by the client"
		}
	}
	s.writeJSON(w, http.StatusCreated, rememberResponse(res, space, reasoning, "Memory"))
	return nil
}

func (s *Server) handleEpisode(w http.ResponseWriter, r *http.Request) error {
	var req api.EpisodeRequest
	if err := decodeJSON(w, r, s.cfg.Limits.MaxBodyBytes, &req); err != nil {
		return err
	}
	space, err := s.writeSpace(r, req.SpaceFields)
	if err != nil {
		return err
	}
	start := time.Now()
	res, err := s.eng.Remember(r.Context(), space, episodeInput(&req))
	s.observe(opRemember, space, start, err)
	if err != nil {
		if core.CodeOf(err) == "INVALID_CONFIDENCE" {
			return prefixEngineError(err, "importance (the episode's confidence): ")
		}
		return err
	}
	reasoning := "Default importance of an episode"
	if req.Importance != nil {
		reasoning = "Episode importance supplied by the client"
	}
	s.writeJSON(w, http.StatusCreated, rememberResponse(res, space, reasoning, "Episode"))
	return nil
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

func (s *Server) handleBatch(w http.ResponseWriter, r *http.Request) error {
	var req api.BatchRequest
	if err := decodeJSON(w, r, s.cfg.Limits.MaxBodyBytes, &req); err != nil {
		return err
	}
	space, err := s.writeSpace(r, req.SpaceFields)
	if err != nil {
		return err
	}
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
	start := time.Now()
	res, err := s.eng.Batch(r.Context(), space, in)
	s.observe(opBatch, space, start, err)
	if err != nil {
		return err
	}
	ids := res.IDs
	if ids == nil {
		ids = []string{}
	}
	s.writeJSON(w, http.StatusCreated, api.BatchResponse{MemoryIDs: ids, Associations: res.Associations, Sequence: res.Seq, Space: space})
	return nil
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

func (s *Server) handleRecallGet(w http.ResponseWriter, r *http.Request) error {
	p := newParams(r, "query", "embedding", "max_results", "threshold", "required_tags", "from_time", "to_time",
		"mode", "trace_activation", "deep", "include_metadata")
	req := api.RecallRequest{
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
	if err := p.check(); err != nil {
		return err
	}
	space, err := s.readSpace(r)
	if err != nil {
		return err
	}
	return s.recall(w, r, &req, space)
}

func (s *Server) handleRecallPost(w http.ResponseWriter, r *http.Request) error {
	var req api.RecallRequest
	if err := decodeJSON(w, r, s.cfg.Limits.MaxBodyBytes, &req); err != nil {
		return err
	}
	space, err := s.writeSpace(r, req.SpaceFields)
	if err != nil {
		return err
	}
	return s.recall(w, r, &req, space)
}

func (s *Server) recall(w http.ResponseWriter, r *http.Request, req *api.RecallRequest, space string) error {
	q := recallQuery(req)
	start := time.Now()
	res, err := s.eng.Recall(r.Context(), space, q)
	s.observe(opRecall, space, start, err)
	if err != nil {
		return err
	}
	s.metrics.ObserveRecall(s.spaceLabel(space), res.Confidence, res.Activated)
	resp := recallResponse(req, q, &res, space)
	s.writeJSON(w, http.StatusOK, resp)
	// The response is written, and the engine keeps nothing of the cue.
	recycleRecallResponse(&resp)
	res.Release()
	req.Embedding.Recycle()
	return nil
}

func (s *Server) handleSearch(w http.ResponseWriter, r *http.Request) error {
	p := newParams(r, "query", "limit", "threshold")
	query := p.v.Get("query")
	limit := p.int("limit", 10)
	threshold := p.float("threshold")
	if err := p.check(); err != nil {
		return err
	}
	if limit > s.cfg.Limits.MaxResults {
		return httpErrorf(http.StatusBadRequest, "INVALID_PARAMETER",
			"query parameter limit=%d is above the maximum %d (limits.max_results)", limit, s.cfg.Limits.MaxResults).
			with("parameter", "limit", "limit", s.cfg.Limits.MaxResults)
	}
	if strings.TrimSpace(query) == "" {
		return httpErrorf(http.StatusBadRequest, "MISSING_PARAMETER", "query parameter query is required (the text to search for)").
			with("parameter", "query")
	}
	space, err := s.readSpace(r)
	if err != nil {
		return err
	}
	start := time.Now()
	res, err := s.eng.Recall(r.Context(), space, core.RecallQuery{
		Text: query, MaxResults: limit, Threshold: threshold, Mode: core.ModeSimilarity,
	})
	s.observe(opRecall, space, start, err)
	if err != nil {
		return err
	}
	hits := make([]api.SearchHit, len(res.Vivid))
	for i := range res.Vivid {
		m := &res.Vivid[i].Memory
		hits[i] = api.SearchHit{
			ID: m.ID, Content: m.Content, Confidence: m.Confidence, SimilarityScore: res.Vivid[i].Similarity,
			MemoryType: string(m.Type), Timestamp: m.ObservedAt, Tags: nonNil(m.Tags),
		}
	}
	s.writeJSON(w, http.StatusOK, api.SearchResponse{Memories: hits, Total: len(hits)})
	return nil
}

func (s *Server) handleGet(w http.ResponseWriter, r *http.Request) error {
	p := newParams(r, "include_embedding")
	withEmb := p.bool("include_embedding")
	if err := p.check(); err != nil {
		return err
	}
	space, err := s.readSpace(r)
	if err != nil {
		return err
	}
	start := time.Now()
	m, err := s.eng.Get(r.Context(), space, r.PathValue("id"), withEmb)
	s.observe(opGet, space, start, err)
	if err != nil {
		return err
	}
	s.writeJSON(w, http.StatusOK, memoryOut(&m, time.Now()))
	return nil
}

func (s *Server) handleForget(w http.ResponseWriter, r *http.Request) error {
	if err := newParams(r).check(); err != nil {
		return err
	}
	space, err := s.readSpace(r)
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	start := time.Now()
	seq, err := s.eng.Forget(r.Context(), space, id)
	s.observe(opForget, space, start, err)
	if err != nil {
		return err
	}
	s.writeJSON(w, http.StatusOK, api.ForgetResponse{Status: "forgotten", MemoryID: id, Space: space, Sequence: seq})
	return nil
}

// handleList pages through a space. tier defaults to all: Engram defaults
// to hot because it can only list its in-memory map, but here hot is just
// the cache of recently used memories, so a hot-only default would hide
// most of the data.
func (s *Server) handleList(w http.ResponseWriter, r *http.Request) error {
	p := newParams(r, "tier", "offset", "limit", "include_embeddings")
	tier := strings.ToLower(p.str("tier"))
	offset := p.int("offset", 0)
	limit := p.int("limit", 100)
	withEmb := p.bool("include_embeddings")
	if err := p.check(); err != nil {
		return err
	}
	o := core.ListOptions{Offset: offset, Limit: limit, IncludeEmbeddings: withEmb}
	if tier == "" || tier == "all" {
		o.AllTiers = true
	} else {
		t, err := core.ParseTier(tier)
		if err != nil {
			return prefixEngineError(err, "query parameter tier: ")
		}
		o.Tier = t
	}
	space, err := s.readSpace(r)
	if err != nil {
		return err
	}
	start := time.Now()
	res, err := s.eng.List(r.Context(), space, o)
	s.observe(opList, space, start, err)
	if err != nil {
		return err
	}
	out := api.ListResponse{
		Memories:   make([]api.ListedMemory, len(res.Memories)),
		Count:      res.Total,
		TierCounts: health.TierCounts(res.TierCounts),
	}
	for i := range res.Memories {
		out.Memories[i] = listedOut(&res.Memories[i])
	}
	effLimit := limit // the engine's rule: 0 means 100, and max_results caps it
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
		Offset:   offset,
		Limit:    effLimit,
		Returned: len(out.Memories),
		HasMore:  offset+len(out.Memories) < res.Total,
	}
	s.writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) handleAssociate(w http.ResponseWriter, r *http.Request) error {
	var req api.AssociationRequest
	if err := decodeJSON(w, r, s.cfg.Limits.MaxBodyBytes, &req); err != nil {
		return err
	}
	space, err := s.writeSpace(r, req.SpaceFields)
	if err != nil {
		return err
	}
	a := core.Association{From: req.From, To: req.To, Weight: req.Weight, Kind: req.Kind}
	start := time.Now()
	seq, err := s.eng.Associate(r.Context(), space, a)
	s.observe(opAssociate, space, start, err)
	if err != nil {
		return err
	}
	kind := req.Kind
	if kind == "" {
		kind = "related"
	}
	s.writeJSON(w, http.StatusCreated, api.AssociationResponse{
		Status: "associated", From: req.From, To: req.To, Weight: req.Weight, Kind: kind, Space: space, Sequence: seq,
	})
	return nil
}

func (s *Server) handleSpaces(w http.ResponseWriter, r *http.Request) error {
	if err := newParams(r).check(); err != nil {
		return err
	}
	stats := s.eng.Spaces()
	out := api.SpacesResponse{Spaces: make([]api.Space, len(stats))}
	for i, st := range stats {
		out.Spaces[i] = spaceOut(st)
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
	name := r.PathValue("name")
	st, err := s.eng.Space(name)
	if err != nil {
		return err
	}
	setSpace(r, name)
	s.writeJSON(w, http.StatusOK, spaceOut(st))
	return nil
}
