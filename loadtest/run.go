package loadtest

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/engram-ops/engram-ops/loadtest/attack"
	"github.com/engram-ops/engram-ops/ops/client"
)

// Config is one run.
type Config struct {
	Scenario *Scenario
	// Source is the scenario's TOML as given, kept in the result.
	Source []byte
	Client *client.Client
	Target TargetInfo
	// TargetKind is TargetEngramOps (also when empty), TargetEngram or
	// TargetAuto (detected from GET /health before the setup).
	TargetKind string
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
type Progress = attack.Progress

// TargetError means the target could not be reached before the run.
type TargetError struct {
	URL string
	Err error
}

func (e *TargetError) Error() string {
	return fmt.Sprintf("target %s is unreachable: %v", e.URL, e.Err)
}

func (e *TargetError) Unwrap() error { return e.Err }

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
	kind, err := ParseTargetKind(cfg.TargetKind)
	if err != nil {
		return nil, err
	}
	if kind == TargetAuto {
		if kind, err = DetectTargetKind(ctx, cfg.Client); err != nil {
			return nil, err
		}
		logf("target kind: %s (from GET /health)", kind)
	}
	res.Target.Kind = kind
	host, _ := os.Hostname()
	res.Generator = GeneratorInfo{Version: cfg.Version, GoVersion: runtime.Version(), Hosts: []string{host},
		NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), OS: runtime.GOOS, Arch: runtime.GOARCH}
	res.Scenario = ScenarioInfo{Name: sc.Name, Description: sc.Description, Pattern: sc.Arrival.Pattern,
		Source: string(cfg.Source), RateOverride: cfg.RateOverride, DurationOverride: cfg.DurationOverride.Seconds()}

	logf("setting up: %d space(s), an id pool of %d, %d memories to preload", sc.Data.MemorySpaces, sc.PoolSize(), sc.PreloadPerSpace()*sc.Data.MemorySpaces)
	w, setup, err := setupWorkload(ctx, sc, cfg.Client, kind, sc.Generator.Seed, logf)
	res.Setup = setup
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("interrupted during setup: %w", ctx.Err())
		}
		return nil, err
	}
	// Engram has no index backlog to read (GET /api/v1/spaces/{id}).
	if setup.Preloaded > 0 && kind != TargetEngram {
		waited, pending, err := settleIndex(ctx, cfg.Client, setup.Spaces, sc.Preload.SettleTimeout(), logf)
		res.Setup.IndexSettleSeconds, res.Setup.IndexPending = waited.Seconds(), pending
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("interrupted while waiting for the index: %w", ctx.Err())
			}
			return nil, err
		}
	}
	if err := attackInto(ctx, res, sc, w, OpNames, w.k, cfg); err != nil {
		return nil, err
	}
	return res, nil
}

// attackInto offers sc's load of t's requests (operations ops, answers
// checked at k) and writes the figures into res, judged.
func attackInto(ctx context.Context, res *Result, sc *Scenario, t attack.Targeter, ops []string, k int, cfg Config) error {
	g := sc.Generator
	ms := func(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }
	ac := attack.Config{Pacer: NewPacer(sc.Arrival, g.Seed), Warmup: sc.WarmupDuration(), Duration: sc.TotalDuration(),
		Session:  attack.Session{OpsPerSession: sc.Session.OpsPerSession, Think: ms(sc.Session.ThinkTimeMS), ThinkExponential: sc.Session.ThinkDistribution == "exponential"},
		Targeter: t, Ops: ops, MaxWorkers: g.MaxWorkers, LateAfter: ms(g.LateAfterMS), DropAfter: ms(g.DropAfterMS),
		RequestTimeout: ms(g.RequestTimeoutMS), Seed: g.Seed, ErrorKind: errorKind,
		Progress: cfg.Progress, ProgressInterval: cfg.ProgressInterval, Grace: cfg.Grace, CPUIncludesServer: cfg.CPUIncludesServer}
	rep, err := attack.Attack(ctx, ac)
	if err != nil {
		return err
	}
	res.StartedAt = rep.Start.UTC()
	res.EndedAt = rep.Stop.UTC()
	res.WarmupSeconds = sc.WarmupDuration().Seconds()
	res.Interrupted = rep.Interrupted
	secs := rep.MeasuredSeconds()
	res.DurationSeconds = secs
	res.RequestedRate = rep.RequestedRate
	res.Scheduled, res.Completed, res.Errors = rep.Scheduled, rep.Completed, rep.Errors
	if secs > 0 {
		res.AchievedRate = float64(res.Completed) / secs
	}
	if res.Completed > 0 {
		res.ErrorRate = float64(res.Errors) / float64(res.Completed)
	}
	// Operations the scenario does not weigh are left out unless a
	// request was counted as one.
	weights := sc.Operations.list()
	for i, o := range rep.Ops {
		if (i >= len(weights) || weights[i] == 0) && o.Corrected.Count == 0 {
			continue
		}
		res.Operations = append(res.Operations, opResult(o, k))
	}
	res.Audit = rep.Audit
	res.Audit.LateAfterMS, res.Audit.DropAfterMS = g.LateAfterMS, g.DropAfterMS
	judge(res)
	return nil
}
