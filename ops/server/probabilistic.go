package server

// GET /api/v1/query/probabilistic: a recall with a confidence interval,
// the evidence its results rest on and the sources of uncertainty, every
// figure taken from the engine's own scores of this recall.

import (
	"context"
	"fmt"
	"net/http"

	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/ops/api"
)

type probabilisticRequest struct {
	recall                *api.RecallRequest
	evidence, uncertainty bool
}

func probabilisticParams(r *http.Request) (probabilisticRequest, error) {
	var pr probabilisticRequest
	req, err := recallParamsWith(r, func(p *params) {
		p.known["include_evidence"], p.known["include_uncertainty"] = true, true
		pr.evidence, pr.uncertainty = p.bool("include_evidence"), p.bool("include_uncertainty")
	})
	pr.recall = req
	return pr, err
}

func (s *Server) probabilistic(ctx context.Context, space string, pr probabilisticRequest) (api.ProbabilisticResponse, error) {
	q := recallQuery(pr.recall)
	res, err := s.eng.Recall(ctx, space, q)
	if err != nil {
		return api.ProbabilisticResponse{}, err
	}
	defer res.Release()
	s.metrics.ObserveRecall(s.spaceLabel(space), res.Confidence, res.Activated)
	rr := recallResponse(pr.recall, q, &res, space)
	out := api.ProbabilisticResponse{
		Memories: make([]api.RecalledMemory, 0, len(rr.Memories.Vivid)+len(rr.Memories.Associated)),
		Metadata: rr.Metadata,
	}
	out.Memories = append(append(out.Memories, rr.Memories.Vivid...), rr.Memories.Associated...)
	recycleRecallResponse(&rr)

	scores := make([]float64, len(out.Memories))
	for i := range out.Memories {
		scores[i] = out.Memories[i].Confidence.Value
	}
	lo, point, hi := confidenceInterval(scores)
	out.ConfidenceInterval = api.ConfidenceInterval{Lower: lo, Upper: hi, Point: point, Width: hi - lo}
	if pr.evidence {
		out.EvidenceChain = evidenceChain(&res)
	}
	if pr.uncertainty {
		st, err := s.eng.Space(space)
		if err != nil && core.KindOf(err) != core.KindNotFound {
			return api.ProbabilisticResponse{}, err
		}
		out.UncertaintySources = uncertaintySources(&res, st, q.Deep, hi-lo)
	}
	out.SystemMessage = fmt.Sprintf("%d memories; confidence %.2f, 95%% interval [%.2f, %.2f].", len(out.Memories), point, lo, hi)
	return out, nil
}

// means returns the mean similarity, activation and retrievability of rs.
func means(rs []core.Recalled) (sim, act, ret float64) {
	if len(rs) == 0 {
		return 0, 0, 0
	}
	for i := range rs {
		sim += rs[i].Similarity
		act += rs[i].Activation
		ret += rs[i].Retrievability
	}
	n := float64(len(rs))
	return sim / n, act / n, ret / n
}

// meanRetrievability is the mean retrievability of every result.
func meanRetrievability(res *core.RecallResult) (float64, int) {
	n := len(res.Vivid) + len(res.Associated)
	if n == 0 {
		return 1, 0
	}
	_, _, rv := means(res.Vivid)
	_, _, ra := means(res.Associated)
	return (rv*float64(len(res.Vivid)) + ra*float64(len(res.Associated))) / float64(n), n
}

// evidenceChain lists what the results rest on: the best direct match,
// the similarity of the direct matches, the activation of the memories
// reached by spreading, and what decay left of their confidence.
func evidenceChain(res *core.RecallResult) []api.Evidence {
	ev := []api.Evidence{}
	if len(res.Vivid) > 0 {
		b := &res.Vivid[0]
		ev = append(ev, api.Evidence{SourceType: "direct_match", Strength: b.Score,
			Description: fmt.Sprintf("best direct match %s: similarity %.2f × stored confidence %.2f × retrievability %.2f = %.2f",
				b.Memory.ID, b.Similarity, b.Memory.Confidence, b.Retrievability, b.Score)})
		sim, _, _ := means(res.Vivid)
		ev = append(ev, api.Evidence{SourceType: "vector_similarity", Strength: sim,
			Description: fmt.Sprintf("%d direct match(es) with mean cosine similarity %.2f to the cue, of %d memories searched", len(res.Vivid), sim, res.Searched)})
	}
	if len(res.Associated) > 0 {
		_, act, _ := means(res.Associated)
		ev = append(ev, api.Evidence{SourceType: "spreading_activation", Strength: act,
			Description: fmt.Sprintf("%d memory(ies) reached through associations (%d activated), mean activation %.2f", len(res.Associated), res.Activated, act)})
	}
	if r, n := meanRetrievability(res); n > 0 {
		ev = append(ev, api.Evidence{SourceType: "temporal_decay", Strength: r,
			Description: fmt.Sprintf("decay leaves on average %.2f of the results' stored confidence (retrievability exp(−Δt/S))", r)})
	}
	return ev
}

// uncertaintySources lists why the results may be off: the sampling
// spread of their confidences, confidence lost to decay, the share that
// came from spreading rather than similarity, and memories outside the
// search (the cold tier, unless deep).
func uncertaintySources(res *core.RecallResult, st core.SpaceStats, deep bool, width float64) []api.UncertaintySource {
	n := len(res.Vivid) + len(res.Associated)
	r, _ := meanRetrievability(res)
	out := []api.UncertaintySource{
		{SourceType: "measurement_error", Impact: width / 2,
			Explanation: fmt.Sprintf("half-width of the 95%% interval of the %d result confidence(s)", n)},
		{SourceType: "temporal_decay_unknown", Impact: 1 - r,
			Explanation: fmt.Sprintf("share of stored confidence lost to decay since the results were formed or last recalled (mean retrievability %.2f)", r)},
	}
	noise := 0.0
	if n > 0 && len(res.Associated) > 0 {
		_, act, _ := means(res.Associated)
		noise = float64(len(res.Associated)) / float64(n) * (1 - act)
	}
	out = append(out, api.UncertaintySource{SourceType: "spreading_activation_noise", Impact: noise,
		Explanation: fmt.Sprintf("%d of %d result(s) came through associations rather than similarity; impact = their share × (1 − mean activation)", len(res.Associated), n)})
	cold, total := st.Memories[core.TierCold], st.Total()
	pressure, why := 0.0, "every memory of the space was searchable"
	if deep {
		why = "deep=true searched the cold tier too"
	} else if total > 0 && cold > 0 {
		pressure = float64(cold) / float64(total)
		why = fmt.Sprintf("%d of %d memories are in the cold tier, outside this search (deep=true includes them)", cold, total)
	}
	return append(out, api.UncertaintySource{SourceType: "system_pressure", Impact: pressure, Explanation: why})
}
