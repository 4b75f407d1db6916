package core

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
)

// hotCache is the hot tier: recently used warm records, kept encoded in
// append-only chunks and addressed by (space number, slot). A slot names
// one version of a memory (a rewrite takes a new slot), so an entry never
// goes stale; decay fields are overlaid from the slot table on read.
//
// The layout is for the garbage collector. Decoded records cost it every
// string and map they hold, on every collection (docs/benchmarks.md,
// "Collector load"). Here the chunks are byte slices and the index is
// a map of integers, neither of which it scans. Reads decode into the
// caller's record with strings that alias the chunk, so they allocate
// nothing; this is safe because bytes are never written twice, and a chunk
// dropped by eviction stays alive while a read still refers to it.
//
// Eviction is FIFO by chunk with a second chance: when the oldest chunk
// goes, entries read since they were placed move to the newest chunk, the
// rest are demoted. Each placement evicts at most one chunk, so no write
// copies more than a chunk.
type hotCache struct {
	mu        sync.Mutex
	capacity  int64
	chunkSize int
	bytes     int64       // capacity of the chunks held: what the tier costs the heap
	chunks    []*hotChunk // oldest first, generations consecutive
	nextGen   uint32
	index     map[uint64]uint64 // hotKey → location
	perSpace  map[uint32]int64
	scratch   []byte // encoding buffer, used under mu

	hits, misses          atomic.Uint64
	promotions, demotions atomic.Uint64 // warm→hot, hot→warm
}

type hotChunk struct {
	gen uint32
	buf []byte // bytes below len(buf) are never written again
}

// An entry is a fixed header (space number, slot, payload length, all
// little-endian uint32) and a payload: the id as a uvarint-prefixed string,
// then the record as appendRecord encodes it.
const hotHeader = 12

// A location packs the chunk's generation (31 bits), whether the entry was
// read since it was placed, and the entry's offset in the chunk.
const (
	locAccessed = 1 << 63
	locGenMask  = 1<<31 - 1
)

func hotKey(space, slot uint32) uint64 { return uint64(space)<<32 | uint64(slot) }

func makeLoc(gen uint32, off int) uint64 { return uint64(gen&locGenMask)<<32 | uint64(off) }

func locGen(loc uint64) uint32 { return uint32(loc>>32) & locGenMask }

func locOffset(loc uint64) int { return int(uint32(loc)) }

const (
	minHotChunk = 4 << 10
	maxHotChunk = 1 << 20
)

func newHotCache(capacity int64) *hotCache {
	chunk := int(min(max(capacity/16, minHotChunk), maxHotChunk))
	if int64(chunk) > capacity {
		chunk = int(max(capacity, 0))
	}
	return &hotCache{capacity: capacity, chunkSize: chunk, index: map[uint64]uint64{}, perSpace: map[uint32]int64{}}
}

// entryAt returns the payload of the entry at loc; it stays valid (and
// unchanged) however long the caller keeps it. Caller holds mu.
func (c *hotCache) entryAt(loc uint64) []byte {
	ch := c.chunks[(locGen(loc)-c.chunks[0].gen)&locGenMask]
	off := locOffset(loc)
	n := int(binary.LittleEndian.Uint32(ch.buf[off+8:]))
	return ch.buf[off+hotHeader : off+hotHeader+n : off+hotHeader+n]
}

// lookup returns the payload cached for slot; read marks the entry as read
// since it was placed.
func (c *hotCache) lookup(space, slot uint32, read bool) ([]byte, bool) {
	k := hotKey(space, slot)
	c.mu.Lock()
	defer c.mu.Unlock()
	loc, ok := c.index[k]
	if !ok {
		return nil, false
	}
	if read && loc&locAccessed == 0 {
		c.index[k] = loc | locAccessed
	}
	return c.entryAt(loc), true
}

// get decodes the cached version of slot into dst, counting a hit or a
// miss and marking the entry as read.
func (c *hotCache) get(space uint32, name string, slot uint32, dst *record) bool {
	payload, ok := c.lookup(space, slot, true)
	if !ok || decodeHotEntry(payload, name, dst) != nil {
		c.misses.Add(1)
		return false
	}
	c.hits.Add(1)
	return true
}

// peek returns the cached version of slot without counting a hit or a miss
// or marking it read (for the engine's own bookkeeping reads).
func (c *hotCache) peek(space uint32, name string, slot uint32) *record {
	payload, ok := c.lookup(space, slot, false)
	if !ok {
		return nil
	}
	r := &record{}
	if decodeHotEntry(payload, name, r) != nil {
		return nil
	}
	return r
}

// decodeHotEntry decodes a payload into dst, with strings that alias it.
func decodeHotEntry(payload []byte, name string, dst *record) error {
	d := decoder{b: payload, alias: true}
	id := d.str()
	if d.err != nil {
		return d.err
	}
	return decodeRecordInto(d.b, name, id, dst, true)
}

// put caches r as the newest entry, evicting if it must.
func (c *hotCache) put(space uint32, r *record) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.place(space, r, nil, true) {
		c.promotions.Add(1)
	}
}

