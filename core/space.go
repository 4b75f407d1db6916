package core

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/engram-ops/engram-ops/core/vector"
)

// slot is the in-memory summary of one memory: what recall needs to score and
// filter without touching Pebble. Slots are never reused within a space.
type slot struct {
	id          string
	live        bool
	tier        Tier   // stored tier: warm or cold
	recBytes    uint32 // the record's share of bytes (reinforcement rewrites it)
	confidence  float64
	observedAt  int64
	lastAccess  int64
	stability   int64 // ns
	accessCount uint64
	bytes       int64 // approximate stored bytes (record + vector)
}

func (s *slot) retrievability(now time.Time) float64 {
	return retrievability(time.Duration(now.UnixNano()-decayFrom(s.observedAt, s.lastAccess, s.accessCount)), time.Duration(s.stability))
}

// decayFrom is when a memory's decay clock starts (Unix ns): its last
// recall, or, until it is first recalled, when it was formed — observed_at
// (Engram's timestamp, an episode's when) if that is earlier than when it
// was stored. A memory observed 30 days ago and imported today has decayed
// for 30 days; storing it is not a rehearsal. A future observed_at does not
// hold the clock back: it then starts at the store.
func decayFrom(observedAt, lastAccess int64, accessCount uint64) int64 {
	if accessCount == 0 && observedAt < lastAccess {
		return observedAt
	}
	return lastAccess
}

type coldVector struct {
	q     []int8
	scale float32
}

// space is the in-memory state of one space.
type space struct {
	num      uint32    // the space's key in the hot tier
	hot      *hotCache // the engine's hot tier
	info     SpaceInfo
	embedder Embedder

	mu       sync.RWMutex
	slots    []slot
	byID     map[string]uint32
	nextSlot uint32
	pending  map[uint32][]float32 // normalised vectors not yet in the index
	// queue is the indexer's work in order. Entries are never modified once
	// appended (only appended to, and consumed from the front), so a recall
	// scans a copy of the slice header without holding the lock; entries
	// that were forgotten or already indexed meanwhile are filtered out by
	// liveness and de-duplication afterwards.
	queue   []queued
	deletes []uint32 // indexer work: slots to tombstone
	// unembedded are slots a bulk load (Index.Defer) stored without
	// computing their vector: the embedder derives it from the content, so
	// it is computed, and queued, only when the index is built or a recall
	// needs it (embedDeferred). A bulk load holds no vectors meanwhile.
	unembedded []uint32
	embedMu    sync.Mutex // serialises embedDeferred
	// reserved counts the vectors of writes admitted under
	// Index.MaxPending and not yet committed; waiters are the writes
	// waiting for room, in arrival order (admit, signalRoom).
	reserved int
	waiters  []*roomWaiter
	cold     map[uint32]coldVector
	counts   [numTiers]int64 // live slots per stored tier: setSlot, dropSlot, retier and resized change them
	bytes    [numTiers]int64
	assocs   int64

	idxMu sync.Mutex // serialises index writers (Add/Delete/WriteGraph)
	index *vector.Index
	dirty atomic.Bool
	saved atomic.Bool // the data directory holds a graph file of the space

	lastRecall atomic.Int64 // unix nanos of the latest similarity search
}

// queued is a slot waiting for the ANN index, with its normalised vector.
type queued struct {
	slot uint32
	vec  []float32
}

func (e *Engine) newSpace(info SpaceInfo) (*space, error) {
	emb, err := e.opts.Embedders(info.Embedder, info.Dimension)
	if err != nil {
		return nil, err
	}
	if emb.Dimension() != info.Dimension {
		return nil, Errorf(KindInvalid, "EMBEDDER_MISMATCH", "embedder %q produces %d dimensions; space %q has %d", info.Embedder, emb.Dimension(), info.Name, info.Dimension)
	}
	return &space{
		num:      e.spaceNums.Add(1),
		hot:      e.cache,
		info:     info,
		embedder: emb,
		byID:     map[string]uint32{},
		pending:  map[uint32][]float32{},
		cold:     map[uint32]coldVector{},
		index:    vector.New(info.Dimension, e.indexConfig()),
	}, nil
}

func (e *Engine) indexConfig() vector.Config {
	return vector.Config{M: e.opts.Index.M, EfConstruction: e.opts.Index.EfConstruction, EfSearch: e.opts.Index.EfSearch}
}

