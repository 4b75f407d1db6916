package core

import (
	"context"
	"errors"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/engram-ops/engram-ops/core/vector"
)

const (
	defaultMaxResults      = 10
	defaultTextThreshold   = 0.2
	defaultVectorThreshold = 0.5
	defaultMaxHops         = 2
	maxHops                = 6
	defaultHopDecay        = 0.5
	defaultActivationFloor = 0.05
	maxActivated           = 2000 // bound on spreading work per recall
)

// readRecord reads the current record of id into dst, from the hot tier or
// Pebble, and reports whether it came from the hot tier. Warm records read
// from Pebble are promoted into the hot tier. Strings in dst may share the
// hot tier's memory, which is never written again.
func (e *Engine) readRecord(sp *space, id string, dst *record) (hot bool, err error) {
	name := sp.info.Name
	sp.mu.RLock()
	s, ok := sp.byID[id]
	sp.mu.RUnlock()
	if !ok {
		return false, notFound(name, id)
	}
	if e.cache.get(sp.num, name, s, dst) && dst.ID == id {
		return true, nil
	}
	for attempt := 0; attempt < 3; attempt++ {
		r, err := e.storedRecord(name, id)
		if err != nil {
			return false, err
		}
		// Cached under the space's lock: a writer replacing the memory
		// updates the slot under it before it updates the cache, so this
		// version cannot land in the cache after a newer one.
		sp.mu.RLock()
		cur, ok := sp.byID[id]
		if ok && cur == r.slot && sp.slots[cur].tier == TierWarm {
			e.cache.put(sp.num, r)
		}
		sp.mu.RUnlock()
		if !ok {
			return false, notFound(name, id)
		}
		if cur != r.slot {
			continue // overwritten while we read: read again
		}
		*dst = *r
		return false, nil
	}
	return false, Errorf(KindConflict, "CONCURRENT_UPDATE", "memory %q kept changing while being read; retry", id)
}

// storedRecord reads id's record straight from Pebble, bypassing the hot
// tier: KindNotFound when absent, KindInternal when unreadable.
func (e *Engine) storedRecord(space, id string) (*record, error) {
	v, closer, err := e.db.Get(memberKey(famMemory, space, id))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, notFound(space, id)
	}
	if err != nil {
		return nil, internalf(err, "read memory %s/%s", space, id)
	}
	defer closer.Close()
	r, err := decodeRecord(v, space, id)
	if err != nil {
		return nil, internalf(err, "decode memory %s/%s", space, id)
	}
	return r, nil
}

// view turns a record into the caller's Memory with live decay fields; hot
// says the record is in the hot tier.
func (e *Engine) view(sp *space, r *record, hot bool) Memory {
	m := r.Memory
	m.Embedding = nil
	sp.mu.RLock()
	if int(r.slot) < len(sp.slots) {
		sl := &sp.slots[r.slot]
		if sl.live && sl.id == r.ID {
			m.LastAccess = time.Unix(0, sl.lastAccess).UTC()
			m.AccessCount = sl.accessCount
			m.Stability = time.Duration(sl.stability)
			m.Tier = sl.tier
		}
	}
	sp.mu.RUnlock()
	if m.Tier == TierWarm && hot {
		m.Tier = TierHot
	}
	return m
}

// Get returns one memory.
func (e *Engine) Get(ctx context.Context, spaceName, id string, withEmbedding bool) (Memory, error) {
	if err := e.checkOpen(); err != nil {
		return Memory{}, err
	}
	if err := validateID(id, e.opts.Limits.MaxIDBytes); err != nil {
		return Memory{}, err
	}
	if err := ValidateSpaceName(spaceName); err != nil {
		return Memory{}, err
	}
	sp := e.lookupSpace(spaceName)
	if sp == nil {
		return Memory{}, notFound(spaceName, id)
	}
	var r record
	hot, err := e.readRecord(sp, id, &r)
	if err != nil {
		return Memory{}, err
	}
	m := e.view(sp, &r, hot)
	if withEmbedding {
		if m.Embedding, err = e.readVector(sp, id, m.Content); err != nil {
			return Memory{}, err
		}
	}
	return m, nil
}

