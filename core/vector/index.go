package vector

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Limits on what an index accepts. They also bound what ReadGraph will
// allocate for a hostile file.
const (
	MaxDim   = 4096      // largest vector dimension
	MaxID    = 1<<28 - 1 // largest node id; ids index slices, so keep them dense
	MaxM     = 256       // largest Config.M
	MaxEf    = 1 << 16   // largest EfConstruction / EfSearch
	maxLevel = 31        // top layer cap; with M ≥ 2 reaching it is vanishingly rare

	pageBits = 10 // nodes live in fixed pages so growing never moves them
	pageSize = 1 << pageBits
	pageMask = pageSize - 1

	// Ids below pageSize live in smaller pages that double in size: the
	// first two hold 1<<smallPageBits ids each, the last pageSize/2, so an
	// index of a few nodes costs memory in proportion to them rather than a
	// full page (a store with thousands of small spaces has thousands).
	smallPageBits = 2
	smallPages    = pageBits - smallPageBits + 1
	maxPages      = MaxID>>pageBits + smallPages
)

// pageOf locates id: the number of its page and its index in the page.
func pageOf(id uint32) (pi, i int) {
	if id >= pageSize {
		return int(id>>pageBits) + smallPages - 1, int(id & pageMask)
	}
	if id < 1<<smallPageBits {
		return 0, int(id)
	}
	pi = bits.Len32(id) - smallPageBits
	return pi, int(id) - 1<<(pi+smallPageBits-1)
}

// pageStart is the first id of page pi.
func pageStart(pi int) uint32 {
	switch {
	case pi == 0:
		return 0
	case pi < smallPages:
		return 1 << (pi + smallPageBits - 1)
	}
	return uint32(pi-smallPages+1) << pageBits
}

// pageLen is how many ids page pi holds.
func pageLen(pi int) int {
	switch {
	case pi == 0:
		return 1 << smallPageBits
	case pi < smallPages:
		return 1 << (pi + smallPageBits - 1)
	}
	return pageSize
}

var (
	// ErrDimMismatch is returned by Add for a vector of the wrong length.
	ErrDimMismatch = errors.New("vector: dimension mismatch")
	// ErrIDOutOfRange is returned by Add for an id above MaxID.
	ErrIDOutOfRange = errors.New("vector: id out of range")
	// ErrNonFinite is returned by Add for a vector holding NaN or ±Inf, which
	// would make every comparison against it meaningless.
	ErrNonFinite = errors.New("vector: non-finite component")
	// ErrBusy is returned by Add when another Add of the same id is running.
	ErrBusy = errors.New("vector: concurrent Add of the same id")
)

// Config tunes the graph. Zero fields take defaults.
type Config struct {
	M              int   // links per node above layer 0 (layer 0 allows 2*M); default 16, range 2..MaxM
	EfConstruction int   // candidate list size while inserting; default 128, at least M
	EfSearch       int   // default candidate list size for Search; default 96
	Seed           int64 // seeds level assignment so single-writer builds are reproducible; default 1
}

func (c Config) normalized() Config {
	if c.M <= 0 {
		c.M = 16
	}
	c.M = min(max(c.M, 2), MaxM)
	if c.EfConstruction <= 0 {
		c.EfConstruction = 128
	}
	c.EfConstruction = min(max(c.EfConstruction, c.M), MaxEf)
	if c.EfSearch <= 0 {
		c.EfSearch = 96
	}
	c.EfSearch = min(c.EfSearch, MaxEf)
	if c.Seed == 0 {
		c.Seed = 1
	}
	return c
}

// Hit is one search result.
type Hit struct {
	ID    uint32
	Score float32 // dot product; cosine similarity for normalised vectors
}

// Node states.
const (
	stateEmpty   uint32 = iota // slot never added
	stateLive                  // searchable
	stateDeleted               // tombstone: still navigable, never returned
)

