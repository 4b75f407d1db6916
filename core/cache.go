package core

import (
	"container/list"
	"sync"
	"sync/atomic"
)

// hotCache is the hot tier: decoded records of recently used warm memories,
// bounded by bytes, least recently used evicted first. Entries are immutable
// once inserted; decay fields are overlaid from the space's slot table.
type hotCache struct {
	mu       sync.Mutex
	capacity int64
	bytes    int64
	ll       *list.List
	items    map[string]*list.Element
	perSpace map[string]int64

	hits, misses          atomic.Uint64
	promotions, demotions atomic.Uint64 // warm→hot, hot→warm
}

type cacheEntry struct {
	key  string
	rec  *record
	size int64
}

func newHotCache(capacity int64) *hotCache {
	return &hotCache{capacity: capacity, ll: list.New(), items: map[string]*list.Element{}, perSpace: map[string]int64{}}
}

func cacheKey(space, id string) string { return space + "\x00" + id }

func (c *hotCache) get(space, id string) *record {
	k := cacheKey(space, id)
	c.mu.Lock()
	el, ok := c.items[k]
	if ok {
		c.ll.MoveToFront(el)
	}
	c.mu.Unlock()
	if !ok {
		c.misses.Add(1)
		return nil
	}
	c.hits.Add(1)
	return el.Value.(*cacheEntry).rec
}

// peek returns the cached record without counting a hit or a miss or
// refreshing its place (for the engine's own bookkeeping reads).
func (c *hotCache) peek(space, id string) *record {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[cacheKey(space, id)]; ok {
		return el.Value.(*cacheEntry).rec
	}
	return nil
}

func recordSize(r *record) int64 {
	n := int64(160 + len(r.ID) + len(r.Content))
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
	k := cacheKey(r.Space, r.ID)
	size := recordSize(r)
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[k]; ok {
		e := el.Value.(*cacheEntry)
		c.bytes += size - e.size
		e.rec, e.size = r, size
		c.ll.MoveToFront(el)
	} else {
		c.addElement(c.ll.PushFront(&cacheEntry{key: k, rec: r, size: size}))
		c.promotions.Add(1)
	}
	for c.bytes > c.capacity && c.ll.Len() > 1 {
		c.removeElement(c.ll.Back())
		c.demotions.Add(1)
	}
}

// offer caches r only while the cache has room to spare: a memory just
// written is likely to be recalled soon, but never pushes out one that
// was recalled (a bulk import would otherwise flush the working set).
func (c *hotCache) offer(r *record) {
	size := recordSize(r)
	k := cacheKey(r.Space, r.ID)
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[k]; ok {
		c.removeElement(el)
	}
	if c.bytes+size > c.capacity {
		return
	}
	c.addElement(c.ll.PushBack(&cacheEntry{key: k, rec: r, size: size}))
}

// addElement accounts for an entry just pushed onto the list; removeElement
// undoes it.
func (c *hotCache) addElement(el *list.Element) {
	e := el.Value.(*cacheEntry)
	c.items[e.key] = el
	c.bytes += e.size
	c.perSpace[e.rec.Space]++
}

func (c *hotCache) remove(space, id string) {
	c.mu.Lock()
	if el, ok := c.items[cacheKey(space, id)]; ok {
		c.removeElement(el)
	}
	c.mu.Unlock()
}

func (c *hotCache) removeElement(el *list.Element) {
	e := el.Value.(*cacheEntry)
	c.ll.Remove(el)
	delete(c.items, e.key)
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
	_, ok := c.items[cacheKey(space, id)]
	c.mu.Unlock()
	return ok
}