// readVector returns the stored vector; a cold memory's is dequantised, and
// one a deterministic embedder derived (not stored) is recomputed from
// content.
func (e *Engine) readVector(sp *space, id, content string) ([]float32, error) {
	v, closer, err := e.db.Get(memberKey(famVector, sp.info.Name, id))
	if errors.Is(err, pebble.ErrNotFound) {
		if deterministic(sp.embedder) {
			return e.derive(sp, content)
		}
		return nil, notFound(sp.info.Name, id)
	}
	if err != nil {
		return nil, internalf(err, "read vector")
	}
	defer closer.Close()
	sv, err := decodeVector(v)
	if err != nil {
		return nil, internalf(err, "decode vector of %s", id)
	}
	if sv.f32 != nil {
		return sv.f32, nil
	}
	return vector.Dequantize(sv.q, sv.scale), nil
}

// derive recomputes the vector a deterministic embedder gives content.
func (e *Engine) derive(sp *space, content string) ([]float32, error) {
	vecs, err := sp.embedder.Embed(context.Background(), []string{content})
	if err != nil {
		return nil, internalf(err, "recompute the embedding")
	}
	if len(vecs) != 1 {
		return nil, Errorf(KindInternal, "EMBEDDER_FAILED", "embedder returned %d vectors for 1 text", len(vecs))
	}
	if err := validateVector(vecs[0], sp.info.Dimension, "embedder output"); err != nil {
		return nil, err
	}
	return vecs[0], nil
}

// List pages through a space's memories in id order.
func (e *Engine) List(ctx context.Context, spaceName string, o ListOptions) (ListResult, error) {
	if err := e.checkOpen(); err != nil {
		return ListResult{}, err
	}
	if err := ValidateSpaceName(spaceName); err != nil {
		return ListResult{}, err
	}
	if o.Offset < 0 {
		return ListResult{}, Errorf(KindInvalid, "INVALID_OFFSET", "offset %d is negative", o.Offset)
	}
	if o.Limit <= 0 {
		o.Limit = 100
	}
	if o.Limit > e.opts.Limits.MaxResults {
		o.Limit = e.opts.Limits.MaxResults
	}
	sp := e.lookupSpace(spaceName)
	if sp == nil {
		if e.opts.NoAutoCreateSpaces {
			return ListResult{}, Errorf(KindNotFound, "SPACE_NOT_FOUND", "space %q does not exist", spaceName)
		}
		return ListResult{}, nil
	}
	st, _ := e.Space(spaceName)
	res := ListResult{TierCounts: st.Memories}
	if o.AllTiers {
		res.Total = int(st.Total())
	} else {
		res.Total = int(st.Memories[o.Tier])
	}
	prefix := spacePrefix(famMemory, spaceName)
	it, err := e.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return ListResult{}, internalf(err, "list")
	}
	defer it.Close()
	skipped := 0
	for ok := it.First(); ok && len(res.Memories) < o.Limit; ok = it.Next() {
		id, _ := splitMember(it.Key(), len(spaceName))
		if !o.AllTiers && e.tierOf(sp, id) != o.Tier {
			continue
		}
		if skipped < o.Offset {
			skipped++
			continue
		}
		r, err := decodeRecord(it.Value(), spaceName, id)
		if err != nil {
			return ListResult{}, internalf(err, "decode memory %s", id)
		}
		m := e.view(sp, r, e.cache.contains(sp.num, r.slot))
		if o.IncludeEmbeddings {
			if m.Embedding, err = e.readVector(sp, id, m.Content); err != nil {
				return ListResult{}, err
			}
		}
		res.Memories = append(res.Memories, m)
	}
	if err := it.Error(); err != nil {
		return ListResult{}, internalf(err, "list memories of space %s", spaceName)
	}
	return res, nil
}