func (e *Engine) spaceList() []*space {
	e.spacesMu.RLock()
	defer e.spacesMu.RUnlock()
	out := make([]*space, 0, len(e.spaces))
	for _, sp := range e.spaces {
		out = append(out, sp)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].info.Name < out[j].info.Name })
	return out
}

func (e *Engine) lookupSpace(name string) *space {
	e.spacesMu.RLock()
	defer e.spacesMu.RUnlock()
	return e.spaces[name]
}

// spaceFor returns the named space, creating it when auto-creation is on
// and create is true.
func (e *Engine) spaceFor(ctx context.Context, name string, create bool) (*space, error) {
	if err := ValidateSpaceName(name); err != nil {
		return nil, err
	}
	if sp := e.lookupSpace(name); sp != nil {
		return sp, nil
	}
	if !create || e.opts.NoAutoCreateSpaces {
		return nil, Errorf(KindNotFound, "SPACE_NOT_FOUND", "space %q does not exist", name).WithDetails("space", name)
	}
	if _, _, err := e.CreateSpace(ctx, SpaceConfig{Name: name}); err != nil {
		return nil, err
	}
	return e.lookupSpace(name), nil
}

// spaceForWrite returns the named space for a write, creating it when
// auto-creation is on — but only after check accepts the input against the
// space the write would create, so invalid input creates nothing.
func (e *Engine) spaceForWrite(ctx context.Context, name string, check func(*space) error) (*space, error) {
	if b := e.barrier.Load(); b != nil {
		return nil, b.err // before the input is embedded: the commit would refuse it
	}
	sp, err := e.spaceFor(ctx, name, false)
	if err == nil || KindOf(err) != KindNotFound || e.opts.NoAutoCreateSpaces {
		return sp, err
	}
	provisional := &space{info: SpaceInfo{Name: name, Dimension: e.opts.DefaultDimension, Embedder: e.opts.DefaultEmbedder}}
	if err := check(provisional); err != nil {
		return nil, err
	}
	return e.spaceFor(ctx, name, true)
}

// CreateSpace creates a space, or returns the existing one (created=false).
// Asking for an existing space with a different dimension or embedder is a
// conflict.
func (e *Engine) CreateSpace(ctx context.Context, c SpaceConfig) (SpaceInfo, bool, error) {
	if err := ValidateSpaceName(c.Name); err != nil {
		return SpaceInfo{}, false, err
	}
	if c.Dimension == 0 {
		c.Dimension = e.opts.DefaultDimension
	}
	if c.Embedder == "" {
		c.Embedder = e.opts.DefaultEmbedder
	}
	if c.Dimension < 1 || c.Dimension > e.opts.Limits.MaxDimension {
		return SpaceInfo{}, false, Errorf(KindInvalid, "INVALID_DIMENSION", "dimension %d is outside 1..%d", c.Dimension, e.opts.Limits.MaxDimension)
	}
	if sp := e.lookupSpace(c.Name); sp != nil {
		if sp.info.Dimension != c.Dimension || sp.info.Embedder != c.Embedder {
			return sp.info, false, Errorf(KindConflict, "SPACE_EXISTS", "space %q exists with dimension %d and embedder %q", c.Name, sp.info.Dimension, sp.info.Embedder)
		}
		return sp.info, false, nil
	}
	info := SpaceInfo{Name: c.Name, Dimension: c.Dimension, Embedder: c.Embedder}
	var created bool
	_, err := e.commit(commitAcked, func(t *txn) error {
		if sp := e.lookupSpace(c.Name); sp != nil { // lost a race: fine
			info = sp.info
			return nil
		}
		info.CreatedAt = t.now
		return t.createSpace(&info, &created)
	})
	return info, created, err
}

