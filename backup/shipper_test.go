package backup

import (
	"context"
	"sync"
	"testing"
	"time"
)

// rpoObserver records the RPO gauge and the error counter.
type rpoObserver struct {
	recObserver
	rpoMu sync.Mutex
	rpo   float64
}

func (r *rpoObserver) RPO(s float64) { r.rpoMu.Lock(); r.rpo = s; r.rpoMu.Unlock() }
func (r *rpoObserver) lastRPO() float64 {
	r.rpoMu.Lock()
	defer r.rpoMu.Unlock()
	return r.rpo
}
func (r *rpoObserver) errorCount(stage string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.errors[stage]
}

// TestShipperRPODuringHangingUpload: while a segment upload hangs (a target
// that stopped answering), engram_backup_rpo_seconds keeps growing from the
// commit time of the oldest unshipped change, and an upload that outlives
// the attempt timeout counts as a failed attempt.
func TestShipperRPODuringHangingUpload(t *testing.T) {
	for _, tc := range []struct {
		name    string
		timeout time.Duration
	}{{"hangs", time.Hour}, {"times out", 50 * time.Millisecond}} {
		t.Run(tc.name, func(t *testing.T) {
			// The clock starts at the wall clock's time, so that an RPO
			// computed from the wall clock would read about 0.
			clock := &testClock{t: time.Now()}
			eng := openEngine(t, t.TempDir(), clock.Now)
			defer eng.Close()
			st := newMemStore()
			base, err := New(st, Options{EngineOptions: testEngineOptions(nil), Now: clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			remember(t, eng, "default", "base", "in the snapshot")
			if _, err := base.SnapshotEngine(context.Background(), eng); err != nil {
				t.Fatal(err)
			}
			clock.Advance(time.Second)
			remember(t, eng, "default", "pending", "committed when the target stopped answering")
			obs := &rpoObserver{}
			bs := &blockingStore{ObjectStore: st, started: make(chan struct{})}
			a, err := New(bs, Options{EngineOptions: testEngineOptions(nil), Observer: obs, Now: clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				done <- a.NewShipper(eng, ShipperOptions{Interval: 10 * time.Millisecond, AttemptTimeout: tc.timeout,
					FinalFlush: -1, VerifyPoll: -1}).Run(ctx)
			}()
			defer func() { cancel(); <-done }()
			select {
			case <-bs.started:
			case <-time.After(10 * time.Second):
				t.Fatal("the shipper never started an upload")
			}
			const outage = 20 * time.Second
			clock.Advance(outage)
			wait := func(what string, ok func() bool) {
				t.Helper()
				for deadline := time.Now().Add(5 * time.Second); !ok(); time.Sleep(5 * time.Millisecond) {
					if time.Now().After(deadline) {
						t.Fatalf("%s: RPO %.1fs, %d log errors", what, obs.lastRPO(), obs.errorCount("log"))
					}
				}
			}
			wait("RPO during the outage", func() bool { return obs.lastRPO() >= outage.Seconds() })
			if tc.timeout < time.Minute {
				wait("errors after timed-out attempts", func() bool { return obs.errorCount("log") >= 1 })
			} else if n := obs.errorCount("log"); n != 0 {
				t.Fatalf("%d errors counted while the first attempt is still running", n)
			}
		})
	}
}
