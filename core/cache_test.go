package core

import (
	"strconv"
	"strings"
	"testing"
)

func TestHotCacheOfferFillsOnlySpareRoom(t *testing.T) {
	rec := func(id string) *record {
		return &record{Memory: Memory{Space: "s", ID: id, Content: strings.Repeat("x", 100)}}
	}
	size := recordSize(rec("r0"))
	c := newHotCache(4 * size)
	c.put(rec("rx"))
	for i := range 10 {
		c.offer(rec("r" + strconv.Itoa(i)))
	}
	if !c.contains("s", "rx") {
		t.Fatal("a new memory pushed a recalled one out of the hot tier")
	}
	for i, want := range []bool{true, true, true, false, false} {
		if got := c.contains("s", "r"+strconv.Itoa(i)); got != want {
			t.Errorf("r%d cached %v, want %v (capacity for 4 records)", i, got, want)
		}
	}
	if bytes, per := c.stats(); bytes != 4*size || per["s"] != 4 {
		t.Errorf("bytes %d (want %d), per space %v", bytes, 4*size, per)
	}
	// Offering a newer version replaces the cached one, even when full.
	newer := rec("r1")
	newer.Content = "changed"
	c.offer(newer)
	if got := c.peek("s", "r1"); got == nil || got.Content != "changed" {
		t.Errorf("r1 after offering a newer version: %+v", got)
	}
	hits, misses := c.hits.Load(), c.misses.Load()
	c.peek("s", "r2")
	c.peek("s", "nope")
	if c.hits.Load() != hits || c.misses.Load() != misses {
		t.Error("peek counted as a cache hit or miss")
	}
}

// TestHotCacheLRUAndImmutableEntries: get refreshes recency, put evicts the
// least recently used, and a record a reader already holds never changes
// when a newer version replaces it.
func TestHotCacheLRUAndImmutableEntries(t *testing.T) {
	rec := func(id, content string) *record {
		return &record{Memory: Memory{Space: "s", ID: id, Content: content}}
	}
	size := recordSize(rec("a", "v1"))
	c := newHotCache(3 * size)
	for _, id := range []string{"a", "b", "c"} {
		c.put(rec(id, "v1"))
	}
	held := c.get("s", "a") // a is now the most recent; b the least
	if held == nil || held.ID != "a" || held.Content != "v1" {
		t.Fatalf("get a: %+v", held)
	}
	c.put(rec("d", "v1"))
	for id, want := range map[string]bool{"a": true, "b": false, "c": true, "d": true} {
		if got := c.contains("s", id); got != want {
			t.Errorf("%s cached %v, want %v", id, got, want)
		}
	}
	if d := c.demotions.Load(); d != 1 {
		t.Errorf("demotions %d, want 1", d)
	}
	c.put(rec("a", "v2"))
	if held.Content != "v1" {
		t.Errorf("a reader's record changed to %q when a newer version was cached", held.Content)
	}
	if got := c.get("s", "a"); got == nil || got.Content != "v2" {
		t.Errorf("a after put of v2: %+v", got)
	}
	if bytes, per := c.stats(); bytes != 3*size || per["s"] != 3 {
		t.Errorf("bytes %d (want %d), per space %v", bytes, 3*size, per)
	}
	c.remove("s", "a")
	c.remove("s", "nope")
	if c.contains("s", "a") || c.get("s", "a") != nil {
		t.Error("a still cached after remove")
	}
	if bytes, per := c.stats(); bytes != 2*size || per["s"] != 2 {
		t.Errorf("after remove: bytes %d (want %d), per space %v", bytes, 2*size, per)
	}
}
