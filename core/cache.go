package core

import (
	"sync"
	"sync/atomic"
	"unsafe"
)

// hotCache is the hot tier: decoded records of recently used warm memories,
// bounded by bytes, least recently used evicted first. Entries are immutable
// once inserted; decay fields are overlaid from the space's slot table.
//
// An entry is one object holding a copy of the record and its LRU links,
// and the map key reuses the record's own space and id strings, so a
// cached memory costs the collector two objects (entry and content) rather
// than five. With 100,000 memories cached the hot tier is still about half
// of a collection's CPU (BenchmarkGCEngine100k): keeping records encoded
// cut that by a fifth but added a decode, and ~650 bytes of garbage, to
// every read, which made collections more frequent under recall.
type hotCache struct {
	mu       sync.Mutex
	capacity int64
	bytes    int64
	// head.next is the most recently used entry, head.prev the least; head
	// itself holds no record.
	head     cacheEntry
	items    map[cacheKey]*cacheEntry
	perSpace map[string]int64

	hits, misses          atomic.Uint64
	promotions, demotions atomic.Uint64 // warm→hot, hot→warm
}

type cacheKey struct{ space, id string }

// cacheEntry is never changed once linked, because readers keep &rec: a
// newer version of the record gets a new entry.
type cacheEntry struct {
	prev, next *cacheEntry
	size       int64
	rec        record
}

func newHotCache(capacity int64) *hotCache {
	c := &hotCache{capacity: capacity, items: map[cacheKey]*cacheEntry{}, perSpace: map[string]int64{}}
	c.head.prev, c.head.next = &c.head, &c.head
	return c
}

// unlink takes e out of the list; linkFront and linkBack put it back.
func (c *hotCache) unlink(e *cacheEntry) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

func (c *hotCache) linkFront(e *cacheEntry) {
	e.prev, e.next = &c.head, c.head.next
	c.head.next.prev = e
	c.head.next = e
}

func (c *hotCache) linkBack(e *cacheEntry) {
	e.prev, e.next = c.head.prev, &c.head
	c.head.prev.next = e
	c.head.prev = e
}

func (c *hotCache) get(space, id string) *record {
	c.mu.Lock()
	e, ok := c.items[cacheKey{space, id}]
	if ok {
		c.unlink(e)
		c.linkFront(e)
	}
	c.mu.Unlock()
	if !ok {
		c.misses.Add(1)
		return nil
	}
	c.hits.Add(1)
	return &e.rec
}

// peek returns the cached record without counting a hit or a miss or
// refreshing its place (for the engine's own bookkeeping reads).
func (c *hotCache) peek(space, id string) *record {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[cacheKey{space, id}]; ok {
		return &e.rec
	}
	return nil
}

// recordSize is what caching r costs the heap: the entry (record and
// links), its map slot (~64 bytes) and the strings it holds, so the hot
// tier's capacity bounds memory the process really uses.
func recordSize(r *record) int64 {
	n := int64(unsafe.Sizeof(cacheEntry{})) + 64 + int64(len(r.ID)+len(r.Content))
	for _, t := range r.Tags {
		n += int64(16 + len(t))
	}
	for k, v := range r.Metadata {
		n += int64(32 + len(k) + len(v))
	}
	return n
}

func (c *hotCache) put(r *record) {
	if c.capacity <= 0 {
		return
	}
	size := recordSize(r)
	c.mu.Lock()
	defer c.mu.Unlock()
	old, replaced := c.items[cacheKey{r.Space, r.ID}]
	if replaced {
		c.removeEntry(old)
	}
	e := &cacheEntry{rec: *r, size: size}
	c.linkFront(e)
	c.add(e)
	if !replaced {
		c.promotions.Add(1)
	}
	for c.bytes > c.capacity && len(c.items) > 1 {
		c.removeEntry(c.head.prev)
		c.demotions.Add(1)
	}
}

// offer caches r only while the cache has room to spare: a memory just
// written is likely to be recalled soon, but never pushes out one that
// was recalled (a bulk import would otherwise flush the working set).
func (c *hotCache) offer(r *record) {
	size := recordSize(r)
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[cacheKey{r.Space, r.ID}]; ok {
		c.removeEntry(e)
	}
	if c.bytes+size > c.capacity {
		return
	}
	e := &cacheEntry{rec: *r, size: size}
	c.linkBack(e)
	c.add(e)
}

// add accounts for an entry just linked into the list; removeEntry undoes
// it.
func (c *hotCache) add(e *cacheEntry) {
	c.items[cacheKey{e.rec.Space, e.rec.ID}] = e
	c.bytes += e.size
	c.perSpace[e.rec.Space]++
}

func (c *hotCache) remove(space, id string) {
	c.mu.Lock()
	if e, ok := c.items[cacheKey{space, id}]; ok {
		c.removeEntry(e)
	}
	c.mu.Unlock()
}

func (c *hotCache) removeEntry(e *cacheEntry) {
	c.unlink(e)
	delete(c.items, cacheKey{e.rec.Space, e.rec.ID})
	c.bytes -= e.size
	c.perSpace[e.rec.Space]--
}

func (c *hotCache) stats() (bytes int64, perSpace map[string]int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	perSpace = make(map[string]int64, len(c.perSpace))
	for k, v := range c.perSpace {
		perSpace[k] = v
	}
	return c.bytes, perSpace
}

func (c *hotCache) contains(space, id string) bool {
	c.mu.Lock()
	_, ok := c.items[cacheKey{space, id}]
	c.mu.Unlock()
	return ok
}
