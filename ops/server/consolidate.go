package server

// Consolidation: POST /api/v1/episodes/replay runs a pass over a space's
// episodes (episodic memories): episodes are grouped by embedding (each
// joins the group whose centroid is most similar, at least min_similarity,
// or starts one), and each group of at least min_episodes becomes one
// semantic memory (a belief) with associations to the episodes it cites.
// GET /api/v1/consolidations[/{id}] reads the beliefs back in Engram's
// shape. Engram's replay always answers an empty list.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/ops/api"
	"github.com/engram-ops/engram-ops/ops/metrics"
)

const (
	// consolidatedTag marks the semantic memories consolidation writes.
	consolidatedTag = "consolidated"
	// citationKind is the kind of a belief's association to an episode.
	citationKind = "consolidated_from"
	// metaEpisodes is the metadata key listing a belief's episodes.
	metaEpisodes = "consolidation.episodes"
	metaRun      = "consolidation.run"

	defaultMinSimilarity = 0.8
	defaultMinEpisodes   = 2
	// maxReplayEpisodes bounds the episodes one pass groups (the last ones
	// in id order): grouping compares each episode with every group.
	maxReplayEpisodes = 2000
	// opConsolidate is the operation label of a pass in
	// engram_memory_operation_duration_seconds.
	opConsolidate = "consolidate"
	// maxCitations bounds the episodes a belief cites (and links to).
	maxCitations = 100
	// previewBytes is the length of a citation's content preview (Engram's).
	previewBytes = 160
)

// consolidator counts the passes of this server (Engram's stats) and
// exports them as metrics.
type consolidator struct {
	m *metrics.Consolidation

	mu               sync.Mutex
	runs, ok, failed uint64
	patterns         uint64
	episodes         int
	seconds          float64
	last             time.Time
}

func newConsolidator(reg prometheus.Registerer) (*consolidator, error) {
	m, err := metrics.NewConsolidation(reg)
	if err != nil {
		return nil, err
	}
	return &consolidator{m: m}, nil
}

func (c *consolidator) record(d time.Duration, episodes, beliefs int, err error) {
	c.m.Observe(d, episodes, beliefs, err)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.runs++
	if err != nil {
		c.failed++
		return
	}
	c.ok++
	c.patterns += uint64(beliefs)
	c.episodes += episodes
	c.seconds += d.Seconds()
	c.last = time.Now().UTC()
}

func (c *consolidator) stats() api.ConsolidationStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := api.ConsolidationStats{TotalReplays: c.runs, SuccessfulConsolidations: c.ok, FailedConsolidations: c.failed,
		TotalPatternsExtracted: c.patterns}
	if c.seconds > 0 {
		st.AverageReplaySpeed = float64(c.episodes) / c.seconds
	}
	if !c.last.IsZero() {
		t := c.last
		st.LastReplayTimestamp = &t
	}
	return st
}

func (s *Server) consolidationRoutes() {
	s.handle("POST "+api.PathReplay, engineOp(s, opConsolidate, http.StatusOK, body[api.ReplayRequest](s), s.replay))
	s.handle("GET "+api.PathConsolidations, engineOp(s, opList, http.StatusOK, query(s, consolidationsParams), s.consolidations))
	s.handle("GET "+api.PathConsolidation, engineOp(s, opGet, http.StatusOK, query(s, consolidationParams), s.consolidation))
}

// episodeGroup is a group of similar episodes.
type episodeGroup struct {
	sum     []float64
	members []int
	c       []float32 // the normalised centroid, kept up to date
}

// add puts episode i with normalised vector v in the group.
func (g *episodeGroup) add(i int, v []float32) {
	g.members = append(g.members, i)
	for j, x := range v {
		g.sum[j] += float64(x)
	}
	g.c = g.centroid()
}

func (g *episodeGroup) centroid() []float32 {
	var n float64
	for _, v := range g.sum {
		n += v * v
	}
	n = math.Sqrt(n)
	c := make([]float32, len(g.sum))
	for i, v := range g.sum {
		if n > 0 {
			c[i] = float32(v / n)
		}
	}
	return c
}