func (t *txn) createSpace(info *SpaceInfo, created *bool) error {
	e := t.e
	// A replay recreates what existed, whatever the cap: refusing it
	// would lose data that was acknowledged.
	if max := e.opts.Limits.MaxSpaces; max > 0 && !t.replay {
		e.spacesMu.RLock()
		n := len(e.spaces)
		e.spacesMu.RUnlock()
		if n >= max {
			return Errorf(KindConflict, "SPACE_LIMIT_REACHED",
				"space %q was not created: %d spaces exist, the most limits.max_spaces (%d) allows; write to an existing space, or raise limits.max_spaces", info.Name, n, max).
				WithDetails("space", info.Name, "spaces", n, "max_spaces", max)
		}
	}
	sp, err := e.newSpace(*info)
	if err != nil {
		return err
	}
	info.Fingerprint = sp.embedder.Fingerprint()
	sp.info = *info
	raw, _ := json.Marshal(info)
	if err := t.batch.Set(spaceKey(famSpace, info.Name), raw, nil); err != nil {
		return err
	}
	t.logChange(Change{Op: OpCreateSpace, Space: info.Name, SpaceInfo: info})
	t.after = append(t.after, func() {
		e.spacesMu.Lock()
		e.spaces[info.Name] = sp
		e.spacesMu.Unlock()
		*created = true
	})
	return nil
}

// Space describes one space with its counts.
func (e *Engine) Space(name string) (SpaceStats, error) {
	if err := e.checkOpen(); err != nil {
		return SpaceStats{}, err
	}
	if err := ValidateSpaceName(name); err != nil {
		return SpaceStats{}, err
	}
	sp := e.lookupSpace(name)
	if sp == nil {
		return SpaceStats{}, Errorf(KindNotFound, "SPACE_NOT_FOUND", "space %q does not exist", name)
	}
	return sp.stats(), nil
}

// Spaces lists every space with its counts, by name.
func (e *Engine) Spaces() []SpaceStats {
	var out []SpaceStats
	for _, sp := range e.spaceList() {
		out = append(out, sp.stats())
	}
	return out
}

// stats reads the hot count under sp.mu, as the counts: a slot leaves the
// hot tier under it when it leaves the warm tier, so the hot entries are
// always a subset of the warm count.
func (sp *space) stats() SpaceStats {
	sp.mu.RLock()
	defer sp.mu.RUnlock()
	hot := sp.hot.spaceCount(sp.num)
	st := SpaceStats{SpaceInfo: sp.info, Associations: sp.assocs, IndexPending: len(sp.pending) + len(sp.unembedded)}
	st.Memories[TierHot] = hot
	st.Memories[TierWarm] = sp.counts[TierWarm] - hot
	st.Memories[TierCold] = sp.counts[TierCold]
	return st
}

// load rebuilds in-memory state from Pebble and the persisted index graphs.
func (e *Engine) load() error {
	v, closer, err := e.db.Get([]byte{famFormat})
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		if err := e.db.Set([]byte{famFormat}, []byte(formatMarker), pebble.Sync); err != nil {
			return internalf(err, "initialise data directory")
		}
	case err != nil:
		return internalf(err, "read format marker")
	default:
		marker := string(v)
		closer.Close()
		if marker != formatMarker {
			return Errorf(KindInvalid, "UNSUPPORTED_FORMAT", "data directory format %q is not supported by this binary (supports %q)", marker, formatMarker)
		}
	}
	// Spaces.
	it, err := e.db.NewIter(&pebble.IterOptions{LowerBound: []byte{famSpace}, UpperBound: []byte{famSpace + 1}})
	if err != nil {
		return internalf(err, "list spaces")
	}
	for ok := it.First(); ok; ok = it.Next() {
		var info SpaceInfo
		if err := json.Unmarshal(it.Value(), &info); err != nil {
			it.Close()
			return internalf(err, "decode space %q", it.Key()[1:])
		}
		sp, err := e.newSpace(info)
		if err != nil {
			it.Close()
			return err
		}
		if fp := sp.embedder.Fingerprint(); fp != info.Fingerprint {
			it.Close()
			return Errorf(KindConflict, "EMBEDDER_MISMATCH", "space %q was created with embedder %s but this configuration provides %s; recall would be meaningless", info.Name, info.Fingerprint, fp)
		}
		e.spaces[info.Name] = sp
	}
	if err := it.Close(); err != nil {
		return internalf(err, "list spaces")
	}
	// Small spaces have no graph file: list the files once rather than
	// trying to open one per space.
	entries, err := os.ReadDir(filepath.Join(e.dir, "index"))
	if err != nil {
		return internalf(err, "list index graphs")
	}
	graphs := make(map[string]bool, len(entries))
	for _, de := range entries {
		graphs[de.Name()] = true
	}
	for _, sp := range e.spaceList() {
		if err := e.loadSpace(sp, graphs[sp.info.Name+".graph"]); err != nil {
			return err
		}
	}
	// Sequence: the last change-log key.
	it, err = e.db.NewIter(&pebble.IterOptions{LowerBound: []byte{famLog}, UpperBound: []byte{famLog + 1}})
	if err != nil {
		return internalf(err, "read change log")
	}
	if it.Last() {
		e.seq = binary.BigEndian.Uint64(it.Key()[1:])
	}
	if it.First() {
		e.logFirst.Store(binary.BigEndian.Uint64(it.Key()[1:]))
	}
	if err := it.Close(); err != nil {
		return internalf(err, "read change log")
	}
	e.durable.Store(e.seq)
	return nil
}