func (e *Engine) tierOf(sp *space, id string) Tier {
	sp.mu.RLock()
	s, ok := sp.byID[id]
	t := TierWarm
	if ok {
		t = sp.slots[s].tier
	}
	sp.mu.RUnlock()
	if t == TierWarm && e.cache.contains(sp.num, s) {
		return TierHot
	}
	return t
}

// recallBufs are a recall's working slices, recycled: nothing keeps them
// once it returns, and allocating them per recall would set much of how
// often the collector runs under a recall load.
type recallBufs struct {
	hits  []hit
	seeds []candidate
}

var recallWork = sync.Pool{New: func() any { return new(recallBufs) }}

// put clears the slices (they hold ids and paths) and recycles them.
func (b *recallBufs) put() {
	clear(b.hits)
	clear(b.seeds)
	b.hits, b.seeds = b.hits[:0], b.seeds[:0]
	recallWork.Put(b)
}

// recalledBufs recycles result slices handed back by RecallResult.Release.
var recalledBufs sync.Pool // *[]Recalled

// getRecalled returns an empty slice with room for n results.
func getRecalled(n int) []Recalled {
	if p, ok := recalledBufs.Get().(*[]Recalled); ok && cap(*p) >= n {
		return (*p)[:0]
	}
	return make([]Recalled, 0, n)
}

// Release hands r's result slices back for later recalls to reuse; r (and
// the slices, not the strings in them) must not be used after. Optional: a
// caller that keeps results simply does not call it. The server calls it
// once the response is written, so a recall allocates no result slices.
func (r *RecallResult) Release() {
	for _, s := range [][]Recalled{r.Vivid, r.Associated} {
		if cap(s) > 0 {
			clear(s[:cap(s)])
			s = s[:0]
			recalledBufs.Put(&s)
		}
	}
	r.Vivid, r.Associated = nil, nil
}

// hit is a candidate from similarity search.
type hit struct {
	slot  uint32
	id    string
	score float32
}

// similar appends to dst up to k live memories most similar to the
// normalised cue: the ANN index (or an exact scan for small spaces), plus an
// exact scan of vectors not yet indexed, plus the cold tier when deep.
func (e *Engine) similar(sp *space, q []float32, k int, deep bool, dst []hit) []hit {
	sp.lastRecall.Store(time.Now().UnixNano())
	sp.mu.RLock()
	unembedded := len(sp.unembedded) > 0
	sp.mu.RUnlock()
	if unembedded {
		// A bulk load's memories without a vector yet: computed once, then
		// scanned exactly with the rest of the backlog.
		if err := e.embedDeferred(sp); err != nil {
			e.bgErrs.Add(1)
			e.log.Error("computing deferred vectors failed; recall leaves those memories out", "space", sp.info.Name, "err", err)
		}
	}
	sp.mu.RLock()
	small := int(sp.counts[TierWarm]) < e.opts.Index.ExactThreshold
	backlog := sp.queue // entries are immutable: scanned after RUnlock
	var smallIDs []uint32
	if small {
		for s := range sp.slots {
			if sl := &sp.slots[s]; sl.live && sl.tier == TierWarm {
				if _, p := sp.pending[uint32(s)]; !p {
					smallIDs = append(smallIDs, uint32(s))
				}
			}
		}
	}
	var cold []struct {
		slot uint32
		c    coldVector
	}
	if deep {
		for s, c := range sp.cold {
			cold = append(cold, struct {
				slot uint32
				c    coldVector
			}{s, c})
		}
	}
	sp.mu.RUnlock()

	var hits []vector.Hit
	if small {
		hits = vector.Exact(q, smallIDs, func(id uint32) []float32 {
			v, _ := sp.index.Vector(id)
			return v
		}, k)
	} else {
		hits = sp.index.Search(q, k, max(e.opts.Index.EfSearch, k), nil)
	}
	if len(backlog) > 0 {
		ids := make([]uint32, len(backlog))
		for i, p := range backlog {
			ids[i] = p.slot
		}
		// Exact asks for vectors in the order of ids.
		next := 0
		hits = append(hits, vector.Exact(q, ids, func(id uint32) []float32 {
			if next < len(backlog) && backlog[next].slot == id {
				next++
				return backlog[next-1].vec
			}
			return nil
		}, k)...)
	}
	for _, c := range cold {
		hits = append(hits, vector.Hit{ID: c.slot, Score: dotInt8(q, c.c)})
	}
	sort.Slice(hits, func(i, j int) bool { return hits[i].Score > hits[j].Score })
	out := dst[:0]
	// One index search returns each id once; only the backlog's exact scan
	// and the cold scan can repeat one.
	var seen map[uint32]bool
	if len(backlog) > 0 || len(cold) > 0 {
		seen = make(map[uint32]bool, len(hits))
	}
	sp.mu.RLock()
	for _, h := range hits {
		if len(out) == k {
			break
		}
		if seen[h.ID] || int(h.ID) >= len(sp.slots) || !sp.slots[h.ID].live {
			continue
		}
		if seen != nil {
			seen[h.ID] = true
		}
		out = append(out, hit{slot: h.ID, id: sp.slots[h.ID].id, score: h.Score})
	}
	sp.mu.RUnlock()
	return out
}

