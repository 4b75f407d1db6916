package loadtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/engram-ops/engram-ops/ops/client"
)

// Config is one run.
type Config struct {
	Scenario *Scenario
	// Source is the scenario's TOML as given, kept in the result.
	Source []byte
	Client *client.Client
	Target TargetInfo
	// Version of the generator (engram-ops build), for the result.
	Version string
	// RateOverride and DurationOverride record --rate/--duration (already
	// applied to Scenario).
	RateOverride     float64
	DurationOverride time.Duration
	// Progress, if set, is called every ProgressInterval (default 1s)
	// while the load runs, from its own goroutine.
	Progress         func(Progress)
	ProgressInterval time.Duration
	// Logf, if set, receives setup messages.
	Logf func(format string, args ...any)
	// CPUIncludesServer marks the CPU figures as shared with an in-process
	// server.
	CPUIncludesServer bool
	// Grace bounds how long in-flight requests may finish after ctx is
	// cancelled (default 2s).
	Grace time.Duration
}

// Progress is a live snapshot of a run.
type Progress struct {
	Phase      string // warmup | measure
	Elapsed    time.Duration
	Total      time.Duration
	Sent       int64
	Completed  int64
	Errors     int64
	InFlight   int64
	Late       int64
	Dropped    int64
	Rate       float64 // completions per second over the last interval
	Target     float64 // the pattern's rate now
	WorstP99MS float64 // highest corrected p99 of any operation so far
}

// TargetError means the target could not be reached before the run.
type TargetError struct {
	URL string
	Err error
}

func (e *TargetError) Error() string {
	return fmt.Sprintf("target %s is unreachable: %v", e.URL, e.Err)
}

func (e *TargetError) Unwrap() error { return e.Err }

// job is one arrival handed to a worker.
type job struct {
	at       time.Duration // intended send time, from attacker.start
	measured bool          // inside the measured phase (not warm-up)
	// waited: at dispatch the pool was at max_workers and every worker
	// busy, so the arrival queued for one (the server was slow).
	waited bool
	// lateDispatch: the pacer itself woke too late for it.
	lateDispatch bool
}

// Run checks the target, sets the data set up, offers the scenario's load
// and returns the result. Cancelling ctx stops the load; the partial result
// is returned with Interrupted set and a nil error.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	sc := cfg.Scenario
	if cfg.Grace == 0 {
		cfg.Grace = 2 * time.Second
	}
	if cfg.ProgressInterval == 0 {
		cfg.ProgressInterval = time.Second
	}
	logf := cfg.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	err := cfg.Client.Alive(pctx)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &TargetError{URL: cfg.Client.BaseURL(), Err: err}
	}
	res := &Result{Schema: SchemaName, SchemaVersion: SchemaVersion, Target: cfg.Target}
	if res.Target.URL == "" {
		res.Target.URL = cfg.Client.BaseURL()
	}
	if h, err := cfg.Client.Health(ctx); err == nil {
		res.Target.Version = h.Version
	}
	host, _ := os.Hostname()
	res.Generator = GeneratorInfo{Version: cfg.Version, GoVersion: runtime.Version(), Hosts: []string{host},
		NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), OS: runtime.GOOS, Arch: runtime.GOARCH}
	res.Scenario = ScenarioInfo{Name: sc.Name, Description: sc.Description, Pattern: sc.Arrival.Pattern,
		Source: string(cfg.Source), RateOverride: cfg.RateOverride, DurationOverride: cfg.DurationOverride.Seconds()}

	logf("setting up: %d memories in %d space(s)", sc.Data.NumNodes, sc.Data.MemorySpaces)
	w, setup, err := setupWorkload(ctx, sc, cfg.Client, sc.Generator.Seed, logf)
	res.Setup = setup
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("interrupted during setup: %w", ctx.Err())
		}
		return nil, err
	}
	if setup.Preloaded > 0 {
		waited, pending, err := settleIndex(ctx, cfg.Client, setup.Spaces, sc.Preload.SettleTimeout(), logf)
		res.Setup.IndexSettleSeconds, res.Setup.IndexPending = waited.Seconds(), pending
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("interrupted while waiting for the index: %w", ctx.Err())
			}
			return nil, err
		}
	}
	a := newAttacker(sc, OpNames, w.prepare, w.k, cfg)
	a.run(ctx)
	a.fill(res)
	return res, nil
}

