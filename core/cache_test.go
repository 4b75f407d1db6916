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