func dotInt8(q []float32, c coldVector) float32 {
	var s float32
	for i, x := range c.q {
		if i < len(q) {
			s += q[i] * float32(x)
		}
	}
	return s * c.scale
}

type candidate struct {
	slot       uint32
	id         string
	sim        float64
	activation float64
	r          float64
	score      float64
	path       []string
}

// Recall finds memories by a text or vector cue: similarity seeds, then
// spreading activation over associations, scored by
// similarity-or-activation × confidence × retrievability. Returned memories
// are reinforced (unless NoReinforce).
func (e *Engine) Recall(ctx context.Context, spaceName string, q RecallQuery) (RecallResult, error) {
	start := time.Now()
	if err := e.checkOpen(); err != nil {
		return RecallResult{}, err
	}
	e.enterForeground()
	defer e.exitForeground()
	if err := ValidateSpaceName(spaceName); err != nil {
		return RecallResult{}, err
	}
	if err := e.normalizeQuery(&q); err != nil {
		return RecallResult{}, err
	}
	sp := e.lookupSpace(spaceName)
	if sp == nil {
		if e.opts.NoAutoCreateSpaces {
			return RecallResult{}, Errorf(KindNotFound, "SPACE_NOT_FOUND", "space %q does not exist", spaceName)
		}
		return RecallResult{Strategy: "empty space", Took: time.Since(start)}, nil
	}
	// The normalised cue lives in a recycled buffer: nothing keeps it once
	// the recall returns.
	cueBuf := getScratchVec(sp.info.Dimension)
	defer scratchVecs.Put(cueBuf)
	cue := *cueBuf
	if q.Embedding != nil {
		if err := validateVector(q.Embedding, sp.info.Dimension, "cue embedding"); err != nil {
			return RecallResult{}, err
		}
		copy(cue, q.Embedding)
	} else if into, ok := sp.embedder.(embedsInto); ok {
		into.EmbedInto(cue, q.Text)
	} else {
		vecs, err := sp.embedder.Embed(ctx, []string{q.Text})
		if err != nil {
			return RecallResult{}, &Error{Kind: KindUnavailable, Code: "EMBEDDER_FAILED", Message: "embedding the cue failed", Err: err}
		}
		if len(vecs) != 1 || len(vecs[0]) != sp.info.Dimension {
			return RecallResult{}, Errorf(KindInternal, "EMBEDDER_FAILED", "embedder returned a vector of the wrong shape")
		}
		copy(cue, vecs[0])
	}
	vector.NormalizeInPlace(cue)
	if q.Threshold == 0 {
		q.Threshold = defaultVectorThreshold
		if q.Embedding == nil {
			q.Threshold = defaultTextThreshold
		}
	}
	now := e.now()
	filtered := len(q.RequiredTags) > 0 || !q.From.IsZero() || !q.To.IsZero()
	fetch := q.MaxResults*3 + 16
	if filtered {
		fetch *= 4
	}
	res := RecallResult{}
	work := recallWork.Get().(*recallBufs)
	defer work.put()
	hits := e.similar(sp, cue, fetch, q.Deep, work.hits)
	work.hits = hits
	sp.mu.RLock()
	res.Searched = sp.index.Len() + len(sp.pending)
	if q.Deep {
		res.Searched += len(sp.cold)
	}
	// The seeds are recycled (materialize copies what it keeps); their
	// one-element paths are one allocation, which results keep (a path's
	// capacity is its length, so extending one copies it).
	seeds := work.seeds[:0]
	paths := make([]string, len(hits))
	for i, h := range hits {
		if float64(h.score) < q.Threshold {
			continue
		}
		sl := &sp.slots[h.slot]
		if !sl.live || !inRange(sl.observedAt, q.From, q.To) {
			continue
		}
		r := sl.retrievability(now)
		paths[i] = h.id
		seeds = append(seeds, candidate{slot: h.slot, id: h.id, sim: float64(h.score), activation: 1, r: r,
			score: float64(h.score) * sl.confidence * r, path: paths[i : i+1 : i+1]})
	}
	sp.mu.RUnlock()
	work.seeds = seeds
	sort.SliceStable(seeds, func(i, j int) bool { return seeds[i].score > seeds[j].score })

	vivid, err := e.materialize(sp, seeds, q, true)
	if err != nil {
		return RecallResult{}, err
	}
	var associated []Recalled
	if q.Mode != ModeSimilarity && len(vivid) > 0 {
		spread, err := e.spread(sp, vivid, q, now)
		if err != nil {
			return RecallResult{}, err
		}
		res.Activated = len(spread)
		if associated, err = e.materialize(sp, spread, q, false); err != nil {
			return RecallResult{}, err
		}
	}
	if q.Mode == ModeSpreading {
		vivid = nil
	}
	res.Vivid, res.Associated = vivid, associated
	res.Confidence = recallConfidence(vivid, associated)
	res.Strategy = strategy(sp, q, e.opts.Index.ExactThreshold)
	if !q.NoReinforce {
		e.touch(sp, [][]Recalled{vivid, associated}, now)
	}
	res.Took = time.Since(start)
	e.obs.emitRecall(spaceName, now, &res)
	return res, nil
}

