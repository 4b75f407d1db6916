package attack

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// Outcome is what a request reports besides its error: an optional check
// of its answer, Found of Expected relevant items returned (Expected 0:
// not checked).
type Outcome struct {
	Expected, Found int
}

// Request is one operation to send.
type Request interface {
	// Do sends the request and waits for its answer. ctx is cancelled when
	// the request outlives Config.RequestTimeout or an interrupted
	// attack's grace period ends, and carries the request's timeout as
	// its deadline, for transports that need one.
	Do(ctx context.Context) (Outcome, error)
}

// RequestFunc is a function as a Request.
type RequestFunc func(ctx context.Context) (Outcome, error)

// Do calls f.
func (f RequestFunc) Do(ctx context.Context) (Outcome, error) { return f(ctx) }

// Source builds the requests of one worker, on that worker's goroutine.
type Source interface {
	// Next returns the next request and its operation's index in
	// Config.Ops. It is called before the request's timing starts, so
	// building a request is not counted as latency.
	Next() (op int, r Request)
}

// SourceFunc is a function as a Source.
type SourceFunc func() (int, Request)

// Next calls f.
func (f SourceFunc) Next() (int, Request) { return f() }

// Targeter makes the request sources of the attack's workers.
type Targeter interface {
	// NewSource is called once per worker, from the scheduler's goroutine;
	// the Source is then used by that worker's goroutine only. rng is the
	// worker's own random source, seeded from Config.Seed and the
	// worker's number (the attack draws exponential think times from it
	// too).
	NewSource(rng *rand.Rand) Source
}

// TargeterFunc is a function as a Targeter.
type TargeterFunc func(rng *rand.Rand) Source

// NewSource calls f.
func (f TargeterFunc) NewSource(rng *rand.Rand) Source { return f(rng) }

// Repeat is a Targeter whose every request is r, operation 0.
func Repeat(r Request) Targeter {
	return TargeterFunc(func(*rand.Rand) Source { return SourceFunc(func() (int, Request) { return 0, r }) })
}

// Session makes every arrival a session of OpsPerSession requests
// separated by think time; the default, one request per arrival, is the
// pure open model.
type Session struct {
	OpsPerSession int
	Think         time.Duration
	// ThinkExponential draws each think time from an exponential
	// distribution of mean Think.
	ThinkExponential bool
}

// Config is one attack.
type Config struct {
	// Pacer schedules the measured phase's arrivals. Warmup offers its
	// initial rate, evenly spaced, for that long before; the pacer's
	// clock starts with the measured phase, which lasts Duration.
	Pacer    Pacer
	Warmup   time.Duration
	Duration time.Duration
	Session  Session

	Targeter Targeter
	// Ops names the operations a Source's requests belong to.
	Ops []string

	// MaxWorkers caps the worker pool (and so the requests in flight).
	// A send later than LateAfter after its intended time is late; one
	// that cannot start within DropAfter is dropped. RequestTimeout
	// cancels a request that outlives it.
	MaxWorkers     int
	LateAfter      time.Duration
	DropAfter      time.Duration
	RequestTimeout time.Duration
	// Seed seeds the workers' random sources.
	Seed int64

	// ErrorKind classifies a failed request for OpStats.ErrorsByKind
	// (default: ErrorKind). Requests cancelled for RequestTimeout are
	// "timeout".
	ErrorKind func(error) string
	// OnResult, if set, receives every request's result, warm-up
	// included, on the worker's goroutine after it was recorded: the
	// results stream. It must be quick and safe for concurrent use.
	OnResult func(Hit)
	// Progress, if set, is called every ProgressInterval (default 1s)
	// while the load runs, from its own goroutine.
	Progress         func(Progress)
	ProgressInterval time.Duration
	// Grace bounds how long in-flight requests may finish after ctx is
	// cancelled.
	Grace time.Duration
	// CPUIncludesServer marks the CPU figures as shared with an
	// in-process server.
	CPUIncludesServer bool
}

// Hit is one request's result.
type Hit struct {
	Op       int
	Measured bool // false during the warm-up
	// Intended is when the request should have been sent (its arrival,
	// or the end of its think time), Sent when it was, Done when it
	// returned.
	Intended, Sent, Done time.Time
	Err                  error
	ErrKind              string // "" when Err is nil
	Outcome              Outcome
}

// Progress is a live snapshot of an attack.
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
	Target     float64 // the pacer's rate now
	WorstP99MS float64 // highest corrected p99 of any operation so far
}

