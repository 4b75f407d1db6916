package core_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/engram-ops/engram-ops/core"
)

// crashAfterLoad runs concurrent remembers and forgets against an engine on
// a crashable in-memory FS, then takes the state a power loss would leave
// at that moment (only synced data survives) and reopens it. It returns the
// writes acknowledged before the crash, the forgets in flight at the crash
// (which may or may not have happened), and the reopened engine.
func crashAfterLoad(t *testing.T, d core.Durability) (remembered, forgotten []string, inFlight map[string]bool, after *core.Engine) {
	t.Helper()
	dir := t.TempDir()
	mem := vfs.NewCrashableMem()
	opts := core.Options{DefaultDimension: 64, Durability: d, FS: mem, Tiers: core.TierOptions{SweepInterval: -1}}
	e, err := core.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var acked, ackedForgets []string // appended by the writers
	forgetting := map[string]bool{}  // forgets started, acknowledged or not
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				id := fmt.Sprintf("m-%d-%d", w, i)
				if _, err := e.Remember(ctx, "default", core.RememberInput{ID: id, Content: "crash test memory " + id}); err != nil {
					return
				}
				mu.Lock()
				acked = append(acked, id)
				mu.Unlock()
				if i%3 == 0 {
					mu.Lock()
					forgetting[id] = true
					mu.Unlock()
					if _, err := e.Forget(ctx, "default", id); err != nil {
						return
					}
					mu.Lock()
					ackedForgets = append(ackedForgets, id)
					mu.Unlock()
				}
			}
		}()
	}
	// Enough load to mean something, however busy the machine is.
	deadline := time.Now().Add(10 * time.Second)
	for {
		time.Sleep(100 * time.Millisecond)
		mu.Lock()
		n, f := len(acked), len(ackedForgets)
		mu.Unlock()
		if n >= 200 && f >= 50 || time.Now().After(deadline) {
			break
		}
	}
	// Everything acknowledged so far must survive; the clone blocks
	// writers while it copies, so later acknowledgements may or may not.
	mu.Lock()
	remembered, forgotten = slices.Clone(acked), slices.Clone(ackedForgets)
	inFlight = map[string]bool{}
	for id := range forgetting {
		inFlight[id] = true
	}
	for _, id := range forgotten {
		delete(inFlight, id)
	}
	mu.Unlock()
	crashed := mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
	stop()
	wg.Wait()
	_ = e.Close()
	opts.FS = crashed
	after, err = core.Open(dir, opts)
	if err != nil {
		t.Fatalf("reopen after the crash: %v", err)
	}
	t.Cleanup(func() { after.Close() })
	return remembered, forgotten, inFlight, after
}

// TestAcknowledgedWritesSurvivePowerLoss is the durability proof a kill -9
// cannot give: the crashed state keeps only what reached a completed fsync.
func TestAcknowledgedWritesSurvivePowerLoss(t *testing.T) {
	remembered, forgotten, inFlight, e := crashAfterLoad(t, core.DurabilitySync)
	gone := map[string]bool{}
	for _, id := range forgotten {
		gone[id] = true
	}
	if len(remembered) < 50 || len(forgotten) < 10 {
		t.Fatalf("too little load to mean anything: %d remembered, %d forgotten", len(remembered), len(forgotten))
	}
	for _, id := range remembered {
		_, err := e.Get(ctx, "default", id, false)
		switch {
		case gone[id] && core.CodeOf(err) != "MEMORY_NOT_FOUND":
			t.Fatalf("acknowledged forget of %s lost in the crash (get: %v)", id, err)
		case !gone[id] && !inFlight[id] && err != nil:
			t.Fatalf("acknowledged remember of %s lost in the crash: %v", id, err)
		}
	}
	t.Logf("%d acknowledged remembers and %d forgets survived", len(remembered), len(forgotten))
}

// The same crash with relaxed durability loses acknowledged writes: the
// test above can tell synced from unsynced.
func TestRelaxedDurabilityLosesWritesInPowerLoss(t *testing.T) {
	remembered, _, inFlight, e := crashAfterLoad(t, core.DurabilityRelaxed)
	lost := 0
	for _, id := range remembered {
		if inFlight[id] {
			continue
		}
		if _, err := e.Get(ctx, "default", id, false); err != nil {
			lost++
		}
	}
	if lost == 0 {
		t.Fatalf("all %d relaxed writes survived a crash 300 ms in; the crash clone is not dropping unsynced data", len(remembered))
	}
	t.Logf("relaxed: %d of %d acknowledged remembers lost", lost, len(remembered))
}