type node struct {
	mu sync.Mutex
	// upper[l-1] lists neighbours on layer l ≥ 1, so len(upper) is the
	// node's level. It is set once when the node is first added and is nil
	// for the level-0 majority; each list has a fixed capacity and is read
	// and written only under mu, as is the node's layer-0 list in its page.
	upper [][]uint32
	// vec points at the first of the vector's dim components: nil until
	// added, or when ReadGraph found no vector. A pointer to the array
	// rather than to a slice saves an object per node for the collector.
	vec atomic.Pointer[float32]
	// version counts rewrites of the lists (under mu) so a prune computed
	// outside the lock can tell whether a list changed meanwhile.
	version uint32
	state   atomic.Uint32
	len0    uint16      // length of the layer-0 list, at most 2*MaxM
	writing atomic.Bool // claimed by the Add in progress for this id
}

// page holds pageLen nodes and their layer-0 lists. Every added node has
// one, of capacity 2*M, so they share one pointer-free block per page: the
// collector marks a single object instead of scanning a slice per node.
type page struct {
	nodes  []node
	links0 []uint32 // node i's list is links0[i*2M:][:len0]
}

// directory maps page number to page. It is copied when it grows; entries
// are atomic because pages are created lazily, so sparse ids stay cheap.
type directory struct {
	pages []atomic.Pointer[page]
}

// Index is an HNSW graph over caller-owned vectors.
//
// Concurrency: Search, Contains, Len and Vector may run from any number of
// goroutines at any time. Add and Delete may run concurrently with them and
// with each other for distinct ids (the memory store serialises its writers
// anyway). Searches never wait for an insert: nodes sit in fixed pages that
// never move, each neighbour list has its own lock held only to copy or
// replace it, and the entry point is a single atomic word. WriteGraph runs
// alongside searches but makes Add and Delete wait until it has finished,
// so the file is a consistent snapshot.
type Index struct {
	dim       int
	cfg       Config
	levelMult float64 // 1/ln(M): expected layer population shrinks by M per level

	dir    atomic.Pointer[directory]
	growMu sync.Mutex // serialises directory growth and page creation

	// entry packs the entry point id and the top level; 0 means empty.
	entry atomic.Uint64
	// entryMu serialises writers around the entry point. An insert that
	// raises the top level holds it throughout (as hnswlib does); searches
	// never take it.
	entryMu sync.Mutex

	rngMu sync.Mutex
	rng   *rand.Rand

	live       atomic.Int64
	tombstones atomic.Int64

	// snapshotMu is held shared by Add and Delete and exclusively by
	// WriteGraph, which therefore never sees half an insert.
	snapshotMu sync.RWMutex

	scratch sync.Pool // *scratch
}

func packEntry(id uint32, level int) uint64 {
	return 1<<63 | uint64(level)<<32 | uint64(id)
}

func unpackEntry(e uint64) (id uint32, level int) {
	return uint32(e), int(e>>32) & 0xff
}

// New returns an empty index for vectors of length dim. It panics if dim is
// outside 1..MaxDim, which is a programming error rather than bad data.
func New(dim int, cfg Config) *Index {
	if dim < 1 || dim > MaxDim {
		panic(fmt.Sprintf("vector: dimension %d outside 1..%d", dim, MaxDim))
	}
	cfg = cfg.normalized()
	x := &Index{
		dim:       dim,
		cfg:       cfg,
		levelMult: 1 / math.Log(float64(cfg.M)),
		rng:       rand.New(rand.NewPCG(uint64(cfg.Seed), 0x9e3779b97f4a7c15)),
	}
	x.dir.Store(&directory{})
	return x
}

// Dim returns the vector dimension.
func (x *Index) Dim() int { return x.dim }

// Config returns the effective configuration, defaults filled in.
func (x *Index) Config() Config { return x.cfg }

// Len returns the number of live (added and not deleted) nodes.
func (x *Index) Len() int { return int(x.live.Load()) }

// Tombstones returns the number of deleted nodes still in the graph, so a
// caller can decide when a rebuild is worth it.
func (x *Index) Tombstones() int { return int(x.tombstones.Load()) }

// at locates id's slot as its page and index, or returns a nil page if the
// page does not exist.
func (x *Index) at(id uint32) (*page, int) {
	d := x.dir.Load()
	pi, i := pageOf(id)
	if pi >= len(d.pages) {
		return nil, 0
	}
	return d.pages[pi].Load(), i
}

// node returns the slot for id, or nil if its page does not exist.
func (x *Index) node(id uint32) *node {
	p, i := x.at(id)
	if p == nil {
		return nil
	}
	return &p.nodes[i]
}