type attacker struct {
	sc  *Scenario
	cfg Config
	// names are the operations prepare can return (indexes), k the
	// ground truth's k.
	names   []string
	prepare func(*workerRand) request
	k       int

	recs    []*opRecorder
	warmRec []*opRecorder // discarded: warm-up figures are not reported
	lagMu   sync.Mutex
	lag     *hdr.Histogram

	lateAfter, dropAfter, timeout time.Duration

	scheduled, sent, completed, errs, inflight atomic.Int64
	late, lateNoWorker, lateDispatch, dropped  atomic.Int64
	exhausted                                  atomic.Int64
	// free is workers − busy workers − queued jobs: negative when arrivals
	// queue for want of a worker. Only the scheduler spawns, so workers
	// and peak are its own.
	free          atomic.Int64
	workers, peak int
	jobs          chan job
	stopping      atomic.Bool  // interrupted: workers discard queued jobs
	lastStart     atomic.Int64 // latest send or drop, ns from start
	wg            sync.WaitGroup
	slotsMu       sync.Mutex
	slots         []*reqSlot // one per worker, for the timeout sweeper

	start, measureStart, stop time.Time
	interrupted               bool
	cpu0, cpu1                cpuTimes
}

// Scheduling constants. Waits longer than coarseLead sleep on a Go timer
// (cancellable, but ~1 ms coarse when the process idles) to within
// coarseLead of the due time, then sleep precisely. The pacer wakes at
// most once per maxBatchDelay (a quarter of late_after_ms at most): at
// high rates one wake-up dispatches several arrivals, which roughly halves
// the context switches per request, at the price of that much dispatch
// delay; once per backlogBatch while arrivals queue for workers.
// initialWorkers are started before the first arrival.
const (
	coarseLead     = 2 * time.Millisecond
	maxBatchDelay  = 250 * time.Microsecond
	backlogBatch   = time.Millisecond
	initialWorkers = 8
)

func newAttacker(sc *Scenario, names []string, prepare func(*workerRand) request, k int, cfg Config) *attacker {
	a := &attacker{sc: sc, names: names, prepare: prepare, k: k, cfg: cfg, lag: newHist(),
		lateAfter: time.Duration(sc.Generator.LateAfterMS * float64(time.Millisecond)),
		dropAfter: time.Duration(sc.Generator.DropAfterMS * float64(time.Millisecond)),
		timeout:   time.Duration(sc.Generator.RequestTimeoutMS * float64(time.Millisecond))}
	for range names {
		a.recs = append(a.recs, newOpRecorder())
		a.warmRec = append(a.warmRec, newOpRecorder())
	}
	return a
}

// queueCap bounds the hand-off queue: a drop bound's worth of arrivals at
// the pattern's peak rate, plus the pool. Anything beyond could not start
// within drop_after_ms anyway.
func (a *attacker) queueCap() int {
	peak := NewPacer(a.sc.Arrival, 0).PeakRate()
	n := peak*a.dropAfter.Seconds() + float64(a.sc.Generator.MaxWorkers)
	return int(min(max(n, 1024), 1<<18))
}

// errRequestTimeout is the cause the sweeper cancels a request with.
var errRequestTimeout = errors.New("request_timeout_ms passed")

// reqSlot is one worker's request in flight. Requests do not get a timer
// each (context.WithTimeout): one sweeper goroutine cancels those that
// outlive request_timeout_ms.
type reqSlot struct {
	// began is when the request in flight started (ns from the attack's
	// start, never 0), 0 when idle, cancelled once the sweeper claimed it.
	began  atomic.Int64
	mu     sync.Mutex // guards cancel and ctx renewal against the sweeper
	ctx    context.Context
	cancel context.CancelCauseFunc
}

const cancelled = -1

func (a *attacker) newSlot(base context.Context) *reqSlot {
	s := &reqSlot{}
	s.ctx, s.cancel = context.WithCancelCause(base)
	a.slotsMu.Lock()
	a.slots = append(a.slots, s)
	a.slotsMu.Unlock()
	return s
}

// finish marks the slot idle and reports whether the sweeper cancelled the
// request; if so the slot gets a fresh context for the next one.
func (s *reqSlot) finish(base context.Context) bool {
	if s.began.Swap(0) != cancelled {
		return false
	}
	s.mu.Lock()
	s.cancel(nil)
	s.ctx, s.cancel = context.WithCancelCause(base)
	s.mu.Unlock()
	return true
}

