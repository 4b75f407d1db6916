package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/engram-ops/engram-ops/loadtest"
	"github.com/engram-ops/engram-ops/ops/client"
	"github.com/engram-ops/engram-ops/ops/config"
)

// loadtestCmd is the `engram-ops loadtest` group: its flags and what it
// needs. The work is in package loadtest; this file parses flags, starts
// an embedded server when no --target is given, draws progress and maps
// outcomes to exit codes.
type loadtestCmd struct {
	app *app

	// run
	target     string
	targetKind string
	token      string
	readStale  bool
	rate       float64
	duration   time.Duration
	warmup     time.Duration
	out        string
	seed       int64
	maxWorkers int
	progress   time.Duration
	cpuProfile string
	tls        tlsClientFlags

	// compare
	cmp loadtest.CompareOptions

	// merge
	mergeOut string

	// calibrate
	calPhase       time.Duration
	calRounds      int
	calConcurrency int
	calCheckRate   float64
	calCheckDur    time.Duration
}

func newLoadtestCmd(a *app) *loadtestCmd {
	return &loadtestCmd{app: a, cmp: loadtest.DefaultCompareOptions()}
}

func (l *loadtestCmd) command() *cobra.Command {
	group := &cobra.Command{
		Use:   "loadtest",
		Short: "Scenario-driven open-model load tests, thresholds, baselines and regression gates",
		Long: `Offer a server the load a scenario describes, measure it honestly and turn results into
regression gates.

Requests are sent at the arrival times the scenario's pattern dictates (open model),
whether or not earlier ones have finished, and latency is measured from the intended
send time (coordinated-omission corrected) alongside the uncorrected service time, in
HDR histograms. The generator audits itself: late and dropped sends, achieved versus
requested rate, its own CPU use and how long it waited for a CPU, and it says whether
the server, the generator or contention for the machine's CPU limited a run.

Scenarios are TOML files in Engram's loadtest format plus engram-ops additions
(docs/loadtest.md); the built-in ones are listed by "engram-ops loadtest list".
Finding the breaking point and wiring compare into CI: runbooks/capacity-testing.md.

Exit status: 0 ok; 1 the run failed (unreachable target, interrupted); 2 a bad
scenario or flag; 3 a [validation] limit or a compare gate did not pass.`,
		Example: `  engram-ops loadtest list
  engram-ops loadtest run smoke
  engram-ops loadtest run mixed_balanced --target http://127.0.0.1:7432 --out result.json
  engram-ops loadtest compare baseline.json result.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}

	run := &cobra.Command{
		Use:   "run SCENARIO",
		Short: "Run a scenario (a built-in name or a TOML file) and report",
		Long: `Run a scenario: create its spaces, preload [preload] memories of its id pool
([data] num_nodes) through the batch endpoint, wait for the server to index them
([preload] settle_timeout_seconds, default 300), prepare cues (with their ground
truth when their memories were preloaded), then offer the load for [warmup] plus
[duration] and report per operation: count, rate, errors by kind, and
p50/p90/p95/p99/p99.9/max latency, corrected and uncorrected, with recall@k where
the scenario checks answers.

Without --target an embedded server is started on a temporary data directory,
which is removed afterwards. --target-kind engram drives an Engram server with
only the routes its router has (single remembers, GET recall, no batch and no
index backlog), so the same scenario compares both servers; auto tells them
apart by GET /health. A live progress line is drawn on a terminal; plain
progress lines are printed otherwise (none with --quiet).

Ctrl-C stops the load, lets in-flight requests finish (2 s at most) and still
writes the partial result (exit 1). [validation] limits that are not met exit 3.`,
		Example: `  # Every operation for a few seconds against an embedded server
  engram-ops loadtest run smoke

  # A scenario file against a running server, at 2x its rate, saving the result
  engram-ops loadtest run ./my-scenario.toml --target http://10.0.0.5:7432 --rate 800 --out result.json

  # The full result (with histograms) on stdout
  engram-ops loadtest run read_heavy --duration 60s --output json > result.json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return l.run(cmd, args[0]) },
	}
	f := run.Flags()
	f.StringVar(&l.target, "target", "", "base URL of the server (default: an embedded server on a temporary data directory)")
	f.StringVar(&l.targetKind, "target-kind", loadtest.TargetEngramOps, "server kind: engram-ops, engram (only routes Engram has: single remembers, GET recall, no batch), or auto (detected from GET /health)")
	f.StringVar(&l.token, "token", "", "API key sent as Authorization: Bearer (default $ENGRAM_API_KEY)")
	f.BoolVar(&l.readStale, "read-stale", false, "send X-Engram-Read-Stale: allow, so that a router (placement haproxy) may serve reads from a follower")
	f.Float64Var(&l.rate, "rate", 0, "mean arrival rate in operations per second (scales the pattern; default: the scenario's)")
	f.DurationVar(&l.duration, "duration", 0, "measured duration (default: the scenario's [duration])")
	f.DurationVar(&l.warmup, "warmup", -1, "warm-up before measuring (default: the scenario's [warmup])")
	f.StringVar(&l.out, "out", "", "also write the JSON result to this file (written even when interrupted)")
	f.Int64Var(&l.seed, "seed", 0, "random seed of data and arrivals (default: the scenario's, else 1)")
	f.IntVar(&l.maxWorkers, "max-workers", 0, "cap on concurrent requests (default: the scenario's, else 1024)")
	f.DurationVar(&l.progress, "progress-interval", 0, "progress line interval (default 1s on a terminal, 5s otherwise)")
	l.tls.add(f)
	f.StringVar(&l.cpuProfile, "cpuprofile", "", "write the generator's CPU profile (go tool pprof) to this file, for when the verdict blames the generator")

	list := &cobra.Command{
		Use:     "list",
		Short:   "List the built-in scenarios",
		Example: "  engram-ops loadtest list\n  engram-ops loadtest list --output json",
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return l.list() },
	}

	show := &cobra.Command{
		Use:     "show SCENARIO",
		Short:   "Print a built-in scenario's TOML (a starting point for your own)",
		Example: "  engram-ops loadtest show read_heavy > my-scenario.toml",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			src, ok := loadtest.BuiltinSource(args[0])
			if !ok {
				return usagef("no built-in scenario %q (built in: %s)", args[0], strings.Join(loadtest.Builtin(), ", "))
			}
			_, err := l.app.stdout.Write(src)
			return err
		},
	}

	report := &cobra.Command{
		Use:     "report RESULT.json",
		Short:   "Re-render a stored result as a table (or JSON)",
		Example: "  engram-ops loadtest report result.json\n  engram-ops loadtest report result.json --output json",
		Args:    cobra.ExactArgs(1),
		RunE:    func(cmd *cobra.Command, args []string) error { return l.report(args[0]) },
	}

	compare := &cobra.Command{
		Use:   "compare BASE.json NEW.json",
		Short: "Compare a result with a baseline; exit 3 on a significant regression beyond tolerance",
		Long: `Compare per-operation latency distributions (corrected) and throughput of NEW with BASE.

A latency regression needs both a statistically significant shift (one-sided
Kolmogorov-Smirnov test computed from the HDR histograms, p < --alpha) and an effect
beyond tolerance (p50 or p99 grown by more than --p50-tolerance / --p99-tolerance,
and by more than --min-abs-ms). Throughput regresses when the achieved rate fell by
more than --rate-tolerance for the same requested rate; error rate and recall@k
have absolute tolerances. Exit 3 on a regression, 0 otherwise.`,
		Example: "  engram-ops loadtest compare loadtest/baselines/mixed_balanced.json result.json\n  engram-ops loadtest compare base.json new.json --p99-tolerance 0.2 --output json",
		Args:    cobra.ExactArgs(2),
		RunE:    func(cmd *cobra.Command, args []string) error { return l.compare(args[0], args[1]) },
	}
	cf := compare.Flags()
	cf.Float64Var(&l.cmp.Alpha, "alpha", l.cmp.Alpha, "significance level of the KS test")
	cf.Float64Var(&l.cmp.P50Tolerance, "p50-tolerance", l.cmp.P50Tolerance, "relative p50 growth allowed (0.25 = +25%)")
	cf.Float64Var(&l.cmp.P99Tolerance, "p99-tolerance", l.cmp.P99Tolerance, "relative p99 growth allowed")
	cf.Float64Var(&l.cmp.MinAbsMS, "min-abs-ms", l.cmp.MinAbsMS, "latency shifts smaller than this (ms) never count")
	cf.Float64Var(&l.cmp.RateTolerance, "rate-tolerance", l.cmp.RateTolerance, "relative throughput drop allowed")
	cf.Float64Var(&l.cmp.ErrorRateTolerance, "error-rate-tolerance", l.cmp.ErrorRateTolerance, "absolute error-rate growth allowed")
	cf.Float64Var(&l.cmp.RecallTolerance, "recall-tolerance", l.cmp.RecallTolerance, "absolute recall@k drop allowed")

	merge := &cobra.Command{
		Use:   "merge RESULT.json RESULT.json...",
		Short: "Combine results of one scenario run from several generator machines",
		Long: `Combine results of the same scenario run concurrently from several generator machines:
counts and rates add, HDR histograms merge exactly, and the scenario's [validation]
is checked again on the merged figures. Writes JSON to --out, else to stdout.`,
		Example: "  engram-ops loadtest merge gen1.json gen2.json gen3.json --out merged.json\n  engram-ops loadtest report merged.json",
		Args:    cobra.MinimumNArgs(2),
		RunE:    func(cmd *cobra.Command, args []string) error { return l.merge(args) },
	}
	merge.Flags().StringVar(&l.mergeOut, "out", "", "write the merged result here (default stdout)")

	calibrate := &cobra.Command{
		Use:   "calibrate",
		Short: "Measure the generator's own ceiling against a tight net/http loop, and its scheduling accuracy",
		Long: `Measure, side by side in one run on the same cores and the same server, the request
rate of a tight net/http client loop and of the generator (open model, asked for far
more than the loop achieved, with the loop's concurrency as its worker cap) against
GET /health/alive, alternating them --rounds times; then offer --check-rate requests/s
for --check-duration and report late and dropped sends, and who limited the check.
Without --target the server shares this process and its cores: run one elsewhere
(--target) to measure the generator alone.`,
		Example: "  engram-ops loadtest calibrate\n  engram-ops loadtest calibrate --target http://127.0.0.1:7432 --rounds 3 --output json",
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return l.calibrate(cmd.Context()) },
	}
	kf := calibrate.Flags()
	kf.StringVar(&l.target, "target", "", "base URL of the server (default: an embedded server)")
	l.tls.add(kf)
	kf.DurationVar(&l.calPhase, "phase", 3*time.Second, "length of each measurement")
	kf.IntVar(&l.calRounds, "rounds", 2, "alternations of tight loop and generator")
	kf.IntVar(&l.calConcurrency, "concurrency", 0, "tight-loop goroutines and generator worker cap (default 4 x GOMAXPROCS)")
	kf.Float64Var(&l.calCheckRate, "check-rate", 5000, "rate of the scheduling-accuracy check (requests/s)")
	kf.DurationVar(&l.calCheckDur, "check-duration", 5*time.Second, "length of the scheduling-accuracy check")

	group.AddCommand(run, list, show, report, compare, merge, calibrate)
	return group
}