func (e *Engine) loadSpace(sp *space, hasGraph bool) error {
	name := sp.info.Name
	if v, closer, err := e.db.Get(spaceKey(famNextSlot, name)); err == nil {
		if len(v) == 4 {
			sp.nextSlot = binary.BigEndian.Uint32(v)
		}
		closer.Close()
	}
	// Records. With a deterministic embedder, vectors it derived are not
	// stored: keep the contents to recompute them.
	derivable := deterministic(sp.embedder)
	contents := map[uint32]string{}
	prefix := spacePrefix(famMemory, name)
	it, err := e.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return internalf(err, "load space %s", name)
	}
	for ok := it.First(); ok; ok = it.Next() {
		id, _ := splitMember(it.Key(), len(name))
		r, err := decodeRecord(it.Value(), name, id)
		if err != nil {
			it.Close()
			return internalf(err, "decode memory %s/%s", name, id)
		}
		sp.setSlot(r, len(it.Value()), 0) // vectors are added below
		if derivable {
			contents[r.slot] = r.Content
		}
	}
	if err := it.Close(); err != nil {
		return internalf(err, "load space %s", name)
	}
	// Vectors.
	warm := map[uint32][]float32{}
	prefix = spacePrefix(famVector, name)
	it, err = e.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return internalf(err, "load vectors of %s", name)
	}
	for ok := it.First(); ok; ok = it.Next() {
		id, _ := splitMember(it.Key(), len(name))
		s, ok := sp.byID[id]
		if !ok {
			continue
		}
		sv, err := decodeVector(it.Value())
		if err != nil {
			it.Close()
			return internalf(err, "decode vector %s/%s", name, id)
		}
		sp.slots[s].bytes += int64(len(it.Value()))
		sp.bytes[sp.slots[s].tier] += int64(len(it.Value()))
		if sv.f32 != nil {
			warm[s] = e.vecs.normalized(sv.f32)
		} else {
			sp.cold[s] = coldVector{q: sv.q, scale: sv.scale}
		}
	}
	if err := it.Close(); err != nil {
		return internalf(err, "load vectors of %s", name)
	}
	if err := e.deriveMissing(sp, contents, warm); err != nil {
		return err
	}
	// Associations: count only.
	prefix = spacePrefix(famAssoc, name)
	it, err = e.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return internalf(err, "load associations of %s", name)
	}
	for ok := it.First(); ok; ok = it.Next() {
		sp.assocs++
	}
	if err := it.Close(); err != nil {
		return internalf(err, "load associations of %s", name)
	}
	// Index: the persisted graph if usable, then whatever it lacks goes
	// to the indexer (searched exactly meanwhile).
	if f, err := openGraph(e.dir, name, hasGraph); err == nil {
		idx, rerr := vector.ReadGraph(f, func(id uint32) ([]float32, bool) { // ReadGraph buffers
			v, ok := warm[id]
			return v, ok
		})
		f.Close()
		sp.saved.Store(true)
		if rerr != nil {
			e.log.Warn("index graph unreadable; rebuilding in the background", "space", name, "err", rerr)
		} else if idx.Dim() == sp.info.Dimension {
			sp.index = idx
		}
	}
	for s, v := range warm {
		if sp.index.Contains(s) {
			continue
		}
		sp.pending[s] = v
		sp.queue = append(sp.queue, queued{s, v})
	}
	sort.Slice(sp.queue, func(i, j int) bool { return sp.queue[i].slot < sp.queue[j].slot })
	if len(sp.queue) > 0 {
		sp.dirty.Store(true)
	}
	return nil
}

// openGraph opens the graph file of space if the data directory has one.
func openGraph(dir, space string, exists bool) (*os.File, error) {
	if !exists {
		return nil, os.ErrNotExist
	}
	return os.Open(indexPath(dir, space))
}