// slot returns the page and index of id's slot, creating the page if
// needed. id ≤ MaxID.
func (x *Index) slot(id uint32) (*page, int) {
	if p, i := x.at(id); p != nil {
		return p, i
	}
	x.growMu.Lock()
	defer x.growMu.Unlock()
	pi, i := pageOf(id)
	d := x.dir.Load()
	if pi >= len(d.pages) {
		grown := &directory{pages: make([]atomic.Pointer[page], min(max(pi+1, 2*len(d.pages)), maxPages))}
		for i := range d.pages {
			grown.pages[i].Store(d.pages[i].Load())
		}
		x.dir.Store(grown)
		d = grown
	}
	p := d.pages[pi].Load()
	if p == nil {
		n := pageLen(pi)
		p = &page{nodes: make([]node, n), links0: make([]uint32, n*x.maxLinks(0))}
		d.pages[pi].Store(p)
	}
	return p, i
}

// pageBytes is roughly what page pi costs in memory.
func (x *Index) pageBytes(pi int) int64 {
	n := int64(pageLen(pi))
	return int64(unsafe.Sizeof(page{})) + n*int64(unsafe.Sizeof(node{})) + n*4*int64(x.maxLinks(0))
}

// list returns node i's layer-l list (empty above its level), with its
// fixed capacity. The caller holds the node's mu or excludes writers.
func (x *Index) list(p *page, i, l int) []uint32 {
	n := &p.nodes[i]
	if l == 0 {
		w := x.maxLinks(0)
		return p.links0[i*w : i*w+int(n.len0) : (i+1)*w]
	}
	if l > len(n.upper) {
		return nil
	}
	return n.upper[l-1]
}

// setList makes list node i's layer-l list, under the same rule as list. A
// layer-0 list must be the node's own, as list returned it, resliced or
// appended to within its capacity.
func (x *Index) setList(p *page, i, l int, list []uint32) {
	if l == 0 {
		p.nodes[i].len0 = uint16(len(list))
		return
	}
	p.nodes[i].upper[l-1] = list
}

// vectorOf returns the vector navigation uses for id, live or deleted.
func (x *Index) vectorOf(id uint32) []float32 {
	n := x.node(id)
	if n == nil {
		return nil
	}
	return x.vectorAt(n)
}

// vectorAt returns n's vector, or nil.
func (x *Index) vectorAt(n *node) []float32 {
	if p := n.vec.Load(); p != nil {
		return unsafe.Slice(p, x.dim)
	}
	return nil
}

// setVector makes vec (dim components) n's vector.
func setVector(n *node, vec []float32) {
	n.vec.Store(&vec[0])
}

// Contains reports whether id is live.
func (x *Index) Contains(id uint32) bool {
	n := x.node(id)
	return n != nil && n.state.Load() == stateLive
}

// Vector returns the vector of a live id.
func (x *Index) Vector(id uint32) ([]float32, bool) {
	n := x.node(id)
	if n == nil || n.state.Load() != stateLive {
		return nil, false
	}
	v := x.vectorAt(n)
	return v, v != nil
}

// Delete tombstones id: it is no longer returned by Search but stays in the
// graph so paths through it keep working. It reports whether id was live.
func (x *Index) Delete(id uint32) bool {
	x.snapshotMu.RLock()
	defer x.snapshotMu.RUnlock()
	n := x.node(id)
	if n == nil || !n.state.CompareAndSwap(stateLive, stateDeleted) {
		return false
	}
	x.live.Add(-1)
	x.tombstones.Add(1)
	return true
}