func normalized(v []float32) []float32 {
	var n float64
	for _, x := range v {
		n += float64(x) * float64(x)
	}
	n = math.Sqrt(n)
	out := make([]float32, len(v))
	for i, x := range v {
		if n > 0 {
			out[i] = float32(float64(x) / n)
		}
	}
	return out
}

func cosine(a, b []float32) float64 {
	var d float64
	for i := range a {
		d += float64(a[i]) * float64(b[i])
	}
	return d
}

func (s *Server) replay(ctx context.Context, space string, req *api.ReplayRequest) (api.ReplayResponse, error) {
	minSim, minEp := defaultMinSimilarity, defaultMinEpisodes
	if req.MinSimilarity != 0 {
		if err := checkThreshold("min_similarity", req.MinSimilarity); err != nil {
			return api.ReplayResponse{}, err
		}
		minSim = req.MinSimilarity
	}
	if req.MinEpisodes != 0 {
		if req.MinEpisodes < 2 || req.MinEpisodes > maxCitations {
			return api.ReplayResponse{}, httpErrorf(http.StatusBadRequest, "INVALID_PARAMETER",
				"min_episodes %d is outside 2..%d", req.MinEpisodes, maxCitations).with("field", "min_episodes")
		}
		minEp = req.MinEpisodes
	}
	start := time.Now()
	out, err := s.consolidate(ctx, space, minSim, minEp)
	d := time.Since(start)
	s.cons.record(d, out.EpisodesScanned, out.BeliefsWritten, err)
	if err != nil {
		return api.ReplayResponse{}, err
	}
	out.DurationMS = float64(d.Microseconds()) / 1000
	return out, nil
}

// consolidateEvery runs a pass over every space each interval (config
// consolidation.interval) until ctx ends. A pass that fails is logged
// and counted; the next interval tries again.
func (s *Server) consolidateEvery(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, sp := range s.eng.Spaces() {
			if ctx.Err() != nil {
				return
			}
			start := time.Now()
			out, err := s.consolidate(ctx, sp.Name, defaultMinSimilarity, defaultMinEpisodes)
			d := time.Since(start)
			s.cons.record(d, out.EpisodesScanned, out.BeliefsWritten, err)
			s.observe(opConsolidate, sp.Name, start, err)
			if err != nil && ctx.Err() == nil {
				s.log.Warn("scheduled consolidation pass failed", "space", sp.Name, "err", err)
			}
		}
	}
}

// consolidate runs one pass over space.
func (s *Server) consolidate(ctx context.Context, space string, minSim float64, minEp int) (api.ReplayResponse, error) {
	now := time.Now().UTC()
	run := "run-" + strconv.FormatInt(now.UnixNano(), 36)
	out := api.ReplayResponse{RunID: run, Space: space, Beliefs: []string{}}
	var eps []core.Memory
	var vecs [][]float32
	page := min(1000, s.cfg.Limits.MaxResults)
	truncated := false
	for off := 0; ; off += page {
		res, err := s.eng.List(ctx, space, core.ListOptions{AllTiers: true, Offset: off, Limit: page, IncludeEmbeddings: true})
		if err != nil {
			return out, err
		}
		for i := range res.Memories {
			m := res.Memories[i]
			if m.Type != core.Episodic || len(m.Embedding) == 0 {
				continue
			}
			vecs = append(vecs, normalized(m.Embedding))
			m.Embedding = nil
			eps = append(eps, m)
			if len(eps) > 2*maxReplayEpisodes {
				// Keep the last maxReplayEpisodes.
				eps = append(eps[:0], eps[len(eps)-maxReplayEpisodes:]...)
				vecs = append(vecs[:0], vecs[len(vecs)-maxReplayEpisodes:]...)
				truncated = true
			}
		}
		if len(res.Memories) < page || off+page >= res.Total {
			break
		}
	}
	if len(eps) > maxReplayEpisodes {
		eps, vecs, truncated = eps[len(eps)-maxReplayEpisodes:], vecs[len(vecs)-maxReplayEpisodes:], true
	}
	out.EpisodesScanned = len(eps)
	// Episodes are read in id order, so the grouping is deterministic.
	var groups []*episodeGroup
	for i, v := range vecs {
		if i%256 == 0 {
			if ctx.Err() != nil {
				return out, httpErrorf(http.StatusServiceUnavailable, "CANCELLED",
					"the consolidation pass was cancelled (the client went away) after grouping %d of %d episodes; nothing was written", i, len(vecs))
			}
		}
		best, bestSim := -1, minSim
		for gi, g := range groups {
			if sim := cosine(g.c, v); sim >= bestSim {
				best, bestSim = gi, sim
			}
		}
		if best < 0 {
			groups = append(groups, &episodeGroup{sum: make([]float64, len(v))})
			best = len(groups) - 1
		}
		groups[best].add(i, v)
	}
	for _, g := range groups {
		if len(g.members) < minEp {
			continue
		}
		out.Groups++
		id, err := s.writeBelief(ctx, space, run, g, eps, vecs)
		if err != nil {
			return out, err
		}
		out.Beliefs = append(out.Beliefs, id)
		out.BeliefsWritten++
	}
	out.SystemMessage = fmt.Sprintf("Replayed %d episodes: %d group(s) of at least %d similar episodes (cosine ≥ %.2f) became semantic memories.",
		len(eps), out.Groups, minEp, minSim)
	if truncated {
		out.SystemMessage += fmt.Sprintf(" Only the last %d episodes (by id) were grouped.", maxReplayEpisodes)
	}
	return out, nil
}