// offer caches r only while the tier has room to spare: a memory just
// written is likely to be recalled soon, but never pushes out one that was
// recalled (a bulk import would otherwise flush the working set).
// enc is r's encoding (encodeRecord), which the entry holds as it is.
func (c *hotCache) offer(space uint32, r *record, enc []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.place(space, r, enc, false)
}

// place appends r's entry and points the index at it, reporting whether the
// key is new to the cache. A replaced entry's read mark carries over. enc
// is r's encoding when the caller has it (nil: encoded here). Caller holds
// mu.
func (c *hotCache) place(space uint32, r *record, enc []byte, evict bool) bool {
	if c.capacity <= 0 {
		return false
	}
	e := binary.LittleEndian.AppendUint32(c.scratch[:0], space)
	e = binary.LittleEndian.AppendUint32(e, r.slot)
	e = append(e, 0, 0, 0, 0)
	e = binary.AppendUvarint(e, uint64(len(r.ID)))
	e = append(e, r.ID...)
	if enc != nil {
		e = append(e, enc...)
	} else {
		e = appendRecord(e, r)
	}
	binary.LittleEndian.PutUint32(e[8:], uint32(len(e)-hotHeader))
	c.scratch = e

	if !c.roomFor(len(e), evict) {
		return false // a version already cached (same slot, same content) stays
	}
	k := hotKey(space, r.slot)
	old, existed := c.index[k]
	head := c.chunks[len(c.chunks)-1]
	loc := makeLoc(head.gen, len(head.buf))
	if old&locAccessed != 0 {
		loc |= locAccessed
	}
	head.buf = append(head.buf, e...)
	c.index[k] = loc
	if !existed {
		c.perSpace[space]++
	}
	return !existed
}

// roomFor makes the newest chunk able to take n more bytes, starting a new
// chunk (and, if evict, retiring the oldest) when it cannot. Caller holds mu.
func (c *hotCache) roomFor(n int, evict bool) bool {
	if len(c.chunks) > 0 {
		if head := c.chunks[len(c.chunks)-1]; cap(head.buf)-len(head.buf) >= n {
			return true
		}
	}
	size := max(c.chunkSize, n)
	if int64(size) > c.capacity {
		return false
	}
	var retired []*hotChunk
	for c.bytes+int64(size) > c.capacity {
		if !evict || len(c.chunks) == 0 {
			return false
		}
		old := c.chunks[0]
		c.chunks[0] = nil
		c.chunks = c.chunks[1:]
		c.bytes -= int64(cap(old.buf))
		retired = append(retired, old)
	}
	head := &hotChunk{gen: c.nextGen, buf: make([]byte, 0, size)}
	c.nextGen = (c.nextGen + 1) & locGenMask
	c.chunks = append(c.chunks, head)
	c.bytes += int64(size)
	for _, old := range retired {
		c.retire(old, head, cap(head.buf)-n)
	}
	return true
}

// retire walks a chunk that left the ring: entries still current and read
// since they were placed move to head as long as head stays within keep
// bytes (the rest of it is for the entry being placed); the others leave
// the hot tier. Caller holds mu.
func (c *hotCache) retire(old, head *hotChunk, keep int) {
	for off := 0; off+hotHeader <= len(old.buf); {
		space := binary.LittleEndian.Uint32(old.buf[off:])
		slot := binary.LittleEndian.Uint32(old.buf[off+4:])
		size := hotHeader + int(binary.LittleEndian.Uint32(old.buf[off+8:]))
		k := hotKey(space, slot)
		if loc, ok := c.index[k]; ok && locGen(loc) == old.gen && locOffset(loc) == off {
			if loc&locAccessed != 0 && len(head.buf)+size <= keep {
				c.index[k] = makeLoc(head.gen, len(head.buf))
				head.buf = append(head.buf, old.buf[off:off+size]...)
			} else {
				c.drop(k)
				c.demotions.Add(1)
			}
		}
		off += size
	}
}

// drop forgets key k. Caller holds mu.
func (c *hotCache) drop(k uint64) {
	delete(c.index, k)
	if sp := uint32(k >> 32); c.perSpace[sp] > 1 {
		c.perSpace[sp]--
	} else {
		delete(c.perSpace, sp)
	}
}

func (c *hotCache) remove(space, slot uint32) {
	k := hotKey(space, slot)
	c.mu.Lock()
	if _, ok := c.index[k]; ok {
		c.drop(k)
	}
	c.mu.Unlock()
}

func (c *hotCache) contains(space, slot uint32) bool {
	c.mu.Lock()
	_, ok := c.index[hotKey(space, slot)]
	c.mu.Unlock()
	return ok
}

// stats returns the bytes the tier holds and its entry count per space
// number.
// spaceCount is how many memories of one space the cache holds.
func (c *hotCache) spaceCount(space uint32) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.perSpace[space]
}

func (c *hotCache) stats() (bytes int64, perSpace map[uint32]int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	perSpace = make(map[uint32]int64, len(c.perSpace))
	for k, v := range c.perSpace {
		perSpace[k] = v
	}
	return c.bytes, perSpace
}
