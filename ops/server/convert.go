package server

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/ops/api"
	"github.com/engram-ops/engram-ops/ops/health"
)

// Conversions between the wire types (ops/api) and the engine's types.
// They copy and rename; they validate nothing (the engine does).

const defaultReasoning = "Default confidence for user-provided memory"

// linkThreshold maps the optional wire threshold to the engine's field, in
// which 0 means "default": an explicit 0 becomes the smallest positive
// threshold so it still means "link anything at least orthogonal".
func linkThreshold(p *float64) float64 {
	if p == nil {
		return 0
	}
	if *p == 0 {
		return 1e-9
	}
	return *p
}

func timeOrZero(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

func rememberInput(req *api.RememberRequest) core.RememberInput {
	return core.RememberInput{
		ID:            req.ID,
		Content:       req.Content,
		Embedding:     req.Embedding,
		Confidence:    req.Confidence,
		Type:          core.MemoryType(req.MemoryType),
		Tags:          req.Tags,
		Metadata:      req.Metadata,
		ObservedAt:    timeOrZero(req.Timestamp),
		AutoLink:      req.AutoLink,
		LinkThreshold: linkThreshold(req.LinkThreshold),
	}
}

func batchMemoryInput(m *api.BatchMemory) core.RememberInput {
	return core.RememberInput{
		ID:         m.ID,
		Content:    m.Content,
		Embedding:  m.Embedding,
		Confidence: m.Confidence,
		Type:       core.MemoryType(m.MemoryType),
		Tags:       m.Tags,
		Metadata:   m.Metadata,
		ObservedAt: timeOrZero(m.Timestamp),
	}
}

func episodeInput(req *api.EpisodeRequest) core.RememberInput {
	ep := &core.Episode{
		When:             timeOrZero(req.When),
		What:             req.What,
		Where:            req.WhereLocation,
		Who:              req.Who,
		Why:              req.Why,
		How:              req.How,
		EmotionalValence: req.EmotionalValence,
		Importance:       req.Importance,
	}
	return core.RememberInput{
		ID:            req.ID,
		Content:       req.What,
		Embedding:     req.Embedding,
		Confidence:    req.Importance,
		Type:          core.Episodic,
		Tags:          req.Tags,
		Metadata:      req.Metadata,
		Episode:       ep,
		AutoLink:      req.AutoLink,
		LinkThreshold: linkThreshold(req.LinkThreshold),
	}
}

func rememberResponse(res core.RememberResult, space, reasoning, kind string) api.RememberResponse {
	links := make([]api.AutoLink, len(res.AutoLinks))
	for i, l := range res.AutoLinks {
		links[i] = api.AutoLink{TargetMemoryID: l.TargetID, SimilarityScore: l.Similarity}
	}
	var msg strings.Builder
	fmt.Fprintf(&msg, "%s '%s' successfully encoded with %.2f confidence in space '%s'.", kind, res.ID, res.Confidence, space)
	if !res.Created {
		msg.WriteString(" It replaced the previous version with that id.")
	}
	if len(links) > 0 {
		fmt.Fprintf(&msg, " Auto-linked to %d similar memories.", len(links))
	}
	return api.RememberResponse{
		MemoryID: res.ID,
		StorageConfidence: api.Confidence{
			Value:     res.Confidence,
			Category:  api.Category(res.Confidence),
			Reasoning: reasoning,
		},
		ConsolidationState: "Recent",
		ObservedAt:         res.ObservedAt,
		StoredAt:           res.StoredAt,
		Links:              api.Links{Self: memoryPath(res.ID)},
		AutoLinks:          links,
		Created:            res.Created,
		Sequence:           res.Seq,
		Space:              space,
		SystemMessage:      msg.String(),
	}
}

func memoryPath(id string) string { return "/api/v1/memories/" + id }

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func spaceOut(st core.SpaceStats) api.Space {
	return api.Space{
		ID:           st.Name,
		Dimension:    st.Dimension,
		Embedder:     st.Embedder,
		Fingerprint:  st.Fingerprint,
		CreatedAt:    st.CreatedAt,
		Memories:     health.TierCounts(st.Memories),
		Associations: st.Associations,
		IndexPending: st.IndexPending,
	}
}

func episodeOut(ep *core.Episode) *api.Episode {
	if ep == nil {
		return nil
	}
	return &api.Episode{
		When:             ep.When,
		What:             ep.What,
		WhereLocation:    ep.Where,
		Who:              ep.Who,
		Why:              ep.Why,
		How:              ep.How,
		EmotionalValence: ep.EmotionalValence,
		Importance:       ep.Importance,
	}
}

func memoryOut(m *core.Memory, now time.Time) api.Memory {
	return api.Memory{
		ID:             m.ID,
		Content:        m.Content,
		Confidence:     m.Confidence,
		Timestamp:      m.ObservedAt,
		MemoryType:     string(m.Type),
		Tags:           nonNil(m.Tags),
		Metadata:       m.Metadata,
		Episode:        episodeOut(m.Episode),
		ObservedAt:     m.ObservedAt,
		StoredAt:       m.StoredAt,
		LastAccess:     m.LastAccess,
		AccessCount:    m.AccessCount,
		StabilityHours: m.Stability.Hours(),
		Retrievability: m.Retrievability(now),
		Tier:           m.Tier.String(),
		Sequence:       m.Seq,
		Space:          m.Space,
		Embedding:      m.Embedding,
	}
}

func listedOut(m *core.Memory) api.ListedMemory {
	return api.ListedMemory{
		ID:         m.ID,
		Content:    m.Content,
		Confidence: m.Confidence,
		Timestamp:  m.ObservedAt,
		MemoryType: string(m.Type),
		Tags:       nonNil(m.Tags),
		Tier:       m.Tier.String(),
		Embedding:  m.Embedding,
	}
}

// recalledOut renders one recall result with the engine's real figures.
func recalledOut(rc *core.Recalled, trace, includeMeta bool) api.RecalledMemory {
	m := &rc.Memory
	path := "direct match"
	var expl, reasoning string
	var lead [192]byte // the explanation is built here
	if rc.Direct {
		reasoning = "score = similarity × stored confidence × retrievability"
		expl = explanation(append(lead[:0], "Direct match: similarity "...), rc.Similarity, m.Confidence, rc.Retrievability, rc.Score)
	} else {
		if len(rc.Path) > 0 {
			path = "spreading: " + strings.Join(rc.Path, " → ")
		} else {
			path = "spreading"
		}
		hops := max(len(rc.Path)-1, 1)
		reasoning = "score = activation × stored confidence × retrievability"
		b := strconv.AppendInt(append(lead[:0], "Reached through "...), int64(hops), 10)
		expl = explanation(append(b, " association hop(s): activation "...), rc.Activation, m.Confidence, rc.Retrievability, rc.Score)
	}
	out := api.RecalledMemory{
		ID:                   m.ID,
		Content:              m.Content,
		Confidence:           api.Confidence{Value: rc.Score, Category: api.Category(rc.Score), Reasoning: reasoning},
		ActivationLevel:      rc.Activation,
		SimilarityScore:      rc.Similarity,
		Retrievability:       rc.Retrievability,
		StoredConfidence:     m.Confidence,
		RetrievalPath:        path,
		ObservedAt:           m.ObservedAt,
		LastAccess:           m.LastAccess,
		Tags:                 nonNil(m.Tags),
		MemoryType:           string(m.Type),
		Tier:                 m.Tier.String(),
		RelevanceExplanation: expl,
	}
	if trace {
		out.Path = rc.Path
	}
	if includeMeta {
		out.Metadata = m.Metadata
	}
	return out
}

// explanation appends "%.2f × confidence %.2f × retrievability %.2f = %.2f"
// of the four figures to b, as fmt.Sprintf writes them, and returns the
// whole as a string: one allocation per result instead of Sprintf's five
// (each number boxed, then the string).
func explanation(b []byte, first, confidence, retrievability, score float64) string {
	b = strconv.AppendFloat(b, first, 'f', 2, 64)
	b = append(b, " × confidence "...)
	b = strconv.AppendFloat(b, confidence, 'f', 2, 64)
	b = append(b, " × retrievability "...)
	b = strconv.AppendFloat(b, retrievability, 'f', 2, 64)
	b = append(b, " = "...)
	b = strconv.AppendFloat(b, score, 'f', 2, 64)
	return string(b)
}

func recallQuery(req *api.RecallRequest) core.RecallQuery {
	return core.RecallQuery{
		Text:         req.Query,
		Embedding:    req.Embedding,
		MaxResults:   req.MaxResults,
		Threshold:    req.Threshold,
		RequiredTags: req.RequiredTags,
		From:         timeOrZero(req.FromTime),
		To:           timeOrZero(req.ToTime),
		Mode:         core.RecallMode(req.Mode),
		Deep:         req.Deep,
		Trace:        req.TraceActivation,
	}
}

// recalledBufs recycles the result slices of recall responses (see
// recycleRecallResponse): at 1,000 recalls/s of ten results each they were
// 3 KB of every recall's allocation.
var recalledBufs sync.Pool // *[]api.RecalledMemory

func getRecalled(n int) []api.RecalledMemory {
	if p, ok := recalledBufs.Get().(*[]api.RecalledMemory); ok && cap(*p) >= n {
		return (*p)[:n]
	}
	return make([]api.RecalledMemory, n)
}

// recycleRecallResponse gives r's result slices back once r is written.
func recycleRecallResponse(r *api.RecallResponse) {
	for _, ms := range [][]api.RecalledMemory{r.Memories.Vivid, r.Memories.Associated} {
		if cap(ms) > 0 {
			clear(ms[:cap(ms)])
			ms = ms[:0]
			recalledBufs.Put(&ms)
		}
	}
	r.Memories.Vivid, r.Memories.Associated = nil, nil
}

// recallResponse renders a recall in Engram's shape with real values.
func recallResponse(req *api.RecallRequest, q core.RecallQuery, res *core.RecallResult, space string) api.RecallResponse {
	vivid := getRecalled(len(res.Vivid))
	for i := range res.Vivid {
		vivid[i] = recalledOut(&res.Vivid[i], req.TraceActivation, req.IncludeMetadata)
	}
	assoc := getRecalled(len(res.Associated))
	for i := range res.Associated {
		assoc[i] = recalledOut(&res.Associated[i], req.TraceActivation, req.IncludeMetadata)
	}
	n := len(vivid) + len(assoc)
	took := float64(res.Took.Microseconds()) / 1000
	mode := string(q.Mode)
	if mode == "" {
		mode = string(core.ModeHybrid)
	}

	reasoning := "No memory matched the cue above the threshold"
	if n > 0 {
		reasoning = fmt.Sprintf("Mean score of the best %d of %d results (similarity or activation × confidence × retrievability)", min(3, n), n)
	}
	intent := strings.TrimSpace(req.Query)
	if intent == "" {
		intent = fmt.Sprintf("vector cue (%d dimensions)", len(req.Embedding))
	}
	load := "Low"
	switch {
	case res.Took > 100*time.Millisecond:
		load = "High"
	case res.Took > 10*time.Millisecond:
		load = "Medium"
	}
	var sugg []string
	if n == 0 {
		sugg = append(sugg, "Nothing passed the threshold: lower threshold, rephrase the cue, or use deep=true to include the cold tier")
	}
	if mode == string(core.ModeSimilarity) && n > 0 {
		sugg = append(sugg, "Use mode=hybrid to also return memories reached through associations")
	}
	if mode != string(core.ModeSimilarity) && res.Activated == 0 && len(vivid) > 0 {
		sugg = append(sugg, "No associations were followed: POST /api/v1/associations or remember with auto_link=true connects memories")
	}
	if !req.TraceActivation && len(assoc) > 0 {
		sugg = append(sugg, "Set trace_activation=true to see each result's activation path")
	}
	if sugg == nil {
		sugg = []string{}
	}
	return api.RecallResponse{
		Memories: api.RecallGroups{Vivid: vivid, Associated: assoc, Reconstructed: []api.RecalledMemory{}},
		RecallConfidence: api.Confidence{
			Value:     res.Confidence,
			Category:  api.Category(res.Confidence),
			Reasoning: reasoning,
		},
		QueryAnalysis: api.QueryAnalysis{
			UnderstoodIntent: truncateString(intent, 200),
			SearchStrategy:   res.Strategy,
			CognitiveLoad:    load,
			Suggestions:      sugg,
		},
		Metadata: api.RecallMetadata{
			TookMS:                took,
			TotalMemoriesSearched: res.Searched,
			Activated:             res.Activated,
			Mode:                  mode,
			Space:                 space,
			Deep:                  q.Deep,
			Returned:              n,
		},
		SystemMessage: fmt.Sprintf("Recall completed in %.1fms: %d direct matches, %d through spreading activation.",
			took, len(vivid), len(assoc)),
	}
}