func (e *Engine) normalizeQuery(q *RecallQuery) error {
	if q.Embedding == nil && strings.TrimSpace(q.Text) == "" {
		return Errorf(KindInvalid, "MISSING_CUE", "recall needs a text query or an embedding")
	}
	if q.MaxResults == 0 {
		q.MaxResults = defaultMaxResults
	}
	if q.MaxResults < 0 || q.MaxResults > e.opts.Limits.MaxResults {
		return Errorf(KindInvalid, "INVALID_MAX_RESULTS", "max_results %d is outside 1..%d", q.MaxResults, e.opts.Limits.MaxResults).WithDetails("limit", e.opts.Limits.MaxResults)
	}
	if err := validateFinite(q.Threshold, "INVALID_THRESHOLD", "threshold"); err != nil {
		return err
	}
	if q.Threshold < -1 || q.Threshold > 1 {
		return Errorf(KindInvalid, "INVALID_THRESHOLD", "threshold %v is outside -1..1", q.Threshold)
	}
	switch q.Mode {
	case "":
		q.Mode = ModeHybrid
	case ModeSimilarity, ModeSpreading, ModeHybrid:
	default:
		return Errorf(KindInvalid, "INVALID_MODE", "mode %q is not one of similarity, spreading, hybrid", truncate(string(q.Mode), 40))
	}
	if q.MaxHops == 0 {
		q.MaxHops = defaultMaxHops
	}
	if q.MaxHops < 0 || q.MaxHops > maxHops {
		return Errorf(KindInvalid, "INVALID_MAX_HOPS", "max_hops %d is outside 1..%d", q.MaxHops, maxHops)
	}
	if q.HopDecay == 0 {
		q.HopDecay = defaultHopDecay
	}
	if q.HopDecay < 0 || q.HopDecay > 1 || q.HopDecay != q.HopDecay {
		return Errorf(KindInvalid, "INVALID_HOP_DECAY", "hop decay %v is outside (0, 1]", q.HopDecay)
	}
	if q.ActivationThreshold == 0 {
		q.ActivationThreshold = defaultActivationFloor
	}
	if q.ActivationThreshold < 0 || q.ActivationThreshold > 1 || q.ActivationThreshold != q.ActivationThreshold {
		return Errorf(KindInvalid, "INVALID_ACTIVATION_THRESHOLD", "activation threshold %v is outside 0..1", q.ActivationThreshold)
	}
	if !q.From.IsZero() && !q.To.IsZero() && q.To.Before(q.From) {
		return Errorf(KindInvalid, "INVALID_TIME_RANGE", "to_time %s is before from_time %s", q.To.Format(time.RFC3339), q.From.Format(time.RFC3339))
	}
	return nil
}