// sweep cancels requests older than the timeout, every interval, until
// stop is closed.
func (a *attacker) sweep(stop <-chan struct{}) {
	interval := min(max(a.timeout/10, time.Millisecond), 100*time.Millisecond)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		now := int64(time.Since(a.start))
		a.slotsMu.Lock()
		slots := a.slots
		a.slotsMu.Unlock()
		for _, s := range slots {
			b := s.began.Load()
			if b <= 0 || now-b <= int64(a.timeout) {
				continue
			}
			// Claim and cancel under the lock: while began is still b,
			// s.cancel is request b's (it is renewed only under the lock).
			s.mu.Lock()
			if s.began.CompareAndSwap(b, cancelled) {
				s.cancel(errRequestTimeout)
			}
			s.mu.Unlock()
		}
	}
}

func (a *attacker) spawn(ctx context.Context) {
	a.workers++
	a.peak = max(a.peak, a.workers)
	a.free.Add(1)
	r := newWorkerRand(a.sc.Generator.Seed, a.workers)
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.worker(ctx, r)
	}()
}

// dispatch hands j to the pool without ever blocking the scheduler: an
// arrival that finds no free worker queues, and the pool grows (if below
// max_workers and grow allows) or, at the cap, the arrival is marked as
// having waited for a worker. Reports whether it started a worker.
func (a *attacker) dispatch(ctx context.Context, j job, grow bool) bool {
	spawned := false
	if a.free.Add(-1) < 0 {
		switch {
		case a.workers < a.sc.Generator.MaxWorkers:
			if grow {
				a.spawn(ctx)
				spawned = true
			}
		default:
			j.waited = true
			a.exhausted.Add(1)
		}
	}
	select {
	case a.jobs <- j:
	default:
		a.free.Add(1)
		if j.measured {
			a.dropped.Add(1)
		}
	}
	return spawned
}

func (a *attacker) run(ctx context.Context) {
	sc := a.sc
	warm, dur := sc.WarmupDuration(), sc.TotalDuration()
	pacer := NewPacer(sc.Arrival, sc.Generator.Seed)
	// Warm-up offers the pattern's initial rate; the pattern's clock
	// starts with the measured phase.
	warmPacer := NewPacer(Arrival{Pattern: "constant", Rate: pacer.RateAt(0)}, 0)

	// Requests outlive ctx by at most Grace, so an interrupted run still
	// records what was in flight.
	reqBase, reqCancel := context.WithCancel(context.WithoutCancel(ctx))
	defer reqCancel()
	a.jobs = make(chan job, a.queueCap())
	for range min(initialWorkers, sc.Generator.MaxWorkers) {
		a.spawn(reqBase)
	}

	a.cpu0 = readCPU()
	a.start = time.Now().Add(20 * time.Millisecond) // a lead, so the first sends are not late
	a.measureStart = a.start.Add(warm)
	end := warm + dur

	progDone := make(chan struct{})
	progStopped := make(chan struct{})
	go a.progress(progDone, progStopped, pacer)
	sweepStop := make(chan struct{})
	go a.sweep(sweepStop)
	defer close(sweepStop)

	inWarm := warm > 0
	next := func() (job, bool) {
		if inWarm {
			if at := warmPacer.Next(); at < warm {
				return job{at: at}, true
			}
			inWarm = false
		}
		at := warm + pacer.Next()
		return job{at: at, measured: true}, at < end
	}

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	done := ctx.Done()
	j, more := next()
	batch := min(a.lateAfter/4, maxBatchDelay)
	lastWake := -batch
loop:
	for more {
		now := time.Since(a.start)
		// With the pool at its cap and arrivals already queued for a
		// worker, a precise wake-up buys nothing: the next one queues too.
		// Then wake on Go's timer, which a busy process fires from its
		// scheduler without a sleep of its own, and batch backlogBatch.
		// (Below the cap, the next dispatch grows the pool: stay precise.)
		backlog := a.workers >= sc.Generator.MaxWorkers && a.free.Load() < 0
		gap := batch
		if backlog {
			gap = backlogBatch
		}
		if d := max(j.at, lastWake+gap) - now; d > 0 {
			if d > coarseLead || backlog {
				lead := coarseLead
				if d <= coarseLead {
					lead = 0
				}
				timer.Reset(d - lead)
				select {
				case <-timer.C:
				case <-done:
					a.interrupted = true
					break loop
				}
				if lead > 0 {
					continue
				}
			} else {
				preciseSleep(d)
			}
			now = time.Since(a.start)
		}
		select {
		case <-done:
			a.interrupted = true
			break loop
		default:
		}
		lastWake = now
		// Every arrival whose time has come goes out in this one wake-up.
		// Arrivals the pacer is late for grow the pool by one worker per
		// wake-up at most: a stalled scheduler's backlog is drained by the
		// warm pool instead of opening a connection per overdue arrival.
		spawned := false
		for more && j.at <= now {
			lag := now - j.at
			if j.measured {
				a.scheduled.Add(1)
			}
			if lag > a.dropAfter {
				// So far behind that the send is meaningless: drop it, count it.
				if j.measured {
					a.dropped.Add(1)
				}
			} else {
				j.lateDispatch = lag > a.lateAfter
				if a.dispatch(reqBase, j, !j.lateDispatch || !spawned) {
					spawned = true
				}
			}
			j, more = next()
		}
	}
	schedEnd := time.Now()
	if a.interrupted {
		a.stopping.Store(true)
		t := time.AfterFunc(a.cfg.Grace, reqCancel)
		defer t.Stop()
	}
	close(a.jobs)
	a.wg.Wait()
	a.cpu1 = readCPU()
	// Not clamped to the nominal end: a backlog of arrivals (within
	// drop_after_ms) is still sent after it, and the rate must count
	// that time. An interrupted run ends when it was interrupted.
	a.stop = schedEnd
	if last := a.start.Add(time.Duration(a.lastStart.Load())); !a.interrupted && last.After(a.stop) {
		a.stop = last
	}
	if a.interrupted && a.stop.Before(a.measureStart) {
		a.stop = a.measureStart
	}
	close(progDone)
	<-progStopped
}

