package loadtest

import (
	"context"
	"runtime"
	"testing"
	"time"
)

// These tests assert behaviour, never timing: the machines they run on are
// shared and noisy.

// attackFunc offers sc's load with do as every request and returns the
// result, judged.
func attackFunc(ctx context.Context, sc *Scenario, do func(context.Context) (int, int, error)) *Result {
	prepare := func(*workerRand) request { return request{op: 0, do: do} }
	res := &Result{Generator: GeneratorInfo{NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0)}}
	a := newAttacker(sc, []string{"op"}, prepare, 0, Config{})
	a.run(ctx)
	a.fill(res)
	return res
}

func noop(context.Context) (int, int, error) { return 0, 0, nil }

func TestAttackAccountsForEveryArrival(t *testing.T) {
	sc := aliveScenario(2000, 300*time.Millisecond, 64)
	sc.Warmup.Seconds = 0.1
	r := attackFunc(context.Background(), sc, noop)
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
	if r.Operations[0].Count != r.Completed {
		t.Errorf("operation count %d, completed %d", r.Operations[0].Count, r.Completed)
	}
}

// At max_workers the scheduler keeps scheduling (it never blocks on the
// pool): arrivals queue, are marked as having waited for a worker, and
// those queued past drop_after_ms are dropped. The server is to blame.
func TestAttackPoolAtCapQueuesAndBlamesServer(t *testing.T) {
	sc := aliveScenario(1000, 200*time.Millisecond, 2)
	sc.Generator.DropAfterMS = 30
	release := make(chan struct{})
	defer close(release)
	slow := func(ctx context.Context) (int, int, error) {
		select {
		case <-time.After(40 * time.Millisecond):
		case <-release:
		}
		return 0, 0, nil
	}
	r := attackFunc(context.Background(), sc, slow)
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
	sc := aliveScenario(100, 300*time.Millisecond, 4)
	sc.Generator.RequestTimeoutMS = 20
	hang := func(ctx context.Context) (int, int, error) {
		<-ctx.Done()
		return 0, 0, ctx.Err()
	}
	r := attackFunc(context.Background(), sc, hang)
	o := r.Operations[0]
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
	sc := aliveScenario(500, 30*time.Second, 16)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	r := attackFunc(ctx, sc, noop)
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
	sc := aliveScenario(200, 200*time.Millisecond, 16)
	sc.Session = SessionCfg{OpsPerSession: 3, ThinkTimeMS: 1, ThinkDistribution: "constant"}
	r := attackFunc(context.Background(), sc, noop)
	if r.Completed != 3*(r.Scheduled-r.Audit.DroppedSends) {
		t.Errorf("completed %d operations of %d sessions (%d dropped), want 3 each", r.Completed, r.Scheduled, r.Audit.DroppedSends)
	}
}

func TestQueueCapBounds(t *testing.T) {
	a := newAttacker(aliveScenario(10, time.Second, 8), []string{"op"}, nil, 0, Config{})
	if c := a.queueCap(); c != 1024 {
		t.Errorf("queue for 10/s: %d, want the floor 1024", c)
	}
	sc := aliveScenario(1e6, time.Second, 100)
	sc.Generator.DropAfterMS = 10_000
	if c := newAttacker(sc, []string{"op"}, nil, 0, Config{}).queueCap(); c != 1<<18 {
		t.Errorf("queue for 1e6/s × 10s: %d, want the cap %d", c, 1<<18)
	}
}