// embedded starts a server in this process on a temporary data directory
// and returns its URL and a stop function that drains it and removes the
// directory. Its context is not the command's: on Ctrl-C the load stops
// first and the server keeps answering in-flight requests.
func (l *loadtestCmd) embedded() (string, func() error, error) {
	dir, err := os.MkdirTemp("", "engram-loadtest-*")
	if err != nil {
		return "", nil, err
	}
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = dir
	cfg.Log.Access = false
	ctx, cancel := context.WithCancel(context.Background())
	running, err := start(ctx, cfg, nil, startOptions{info: l.app.build, getenv: l.app.getenv})
	if err != nil {
		cancel()
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("start the embedded server: %w", err)
	}
	stop := func() error {
		cancel()
		werr := running.wait()
		return errors.Join(werr, os.RemoveAll(dir))
	}
	return running.url(), stop, nil
}

func (l *loadtestCmd) run(cmd *cobra.Command, name string) error {
	a := l.app
	sc, src, err := loadtest.Load(name)
	if err != nil {
		var se *loadtest.ScenarioError
		if errors.As(err, &se) || errors.Is(err, loadtest.ErrUnknownScenario) {
			return &usageError{err}
		}
		return err
	}
	flags := cmd.Flags()
	kind, err := loadtest.ParseTargetKind(l.targetKind)
	if err != nil {
		return usagef("--target-kind: %v", err)
	}
	cfg := loadtest.Config{Scenario: sc, Source: src, Version: a.build.Version, TargetKind: kind}
	if flags.Changed("rate") {
		if err := sc.SetRate(l.rate); err != nil {
			return &usageError{fmt.Errorf("--rate: %w", err)}
		}
		cfg.RateOverride = l.rate
	}
	if flags.Changed("duration") {
		if err := sc.SetDuration(l.duration); err != nil {
			return &usageError{fmt.Errorf("--duration: %w", err)}
		}
		cfg.DurationOverride = l.duration
	}
	if flags.Changed("warmup") {
		if l.warmup < 0 {
			return usagef("--warmup %v: must be >= 0", l.warmup)
		}
		sc.Warmup.Seconds = l.warmup.Seconds()
	}
	if flags.Changed("seed") {
		sc.Generator.Seed = l.seed
	}
	if flags.Changed("max-workers") {
		sc.Generator.MaxWorkers = l.maxWorkers
	}
	if err := sc.Validate(); err != nil {
		return &usageError{err}
	}
	token := l.token
	if token == "" {
		token = a.getenv("ENGRAM_API_KEY")
	}
	target := l.target
	if target == "" {
		url, stop, err := l.embedded()
		if err != nil {
			return err
		}
		defer func() {
			if serr := stop(); serr != nil {
				fmt.Fprintf(a.stderr, "warning: stopping the embedded server: %v\n", serr)
			}
		}()
		target = url
		cfg.Target = loadtest.TargetInfo{URL: url, Embedded: true}
		cfg.CPUIncludesServer = true
	}
	var opts []client.Option
	if token != "" {
		opts = append(opts, client.WithToken(token))
	}
	if l.readStale {
		opts = append(opts, client.WithReadStale())
	}
	tc, err := l.tls.config(a)
	if err != nil {
		return err
	}
	opts = append(opts, client.WithUserAgent("engram-ops-loadtest/"+a.build.Version),
		client.WithHTTPClient(loadtest.HTTPClientTLS(sc.Generator.MaxWorkers, tc)))
	cl, err := client.New(target, opts...)
	if err != nil {
		return usagef("--target: %v", err)
	}
	cfg.Client = cl

	tty := isTerminal(a.stderr)
	var plmu sync.Mutex
	drawn := false
	if !a.global.quiet {
		cfg.Logf = func(format string, args ...any) {
			plmu.Lock()
			defer plmu.Unlock()
			if drawn {
				fmt.Fprint(a.stderr, "\n")
				drawn = false
			}
			fmt.Fprintf(a.stderr, "loadtest: "+format+"\n", args...)
		}
		cfg.ProgressInterval = l.progress
		if cfg.ProgressInterval == 0 {
			cfg.ProgressInterval = 5 * time.Second
			if tty {
				cfg.ProgressInterval = time.Second
			}
		}
		cfg.Progress = func(p loadtest.Progress) {
			plmu.Lock()
			defer plmu.Unlock()
			if tty {
				fmt.Fprintf(a.stderr, "\r\x1b[K%s", loadtest.ProgressLine(p))
				drawn = true
			} else {
				fmt.Fprintln(a.stderr, "loadtest: "+loadtest.ProgressLine(p))
			}
		}
	}
	stopProfile, err := startCPUProfile(l.cpuProfile)
	if err != nil {
		return err
	}
	res, err := loadtest.Run(cmd.Context(), cfg)
	if perr := stopProfile(); perr != nil && err == nil {
		err = perr
	}
	plmu.Lock()
	if drawn {
		fmt.Fprint(a.stderr, "\n")
		drawn = false
	}
	plmu.Unlock()
	if err != nil {
		var te *loadtest.TargetError
		if errors.As(err, &te) {
			return fmt.Errorf("%w\nTry: start a server (engram-ops serve) and check --target, or omit --target to test an embedded server", err)
		}
		var se *loadtest.ScenarioError
		if errors.As(err, &se) {
			return &usageError{err}
		}
		return err
	}
	v := loadtest.Validate(res, sc.Validation)
	if l.out != "" {
		if err := res.WriteFile(l.out); err != nil {
			return fmt.Errorf("write %s: %w", l.out, err)
		}
	}
	if err := l.print(res); err != nil {
		return err
	}
	if res.Interrupted {
		where := ""
		if l.out != "" {
			where = "; partial result written to " + l.out
		}
		return fmt.Errorf("interrupted after %.1fs of the measured phase%s", res.DurationSeconds, where)
	}
	if !v.Passed {
		var failed []string
		for _, c := range v.Checks {
			if !c.Passed {
				failed = append(failed, c.String())
			}
		}
		return &checkFailed{msg: "loadtest: [validation] did not pass:\n  " + strings.Join(failed, "\n  ")}
	}
	return nil
}