func (a *attacker) worker(ctx context.Context, r *workerRand) {
	var think *time.Timer
	slot := a.newSlot(ctx)
	for j := range a.jobs {
		if !a.stopping.Load() && !a.serve(ctx, slot, j, r, &think) {
			return
		}
		a.free.Add(1)
	}
}

// noteStart records the latest send (or drop) for the run's end time.
func (a *attacker) noteStart(at time.Duration) {
	for {
		cur := a.lastStart.Load()
		if int64(at) <= cur || a.lastStart.CompareAndSwap(cur, int64(at)) {
			return
		}
	}
}

// serve sends j's session. It returns false when the requests were cut
// off by an interrupted run's grace period.
func (a *attacker) serve(ctx context.Context, slot *reqSlot, j job, r *workerRand, think **time.Timer) bool {
	sess := a.sc.Session
	intended := a.start.Add(j.at)
	for k := 0; k < sess.OpsPerSession; k++ {
		if k > 0 {
			d := time.Duration(sess.ThinkTimeMS * float64(time.Millisecond))
			if sess.ThinkDistribution == "exponential" {
				d = time.Duration(r.rng.ExpFloat64() * float64(d))
			}
			if d > 0 {
				if *think == nil {
					*think = time.NewTimer(d)
				} else {
					(*think).Reset(d)
				}
				select {
				case <-(*think).C:
				case <-ctx.Done():
					return false
				}
			}
			intended = time.Now()
		}
		if k == 0 {
			lag := time.Since(intended)
			a.noteStart(j.at + lag)
			if lag > a.dropAfter {
				// Queued for a worker past the drop bound.
				if j.measured {
					a.dropped.Add(1)
				}
				return true
			}
		}
		req := a.prepare(r)
		begin := time.Now()
		if k == 0 && j.measured {
			lag := begin.Sub(intended)
			a.lagMu.Lock()
			recordDur(a.lag, lag)
			a.lagMu.Unlock()
			if lag > a.lateAfter {
				// Exclusive causes: a full pool first, then a late pacer.
				a.late.Add(1)
				switch {
				case j.waited:
					a.lateNoWorker.Add(1)
				case j.lateDispatch:
					a.lateDispatch.Add(1)
				}
			}
		}
		a.sent.Add(1)
		a.inflight.Add(1)
		slot.began.Store(max(int64(begin.Sub(a.start)), 1))
		expected, found, err := req.do(slot.ctx)
		timedOut := slot.finish(ctx)
		done := time.Now()
		a.inflight.Add(-1)
		if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
			return false // cut off by an interrupted run's grace period: not a server error
		}
		kind := ""
		switch {
		case err != nil && timedOut:
			kind = "timeout"
		case err != nil:
			kind = errorKind(err)
		}
		recs := a.warmRec
		if j.measured {
			recs = a.recs
			a.completed.Add(1)
			if err != nil {
				a.errs.Add(1)
			}
		}
		recs[req.op].record(done.Sub(intended), done.Sub(begin), kind, expected, found)
	}
	return true
}