// deriveMissing recomputes, on all cores, the vectors of warm memories that
// have none stored (contents holds the candidates' text) into warm.
func (e *Engine) deriveMissing(sp *space, contents map[uint32]string, warm map[uint32][]float32) error {
	var todo []uint32
	for s := range contents {
		if sl := &sp.slots[s]; sl.live && sl.tier == TierWarm && sl.id != "" && warm[s] == nil {
			if _, cold := sp.cold[s]; !cold {
				todo = append(todo, s)
			}
		}
	}
	if len(todo) == 0 {
		return nil
	}
	vecs, err := e.deriveEach(sp, len(todo), func(i int) (string, string, error) {
		return sp.slots[todo[i]].id, contents[todo[i]], nil
	})
	if err != nil {
		return err
	}
	for i, s := range todo {
		warm[s] = vecs[i]
	}
	return nil
}

// deriveEach computes on every core the normalised vectors of n memories,
// vecs[i] from what text(i) returns: the memory's id, its content, or ""
// to skip it.
func (e *Engine) deriveEach(sp *space, n int, text func(i int) (id, content string, err error)) ([][]float32, error) {
	vecs := make([][]float32, n)
	workers := min(runtime.GOMAXPROCS(0), n)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				id, content, err := text(i)
				if err == nil && content == "" {
					continue
				}
				var v []float32
				if err == nil {
					v, err = e.derive(sp, content)
				}
				if err != nil {
					errs[w] = fmt.Errorf("memory %s/%s: %w", sp.info.Name, id, err)
					return
				}
				vecs[i] = e.vecs.normalized(v)
			}
		}()
	}
	wg.Wait()
	return vecs, errors.Join(errs...)
}

// setSlot installs r, stored in recBytes and its vector in vecBytes, into
// the slot table (caller holds sp.mu or owns sp).
func (sp *space) setSlot(r *record, recBytes, vecBytes int) {
	for uint32(len(sp.slots)) <= r.slot {
		sp.slots = append(sp.slots, slot{})
	}
	if r.slot >= sp.nextSlot {
		sp.nextSlot = r.slot + 1
	}
	tier := r.Tier
	if tier == TierHot {
		tier = TierWarm
	}
	sp.slots[r.slot] = slot{
		id:          r.ID,
		live:        true,
		tier:        tier,
		confidence:  r.Confidence,
		observedAt:  r.ObservedAt.UnixNano(),
		lastAccess:  r.LastAccess.UnixNano(),
		stability:   int64(r.Stability),
		accessCount: r.AccessCount,
		recBytes:    uint32(recBytes),
		bytes:       int64(recBytes + vecBytes),
	}
	sp.byID[r.ID] = r.slot
	sp.counts[tier]++
	sp.bytes[tier] += int64(recBytes + vecBytes)
}

// dropSlot marks slot s dead, takes it out of the hot tier and queues its
// index removal (caller holds sp.mu). A replace drops the old version's
// slot here too: its hot entry would otherwise stay counted.
func (sp *space) dropSlot(s uint32) {
	sl := &sp.slots[s]
	if !sl.live {
		return
	}
	sl.live = false
	sp.counts[sl.tier]--
	sp.bytes[sl.tier] -= sl.bytes
	sp.hot.remove(sp.num, s)
	delete(sp.byID, sl.id)
	if _, ok := sp.pending[s]; ok {
		delete(sp.pending, s)
	} else if sl.tier == TierWarm {
		sp.deletes = append(sp.deletes, s)
	}
	delete(sp.cold, s)
}

// retier moves live slot s to tier, its record and vector now stored in
// recBytes and vecBytes (caller holds sp.mu); a slot leaving the warm tier
// leaves the hot tier with it.
func (sp *space) retier(s uint32, tier Tier, recBytes, vecBytes int) {
	sl := &sp.slots[s]
	sp.counts[sl.tier]--
	sp.bytes[sl.tier] -= sl.bytes
	sl.tier, sl.recBytes, sl.bytes = tier, uint32(recBytes), int64(recBytes+vecBytes)
	sp.counts[tier]++
	sp.bytes[tier] += sl.bytes
	if tier != TierWarm {
		sp.hot.remove(sp.num, s)
	}
}