// Add inserts vec under id. The index keeps vec by reference; the caller must
// not mutate it afterwards. Adding an id that is already present (live or
// deleted) replaces its vector, relinks it and makes it live again; links
// other nodes already hold to it stay, which keeps the graph navigable.
// Add fails on a wrong length, an id above MaxID, a non-finite component, or
// while another Add of the same id is running.
func (x *Index) Add(id uint32, vec []float32) error {
	if len(vec) != x.dim {
		return fmt.Errorf("%w: vector has %d components, index has %d", ErrDimMismatch, len(vec), x.dim)
	}
	if id > MaxID {
		return fmt.Errorf("%w: %d exceeds %d", ErrIDOutOfRange, id, MaxID)
	}
	if !finite(vec) {
		return ErrNonFinite
	}
	x.snapshotMu.RLock()
	defer x.snapshotMu.RUnlock()
	p, i := x.slot(id)
	n := &p.nodes[i]
	if !n.writing.CompareAndSwap(false, true) {
		return ErrBusy
	}
	defer n.writing.Store(false)
	s := x.getScratch()
	defer x.putScratch(s)

	if n.state.Load() == stateEmpty {
		level := x.randomLevel()
		upper := x.newUpper(level)
		n.mu.Lock()
		n.upper = upper
		n.mu.Unlock()
		setVector(n, vec)
		n.state.Store(stateLive)
		x.live.Add(1)
		x.insert(s, id, vec, level)
		return nil
	}
	n.mu.Lock()
	level := len(n.upper) // kept: other nodes link to id on every layer up to it
	n.mu.Unlock()
	setVector(n, vec)
	x.insert(s, id, vec, level)
	if n.state.Swap(stateLive) == stateDeleted {
		x.tombstones.Add(-1)
		x.live.Add(1)
	}
	return nil
}

func (x *Index) randomLevel() int {
	x.rngMu.Lock()
	u := x.rng.Float64()
	x.rngMu.Unlock()
	return min(int(-math.Log(1-u)*x.levelMult), maxLevel)
}

// maxLinks is the capacity of a neighbour list on layer l.
func (x *Index) maxLinks(l int) int {
	if l == 0 {
		return 2 * x.cfg.M
	}
	return x.cfg.M
}

// newUpper allocates the lists of layers 1..level in one block, each with a
// fixed capacity so appends never spill into the next layer.
func (x *Index) newUpper(level int) [][]uint32 {
	if level == 0 {
		return nil
	}
	m := x.cfg.M
	backing := make([]uint32, level*m)
	upper := make([][]uint32, level)
	for l := range upper {
		upper[l] = backing[l*m : l*m : (l+1)*m]
	}
	return upper
}

// neighbours appends a copy of id's layer-l list to dst; copying keeps the
// lock hold time to a few nanoseconds.
func (x *Index) neighbours(dst []uint32, id uint32, layer int) []uint32 {
	p, i := x.at(id)
	if p == nil {
		return dst
	}
	n := &p.nodes[i]
	n.mu.Lock()
	dst = append(dst, x.list(p, i, layer)...)
	n.mu.Unlock()
	return dst
}

// insert links node id (slot i of p, already holding vector q and its layer
// lists) into the graph: greedy descent to its level, then on each layer an
// efConstruction search, heuristic neighbour selection and back-links.
func (x *Index) insert(s *scratch, id uint32, q []float32, level int) {
	x.entryMu.Lock()
	var epVec []float32
	epID, top := uint32(0), 0
	if e := x.entry.Load(); e != 0 {
		epID, top = unpackEntry(e)
		epVec = x.vectorOf(epID)
	}
	if epVec == nil {
		x.entry.Store(packEntry(id, level))
		x.entryMu.Unlock()
		return
	}
	raisesTop := level > top
	if !raisesTop {
		x.entryMu.Unlock()
	}

	cur, curScore := x.descend(s, q, epID, Dot(q, epVec), top, level)
	s.found = append(s.found[:0], scored{curScore, cur})
	for l := min(level, top); l >= 0; l-- {
		x.searchForInsert(s, q, l, id)
		s.chosen = x.selectNeighbours(s, s.found, x.cfg.M, s.chosen[:0])
		// The chosen links join whatever the list holds, pruned by the
		// heuristic when full: a concurrent insert that reached this node
		// through a layer above may already have linked it to itself here,
		// and overwriting that link could leave the other node with no way
		// in (unreachable by any search). A re-added node keeps its old
		// links the same way; they are still edges between live nodes.
		for _, c := range s.chosen {
			x.addLink(s, id, c.id, l)
		}
		for _, c := range s.chosen {
			x.addLink(s, c.id, id, l)
		}
	}

	if raisesTop {
		x.entry.Store(packEntry(id, level))
		x.entryMu.Unlock()
	}
}

