package core

import (
	"math/rand/v2"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// cacheRec is a record of about 1,265 encoded bytes, so three fill a 4 KiB
// chunk and a fourth does not fit.
func cacheRec(slot uint32, content string) *record {
	return &record{slot: slot, Memory: Memory{Space: "s", ID: "m" + strconv.Itoa(int(slot)),
		Content: content + strings.Repeat("x", max(1200-len(content), 0))}}
}

func cached(c *hotCache, slots ...uint32) []uint32 {
	var out []uint32
	for _, s := range slots {
		if c.contains(1, s) {
			out = append(out, s)
		}
	}
	return out
}

func TestHotCacheRoundTripsEveryField(t *testing.T) {
	v, imp := -0.25, 0.9
	want := record{slot: 7, Memory: Memory{Space: "s", ID: "full", Content: "hello", Confidence: 0.8, Type: Episodic,
		Tags: []string{"a", "b"}, Metadata: map[string]string{"k": "v", "": "empty key"},
		Episode:    &Episode{When: time.Unix(100, 5).UTC(), What: "w", Where: "x", Who: []string{"p"}, Why: "y", How: "z", EmotionalValence: &v, Importance: &imp},
		ObservedAt: time.Unix(1, 0).UTC(), StoredAt: time.Unix(2, 0).UTC(), LastAccess: time.Unix(3, 0).UTC(),
		AccessCount: 4, Stability: time.Hour, Tier: TierWarm, Seq: 99}}
	c := newHotCache(64 << 10)
	c.put(1, &want)
	var got record
	if !c.get(1, "s", 7, &got) {
		t.Fatal("not cached")
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("cached record differs:\n got %+v\nwant %+v", got, want)
	}
	if c.get(2, "s", 7, &got) || c.get(1, "s", 8, &got) {
		t.Error("a record was found under another space number or slot")
	}
	if c.hits.Load() != 1 || c.misses.Load() != 2 || c.promotions.Load() != 1 {
		t.Errorf("hits %d misses %d promotions %d, want 1 2 1", c.hits.Load(), c.misses.Load(), c.promotions.Load())
	}
}

func TestHotCacheOfferFillsOnlySpareRoom(t *testing.T) {
	c := newHotCache(16 << 10) // four 4 KiB chunks, three records each
	c.put(1, cacheRec(100, "recalled"))
	for s := range uint32(20) {
		c.offer(1, cacheRec(s, ""), nil)
	}
	if !c.contains(1, 100) {
		t.Fatal("a new memory pushed a recalled one out of the hot tier")
	}
	all := make([]uint32, 20)
	for i := range all {
		all[i] = uint32(i)
	}
	if got, want := cached(c, all...), all[:11]; !reflect.DeepEqual(got, want) {
		t.Errorf("offered records cached %v, want %v (room for 12 records in all)", got, want)
	}
	if bytes, per := c.stats(); bytes != 16<<10 || per[1] != 12 {
		t.Errorf("bytes %d (want %d), per space %v", bytes, 16<<10, per)
	}
	hits, misses := c.hits.Load(), c.misses.Load()
	c.peek(1, "s", 2)
	c.peek(1, "s", 99)
	if c.hits.Load() != hits || c.misses.Load() != misses {
		t.Error("peek counted as a cache hit or miss")
	}
	if c.demotions.Load() != 0 {
		t.Errorf("offers demoted %d records", c.demotions.Load())
	}
}

// TestHotCacheSecondChanceAndStableReads: when the oldest chunk goes, the
// records read since they were placed move on and the rest are demoted;
// a record a reader already holds never changes, whatever is evicted or
// written after it.
func TestHotCacheSecondChanceAndStableReads(t *testing.T) {
	c := newHotCache(16 << 10)
	for s := range uint32(12) { // chunks {0,1,2} {3,4,5} {6,7,8} {9,10,11}
		c.put(1, cacheRec(s, "v1 of "+strconv.Itoa(int(s))))
	}
	held := c.peek(1, "s", 1)
	var read record
	if !c.get(1, "s", 0, &read) {
		t.Fatal("slot 0 not cached")
	}
	c.put(1, cacheRec(12, ""))
	want := []uint32{0, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	if got := cached(c, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12); !reflect.DeepEqual(got, want) {
		t.Errorf("cached %v, want %v", got, want)
	}
	if d := c.demotions.Load(); d != 2 {
		t.Errorf("demotions %d, want 2", d)
	}
	// Fill the tier twice over so every chunk, including the one held
	// records point into, has been retired.
	for s := uint32(13); s < 40; s++ {
		c.put(1, cacheRec(s, "v2"))
	}
	runtime.GC()
	for s := uint32(40); s < 60; s++ {
		c.put(1, cacheRec(s, "v3"))
	}
	if !strings.HasPrefix(held.Content, "v1 of 1x") || held.ID != "m1" {
		t.Errorf("a held record changed: id %q content %.20q", held.ID, held.Content)
	}
	if !strings.HasPrefix(read.Content, "v1 of 0x") || read.ID != "m0" {
		t.Errorf("a read record changed: id %q content %.20q", read.ID, read.Content)
	}
	if bytes, per := c.stats(); bytes > 16<<10 || per[1] != int64(len(c.index)) || per[1] == 0 {
		t.Errorf("bytes %d (capacity %d), per space %v, entries %d", bytes, 16<<10, per, len(c.index))
	}
	c.remove(1, 59)
	c.remove(1, 1000)
	if c.contains(1, 59) || c.get(1, "s", 59, &read) {
		t.Error("slot 59 still cached after remove")
	}
	if _, per := c.stats(); per[1] != int64(len(c.index)) {
		t.Errorf("per space %v after remove, entries %d", per, len(c.index))
	}
}

func TestHotCacheTooSmallCachesNothing(t *testing.T) {
	c := newHotCache(1)
	c.put(1, cacheRec(1, ""))
	c.offer(1, cacheRec(2, ""), nil)
	if got := cached(c, 1, 2); len(got) != 0 {
		t.Errorf("cached %v in a 1-byte tier", got)
	}
	if bytes, _ := c.stats(); bytes != 0 {
		t.Errorf("bytes %d", bytes)
	}
	big := newHotCache(64 << 10) // a record larger than a chunk gets its own
	r := cacheRec(1, strings.Repeat("y", 10<<10))
	c.put(1, r)
	big.put(1, r)
	var got record
	if !big.get(1, "s", 1, &got) || got.Content != r.Content {
		t.Error("a record larger than a chunk was not cached")
	}
}

// TestHotCacheConcurrentChurn reads, writes and removes from many
// goroutines in a tier small enough to evict all the time; every read must
// see exactly what was written for its slot (run it with -race).
func TestHotCacheConcurrentChurn(t *testing.T) {
	c := newHotCache(32 << 10)
	content := func(s uint32) string { return strings.Repeat(strconv.Itoa(int(s))+";", int(s%50)+1) }
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			var r record
			var held []string
			for range 20000 {
				s := rng.Uint32N(300)
				switch rng.IntN(10) {
				case 0:
					c.put(1, &record{slot: s, Memory: Memory{ID: "m" + strconv.Itoa(int(s)), Content: content(s)}})
				case 1:
					c.remove(1, s)
				default:
					if c.get(1, "s", s, &r) {
						if r.Content != content(s) || r.ID != "m"+strconv.Itoa(int(s)) || r.slot != s {
							t.Errorf("slot %d read back id %q content %.30q", s, r.ID, r.Content)
							return
						}
						if len(held) < 100 {
							held = append(held, r.Content)
						}
					}
				}
			}
			for _, h := range held {
				n, _, _ := strings.Cut(h, ";")
				s, _ := strconv.Atoi(n)
				if h != content(uint32(s)) {
					t.Errorf("a held read of slot %d changed", s)
				}
			}
		}()
	}
	wg.Wait()
	if bytes, per := c.stats(); bytes > 32<<10 || per[1] != int64(len(c.index)) {
		t.Errorf("bytes %d, per space %v, entries %d", bytes, per, len(c.index))
	}
}
