package server

// POST /api/v1/complete: pattern completion. The partial episode's text
// fields are the cue of a read-only similarity recall; each missing field
// is filled from the best-scoring matching memory that has it, with that
// memory's score (similarity × stored confidence × retrievability) as the
// field's confidence. Engram's answer ignores its stored memories.

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/ops/api"
)

const (
	defaultHypotheses = 3
	maxHypotheses     = 10
)

// completionFields are the episode fields a completion fills, in order.
var completionFields = []string{"what", "when", "where", "who", "why", "how"}

// episodeField is field f of m as an episode (a plain memory's what is
// its content and its when its observed time); nil when m lacks it.
func episodeField(m *core.Memory, f string) any {
	ep := m.Episode
	if ep == nil {
		ep = &core.Episode{What: m.Content, When: m.ObservedAt}
	}
	switch f {
	case "what":
		if ep.What != "" {
			return ep.What
		}
		return nonEmpty(m.Content)
	case "when":
		if ep.When.IsZero() {
			return nil
		}
		t := ep.When
		return &t
	case "where":
		return nonEmpty(ep.Where)
	case "who":
		if len(ep.Who) == 0 {
			return nil
		}
		return ep.Who
	case "why":
		return nonEmpty(ep.Why)
	case "how":
		return nonEmpty(ep.How)
	}
	return nil
}

func nonEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// setField stores v (from episodeField) as field f of e.
func setField(e *api.CompletedEpisode, f string, v any) {
	switch f {
	case "what":
		e.What = v.(string)
	case "when":
		e.When = v.(*time.Time)
	case "where":
		e.Where = v.(string)
	case "who":
		e.Who = v.([]string)
	case "why":
		e.Why = v.(string)
	case "how":
		e.How = v.(string)
	}
}

func (s *Server) complete(ctx context.Context, space string, req *api.CompleteRequest) (api.CompleteResponse, error) {
	p := req.Partial
	where := p.WhereLocation
	if p.Where != "" {
		if where != "" && where != p.Where {
			return api.CompleteResponse{}, conflictingFields("partial.where", "partial.where_location")
		}
		where = p.Where
	}
	n := defaultHypotheses
	var notes []string
	if pr := req.Params; pr != nil {
		if pr.NumHypotheses < 0 || pr.NumHypotheses > maxHypotheses {
			return api.CompleteResponse{}, httpErrorf(http.StatusBadRequest, "INVALID_MAX_RESULTS",
				"params.num_hypotheses %d is outside 1..%d", pr.NumHypotheses, maxHypotheses).with("limit", maxHypotheses)
		}
		if pr.NumHypotheses > 0 {
			n = pr.NumHypotheses
		}
		if pr.CA3Sparsity != nil || pr.CA1Threshold != nil {
			notes = append(notes, "params.ca3_sparsity and params.ca1_threshold are accepted and not applied: completion here is a recall of stored memories, not an attractor network")
		}
	}
	var cue []string
	for _, t := range []string{p.What, where, strings.Join(p.Who, " "), p.Why, p.How} {
		if t = strings.TrimSpace(t); t != "" {
			cue = append(cue, t)
		}
	}
	if len(cue) == 0 {
		return api.CompleteResponse{}, httpErrorf(http.StatusBadRequest, "MISSING_CUE",
			"the partial episode has no text to complete from: give at least one of what, where, who, why, how")
	}
	res, err := s.eng.Recall(ctx, space, core.RecallQuery{Text: strings.Join(cue, " "), MaxResults: n,
		Mode: core.ModeSimilarity, NoReinforce: true})
	if err != nil {
		return api.CompleteResponse{}, err
	}
	defer res.Release()
	matches := res.Vivid

	out := api.CompleteResponse{
		Completed:       api.CompletedEpisode{What: p.What, When: p.When, Where: where, Who: p.Who, Why: p.Why, How: p.How},
		FieldConfidence: map[string]float64{}, FieldSources: map[string]string{},
		MissingFields: []string{}, Alternatives: []api.CompletionMatch{}, Space: space,
	}
	given := map[string]bool{"what": p.What != "", "when": p.When != nil, "where": where != "", "who": len(p.Who) > 0, "why": p.Why != "", "how": p.How != ""}
	var filled []float64
	for _, f := range completionFields {
		if given[f] {
			out.FieldConfidence[f], out.FieldSources[f] = 1, "provided"
			continue
		}
		out.MissingFields = append(out.MissingFields, f)
		for i := range matches {
			if v := episodeField(&matches[i].Memory, f); v != nil {
				setField(&out.Completed, f, v)
				out.FieldConfidence[f], out.FieldSources[f] = matches[i].Score, matches[i].Memory.ID
				filled = append(filled, matches[i].Score)
				out.MissingFields = out.MissingFields[:len(out.MissingFields)-1]
				break
			}
		}
	}
	// A partial what that the best match's what extends is completed to it.
	if len(matches) > 0 && p.What != "" {
		if full, _ := episodeField(&matches[0].Memory, "what").(string); len(full) > len(p.What) &&
			strings.Contains(strings.ToLower(full), strings.ToLower(strings.TrimSpace(p.What))) {
			out.Completed.What = full
			out.FieldConfidence["what"], out.FieldSources["what"] = matches[0].Score, matches[0].Memory.ID
			filled = append(filled, matches[0].Score)
		}
	}
	for i := 1; i < len(matches); i++ {
		m := &matches[i]
		alt := api.CompletionMatch{ID: m.Memory.ID, SimilarityScore: m.Similarity, Confidence: m.Score}
		alt.What, _ = episodeField(&m.Memory, "what").(string)
		alt.When, _ = episodeField(&m.Memory, "when").(*time.Time)
		alt.Where, _ = episodeField(&m.Memory, "where").(string)
		out.Alternatives = append(out.Alternatives, alt)
	}
	switch {
	case len(matches) == 0:
		out.Source = "Unmatched"
		out.SystemMessage = "No stored memory matches the partial episode; nothing was completed."
	case len(filled) == 0:
		out.Source, out.CompletionConfidence = "Unchanged", matches[0].Score
		out.SystemMessage = fmt.Sprintf("The best match, %s, adds nothing the partial episode lacks.", matches[0].Memory.ID)
	default:
		var sum float64
		for _, v := range filled {
			sum += v
		}
		out.Source, out.CompletionConfidence = "Reconstructed", sum/float64(len(filled))
		out.SystemMessage = fmt.Sprintf("Completed %d field(s) from %d matching memories; completion confidence is the mean confidence of the filled fields.",
			len(filled), len(matches))
	}
	out.Completed.Confidence = out.CompletionConfidence
	if len(notes) > 0 {
		out.SystemMessage += " Note: " + strings.Join(notes, "; ") + "."
	}
	return out, nil
}