// resized records that slot s's record, if s is still id's live version,
// was rewritten in place at recBytes (caller holds sp.mu).
func (sp *space) resized(s uint32, id string, recBytes int) {
	sl := &sp.slots[s]
	if !sl.live || sl.id != id {
		return
	}
	d := int64(recBytes) - int64(sl.recBytes)
	sl.recBytes = uint32(recBytes)
	sl.bytes += d
	sp.bytes[sl.tier] += d
}

func indexPath(dir, space string) string {
	return filepath.Join(dir, "index", space+".graph")
}

// minSavedGraph is the fewest nodes (live or tombstoned) a graph has for
// it to be saved: a smaller one is rebuilt from its vectors at open, in
// the background, sooner than its file is written and synced at close,
// and most spaces of a store with many tenants are that small.
const minSavedGraph = 64

func (sp *space) graphWorthSaving() bool {
	return sp.index.Len()+sp.index.Tombstones() >= minSavedGraph
}

func (e *Engine) saveIndexes() error {
	e.saveMu.Lock()
	defer e.saveMu.Unlock()
	var errs []error
	for _, sp := range e.spaceList() {
		if sp.dirty.Load() {
			if err := e.saveIndex(sp); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func (e *Engine) saveIndex(sp *space) error {
	sp.dirty.Store(false)
	if !sp.graphWorthSaving() {
		// A graph saved while the space was larger would be loaded, then
		// completed; dropping it keeps the next open's work the same.
		if sp.saved.Load() {
			if err := os.Remove(indexPath(e.dir, sp.info.Name)); err != nil && !errors.Is(err, os.ErrNotExist) {
				sp.dirty.Store(true)
				return internalf(err, "remove the index of %s", sp.info.Name)
			}
			sp.saved.Store(false)
		}
		return nil
	}
	if err := writeIndexFile(sp, filepath.Join(e.dir, "index")); err != nil {
		sp.dirty.Store(true)
		return err
	}
	sp.saved.Store(true)
	return nil
}

// writeIndexFile persists the graph atomically: temp file, fsync, rename.
func writeIndexFile(sp *space, dir string) error {
	final := filepath.Join(dir, sp.info.Name+".graph")
	tmp := final + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return internalf(err, "save index of %s", sp.info.Name)
	}
	sp.idxMu.Lock()
	err = sp.index.WriteGraph(f) // WriteGraph buffers
	sp.idxMu.Unlock()
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, final)
	}
	if err != nil {
		os.Remove(tmp)
		return internalf(err, "save index of %s", sp.info.Name)
	}
	return nil
}