func (l *loadtestCmd) print(res *loadtest.Result) error {
	if l.app.global.output == "json" {
		return res.WriteJSON(l.app.stdout)
	}
	return loadtest.WriteTable(l.app.stdout, res)
}

func (l *loadtestCmd) list() error {
	type entry struct {
		Name        string  `json:"name"`
		Pattern     string  `json:"pattern"`
		MeanRate    float64 `json:"mean_rate"`
		Seconds     float64 `json:"duration_seconds"`
		Description string  `json:"description"`
	}
	var es []entry
	for _, n := range loadtest.Builtin() {
		sc, _, err := loadtest.Load(n)
		if err != nil {
			return fmt.Errorf("built-in scenario %s: %w", n, err) // a build defect; tests catch it
		}
		es = append(es, entry{n, sc.Arrival.Pattern, sc.MeanRate() * float64(sc.Session.OpsPerSession), sc.Duration.TotalSeconds, sc.Description})
	}
	if l.app.global.output == "json" {
		return l.app.printJSON(es)
	}
	tw := tabwriter.NewWriter(l.app.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tPATTERN\tOPS/S\tSECONDS\tDESCRIPTION")
	for _, e := range es {
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t%g\t%s\n", e.Name, e.Pattern, e.MeanRate, e.Seconds, e.Description)
	}
	return tw.Flush()
}

func (l *loadtestCmd) report(path string) error {
	res, err := loadtest.ReadResult(path)
	if err != nil {
		return err
	}
	return l.print(res)
}

func (l *loadtestCmd) compare(basePath, newPath string) error {
	base, err := loadtest.ReadResult(basePath)
	if err != nil {
		return err
	}
	nw, err := loadtest.ReadResult(newPath)
	if err != nil {
		return err
	}
	o := l.cmp
	if o.Alpha <= 0 || o.Alpha >= 1 || o.P50Tolerance < 0 || o.P99Tolerance < 0 || o.MinAbsMS < 0 || o.RateTolerance < 0 ||
		o.ErrorRateTolerance < 0 || o.RecallTolerance < 0 {
		return usagef("--alpha must be in (0,1) and every tolerance >= 0")
	}
	c, err := loadtest.Compare(base, nw, o)
	if err != nil {
		return err
	}
	if l.app.global.output == "json" {
		if err := l.app.printJSON(c); err != nil {
			return err
		}
	} else if err := loadtest.WriteComparison(l.app.stdout, c); err != nil {
		return err
	}
	if c.Regressed {
		return &checkFailed{msg: fmt.Sprintf("loadtest compare: %s regressed against %s beyond tolerance", newPath, basePath)}
	}
	return nil
}

func (l *loadtestCmd) merge(paths []string) error {
	var rs []*loadtest.Result
	for _, p := range paths {
		r, err := loadtest.ReadResult(p)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		rs = append(rs, r)
	}
	m, err := loadtest.Merge(rs...)
	if err != nil {
		return err
	}
	if sc, err := loadtest.ParseScenario([]byte(m.Scenario.Source)); err == nil {
		loadtest.Validate(m, sc.Validation)
	}
	if l.mergeOut != "" {
		if err := m.WriteFile(l.mergeOut); err != nil {
			return err
		}
		if !l.app.global.quiet {
			fmt.Fprintf(l.app.stderr, "merged %d results into %s\n", len(rs), l.mergeOut)
		}
		return nil
	}
	return m.WriteJSON(l.app.stdout)
}

func (l *loadtestCmd) calibrate(ctx context.Context) error {
	a := l.app
	target := l.target
	if target == "" {
		url, stop, err := l.embedded()
		if err != nil {
			return err
		}
		defer stop()
		target = url
	}
	logf := func(format string, args ...any) {
		if !a.global.quiet {
			fmt.Fprintf(a.stderr, "calibrate: "+format+"\n", args...)
		}
	}
	tc, err := l.tls.config(a)
	if err != nil {
		return err
	}
	c, err := loadtest.Calibrate(ctx, loadtest.CalibrateConfig{BaseURL: target, TLS: tc, Phase: l.calPhase, Rounds: l.calRounds,
		Concurrency: l.calConcurrency, CheckRate: l.calCheckRate, CheckDuration: l.calCheckDur, Logf: logf,
		CPUIncludesServer: l.target == ""})
	if err != nil {
		var te *loadtest.TargetError
		if errors.As(err, &te) {
			return fmt.Errorf("%w\nTry: start a server (engram-ops serve) and check --target, or omit --target", err)
		}
		return err
	}
	if a.global.output == "json" {
		return a.printJSON(c)
	}
	writeCalibration(a.stdout, c, l.target == "")
	return nil
}

func writeCalibration(w io.Writer, c *loadtest.Calibration, embedded bool) {
	where := "a separate server"
	if embedded {
		where = "an embedded server (same process, same cores)"
	}
	fmt.Fprintf(w, "Calibration against %s, GOMAXPROCS %d, concurrency %d, %gs phases\n", where, c.GOMAXPROCS, c.Concurrency, c.PhaseSeconds)
	fmt.Fprintf(w, "  tight net/http loop  %s req/s  (median %.0f)\n", joinRates(c.TightLoopRates), c.TightLoopRate)
	fmt.Fprintf(w, "  generator            %s req/s  (median %.0f)\n", joinRates(c.GeneratorRates), c.GeneratorRate)
	verdict := "meets"
	if c.Ratio < 0.8 {
		verdict = "BELOW"
	}
	fmt.Fprintf(w, "  ratio                %.2f (%s the 0.8 target)\n", c.Ratio, verdict)
	if r := c.Check; r != nil {
		fmt.Fprintf(w, "Scheduling check at %.0f req/s for %.1fs: achieved %.0f req/s, late %d of %d (%.3f%%, > %gms), dropped %d, lag p50 %.3fms p99 %.3fms max %.2fms\n",
			r.RequestedRate, r.DurationSeconds, r.AchievedRate, r.Audit.LateSends, r.Scheduled, r.Audit.LateFraction*100, r.Audit.LateAfterMS,
			r.Audit.DroppedSends, r.Audit.SchedulingLag.P50MS, r.Audit.SchedulingLag.P99MS, r.Audit.SchedulingLag.MaxMS)
		cpu := fmt.Sprintf("%.2f cores", r.Audit.CPUCores)
		if embedded {
			cpu += " (with the embedded server)"
		}
		if cw := r.Audit.CPUWaitSec; cw != nil {
			cpu += fmt.Sprintf(", waited %.2fs for a CPU", *cw)
		}
		limited := r.Audit.LimitedBy
		if limited == "" {
			limited = "nothing (sent on time, the server kept up)"
		}
		fmt.Fprintf(w, "  CPU %s; limited by %s\n", cpu, limited)
		for _, f := range r.Audit.Findings {
			fmt.Fprintf(w, "  - %s\n", f)
		}
	}
}

func joinRates(xs []float64) string {
	var s []string
	for _, x := range xs {
		s = append(s, fmt.Sprintf("%.0f", x))
	}
	return strings.Join(s, ", ")
}

// startCPUProfile starts profiling this process into path ("" profiles
// nothing) and returns the function that stops and writes it.
func startCPUProfile(path string) (stop func() error, err error) {
	if path == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() error {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		return nil
	}, nil
}
