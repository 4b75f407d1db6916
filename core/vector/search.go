package vector

import "slices"

// Search returns up to k live nodes most similar to q, best first. ef is the
// candidate list size (≤0 means Config.EfSearch; raised to k when smaller):
// larger is slower and more accurate. accept, when not nil, limits which ids
// may be returned; rejected and deleted nodes are still walked through, so a
// selective filter costs time, not recall. A filter that rejects almost
// everything makes the search visit most of the graph; use Exact over the
// accepted ids instead. A query of the wrong length returns nil.
func (x *Index) Search(q []float32, k, ef int, accept func(id uint32) bool) []Hit {
	if len(q) != x.dim || k <= 0 {
		return nil
	}
	e := x.entry.Load()
	if e == 0 {
		return nil
	}
	epID, top := unpackEntry(e)
	epVec := x.vectorOf(epID)
	if epVec == nil {
		return nil
	}
	if ef <= 0 {
		ef = x.cfg.EfSearch
	}
	ef = max(ef, k)

	s := x.getScratch()
	defer x.putScratch(s)
	cur, curScore := x.descend(s, q, epID, Dot(q, epVec), top, 0)
	rule := keepRule{accept: accept}
	s.entries = append(s.entries[:0], scored{curScore, cur})
	x.seed(s, s.entries, ef, &rule)
	x.searchLayer(s, q, ef, 0, &rule)
	return s.results.drainBestFirst(k)
}

// scratch is the per-call working memory of a search or insert, pooled so
// the hot path does not allocate.
type scratch struct {
	visited visitedSet
	cands   maxHeap  // frontier, best on top
	results minHeap  // best ef kept so far, worst on top
	ids     []uint32 // copy of the neighbour list being expanded
	entries []scored // entry points of the current layer
	found   []scored // layer result, best first

	// Unvisited neighbours of the node being expanded, scored as a batch.
	batchIDs    []uint32
	batchNodes  []*node
	batchVecs   [][]float32
	batchScores []float32

	// Insert-only buffers, separate so pruning a neighbour does not clobber
	// the selection being linked.
	chosen     []scored
	keptVecs   [][]float32
	pruneIDs   []uint32
	pruneCands []scored
	pruneSel   []scored
	pruneOut   []uint32
}

func (x *Index) getScratch() *scratch {
	if s, ok := x.scratch.Get().(*scratch); ok {
		return s
	}
	return &scratch{}
}

func (x *Index) putScratch(s *scratch) {
	clear(s.batchVecs[:cap(s.batchVecs)]) // do not pin caller vectors while pooled
	clear(s.batchNodes[:cap(s.batchNodes)])
	x.scratch.Put(s)
}

// scoreBatch fills s.batchScores with the scores of s.batchVecs against q.
func (s *scratch) scoreBatch(q []float32) {
	s.batchScores = slices.Grow(s.batchScores[:0], len(s.batchVecs))[:len(s.batchVecs)]
	dotBatch(q, s.batchVecs, s.batchScores)
}

// takeResults moves the result heap into s.found, best first.
func (s *scratch) takeResults() {
	n := len(s.results)
	if cap(s.found) < n {
		s.found = make([]scored, n)
	}
	s.found = s.found[:n]
	for i := n - 1; i >= 0; i-- {
		s.found[i] = s.results.pop()
	}
}

// visitedSet marks node ids seen by one search. Marks are generation
// numbers, so starting a search is one increment rather than a clear, and
// they live in lazily created pages that mirror the node pages.
type visitedSet struct {
	gen   uint32
	pages [][]uint32
}

func (v *visitedSet) reset() {
	v.gen++
	if v.gen == 0 { // wrapped: old marks could alias the new generation
		for _, p := range v.pages {
			clear(p)
		}
		v.gen = 1
	}
}