// Report is an attack's outcome. Audit is filled but not judged: Judge
// it with the facts of the run.
type Report struct {
	// Start is the first intended send (of the warm-up, if any),
	// MeasureStart that of the measured phase, Stop the end of sending.
	Start, MeasureStart, Stop time.Time
	Interrupted               bool
	// RequestedRate is the requests per second the pacer and session asked
	// for over the measured phase as run.
	RequestedRate float64
	Scheduled     int64
	Completed     int64
	Errors        int64
	Ops           []OpStats // one per Config.Ops
	Audit         Audit
}

// MeasuredSeconds is the measured phase's length as run.
func (r *Report) MeasuredSeconds() float64 { return r.Stop.Sub(r.MeasureStart).Seconds() }

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

func (c *Config) check() error {
	switch {
	case c.Pacer == nil:
		return errors.New("attack: no Pacer")
	case c.Targeter == nil:
		return errors.New("attack: no Targeter")
	case len(c.Ops) == 0:
		return errors.New("attack: no operations in Ops")
	case c.Duration <= 0:
		return fmt.Errorf("attack: Duration %v: must be > 0", c.Duration)
	case c.Warmup < 0:
		return fmt.Errorf("attack: Warmup %v: must be >= 0", c.Warmup)
	case c.MaxWorkers < 1:
		return fmt.Errorf("attack: MaxWorkers %d: must be >= 1", c.MaxWorkers)
	case c.LateAfter <= 0 || c.DropAfter < c.LateAfter:
		return fmt.Errorf("attack: LateAfter %v, DropAfter %v: need 0 < LateAfter <= DropAfter", c.LateAfter, c.DropAfter)
	case c.RequestTimeout <= 0:
		return fmt.Errorf("attack: RequestTimeout %v: must be > 0", c.RequestTimeout)
	case c.Session.OpsPerSession < 0:
		return fmt.Errorf("attack: Session.OpsPerSession %d: must be >= 0", c.Session.OpsPerSession)
	}
	return nil
}

// Attack offers cfg's load and reports it. Cancelling ctx stops the load;
// the partial report has Interrupted set.
func Attack(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if cfg.Session.OpsPerSession == 0 {
		cfg.Session.OpsPerSession = 1
	}
	if cfg.ErrorKind == nil {
		cfg.ErrorKind = ErrorKind
	}
	if cfg.ProgressInterval <= 0 {
		cfg.ProgressInterval = time.Second
	}
	a := newAttacker(cfg)
	a.run(ctx)
	return a.report(), nil
}