func inRange(ns int64, from, to time.Time) bool {
	if !from.IsZero() && ns < from.UnixNano() {
		return false
	}
	if !to.IsZero() && ns > to.UnixNano() {
		return false
	}
	return true
}

// materialize loads records for candidates (best first), applies tag
// filters, and keeps up to MaxResults.
func (e *Engine) materialize(sp *space, cands []candidate, q RecallQuery, direct bool) ([]Recalled, error) {
	out := getRecalled(min(q.MaxResults, len(cands)))
	for _, c := range cands {
		if len(out) == q.MaxResults {
			break
		}
		var r record
		hot, err := e.readRecord(sp, c.id, &r)
		if err != nil {
			if KindOf(err) == KindNotFound {
				continue // forgotten since the search
			}
			return nil, err
		}
		if r.slot != c.slot && direct {
			continue // overwritten since the search; the new version is searched too
		}
		if !hasTags(r.Tags, q.RequiredTags) {
			continue
		}
		out = append(out, Recalled{
			Memory:         e.view(sp, &r, hot),
			Similarity:     c.sim,
			Activation:     c.activation,
			Retrievability: c.r,
			Score:          c.score,
			Path:           c.path,
			Direct:         direct,
		})
	}
	return out, nil
}

func hasTags(have, want []string) bool {
	for _, w := range want {
		found := false
		for _, h := range have {
			if h == w {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// spread runs spreading activation from the direct matches over outgoing
// associations: activation(child) = activation(parent) × weight × hop decay,
// seeds starting at their similarity. A memory keeps its best activation.
func (e *Engine) spread(sp *space, seeds []Recalled, q RecallQuery, now time.Time) ([]candidate, error) {
	type node struct {
		id   string
		act  float64
		path []string
	}
	best := map[string]*node{}
	visited := map[string]bool{}
	frontier := make([]node, 0, len(seeds))
	for _, s := range seeds {
		visited[s.Memory.ID] = true
		frontier = append(frontier, node{id: s.Memory.ID, act: s.Similarity, path: []string{s.Memory.ID}})
	}
	name := sp.info.Name
	for hop := 0; hop < q.MaxHops && len(frontier) > 0 && len(best) < maxActivated; hop++ {
		var next []node
		for _, n := range frontier {
			prefix := assocPrefix(famAssoc, name, n.id)
			it, err := e.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
			if err != nil {
				return nil, internalf(err, "read associations")
			}
			for ok := it.First(); ok; ok = it.Next() {
				_, to := splitMember(it.Key(), len(name))
				w, _, err := decodeAssoc(it.Value())
				if err != nil {
					it.Close()
					return nil, internalf(err, "decode association %s→%s", n.id, to)
				}
				act := n.act * w * q.HopDecay
				if act < q.ActivationThreshold || visited[to] {
					continue
				}
				if b, ok := best[to]; ok && b.act >= act {
					continue
				}
				path := append(append([]string(nil), n.path...), to)
				nd := &node{id: to, act: act, path: path}
				best[to] = nd
				next = append(next, *nd)
			}
			if err := it.Close(); err != nil {
				return nil, internalf(err, "read associations")
			}
		}
		for _, n := range next {
			visited[n.id] = true
		}
		frontier = next
	}
	out := make([]candidate, 0, len(best))
	sp.mu.RLock()
	for id, n := range best {
		s, ok := sp.byID[id]
		if !ok {
			continue
		}
		sl := &sp.slots[s]
		if !inRange(sl.observedAt, q.From, q.To) {
			continue
		}
		r := sl.retrievability(now)
		out = append(out, candidate{slot: s, id: id, activation: n.act, r: r, score: n.act * sl.confidence * r, path: n.path})
	}
	sp.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].score != out[j].score {
			return out[i].score > out[j].score
		}
		return out[i].id < out[j].id
	})
	return out, nil
}

// recallConfidence is the mean score of the (up to) three best results.
func recallConfidence(vivid, associated []Recalled) float64 {
	// The mean of the best three scores, kept in place (best first)
	// rather than by sorting copies of every result.
	var top [3]float64
	n := 0
	for _, list := range [][]Recalled{vivid, associated} {
		for i := range list {
			s := list[i].Score
			switch {
			case n < len(top):
				top[n] = s
				n++
			case s > top[n-1]:
				top[n-1] = s
			default:
				continue
			}
			for j := n - 1; j > 0 && top[j] > top[j-1]; j-- {
				top[j], top[j-1] = top[j-1], top[j]
			}
		}
	}
	if n == 0 {
		return 0
	}
	var sum float64
	for _, s := range top[:n] {
		sum += s
	}
	return sum / float64(n)
}

func strategy(sp *space, q RecallQuery, exactBelow int) string {
	var b strings.Builder
	sp.mu.RLock()
	warm := int(sp.counts[TierWarm])
	pending := len(sp.pending)
	sp.mu.RUnlock()
	if warm < exactBelow {
		b.WriteString("exact similarity scan")
	} else {
		b.WriteString("HNSW similarity search")
	}
	if pending > 0 {
		b.WriteString(" + exact scan of ")
		b.WriteString(itoa(pending))
		b.WriteString(" not-yet-indexed")
	}
	if q.Deep {
		b.WriteString(" + cold tier")
	}
	switch q.Mode {
	case ModeHybrid:
		b.WriteString(", then spreading activation")
	case ModeSpreading:
		b.WriteString(", spreading activation results only")
	}
	return b.String()
}

// ScanMemories calls fn for every memory of a space in id order (with its
// stored vector when withEmbedding), streaming: memory use does not grow
// with the space. fn's error stops the scan and is returned.
func (e *Engine) ScanMemories(ctx context.Context, spaceName string, withEmbedding bool, fn func(Memory) error) error {
	if err := e.checkOpen(); err != nil {
		return err
	}
	sp := e.lookupSpace(spaceName)
	if sp == nil {
		return Errorf(KindNotFound, "SPACE_NOT_FOUND", "space %q does not exist", spaceName)
	}
	prefix := spacePrefix(famMemory, spaceName)
	it, err := e.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return internalf(err, "scan %s", spaceName)
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		if err := ctxErr(ctx); err != nil {
			return err
		}
		id, _ := splitMember(it.Key(), len(spaceName))
		r, err := decodeRecord(it.Value(), spaceName, id)
		if err != nil {
			return internalf(err, "decode memory %s/%s", spaceName, id)
		}
		m := e.view(sp, r, e.cache.contains(sp.num, r.slot))
		if withEmbedding {
			if m.Embedding, err = e.readVector(sp, id, m.Content); err != nil {
				return err
			}
		}
		if err := fn(m); err != nil {
			return err
		}
	}
	if err := it.Error(); err != nil {
		return internalf(err, "read memories of space %s", spaceName)
	}
	return nil
}