// writeBelief writes a group's semantic memory and its associations to
// the episodes it cites, in one atomic batch. The belief's id derives from
// the group's first episode, so a later pass updates it rather than adding
// another; its content is the group's most central episode, its vector the
// centroid, its confidence the mean confidence of the episodes times
// their mean similarity to the centroid, its observed time now.
func (s *Server) writeBelief(ctx context.Context, space, run string, g *episodeGroup, eps []core.Memory, vecs [][]float32) (string, error) {
	c := g.c
	type cited struct {
		i   int
		sim float64
	}
	cs := make([]cited, len(g.members))
	var cohesion, conf float64
	for k, i := range g.members {
		cs[k] = cited{i, cosine(c, vecs[i])}
		cohesion += cs[k].sim
		conf += eps[i].Confidence
	}
	n := float64(len(g.members))
	cohesion, conf = cohesion/n, conf/n
	sort.SliceStable(cs, func(a, b int) bool { return cs[a].sim > cs[b].sim })
	cs = cs[:min(len(cs), maxCitations)]
	sum := sha256.Sum256([]byte(eps[g.members[0]].ID))
	id := "belief_" + hex.EncodeToString(sum[:8])
	ids := make([]string, len(cs))
	assocs := make([]core.Association, len(cs))
	for k, ct := range cs {
		ids[k] = eps[ct.i].ID
		assocs[k] = core.Association{From: id, To: ids[k], Weight: min(max(ct.sim, 0.01), 1), Kind: citationKind}
	}
	episodes := strings.Join(ids, ",")
	for len(episodes) > 4096 { // the engine's metadata value limit
		ids = ids[:len(ids)-1]
		episodes = strings.Join(ids, ",")
	}
	confidence := min(max(conf*cohesion, 0), 1)
	_, err := s.eng.Batch(ctx, space, core.BatchInput{
		Memories: []core.RememberInput{{
			ID: id, Content: eps[cs[0].i].Content, Embedding: c, Confidence: &confidence, Type: core.Semantic,
			// Observed now: the belief is formed by this pass, and its
			// decay runs from it.
			Tags: []string{consolidatedTag},
			Metadata: map[string]string{metaEpisodes: episodes, metaRun: run,
				"consolidation.episode_count": strconv.Itoa(len(g.members))},
		}},
		Associations: assocs,
	})
	return id, err
}

type consolidationsRequest struct{ maxEpisodes, maxPatterns int }

func consolidationsParams(r *http.Request) (consolidationsRequest, error) {
	p := newParams(r, "max_episodes", "max_patterns")
	req := consolidationsRequest{maxEpisodes: p.int("max_episodes", 256), maxPatterns: p.int("max_patterns", 0)}
	if err := p.check(); err != nil {
		return req, err
	}
	if req.maxEpisodes < 0 || req.maxPatterns < 0 {
		return req, httpErrorf(http.StatusBadRequest, "INVALID_PARAMETER", "max_episodes and max_patterns must not be negative")
	}
	return req, nil
}