// visit marks id and reports whether it was unmarked before.
func (v *visitedSet) visit(id uint32) bool {
	pi, i := pageOf(id)
	if pi >= len(v.pages) {
		v.pages = append(v.pages, make([][]uint32, pi+1-len(v.pages))...)
	}
	p := v.pages[pi]
	if p == nil {
		p = make([]uint32, pageLen(pi))
		v.pages[pi] = p
	}
	if p[i] == v.gen {
		return false
	}
	p[i] = v.gen
	return true
}

// keepRule says which reached nodes may enter the result set; every reached
// node with a vector is used for navigation regardless.
type keepRule struct {
	accept      func(id uint32) bool
	exclude     uint32 // the node being inserted, when hasExclude
	hasExclude  bool
	withDeleted bool
}

func (r *keepRule) keeps(id uint32, n *node) bool {
	switch n.state.Load() {
	case stateLive:
	case stateDeleted:
		if !r.withDeleted {
			return false
		}
	default:
		return false
	}
	if r.hasExclude && id == r.exclude {
		return false
	}
	return r.accept == nil || r.accept(id)
}

// seed starts a layer search from entries (scores already computed).
func (x *Index) seed(s *scratch, entries []scored, ef int, rule *keepRule) {
	s.visited.reset()
	s.cands = s.cands[:0]
	s.results = s.results[:0]
	for _, e := range entries {
		if !s.visited.visit(e.id) {
			continue
		}
		s.cands.push(e)
		if n := x.node(e.id); n != nil && rule.keeps(e.id, n) {
			s.results.push(e)
			if len(s.results) > ef {
				s.results.pop()
			}
		}
	}
}

// searchLayer is the best-first search of one layer (algorithm 2): expand
// the best frontier node until it is worse than the worst of ef results.
// While fewer than ef nodes pass the rule, every reached node is expanded.
func (x *Index) searchLayer(s *scratch, q []float32, ef, layer int, rule *keepRule) {
	for len(s.cands) > 0 {
		c := s.cands.pop()
		if len(s.results) >= ef && better(s.results[0], c) {
			break
		}
		s.ids = x.neighbours(s.ids[:0], c.id, layer)
		// Gather the unvisited neighbours first so their vectors are scored
		// in one batch.
		s.batchIDs, s.batchNodes, s.batchVecs = s.batchIDs[:0], s.batchNodes[:0], s.batchVecs[:0]
		for _, id := range s.ids {
			if !s.visited.visit(id) {
				continue
			}
			n := x.node(id)
			if n == nil {
				continue
			}
			if v := x.vectorAt(n); v != nil {
				s.batchIDs = append(s.batchIDs, id)
				s.batchNodes = append(s.batchNodes, n)
				s.batchVecs = append(s.batchVecs, v)
			}
		}
		s.scoreBatch(q)
		for i, id := range s.batchIDs {
			e := scored{s.batchScores[i], id}
			if len(s.results) < ef || better(e, s.results[0]) {
				s.cands.push(e)
				if rule.keeps(id, s.batchNodes[i]) {
					s.results.push(e)
					if len(s.results) > ef {
						s.results.pop()
					}
				}
			}
		}
	}
}

// descend walks greedily from cur through layers from down to to+1 (exclusive)
// and returns the most similar node it reached.
func (x *Index) descend(s *scratch, q []float32, cur uint32, curScore float32, from, to int) (uint32, float32) {
	for l := from; l > to; l-- {
		for moved := true; moved; {
			moved = false
			s.ids = x.neighbours(s.ids[:0], cur, l)
			s.batchIDs, s.batchVecs = s.batchIDs[:0], s.batchVecs[:0]
			for _, id := range s.ids {
				if v := x.vectorOf(id); v != nil {
					s.batchIDs = append(s.batchIDs, id)
					s.batchVecs = append(s.batchVecs, v)
				}
			}
			s.scoreBatch(q)
			for i, id := range s.batchIDs {
				if sc := s.batchScores[i]; sc > curScore {
					cur, curScore, moved = id, sc, true
				}
			}
		}
	}
	return cur, curScore
}
