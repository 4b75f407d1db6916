package loadtest

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/engram-ops/engram-ops/loadtest/attack"
	"github.com/engram-ops/engram-ops/ops/api"
	"github.com/engram-ops/engram-ops/ops/client"
)

// CalibrateConfig measures the generator's own ceiling against the
// cheapest request the server answers (GET /health/alive), side by side
// with a tight net/http loop on the same cores and the same server.
type CalibrateConfig struct {
	BaseURL string
	// TLS verifies an https:// server (nil: the system's roots).
	TLS *tls.Config
	// Phase is the length of each measurement (default 3s); Rounds
	// alternates tight loop and generator this many times (default 2), so
	// drifting background load hits both alike.
	Phase  time.Duration
	Rounds int
	// Concurrency is the tight loop's goroutines and the generator's
	// max_workers (default 4 × GOMAXPROCS).
	Concurrency int
	// CheckRate is the constant rate of the scheduling-accuracy check
	// (default 5000/s), run for CheckDuration (default 5s).
	CheckRate     float64
	CheckDuration time.Duration
	// CPUIncludesServer marks an embedded server (same process), for the
	// check's verdict.
	CPUIncludesServer bool
	Logf              func(format string, args ...any)
}

// Calibration is the outcome: requests per second of each phase, the
// ratio of the medians, and the scheduling accuracy at CheckRate.
type Calibration struct {
	Concurrency    int       `json:"concurrency"`
	PhaseSeconds   float64   `json:"phase_seconds"`
	GOMAXPROCS     int       `json:"gomaxprocs"`
	TightLoopRates []float64 `json:"tight_loop_rates"`
	GeneratorRates []float64 `json:"generator_rates"`
	TightLoopRate  float64   `json:"tight_loop_rate"` // median
	GeneratorRate  float64   `json:"generator_rate"`  // median
	Ratio          float64   `json:"ratio"`
	Check          *Result   `json:"check"`
}

// checkWorkers is the scheduling check's max_workers (the default).
const checkWorkers = 1024