// consolidations lists the space's beliefs, strongest first.
func (s *Server) consolidations(ctx context.Context, space string, req consolidationsRequest) (api.ConsolidationsResponse, error) {
	out := api.ConsolidationsResponse{GeneratedAt: time.Now().UTC(), Beliefs: []api.Belief{}, Stats: s.cons.stats()}
	page := min(1000, s.cfg.Limits.MaxResults)
	budget := req.maxEpisodes
	for off := 0; ; off += page {
		res, err := s.eng.List(ctx, space, core.ListOptions{AllTiers: true, Offset: off, Limit: page})
		if err != nil {
			return out, err
		}
		for i := range res.Memories {
			if m := &res.Memories[i]; isBelief(m) {
				b, err := s.belief(ctx, space, m, &budget)
				if err != nil {
					return out, err
				}
				out.Beliefs = append(out.Beliefs, b)
			}
		}
		if len(res.Memories) < page || off+page >= res.Total {
			break
		}
	}
	sort.SliceStable(out.Beliefs, func(i, j int) bool { return out.Beliefs[i].Strength > out.Beliefs[j].Strength })
	if req.maxPatterns > 0 && len(out.Beliefs) > req.maxPatterns {
		out.Beliefs = out.Beliefs[:req.maxPatterns]
	}
	return out, nil
}

func consolidationParams(r *http.Request) (string, error) {
	return r.PathValue("id"), newParams(r).check()
}

func (s *Server) consolidation(ctx context.Context, space string, id string) (api.Belief, error) {
	m, err := s.eng.Get(ctx, space, id, false)
	if err != nil && core.KindOf(err) != core.KindNotFound {
		return api.Belief{}, err
	}
	if err != nil || !isBelief(&m) {
		return api.Belief{}, httpErrorf(http.StatusNotFound, "CONSOLIDATION_NOT_FOUND",
			"no consolidated memory has id %q in space %s", echo(id), space).with("id", echo(id))
	}
	budget := maxCitations
	return s.belief(ctx, space, &m, &budget)
}

func isBelief(m *core.Memory) bool {
	if m.Type != core.Semantic || m.Metadata[metaEpisodes] == "" {
		return false
	}
	for _, t := range m.Tags {
		if t == consolidatedTag {
			return true
		}
	}
	return false
}

// belief renders a belief with up to *budget citations (decremented).
// Episodes forgotten since are left out.
func (s *Server) belief(ctx context.Context, space string, m *core.Memory, budget *int) (api.Belief, error) {
	now := time.Now()
	strength := m.Confidence * m.Retrievability(now)
	b := api.Belief{
		ID: m.ID, Content: m.Content, Strength: strength, LastConsolidated: m.StoredAt, Citations: []api.Citation{},
		SchemaConfidence: api.Confidence{Value: m.Confidence, Category: api.Category(m.Confidence),
			Reasoning: "mean confidence of the cited episodes × their mean similarity to the group's centroid"},
	}
	var sum float64
	for _, id := range strings.Split(m.Metadata[metaEpisodes], ",") {
		if *budget <= 0 {
			break
		}
		ep, err := s.eng.Get(ctx, space, id, false)
		if core.KindOf(err) == core.KindNotFound {
			continue
		}
		if err != nil {
			return b, err
		}
		*budget--
		sum += ep.Confidence
		b.Citations = append(b.Citations, api.Citation{
			EpisodeID: ep.ID, ObservedAt: ep.ObservedAt, StoredAt: ep.StoredAt, LastAccess: ep.LastAccess,
			EncodingConfidence: ep.Confidence, ReinforcementCount: ep.AccessCount, ContentPreview: truncateString(ep.Content, previewBytes),
		})
	}
	b.Stats = api.BeliefStats{EpisodeCount: len(b.Citations), FreshnessHours: now.Sub(m.StoredAt).Hours()}
	if n, err := strconv.Atoi(m.Metadata["consolidation.episode_count"]); err == nil {
		b.Stats.EpisodeCount = n
	}
	if len(b.Citations) > 0 {
		b.Stats.AverageSourceConfidence = sum / float64(len(b.Citations))
	}
	return b, nil
}
