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
	intended time.Time
	measured bool // inside the measured phase (not warm-up)
	waited   bool // found no free worker at its intended time
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
	late, lateNoWorker, dropped, exhausted     atomic.Int64
	workers, peak                              int

	start, measureStart, stop time.Time
	interrupted               bool
	cpu0, cpu1                cpuTimes
}

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
	jobs := make(chan job)
	var wg sync.WaitGroup
	spawn := func() {
		a.workers++
		if a.workers > a.peak {
			a.peak = a.workers
		}
		id := a.workers
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.worker(reqBase, jobs, newWorkerRand(sc.Generator.Seed, id))
		}()
	}
	for range min(8, sc.Generator.MaxWorkers) {
		spawn()
	}

	a.cpu0 = readCPU()
	a.start = time.Now().Add(20 * time.Millisecond) // a lead, so the first sends are not late
	a.measureStart = a.start.Add(warm)
	end := a.measureStart.Add(dur)

	progDone := make(chan struct{})
	progStopped := make(chan struct{})
	go a.progress(progDone, progStopped, pacer)

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	inWarm := warm > 0
loop:
	for {
		var intended time.Time
		if inWarm {
			intended = a.start.Add(warmPacer.Next())
			if !intended.Before(a.measureStart) {
				inWarm = false
			}
		}
		if !inWarm {
			intended = a.measureStart.Add(pacer.Next())
			if !intended.Before(end) {
				break
			}
		}
		j := job{intended: intended, measured: !inWarm}
		if d := time.Until(intended); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-ctx.Done():
				a.interrupted = true
				break loop
			}
		} else if ctx.Err() != nil {
			a.interrupted = true
			break
		}
		if j.measured {
			a.scheduled.Add(1)
		}
		// So far behind that the send is meaningless: drop it, count it.
		if time.Since(intended) > a.dropAfter {
			if j.measured {
				a.dropped.Add(1)
			}
			continue
		}
		select {
		case jobs <- j:
			continue
		default:
		}
		if a.workers < sc.Generator.MaxWorkers {
			spawn()
			select {
			case jobs <- j:
			case <-ctx.Done():
				a.interrupted = true
				break loop
			}
			continue
		}
		// The pool is at its cap: wait for a worker, up to the drop bound.
		a.exhausted.Add(1)
		j.waited = true
		timer.Reset(max(a.dropAfter-time.Since(intended), 0))
		select {
		case jobs <- j:
			if !timer.Stop() {
				<-timer.C
			}
		case <-timer.C:
			if j.measured {
				a.dropped.Add(1)
			}
		case <-ctx.Done():
			a.interrupted = true
			break loop
		}
	}
	// Not clamped to end: a backlog of arrivals (within drop_after_ms)
	// is still sent after end, and the rate must count that time.
	a.stop = time.Now()
	if a.interrupted && a.stop.Before(a.measureStart) {
		a.stop = a.measureStart
	}
	close(jobs)
	if a.interrupted {
		t := time.AfterFunc(a.cfg.Grace, reqCancel)
		defer t.Stop()
	}
	wg.Wait()
	a.cpu1 = readCPU()
	close(progDone)
	<-progStopped
}

func (a *attacker) worker(ctx context.Context, jobs <-chan job, r *workerRand) {
	think := time.Duration(a.sc.Session.ThinkTimeMS * float64(time.Millisecond))
	for j := range jobs {
		intended := j.intended
		for k := 0; k < a.sc.Session.OpsPerSession; k++ {
			if k > 0 {
				d := think
				if a.sc.Session.ThinkDistribution == "exponential" {
					d = time.Duration(r.rng.ExpFloat64() * float64(think))
				}
				select {
				case <-time.After(d):
				case <-ctx.Done():
					return
				}
				intended = time.Now()
			}
			req := a.prepare(r)
			begin := time.Now()
			if k == 0 {
				lag := begin.Sub(intended)
				if j.measured {
					a.lagMu.Lock()
					recordDur(a.lag, lag)
					a.lagMu.Unlock()
					if lag > a.lateAfter {
						a.late.Add(1)
						if j.waited {
							a.lateNoWorker.Add(1)
						}
					}
				}
			}
			a.sent.Add(1)
			a.inflight.Add(1)
			rctx, cancel := context.WithTimeout(ctx, a.timeout)
			expected, found, err := req.do(rctx)
			cancel()
			done := time.Now()
			a.inflight.Add(-1)
			if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
				return // cut off by an interrupted run's grace period: not a server error
			}
			kind := ""
			if err != nil {
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
	}
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
	au.CPUIncludesServer = a.cfg.CPUIncludesServer
	judge(res)
}

// judge decides whether the generator or the server limited the run and
// says why, in words an operator can act on.
func judge(res *Result) {
	au := &res.Audit
	au.Findings = nil
	au.LimitedBy = ""
	f := func(format string, args ...any) { au.Findings = append(au.Findings, fmt.Sprintf(format, args...)) }
	sched := au.LateSends - au.LateNoWorker
	procs := float64(res.Generator.GOMAXPROCS)
	if au.DroppedSends > 0 {
		f("%d sends were dropped: they could not start within drop_after_ms = %v of their intended time", au.DroppedSends, au.DropAfterMS)
	}
	if au.LateFraction > 0.01 {
		f("%.2f%% of sends started more than %vms late (p99 scheduling lag %.2fms)", au.LateFraction*100, au.LateAfterMS, au.SchedulingLag.P99MS)
	}
	if au.PoolExhausted > 0 {
		f("in-flight requests reached max_workers = %d %d times: the server was not answering as fast as requests arrived (raise [generator] max_workers only if the server is known to be fine)",
			au.MaxWorkers, au.PoolExhausted)
	}
	if !au.CPUIncludesServer && procs > 0 && au.CPUCores >= 0.9*procs {
		f("the generator used %.2f of its %d cores: it is CPU-bound", au.CPUCores, int(procs))
	}
	schedBound := res.Scheduled > 0 && float64(sched)/float64(res.Scheduled) > 0.01
	switch {
	case schedBound || (au.DroppedSends > 0 && au.PoolExhausted == 0) ||
		(!au.CPUIncludesServer && procs > 0 && au.CPUCores >= 0.9*procs && au.LateFraction > 0.01):
		au.LimitedBy = "generator"
		f("the GENERATOR limited this run: its scheduler could not send on time, so the figures understate what was asked of the server; run it on a machine with more free CPU or split the load (loadtest merge)")
	case au.PoolExhausted > 0 || (!res.Interrupted && res.RequestedRate > 0 && res.AchievedRate < 0.95*res.RequestedRate):
		au.LimitedBy = "server"
		f("the SERVER limited this run: it completed %.1f of %.1f requested operations/s; corrected latencies include the queueing", res.AchievedRate, res.RequestedRate)
	}
	if au.CPUIncludesServer {
		f("CPU figures include the embedded server (same process); use --target for the generator's own CPU")
	}
}
