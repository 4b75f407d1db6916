package attack

import (
	"context"
	"runtime"
	"testing"
	"time"
)

// These tests assert behaviour, never timing: the machines they run on are
// shared and noisy.

// testConfig is a constant rate for d with up to workers workers, and the
// defaults of a scenario's [generator].
func testConfig(rate float64, d time.Duration, workers int) Config {
	return Config{Pacer: NewConstant(rate), Duration: d, Ops: []string{"op"}, MaxWorkers: workers,
		LateAfter: time.Millisecond, DropAfter: time.Second, RequestTimeout: 10 * time.Second, Seed: 1}
}

// attackFunc offers cfg's load with do as every request and returns the
// report, judged.
func attackFunc(ctx context.Context, cfg Config, do RequestFunc) *Report {
	cfg.Targeter = Repeat(do)
	r, err := Attack(ctx, cfg)
	if err != nil {
		panic(err)
	}
	secs := r.MeasuredSeconds()
	Judge(&r.Audit, RunFacts{Scheduled: r.Scheduled, GOMAXPROCS: runtime.GOMAXPROCS(0), NumCPU: runtime.NumCPU(),
		WallSeconds: r.Stop.Sub(r.Start).Seconds(), Interrupted: r.Interrupted,
		RequestedRate: r.RequestedRate, AchievedRate: float64(r.Completed) / secs})
	return r
}

func noop(context.Context) (Outcome, error) { return Outcome{}, nil }

func TestAttackAccountsForEveryArrival(t *testing.T) {
	cfg := testConfig(2000, 300*time.Millisecond, 64)
	cfg.Warmup = 100 * time.Millisecond
	r := attackFunc(context.Background(), cfg, noop)
	if r.Scheduled != 600 {
		t.Errorf("scheduled %d arrivals in 300ms at 2000/s, want 600", r.Scheduled)
	}
	if r.Completed+r.Audit.DroppedSends != r.Scheduled || r.Errors != 0 {
		t.Errorf("completed %d + dropped %d != scheduled %d (errors %d)", r.Completed, r.Audit.DroppedSends, r.Scheduled, r.Errors)
	}
	if got := r.Audit.SchedulingLag.Count; got != r.Completed {
		t.Errorf("scheduling lag recorded for %d sends, want one per measured send (%d)", got, r.Completed)
	}
	if r.Audit.PeakWorkers < 1 || r.Audit.PeakWorkers > 64 {
		t.Errorf("peak workers %d outside 1..max_workers", r.Audit.PeakWorkers)
	}
	if r.Ops[0].Count != r.Completed {
		t.Errorf("operation count %d, completed %d", r.Ops[0].Count, r.Completed)
	}
}

// At max_workers the scheduler keeps scheduling (it never blocks on the
// pool): arrivals queue, are marked as having waited for a worker, and
// those queued past drop_after_ms are dropped. The server is to blame.
func TestAttackPoolAtCapQueuesAndBlamesServer(t *testing.T) {
	cfg := testConfig(1000, 200*time.Millisecond, 2)
	cfg.DropAfter = 30 * time.Millisecond
	release := make(chan struct{})
	defer close(release)
	slow := func(ctx context.Context) (Outcome, error) {
		select {
		case <-time.After(40 * time.Millisecond):
		case <-release:
		}
		return Outcome{}, nil
	}
	r := attackFunc(context.Background(), cfg, slow)
	au := r.Audit
	if r.Scheduled != 200 {
		t.Errorf("scheduled %d, want all 200 arrivals", r.Scheduled)
	}
	if au.PeakWorkers != 2 || au.PoolExhausted == 0 {
		t.Errorf("peak %d workers, pool exhausted %d times: want the cap of 2 reached", au.PeakWorkers, au.PoolExhausted)
	}
	if au.DroppedSends == 0 || r.Completed+au.DroppedSends != r.Scheduled {
		t.Errorf("dropped %d, completed %d of %d scheduled", au.DroppedSends, r.Completed, r.Scheduled)
	}
	if au.LimitedBy != LimitedByServer {
		t.Errorf("limited_by %q, want server; findings %q", au.LimitedBy, au.Findings)
	}
}

// The sweeper cancels requests that outlive request_timeout_ms, counts
// them as timeouts, and the worker's next request gets a live context.
func TestAttackRequestTimeout(t *testing.T) {
	cfg := testConfig(100, 300*time.Millisecond, 4)
	cfg.RequestTimeout = 20 * time.Millisecond
	hang := func(ctx context.Context) (Outcome, error) {
		<-ctx.Done()
		return Outcome{}, ctx.Err()
	}
	r := attackFunc(context.Background(), cfg, hang)
	o := r.Ops[0]
	if o.Count == 0 || o.ErrorsByKind["timeout"] != o.Count {
		t.Fatalf("errors by kind %v of %d requests, want every one a timeout", o.ErrorsByKind, o.Count)
	}
	// A timeout never fires early; a request given a stale, already
	// cancelled context would fail at once.
	if min := o.Uncorrected.MinMS; min < 20 {
		t.Errorf("shortest timed-out request %.2fms, want >= request_timeout_ms (20)", min)
	}
}

func TestAttackInterrupt(t *testing.T) {
	cfg := testConfig(500, 30*time.Second, 16)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	r := attackFunc(ctx, cfg, noop)
	if !r.Interrupted {
		t.Fatal("not marked interrupted")
	}
	if r.Scheduled == 0 || r.Scheduled >= 15000 {
		t.Errorf("scheduled %d of 15000: want a partial run", r.Scheduled)
	}
	if r.Completed+r.Audit.DroppedSends > r.Scheduled {
		t.Errorf("completed %d + dropped %d > scheduled %d", r.Completed, r.Audit.DroppedSends, r.Scheduled)
	}
}

// Sessions: every arrival is ops_per_session requests, and the think-time
// timer is reused across them.
func TestAttackSessions(t *testing.T) {
	cfg := testConfig(200, 200*time.Millisecond, 16)
	cfg.Session = Session{OpsPerSession: 3, Think: time.Millisecond}
	r := attackFunc(context.Background(), cfg, noop)
	if r.Completed != 3*(r.Scheduled-r.Audit.DroppedSends) {
		t.Errorf("completed %d operations of %d sessions (%d dropped), want 3 each", r.Completed, r.Scheduled, r.Audit.DroppedSends)
	}
}

func TestQueueCapBounds(t *testing.T) {
	a := newAttacker(testConfig(10, time.Second, 8))
	if c := a.queueCap(); c != 1024 {
		t.Errorf("queue for 10/s: %d, want the floor 1024", c)
	}
	cfg := testConfig(1e6, time.Second, 100)
	cfg.DropAfter = 10 * time.Second
	if c := newAttacker(cfg).queueCap(); c != 1<<18 {
		t.Errorf("queue for 1e6/s × 10s: %d, want the cap %d", c, 1<<18)
	}
}
