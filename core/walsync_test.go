package core_test

import (
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/engram-ops/engram-ops/core"
)

// TestWALSyncStatsCountEveryDurableWrite: with sync durability every
// acknowledged write was made durable by one counted fsync, the buckets are
// cumulative, and the time is real.
func TestWALSyncStatsCountEveryDurableWrite(t *testing.T) {
	e := open(t, t.TempDir())
	defer e.Close()
	remember(t, e, "default", "creates the space") // a write of its own
	before := e.Metrics().WALSync
	const n = 200
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			remember(t, e, "default", "durable note "+strconv.Itoa(i))
		}()
	}
	wg.Wait()
	s := e.Metrics().WALSync
	if got := s.Writes - before.Writes; got != n {
		t.Fatalf("writes made durable: %d, want %d", got, n)
	}
	syncs := s.Count - before.Count
	if syncs == 0 || syncs > n {
		t.Fatalf("%d fsyncs for %d concurrent writes", syncs, n)
	}
	if len(s.Cumulative) != len(core.WALSyncBuckets) {
		t.Fatalf("%d buckets, want %d", len(s.Cumulative), len(core.WALSyncBuckets))
	}
	for i := 1; i < len(s.Cumulative); i++ {
		if s.Cumulative[i] < s.Cumulative[i-1] {
			t.Fatalf("buckets not cumulative: %v", s.Cumulative)
		}
	}
	if last := s.Cumulative[len(s.Cumulative)-1]; last > s.Count {
		t.Fatalf("largest bucket %d above the count %d", last, s.Count)
	}
	if s.Sum <= before.Sum || s.Sum > float64(syncs)*time.Minute.Seconds() {
		t.Fatalf("sum of fsync time %v s for %d fsyncs", s.Sum-before.Sum, syncs)
	}
}

// TestWALSyncStatsOfRelaxedDurability: relaxed durability syncs on a timer;
// those syncs are timed too, and make no write wait.
func TestWALSyncStatsOfRelaxedDurability(t *testing.T) {
	e := open(t, t.TempDir(), func(o *core.Options) { o.Durability = core.DurabilityRelaxed })
	defer e.Close()
	remember(t, e, "default", "relaxed note")
	deadline := time.Now().Add(5 * time.Second)
	for e.Metrics().WALSync.Count == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no timed sync within 5s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if w := e.Metrics().WALSync.Writes; w != 0 {
		t.Fatalf("relaxed writes counted as waiting for a sync: %d", w)
	}
}