// Calibrate runs the calibration.
func Calibrate(ctx context.Context, cfg CalibrateConfig) (*Calibration, error) {
	if cfg.Phase == 0 {
		cfg.Phase = 3 * time.Second
	}
	if cfg.Rounds == 0 {
		cfg.Rounds = 2
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = 4 * runtime.GOMAXPROCS(0)
	}
	if cfg.CheckRate == 0 {
		cfg.CheckRate = 5000
	}
	if cfg.CheckDuration == 0 {
		cfg.CheckDuration = 5 * time.Second
	}
	logf := cfg.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	cl, err := client.New(cfg.BaseURL, client.WithHTTPClient(HTTPClientTLS(checkWorkers, cfg.TLS)))
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	err = cl.Alive(pctx)
	cancel()
	if err != nil {
		return nil, &TargetError{URL: cfg.BaseURL, Err: err}
	}
	out := &Calibration{Concurrency: cfg.Concurrency, PhaseSeconds: cfg.Phase.Seconds(), GOMAXPROCS: runtime.GOMAXPROCS(0)}
	for round := 0; round < cfg.Rounds && ctx.Err() == nil; round++ {
		t := tightLoop(ctx, cfg.BaseURL+api.PathHealthAlive, cfg.TLS, cfg.Concurrency, cfg.Phase)
		out.TightLoopRates = append(out.TightLoopRates, t)
		logf("round %d: tight net/http loop %.0f req/s", round+1, t)
		// Ask for far more than the loop achieved, with the loop's
		// concurrency as the worker cap: the generator then runs flat out
		// and its rate is its ceiling.
		g, err := GeneratorCeiling(ctx, cl, cfg.Concurrency, t*2+1000, cfg.Phase)
		if err != nil {
			return nil, err
		}
		out.GeneratorRates = append(out.GeneratorRates, g)
		logf("round %d: generator %.0f req/s", round+1, g)
	}
	out.TightLoopRate, out.GeneratorRate = median(out.TightLoopRates), median(out.GeneratorRates)
	if out.TightLoopRate > 0 {
		out.Ratio = out.GeneratorRate / out.TightLoopRate
	}
	if ctx.Err() != nil {
		return out, nil
	}
	sc := aliveScenario(cfg.CheckRate, cfg.CheckDuration, checkWorkers)
	out.Check, err = attackOnly(ctx, sc, cl, Config{Client: cl, CPUIncludesServer: cfg.CPUIncludesServer})
	if err != nil {
		return nil, err
	}
	out.Check.Target.Embedded = cfg.CPUIncludesServer
	logf("scheduling check at %.0f/s: achieved %.0f/s, %.3f%% late", cfg.CheckRate, out.Check.AchievedRate, out.Check.Audit.LateFraction*100)
	return out, nil
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// tightLoop is the reference: concurrency goroutines each sending GET url
// back to back with a plain net/http client for d; requests per second.
func tightLoop(ctx context.Context, url string, tc *tls.Config, concurrency int, d time.Duration) float64 {
	tr := client.DefaultTransport()
	tr.TLSClientConfig = tc
	hc := &http.Client{Transport: tr}
	defer hc.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var n atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A context per goroutine, as the generator's workers have:
			// requests sharing one parent contend on its lock, which would
			// make the reference slower than it need be.
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
				resp, err := hc.Do(req)
				if err != nil {
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					n.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return float64(n.Load()) / time.Since(start).Seconds()
}

func aliveScenario(rate float64, d time.Duration, workers int) *Scenario {
	sc := &Scenario{Name: "calibrate", Description: "GET /health/alive",
		Duration:   DurationCfg{TotalSeconds: d.Seconds()},
		Arrival:    Arrival{Pattern: "constant", Rate: rate},
		Operations: Weights{Store: 1},
		Generator:  GeneratorCfg{MaxWorkers: workers}}
	sc.applyDefaults()
	sc.Preload.Disabled = true
	sc.GroundTruth.Disabled = true
	if err := sc.Validate(); err != nil {
		panic(fmt.Sprintf("calibration scenario: %v", err)) // a bug: the values above are fixed
	}
	return sc
}

// GeneratorCeiling is the rate at which the generator completes GET
// /health/alive through cl over d with at most workers requests in flight,
// asked for rate, far more than it can send: its ceiling with cl's
// transport.
func GeneratorCeiling(ctx context.Context, cl *client.Client, workers int, rate float64, d time.Duration) (float64, error) {
	sc := aliveScenario(rate, d, workers)
	// Arrivals that cannot get a worker within 50ms are dropped, so the
	// backlog does not stretch the phase; the rate is over the real time.
	sc.Generator.DropAfterMS = 50
	r, err := attackOnly(ctx, sc, cl, Config{Client: cl})
	if err != nil {
		return 0, err
	}
	ok := r.Completed - r.Errors
	return float64(ok) / r.DurationSeconds, nil
}

// attackOnly offers sc's load of GET /health/alive, without a data set.
func attackOnly(ctx context.Context, sc *Scenario, cl *client.Client, cfg Config) (*Result, error) {
	alive := attack.RequestFunc(func(ctx context.Context) (attack.Outcome, error) { return attack.Outcome{}, cl.Alive(ctx) })
	res := &Result{Schema: SchemaName, SchemaVersion: SchemaVersion,
		Scenario:  ScenarioInfo{Name: sc.Name, Description: sc.Description, Pattern: sc.Arrival.Pattern},
		Target:    TargetInfo{URL: cl.BaseURL()},
		Generator: GeneratorInfo{GoVersion: runtime.Version(), NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), OS: runtime.GOOS, Arch: runtime.GOARCH}}
	if err := attackInto(ctx, res, sc, attack.Repeat(alive), []string{"alive"}, 0, cfg); err != nil {
		return nil, err
	}
	return res, nil
}