// searchForInsert replaces s.found (the entry points, best first) with the
// best efConstruction nodes on layer l other than self, best first. Deleted
// nodes are not linked to unless nothing else is reachable.
func (x *Index) searchForInsert(s *scratch, q []float32, l int, self uint32) {
	s.entries = append(s.entries[:0], s.found...)
	rule := keepRule{exclude: self, hasExclude: true}
	x.seed(s, s.entries, x.cfg.EfConstruction, &rule)
	x.searchLayer(s, q, x.cfg.EfConstruction, l, &rule)
	if len(s.results) == 0 {
		rule.withDeleted = true
		x.seed(s, s.entries, x.cfg.EfConstruction, &rule)
		x.searchLayer(s, q, x.cfg.EfConstruction, l, &rule)
	}
	s.takeResults()
}

// selectNeighbours picks up to m of cands (best first) with the HNSW
// heuristic (Malkov & Yashunin, algorithm 4): a candidate is kept only if it
// is closer to the base than to every neighbour kept so far. Links then
// spread over directions instead of piling into one cluster, which is what
// keeps clustered data navigable.
func (x *Index) selectNeighbours(s *scratch, cands []scored, m int, out []scored) []scored {
	if len(cands) <= m {
		return append(out, cands...)
	}
	kept := s.keptVecs[:0]
	for _, c := range cands {
		if len(out) >= m {
			break
		}
		v := x.vectorOf(c.id)
		if v == nil {
			continue
		}
		diverse := true
		for _, k := range kept {
			if Dot(v, k) > c.score {
				diverse = false
				break
			}
		}
		if diverse {
			out = append(out, c)
			kept = append(kept, v)
		}
	}
	clear(kept) // do not pin caller vectors from a pooled scratch
	s.keptVecs = kept[:0]
	return out
}

// addLink adds a link from → to on layer l, pruning from's list with the
// heuristic when it is full. The prune is computed outside the lock and
// committed only if the list did not change meanwhile.
func (x *Index) addLink(s *scratch, from, to uint32, l int) {
	p, i := x.at(from)
	if p == nil {
		return
	}
	n := &p.nodes[i]
	limit := x.maxLinks(l)
	for {
		n.mu.Lock()
		if l > len(n.upper) {
			n.mu.Unlock()
			return
		}
		list := x.list(p, i, l)
		for _, id := range list {
			if id == to {
				n.mu.Unlock()
				return
			}
		}
		if len(list) < limit {
			x.setList(p, i, l, append(list, to))
			n.version++
			n.mu.Unlock()
			return
		}
		s.pruneIDs = append(append(s.pruneIDs[:0], list...), to)
		version := n.version
		n.mu.Unlock()

		kept := x.prune(s, from, s.pruneIDs, limit)

		n.mu.Lock()
		if n.version == version {
			x.setList(p, i, l, append(x.list(p, i, l)[:0], kept...))
			n.version++
			n.mu.Unlock()
			return
		}
		n.mu.Unlock()
	}
}

// prune returns at most limit of ids chosen by the heuristic around base.
// Ids without a vector are dropped: nothing can navigate through them.
func (x *Index) prune(s *scratch, base uint32, ids []uint32, limit int) []uint32 {
	bv := x.vectorOf(base)
	if bv == nil { // only nodes found by a search get links, and they have vectors
		return append(s.pruneOut[:0], ids[:min(len(ids), limit)]...)
	}
	s.batchIDs, s.batchVecs = s.batchIDs[:0], s.batchVecs[:0]
	for _, id := range ids {
		if v := x.vectorOf(id); v != nil {
			s.batchIDs = append(s.batchIDs, id)
			s.batchVecs = append(s.batchVecs, v)
		}
	}
	s.scoreBatch(bv)
	cands := s.pruneCands[:0]
	for i, id := range s.batchIDs {
		cands = append(cands, scored{s.batchScores[i], id})
	}
	sortBestFirst(cands)
	sel := x.selectNeighbours(s, cands, limit, s.pruneSel[:0])
	out := s.pruneOut[:0]
	for _, c := range sel {
		out = append(out, c.id)
	}
	s.pruneCands, s.pruneSel, s.pruneOut = cands, sel, out
	return out
}