func (a *attacker) progress(done <-chan struct{}, stopped chan<- struct{}, p *Pacer) {
	defer close(stopped)
	if a.cfg.Progress == nil {
		return
	}
	t := time.NewTicker(a.cfg.ProgressInterval)
	defer t.Stop()
	var last int64
	lastAt := time.Now()
	warm, total := a.sc.WarmupDuration(), a.sc.TotalDuration()
	for {
		select {
		case <-done:
			return
		case now := <-t.C:
			c := a.completed.Load()
			pr := Progress{Phase: "measure", Total: total, Sent: a.sent.Load(), Completed: c, Errors: a.errs.Load(),
				InFlight: a.inflight.Load(), Late: a.late.Load(), Dropped: a.dropped.Load(),
				Rate: float64(c-last) / now.Sub(lastAt).Seconds()}
			last, lastAt = c, now
			if now.Before(a.measureStart) {
				pr.Phase, pr.Elapsed, pr.Total = "warmup", now.Sub(a.start), warm
				pr.Target = p.RateAt(0)
			} else {
				pr.Elapsed = now.Sub(a.measureStart)
				pr.Target = p.RateAt(pr.Elapsed)
			}
			for _, r := range a.recs {
				r.mu.Lock()
				if r.corrected.TotalCount() > 0 {
					pr.WorstP99MS = max(pr.WorstP99MS, float64(r.corrected.ValueAtQuantile(99))/1000)
				}
				r.mu.Unlock()
			}
			a.cfg.Progress(pr)
		}
	}
}

// fill writes the figures into res and judges who limited the run.
func (a *attacker) fill(res *Result) {
	sc := a.sc
	res.StartedAt = a.start.UTC()
	res.EndedAt = a.stop.UTC()
	res.WarmupSeconds = sc.WarmupDuration().Seconds()
	res.Interrupted = a.interrupted
	secs := a.stop.Sub(a.measureStart).Seconds()
	res.DurationSeconds = secs
	mult := float64(sc.Session.OpsPerSession)
	p := NewPacer(sc.Arrival, 0)
	res.RequestedRate = p.MeanRate(a.stop.Sub(a.measureStart)) * mult
	res.Scheduled = a.scheduled.Load()
	res.Completed = a.completed.Load()
	res.Errors = a.errs.Load()
	if secs > 0 {
		res.AchievedRate = float64(res.Completed) / secs
	}
	if res.Completed > 0 {
		res.ErrorRate = float64(res.Errors) / float64(res.Completed)
	}
	weights := sc.Operations.list()
	for i, name := range a.names {
		if (i >= len(weights) || weights[i] == 0) && a.recs[i].corrected.TotalCount() == 0 {
			continue
		}
		res.Operations = append(res.Operations, a.recs[i].result(name, secs, a.k))
	}
	au := &res.Audit
	au.LateAfterMS, au.DropAfterMS = sc.Generator.LateAfterMS, sc.Generator.DropAfterMS
	au.LateSends, au.LateNoWorker, au.DroppedSends = a.late.Load(), a.lateNoWorker.Load(), a.dropped.Load()
	au.LateDispatch = a.lateDispatch.Load()
	if res.Scheduled > 0 {
		au.LateFraction = float64(au.LateSends) / float64(res.Scheduled)
	}
	au.MaxWorkers, au.PeakWorkers, au.PoolExhausted = sc.Generator.MaxWorkers, a.peak, a.exhausted.Load()
	a.lagMu.Lock()
	au.SchedulingLag = summarize(a.lag)
	a.lagMu.Unlock()
	au.CPUUserSec = a.cpu1.user - a.cpu0.user
	au.CPUSystemSec = a.cpu1.sys - a.cpu0.sys
	if wall := a.stop.Sub(a.start).Seconds(); wall > 0 {
		au.CPUCores = (au.CPUUserSec + au.CPUSystemSec) / wall
	}
	if a.cpu0.wait >= 0 && a.cpu1.wait >= 0 {
		w := a.cpu1.wait - a.cpu0.wait
		au.CPUWaitSec = &w
	}
	au.CPUIncludesServer = a.cfg.CPUIncludesServer
	judge(res)
}