// runIndexer moves pending vectors into the ANN index and applies tombstones,
// one space at a time, behind the write path.
func (e *Engine) runIndexer() {
	for {
		worked := false
		for _, sp := range e.spaceList() {
			if e.opts.Index.Defer {
				break // BuildIndex inserts
			}
			for i := 0; i < 256; i++ {
				start := time.Now()
				rest, width := e.indexerPace(sp)
				if !e.indexStep(sp, width) {
					break
				}
				worked = true
				if rest > 0 {
					select {
					case <-e.stop:
					case <-time.After(time.Duration(rest) * time.Since(start)):
					}
				} else if width == 1 {
					// Serving beside requests: a step has no scheduling
					// point, and requests made runnable on this P meanwhile
					// would wait for the runtime's preemption (10 ms) unless
					// another P steals them. Flat out on every core (idle, or
					// writes held for the indexer) it does not yield: the
					// writes wait for it.
					runtime.Gosched()
				}
			}
			select {
			case <-e.stop:
				return
			default:
			}
		}
		if worked {
			continue
		}
		select {
		case <-e.stop:
			return
		case <-e.kick:
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// The not-yet-indexed vectors of a space (the backlog) are scanned exactly
// by every recall, so the indexer yields to requests only while nobody
// searches the space, and then only up to maxYieldBacklog (a write burst:
// ~300 MB of 768-dimension vectors at most, which the index would hold
// anyway). In a space searched within the last recallWindow every pending
// vector costs each recall a read of it, so it is inserted at once: under
// sustained load the inserts cost the same whenever they run, and a backlog
// kept only adds scans.
const (
	// idleGrace is how long after the last request the server counts as
	// idle. Between requests under load nothing is in flight for a moment
	// (the engine's part of a request is short beside its HTTP, JSON and
	// embedding); an indexer that went flat out in those gaps would take
	// every core from the next requests.
	idleGrace       = 50 * time.Millisecond
	maxYieldBacklog = 100_000
	recallWindow    = time.Second
)

// indexerPace keeps index maintenance behind the write path. rest says how
// many times as long as its last step the indexer rests before the next,
// width how many inserts it runs at once.
//   - Idle (nothing in flight and nothing finished for idleGrace): rest 0 on
//     every core. HNSW insertion is safe concurrently, and a bulk load or
//     restore catches up that much sooner.
//   - Serving, with writes waiting for room under Index.MaxPending (or the
//     backlog past half of it), nobody recalling: rest 0 on every core. The
//     writes are held only for the indexer, so indexing is then their
//     throughput.
//   - The same while recalls search the space: rest 1 on one core. Recalls
//     come first: the held writes get half a core, and the recalls, which
//     the bound exists for, are not queued behind a machine kept saturated
//     by writers waiting to take every insert's room.
//   - Serving, with a backlog above maxYieldBacklog: rest 0 on one core. The
//     other cores stay with the requests: an indexer on every core under
//     sustained writes multiplies their tail latency and still cannot keep
//     up, since an insert costs several times a durable remember's CPU.
//   - Serving, while recalls search the space: rest 0 on one core, since
//     each recall scans the whole backlog.
//   - Serving, only writes, below the limit: rest 9 (a tenth of a core),
//     since the backlog then costs memory only, and every core the indexer
//     takes from the writes lengthens their tail.
//
// The figures behind these choices: docs/benchmarks.md, "Indexer pacing".
func (e *Engine) indexerPace(sp *space) (rest, width int) {
	if e.inFlight.Load() == 0 && time.Since(time.Unix(0, e.lastForeground.Load())) > idleGrace {
		return 0, runtime.GOMAXPROCS(0)
	}
	sp.mu.RLock()
	backlog, held := len(sp.pending), len(sp.waiters) > 0
	sp.mu.RUnlock()
	if bound := e.opts.Index.MaxPending; bound > 0 && backlog >= bound/2 {
		held = true // about to hold writes: keep ahead of them
	}
	searched := time.Since(time.Unix(0, sp.lastRecall.Load())) < recallWindow
	if held {
		if searched {
			return 1, 1
		}
		return 0, runtime.GOMAXPROCS(0)
	}
	if searched || backlog > maxYieldBacklog {
		return 0, 1
	}
	return 9, 1
}

// indexStep performs one unit of index work, inserting up to width queued
// vectors concurrently; false when there was none.
func (e *Engine) indexStep(sp *space, width int) bool {
	sp.idxMu.Lock()
	defer sp.idxMu.Unlock()
	sp.mu.Lock()
	if n := len(sp.deletes); n > 0 {
		dels := sp.deletes
		sp.deletes = nil
		sp.mu.Unlock()
		for _, s := range dels {
			sp.index.Delete(s)
		}
		sp.dirty.Store(true)
		return true
	}
	// Skip entries forgotten meanwhile. Entries being inserted stay at the
	// head of the queue until the index holds them, so a recall running
	// meanwhile still scans them (only the indexer, under idxMu, pops).
	for len(sp.queue) > 0 && sp.pending[sp.queue[0].slot] == nil {
		sp.queue = sp.queue[1:]
	}
	if len(sp.queue) == 0 {
		sp.signalRoom(e.opts.Index.MaxPending) // forgets may have made room
		sp.mu.Unlock()
		return false
	}
	batch := sp.queue[:min(width, len(sp.queue))]
	sp.mu.Unlock()
	insert := func(q queued) {
		if err := sp.index.Add(q.slot, q.vec); err != nil && !errors.Is(err, vector.ErrBusy) {
			e.bgErrs.Add(1)
			e.log.Error("index insert failed", "space", sp.info.Name, "err", err)
		}
	}
	if len(batch) == 1 {
		insert(batch[0])
	} else {
		// One worker per core takes the next entry, so a slow insert
		// holds up only its own worker until the step's end.
		todo := make([]queued, 0, len(batch))
		seen := make(map[uint32]bool, len(batch))
		for _, q := range batch {
			if seen[q.slot] { // the same slot queued twice (re-warmed)
				continue
			}
			seen[q.slot] = true
			todo = append(todo, q)
		}
		var (
			wg   sync.WaitGroup
			next atomic.Int64
		)
		for range min(runtime.GOMAXPROCS(0), len(todo)) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := next.Add(1) - 1; i < int64(len(todo)); i = next.Add(1) - 1 {
					insert(todo[i])
				}
			}()
		}
		wg.Wait()
	}
	var forgotten []uint32
	sp.mu.Lock()
	sp.queue = sp.queue[len(batch):]
	for i, q := range batch {
		if slices.ContainsFunc(batch[:i], func(p queued) bool { return p.slot == q.slot }) {
			continue // handled with its first entry
		}
		if _, stillLive := sp.pending[q.slot]; stillLive {
			delete(sp.pending, q.slot)
		} else {
			forgotten = append(forgotten, q.slot)
		}
	}
	sp.signalRoom(e.opts.Index.MaxPending)
	sp.mu.Unlock()
	for _, s := range forgotten { // forgotten while being inserted
		sp.index.Delete(s)
	}
	sp.dirty.Store(true)
	return true
}

// buildStep is how many queued vectors one BuildIndex step inserts: the
// step holds the space's index lock, and recall scans the entries being
// inserted exactly until the step ends.
const buildStep = 512

// BuildIndex inserts every space's backlog into its ANN index on every
// core, then persists the index graphs; it returns how many vectors it
// inserted. It is the end of a bulk load (Index.Defer), where the
// background indexer inserts nothing; with ctx cancelled it stops between
// steps, and what it had not inserted is indexed by the next BuildIndex or
// open.
func (e *Engine) BuildIndex(ctx context.Context) (int, error) {
	if err := e.checkOpen(); err != nil {
		return 0, err
	}
	done := 0
	for _, sp := range e.spaceList() {
		if err := e.embedDeferred(sp); err != nil {
			return done, err
		}
		for {
			if err := ctxErr(ctx); err != nil {
				return done, err
			}
			sp.mu.RLock()
			before := len(sp.pending)
			sp.mu.RUnlock()
			if !e.indexStep(sp, buildStep) {
				break
			}
			sp.mu.RLock()
			done += max(before-len(sp.pending), 0)
			sp.mu.RUnlock()
		}
	}
	if err := e.saveIndexes(); err != nil {
		return done, err
	}
	return done, nil
}

// embedDeferred computes, on every core, the vectors of the memories a
// bulk load stored without one (space.unembedded) from their stored
// content, and queues them for the index, where recall scans them exactly.
// On failure the slots not queued stay for the next call.
func (e *Engine) embedDeferred(sp *space) error {
	sp.embedMu.Lock()
	defer sp.embedMu.Unlock()
	type job struct {
		slot uint32
		id   string
	}
	sp.mu.Lock()
	var jobs []job
	for _, s := range sp.unembedded {
		if sl := &sp.slots[s]; sl.live && sl.tier == TierWarm {
			jobs = append(jobs, job{s, sl.id})
		}
	}
	sp.unembedded = nil
	sp.mu.Unlock()
	if len(jobs) == 0 {
		return nil
	}
	vecs, err := e.deriveEach(sp, len(jobs), func(i int) (string, string, error) {
		r, err := e.storedRecord(sp.info.Name, jobs[i].id)
		switch {
		case KindOf(err) == KindNotFound:
			return jobs[i].id, "", nil // forgotten meanwhile
		case err != nil:
			return jobs[i].id, "", err
		case r.slot != jobs[i].slot:
			return jobs[i].id, "", nil // replaced meanwhile: the new version has its own slot
		}
		return jobs[i].id, r.Content, nil
	})
	sp.mu.Lock()
	for i, j := range jobs {
		if sl := &sp.slots[j.slot]; !sl.live || sl.tier != TierWarm {
			continue
		}
		if vecs[i] == nil {
			if err != nil {
				sp.unembedded = append(sp.unembedded, j.slot)
			}
			continue
		}
		sp.pending[j.slot] = vecs[i]
		sp.queue = append(sp.queue, queued{j.slot, vecs[i]})
	}
	sp.mu.Unlock()
	return err
}

func (e *Engine) kickIndexer() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

// WaitIndexed blocks until every acknowledged vector is in the ANN index (for
// tests and benchmarks: recall is exact meanwhile, never missing a write).
func (e *Engine) WaitIndexed(ctx context.Context) error {
	for {
		n := 0
		for _, sp := range e.spaceList() {
			sp.mu.RLock()
			n += len(sp.pending) + len(sp.deletes)
			sp.mu.RUnlock()
		}
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}
