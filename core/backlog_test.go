package core

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func openBacklogTest(t *testing.T, maxPending int, wait time.Duration) *Engine {
	t.Helper()
	o := DefaultOptions()
	o.DefaultDimension = 64
	o.Tiers.SweepInterval = 0
	o.Durability = DurabilityRelaxed
	o.Index.ExactThreshold = 1 // the index, not the exact scan of small spaces
	o.Index.MaxPending, o.Index.PendingWait = maxPending, wait
	e, err := Open(t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func pendingOf(e *Engine, space string) int {
	sp := e.lookupSpace(space)
	sp.mu.RLock()
	defer sp.mu.RUnlock()
	return len(sp.pending)
}

// TestBacklogBoundUnderWriteStorm: however many writers, single or batched,
// the backlog a recall scans never exceeds Index.MaxPending, and every
// write is acknowledged and found.
func TestBacklogBoundUnderWriteStorm(t *testing.T) {
	const bound, writers, each, batch = 40, 8, 10, 10
	e := openBacklogTest(t, bound, time.Minute)
	ctx := context.Background()
	if _, err := e.Remember(ctx, "storm", RememberInput{Content: "seed"}); err != nil {
		t.Fatal(err)
	}
	var worst atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if n := int64(pendingOf(e, "storm")); n > worst.Load() {
				worst.Store(n)
			}
			select {
			case <-stop:
				return
			default:
			}
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				var err error
				if i%2 == 0 {
					_, err = e.Remember(ctx, "storm", RememberInput{ID: fmt.Sprintf("w%d-%d", w, i), Content: fmt.Sprintf("writer %d fact %d", w, i)})
				} else {
					b := BatchInput{}
					for j := range batch {
						b.Memories = append(b.Memories, RememberInput{ID: fmt.Sprintf("w%d-%d-%d", w, i, j), Content: fmt.Sprintf("writer %d batch %d fact %d", w, i, j)})
					}
					_, err = e.Batch(ctx, "storm", b)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-sampled
	close(errs)
	for err := range errs {
		t.Fatalf("write failed under the bound: %v", err)
	}
	if w := worst.Load(); w > bound {
		t.Errorf("backlog reached %d, over index.max_pending %d", w, bound)
	}
	st := e.backlogStats()
	if st.Waits == 0 {
		t.Errorf("no write waited for the indexer: the storm did not reach the bound (worst backlog %d)", worst.Load())
	}
	want := 1 + writers*(each/2) + writers*(each/2)*batch
	if got := e.lookupSpace("storm").info; e.lookupSpace("storm").counts[TierWarm] != int64(want) {
		t.Errorf("space %s holds %d memories, want %d", got.Name, e.lookupSpace("storm").counts[TierWarm], want)
	}
	t.Logf("worst backlog %d of %d; %d writes waited %.2fs in all", worst.Load(), bound, st.Waits, st.WaitSeconds)
}

// TestBacklogRefusal: with the indexer stalled, a write that finds no room
// waits Index.PendingWait and is refused with INDEX_BACKLOG; once the
// backlog is twice the bound a write is refused at once; a cancelled write
// returns its context's error; and writes flow again once the indexer
// runs.
func TestBacklogRefusal(t *testing.T) {
	const bound = 10
	e := openBacklogTest(t, bound, 100*time.Millisecond)
	ctx := context.Background()
	if _, err := e.Remember(ctx, "storm", RememberInput{Content: "seed"}); err != nil {
		t.Fatal(err)
	}
	if err := e.WaitIndexed(ctx); err != nil {
		t.Fatal(err)
	}
	sp := e.lookupSpace("storm")
	sp.idxMu.Lock() // stall the indexer
	for i := range bound {
		if _, err := e.Remember(ctx, "storm", RememberInput{Content: fmt.Sprintf("fills %d", i)}); err != nil {
			sp.idxMu.Unlock()
			t.Fatalf("write %d under the bound: %v", i, err)
		}
	}
	isBacklog := func(err error) bool {
		var ee *Error
		return errors.As(err, &ee) && ee.Code == "INDEX_BACKLOG" && ee.Kind == KindUnavailable
	}
	start := time.Now()
	_, err := e.Remember(ctx, "storm", RememberInput{Content: "one too many"})
	if waited := time.Since(start); !isBacklog(err) || waited < 100*time.Millisecond {
		t.Errorf("write past the bound: err %v after %v, want INDEX_BACKLOG after waiting 100ms", err, waited)
	}
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	_, err = e.Remember(cctx, "storm", RememberInput{Content: "cancelled"})
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("cancelled write: %v, want its context's deadline", err)
	}
	// A batch larger than the bound is admitted alone, into an empty
	// backlog only: here it waits and is refused.
	big := BatchInput{}
	for i := range bound + 5 {
		big.Memories = append(big.Memories, RememberInput{Content: fmt.Sprintf("big %d", i)})
	}
	if _, err := e.Batch(ctx, "storm", big); !isBacklog(err) {
		t.Errorf("batch past the bound: %v, want INDEX_BACKLOG", err)
	}
	// Twice the bound (a rebuild's backlog): refused without waiting.
	sp.mu.Lock()
	sp.reserved += bound
	sp.mu.Unlock()
	start = time.Now()
	_, err = e.Remember(ctx, "storm", RememberInput{Content: "refused at once"})
	if waited := time.Since(start); !isBacklog(err) || waited > 50*time.Millisecond {
		t.Errorf("write at twice the bound: err %v after %v, want INDEX_BACKLOG at once", err, waited)
	}
	sp.mu.Lock()
	sp.reserved -= bound
	sp.mu.Unlock()
	if st := e.backlogStats(); st.Refused != 3 || st.Limit != bound {
		t.Errorf("stats %+v, want 3 refused, limit %d", st, bound)
	}
	// A waiting write proceeds as soon as the indexer makes room.
	done := make(chan error, 1)
	go func() {
		_, err := e.Remember(ctx, "storm", RememberInput{Content: "waits then lands"})
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	sp.idxMu.Unlock()
	if err := <-done; err != nil {
		t.Errorf("write waiting while the indexer resumed: %v", err)
	}
	if err := e.WaitIndexed(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Batch(ctx, "storm", big); err != nil {
		t.Errorf("batch larger than the bound into an empty backlog: %v", err)
	}
}

// TestDeferredIndexBulkLoad: with Index.Defer (a bulk load) the backlog
// bound does not apply and nothing is inserted while writes come in;
// recall finds the unindexed memories by its exact scan, and BuildIndex
// inserts every one, after which recall finds them through the index and
// a reopened engine has nothing left to index.
func TestDeferredIndexBulkLoad(t *testing.T) {
	const bound, n = 10, 300
	o := DefaultOptions()
	o.DefaultDimension = 64
	o.Tiers.SweepInterval = 0
	o.Durability = DurabilityRelaxed
	o.Index.ExactThreshold = 1
	o.Index.MaxPending, o.Index.PendingWait = bound, time.Millisecond
	o.Index.Defer = true
	dir := t.TempDir()
	e, err := Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx := context.Background()
	for b := range 3 { // after the first, each batch finds the backlog past the bound
		var in BatchInput
		for i := b * n / 3; i < (b+1)*n/3; i++ {
			in.Memories = append(in.Memories, RememberInput{ID: fmt.Sprintf("m%d", i), Content: fmt.Sprintf("bulk memory number %d", i)})
		}
		if _, err := e.Batch(ctx, "bulk", in); err != nil {
			t.Fatalf("batch %d with %d memories pending, index.max_pending %d: %v", b, pendingOf(e, "bulk"), bound, err)
		}
	}
	time.Sleep(300 * time.Millisecond) // the indexer's idle wake-up
	if st, _ := e.Space("bulk"); st.IndexPending != n || e.lookupSpace("bulk").index.Len() != 0 {
		t.Fatalf("%d pending, %d indexed; want all %d pending: insertion is deferred", st.IndexPending, e.lookupSpace("bulk").index.Len(), n)
	}
	// Replaced and forgotten before their vectors were computed.
	if _, err := e.Batch(ctx, "bulk", BatchInput{Memories: []RememberInput{{ID: "m5", Content: "replaced content of five"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Forget(ctx, "bulk", "m7"); err != nil {
		t.Fatal(err)
	}
	find := func(what, text, id string) {
		t.Helper()
		res, err := e.Recall(ctx, "bulk", RecallQuery{Text: text, MaxResults: 1, NoReinforce: true})
		if err != nil || len(res.Vivid) == 0 || res.Vivid[0].Memory.ID != id {
			t.Fatalf("%s: recall %q: %+v %v", what, text, res.Vivid, err)
		}
	}
	find("before the build", "bulk memory number 123", "m123")
	if built, err := e.BuildIndex(ctx); err != nil || built != n-1 {
		t.Fatalf("BuildIndex inserted %d of %d: %v", built, n-1, err)
	}
	if got := pendingOf(e, "bulk"); got != 0 || e.lookupSpace("bulk").index.Len() != n-1 {
		t.Fatalf("after the build %d pending, %d indexed; want 0 and %d", got, e.lookupSpace("bulk").index.Len(), n-1)
	}
	find("after the build", "bulk memory number 123", "m123")
	find("after the build", "replaced content of five", "m5")
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	o.Index.Defer = false
	e2, err := Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Close()
	if got := pendingOf(e2, "bulk"); got != 0 || e2.lookupSpace("bulk").index.Len() != n-1 {
		t.Fatalf("reopened: %d pending, %d in the saved index; want 0 and %d", got, e2.lookupSpace("bulk").index.Len(), n-1)
	}
}

// TestBacklogAdmitsInArrivalOrder: writes waiting for room are admitted in
// the order they arrived, one per vector of room the indexer makes, so a
// write storm neither starves an early writer nor wakes every waiter for
// each slot.
func TestBacklogAdmitsInArrivalOrder(t *testing.T) {
	const bound, waiting = 4, 6
	e := openBacklogTest(t, bound, time.Minute)
	ctx := context.Background()
	if _, err := e.Remember(ctx, "fifo", RememberInput{Content: "seed"}); err != nil {
		t.Fatal(err)
	}
	if err := e.WaitIndexed(ctx); err != nil {
		t.Fatal(err)
	}
	sp := e.lookupSpace("fifo")
	sp.idxMu.Lock() // stall the indexer: the test makes room itself
	defer sp.idxMu.Unlock()
	for i := range bound {
		if _, err := e.Remember(ctx, "fifo", RememberInput{Content: fmt.Sprintf("fills %d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	landed := make(chan int, waiting)
	for i := range waiting {
		go func() {
			if _, err := e.Remember(ctx, "fifo", RememberInput{Content: fmt.Sprintf("waiter %d", i)}); err != nil {
				t.Errorf("waiter %d: %v", i, err)
			}
			landed <- i
		}()
		time.Sleep(10 * time.Millisecond) // queued before the next arrives
	}
	// makeRoom stands in for one index insert: one pending vector leaves
	// the backlog.
	makeRoom := func() {
		sp.mu.Lock()
		for s := range sp.pending {
			delete(sp.pending, s)
			break
		}
		sp.signalRoom(bound)
		sp.mu.Unlock()
	}
	for want := range waiting {
		makeRoom()
		select {
		case got := <-landed:
			if got != want {
				t.Fatalf("room for one admitted waiter %d, want %d (arrival order)", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("room for one admitted nobody (waiter %d waits)", want)
		}
		select {
		case got := <-landed:
			t.Fatalf("room for one admitted a second waiter, %d", got)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
