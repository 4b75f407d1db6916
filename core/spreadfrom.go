package core

import (
	"context"
	"time"
)

// SpreadFrom runs spreading activation from one memory over the
// associations (the query language's SPREAD FROM): the source starts at
// activation 1, each hop multiplies by the edge weight and q.HopDecay, and
// spreading stops at q.MaxHops or below q.ActivationThreshold. Results are
// the memories reached (the source excluded), best score first, in
// Associated; the source is Vivid[0]. Only MaxResults, MaxHops, HopDecay,
// ActivationThreshold, From/To and RequiredTags of q apply. It reinforces
// nothing: SPREAD explores the graph, it is not a recall of the reached
// memories.
func (e *Engine) SpreadFrom(ctx context.Context, spaceName, id string, q RecallQuery) (RecallResult, error) {
	start := time.Now()
	if err := e.checkOpen(); err != nil {
		return RecallResult{}, err
	}
	e.enterForeground()
	defer e.exitForeground()
	if err := ValidateSpaceName(spaceName); err != nil {
		return RecallResult{}, err
	}
	// The source id stands for the cue in the shared validation.
	q.Text, q.Embedding, q.Mode = id, nil, ModeSpreading
	if err := e.normalizeQuery(&q); err != nil {
		return RecallResult{}, err
	}
	if err := ctxErr(ctx); err != nil {
		return RecallResult{}, err
	}
	sp := e.lookupSpace(spaceName)
	if sp == nil {
		if e.opts.NoAutoCreateSpaces {
			return RecallResult{}, Errorf(KindNotFound, "SPACE_NOT_FOUND", "space %q does not exist", spaceName)
		}
		return RecallResult{}, notFound(spaceName, id)
	}
	var r record
	hot, err := e.readRecord(sp, id, &r)
	if err != nil {
		return RecallResult{}, err
	}
	now := e.now()
	src := e.view(sp, &r, hot)
	rs := src.Retrievability(now)
	seed := Recalled{Memory: src, Similarity: 1, Activation: 1, Retrievability: rs,
		Score: src.Confidence * rs, Path: []string{id}, Direct: true}
	spread, err := e.spread(sp, []Recalled{seed}, q, now)
	if err != nil {
		return RecallResult{}, err
	}
	associated, err := e.materialize(sp, spread, q, false)
	if err != nil {
		return RecallResult{}, err
	}
	res := RecallResult{
		Vivid:      []Recalled{seed},
		Associated: associated,
		Activated:  len(spread),
		Searched:   1,
		Strategy:   "spreading activation from " + id,
	}
	res.Confidence = recallConfidence(nil, associated)
	res.Took = time.Since(start)
	return res, nil
}