type attacker struct {
	cfg Config

	recs    []*Metrics
	warmRec []*Metrics // discarded: warm-up figures are not reported
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
// high rates one wake-up dispatches several arrivals, which saves context
// switches per request, at the price of that much dispatch
// delay; once per backlogBatch while arrivals queue for workers.
// initialWorkers are started before the first arrival.
const (
	coarseLead     = 2 * time.Millisecond
	maxBatchDelay  = 250 * time.Microsecond
	backlogBatch   = time.Millisecond
	initialWorkers = 8
)

func newAttacker(cfg Config) *attacker {
	a := &attacker{cfg: cfg, lag: NewHistogram(), lateAfter: cfg.LateAfter, dropAfter: cfg.DropAfter, timeout: cfg.RequestTimeout}
	for range cfg.Ops {
		a.recs = append(a.recs, NewMetrics())
		a.warmRec = append(a.warmRec, NewMetrics())
	}
	return a
}

// queueCap bounds the hand-off queue: a drop bound's worth of arrivals at
// the pattern's peak rate, plus the pool. Anything beyond could not start
// within drop_after_ms anyway.
func (a *attacker) queueCap() int {
	peak := a.cfg.Pacer.PeakRate()
	n := peak*a.dropAfter.Seconds() + float64(a.cfg.MaxWorkers)
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
	rng := rand.New(rand.NewPCG(uint64(a.cfg.Seed), uint64(a.workers)+1<<32))
	src := a.cfg.Targeter.NewSource(rng)
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.worker(ctx, rng, src)
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
		case a.workers < a.cfg.MaxWorkers:
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
	warm, dur := a.cfg.Warmup, a.cfg.Duration
	pacer := a.cfg.Pacer
	// Warm-up offers the pattern's initial rate; the pattern's clock
	// starts with the measured phase.
	warmPacer := NewConstant(pacer.RateAt(0))

	// Requests outlive ctx by at most Grace, so an interrupted run still
	// records what was in flight.
	reqBase, reqCancel := context.WithCancel(context.WithoutCancel(ctx))
	defer reqCancel()
	a.jobs = make(chan job, a.queueCap())
	for range min(initialWorkers, a.cfg.MaxWorkers) {
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
		backlog := a.workers >= a.cfg.MaxWorkers && a.free.Load() < 0
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

func (a *attacker) worker(ctx context.Context, rng *rand.Rand, src Source) {
	var think *time.Timer
	slot := a.newSlot(ctx)
	for j := range a.jobs {
		if !a.stopping.Load() && !a.serve(ctx, slot, j, rng, src, &think) {
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
func (a *attacker) serve(ctx context.Context, slot *reqSlot, j job, rng *rand.Rand, src Source, think **time.Timer) bool {
	sess := a.cfg.Session
	intended := a.start.Add(j.at)
	for k := 0; k < sess.OpsPerSession; k++ {
		if k > 0 {
			d := sess.Think
			if sess.ThinkExponential {
				d = time.Duration(rng.ExpFloat64() * float64(d))
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
		op, req := src.Next()
		begin := time.Now()
		if k == 0 && j.measured {
			lag := begin.Sub(intended)
			a.lagMu.Lock()
			RecordDuration(a.lag, lag)
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
		out, err := req.Do(deadlineCtx{slot.ctx, begin.Add(a.timeout)})
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
			kind = a.cfg.ErrorKind(err)
		}
		recs := a.warmRec
		if j.measured {
			recs = a.recs
			a.completed.Add(1)
			if err != nil {
				a.errs.Add(1)
			}
		}
		recs[op].Add(done.Sub(intended), done.Sub(begin), kind, out)
		if a.cfg.OnResult != nil {
			a.cfg.OnResult(Hit{Op: op, Measured: j.measured, Intended: intended, Sent: begin, Done: done,
				Err: err, ErrKind: kind, Outcome: out})
		}
	}
	return true
}

func (a *attacker) progress(done <-chan struct{}, stopped chan<- struct{}, p Pacer) {
	defer close(stopped)
	if a.cfg.Progress == nil {
		return
	}
	t := time.NewTicker(a.cfg.ProgressInterval)
	defer t.Stop()
	var last int64
	lastAt := time.Now()
	warm, total := a.cfg.Warmup, a.cfg.Duration
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
				pr.WorstP99MS = max(pr.WorstP99MS, r.worstP99())
			}
			a.cfg.Progress(pr)
		}
	}
}

// report is the attack's figures and audit, not judged.
func (a *attacker) report() *Report {
	r := &Report{Start: a.start, MeasureStart: a.measureStart, Stop: a.stop, Interrupted: a.interrupted,
		Scheduled: a.scheduled.Load(), Completed: a.completed.Load(), Errors: a.errs.Load()}
	measured := a.stop.Sub(a.measureStart)
	r.RequestedRate = a.cfg.Pacer.MeanRate(measured) * float64(a.cfg.Session.OpsPerSession)
	for i, name := range a.cfg.Ops {
		r.Ops = append(r.Ops, a.recs[i].Stats(name, measured.Seconds()))
	}
	au := &r.Audit
	au.LateAfterMS = float64(a.lateAfter) / float64(time.Millisecond)
	au.DropAfterMS = float64(a.dropAfter) / float64(time.Millisecond)
	au.LateSends, au.LateNoWorker, au.DroppedSends = a.late.Load(), a.lateNoWorker.Load(), a.dropped.Load()
	au.LateDispatch = a.lateDispatch.Load()
	if r.Scheduled > 0 {
		au.LateFraction = float64(au.LateSends) / float64(r.Scheduled)
	}
	au.MaxWorkers, au.PeakWorkers, au.PoolExhausted = a.cfg.MaxWorkers, a.peak, a.exhausted.Load()
	a.lagMu.Lock()
	au.SchedulingLag = Summarize(a.lag)
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
	return r
}

// deadlineCtx gives a request's context its timeout as a deadline, without
// a timer of its own: the sweeper cancels it. Transports that cannot be
// interrupted through Done alone bound their wait by the deadline.
type deadlineCtx struct {
	context.Context
	deadline time.Time
}

func (c deadlineCtx) Deadline() (time.Time, bool) { return c.deadline, true }
