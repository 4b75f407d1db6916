package main

import (
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/engram-ops/engram-ops/loadtest"
)

// startServer runs a server in-process (startServe) with a fresh data
// directory and no access log, and returns its URL.
func startServer(t testing.TB) string {
	t.Helper()
	return startServe(t, t.TempDir(), "--no-access-log").base
}

// quick shortens a scenario run for tests.
var quick = []string{"--duration", "1s", "--warmup", "0s", "--quiet"}

func runLoad(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return runCLI(t, nil, append(append([]string{"loadtest", "run"}, args...), quick...)...)
}

func checkSchema(t *testing.T, raw []byte) *loadtest.Result {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("result is not JSON: %v", err)
	}
	for _, k := range []string{"schema", "schema_version", "scenario", "target", "generator", "started_at", "ended_at",
		"duration_seconds", "interrupted", "requested_rate", "achieved_rate", "scheduled", "completed", "errors",
		"error_rate", "setup", "audit", "operations", "validation"} {
		if _, ok := m[k]; !ok {
			t.Errorf("result lacks %q", k)
		}
	}
	setup, _ := m["setup"].(map[string]any)
	for _, k := range []string{"spaces", "preloaded", "preload_seconds", "index_settle_seconds", "index_pending"} {
		if _, ok := setup[k]; !ok {
			t.Errorf("setup lacks %q", k)
		}
	}
	audit, _ := m["audit"].(map[string]any)
	for _, k := range []string{"late_sends", "late_no_worker", "late_dispatch", "late_fraction", "dropped_sends", "scheduling_lag", "cpu_cores", "limited_by", "findings"} {
		if _, ok := audit[k]; !ok {
			t.Errorf("audit lacks %q", k)
		}
	}
	ops, _ := m["operations"].([]any)
	if len(ops) == 0 {
		t.Fatal("no operations")
	}
	for _, o := range ops {
		om := o.(map[string]any)
		for _, k := range []string{"name", "count", "ok", "errors", "errors_by_kind", "rate", "corrected", "uncorrected"} {
			if _, ok := om[k]; !ok {
				t.Errorf("operation lacks %q", k)
			}
		}
		c := om["corrected"].(map[string]any)
		for _, k := range []string{"count", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "p999_ms", "max_ms", "hdr"} {
			if _, ok := c[k]; !ok {
				t.Errorf("histogram summary lacks %q", k)
			}
		}
	}
	res, err := loadtest.DecodeResult(raw)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestLoadtestSmokeEmbedded(t *testing.T) {
	out := filepath.Join(t.TempDir(), "r.json")
	prof := filepath.Join(t.TempDir(), "cpu.pprof")
	code, stdout, stderr := runLoad(t, "smoke", "--out", out, "--output", "json", "--cpuprofile", prof)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	if p, err := os.ReadFile(prof); err != nil || len(p) < 2 || p[0] != 0x1f || p[1] != 0x8b {
		t.Errorf("--cpuprofile wrote no gzipped profile: %v (%d bytes)", err, len(p))
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	res := checkSchema(t, raw)
	if !res.Target.Embedded || res.Completed == 0 || res.Errors != 0 {
		t.Errorf("embedded %v completed %d errors %d", res.Target.Embedded, res.Completed, res.Errors)
	}
	for _, op := range []string{"recall", "embedding_search", "pattern_completion"} {
		if o := res.Op(op); o != nil && (o.Recall == nil || o.Recall.AtK < 0.5) {
			t.Errorf("%s recall: %+v", op, o.Recall)
		}
	}
	checkSchema(t, []byte(stdout))
	// The temporary data directory is gone.
	if m, _ := filepath.Glob(filepath.Join(os.TempDir(), "engram-loadtest-*")); len(m) > 0 {
		t.Logf("note: leftover temp dirs (maybe other runs): %v", m)
	}
}

func TestLoadtestSmokeSeparateServerAndCompare(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.json"), filepath.Join(dir, "b.json")
	// Two runs of one build, each against its own fresh server (a reused
	// server would still be indexing the first run's writes), at the same
	// time, so that both sample the same machine noise.
	type run struct {
		code     int
		out, err string
	}
	runs := make([]run, 2)
	var wg sync.WaitGroup
	for i, p := range []string{a, b} {
		url := startServer(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, out, errOut := runCLI(t, nil, "loadtest", "run", "smoke", "--target", url, "--out", p,
				"--duration", "3s", "--warmup", "0.5s", "--quiet")
			runs[i] = run{code, out, errOut}
		}()
	}
	wg.Wait()
	for _, r := range runs {
		if r.code != 0 {
			t.Fatalf("exit %d\n%s\n%s", r.code, r.out, r.err)
		}
		if !strings.Contains(r.out, "OPERATION") || !strings.Contains(r.out, "uncorrected") {
			t.Errorf("no table in:\n%s", r.out)
		}
	}
	// Under the race detector the in-process servers and generators
	// saturate the cores, so the verdict is asserted by the e2e test
	// TestSameBuildRunsPassCompare with the real binary.
	for _, pair := range [][2]string{{a, b}, {b, a}} {
		if code, out, errOut := runCLI(t, nil, "loadtest", "compare", pair[0], pair[1]); (code != 0 && code != exitNotPassed) || !strings.Contains(out, "RESULT:") {
			t.Errorf("compare of two runs: exit %d\n%s\n%s", code, out, errOut)
		}
	}
	// scaled returns the base run with every latency mapped by f.
	scaled := func(name string, f func(us int64) int64) string {
		r, err := loadtest.ReadResult(a)
		if err != nil {
			t.Fatal(err)
		}
		for i := range r.Operations {
			h, _ := r.Operations[i].Corrected.Histogram()
			s := loadtest.NewHistogram()
			for _, bar := range h.Distribution() {
				if bar.Count > 0 {
					_ = s.RecordValues(f(bar.To), bar.Count)
				}
			}
			r.Operations[i].Corrected = loadtest.Summarize(s)
		}
		p := filepath.Join(dir, name)
		if err := r.WriteFile(p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// The base run against itself, and against a copy 10% slower (within
	// the default p50/p99 tolerances), passes with default options.
	for _, other := range []string{a, scaled("tenpct.json", func(us int64) int64 { return us * 11 / 10 })} {
		if code, out, errOut := runCLI(t, nil, "loadtest", "compare", a, other); code != 0 {
			t.Errorf("compare %s: exit %d\n%s\n%s", filepath.Base(other), code, out, errOut)
		}
	}
	// An injected latency regression (100x plus half a second) is flagged
	// (exit 3), even with tolerances as wide as 2000%.
	noisy := []string{"--p50-tolerance", "20", "--p99-tolerance", "20"}
	slow := scaled("slow.json", func(us int64) int64 { return us*100 + 500_000 })
	code, out, errOut := runCLI(t, nil, append([]string{"loadtest", "compare", a, slow}, noisy...)...)
	if code != exitNotPassed || !strings.Contains(out, "REGRESSED") {
		t.Errorf("injected regression: exit %d\n%s\n%s", code, out, errOut)
	}
	// Merge adds up and re-renders.
	merged := filepath.Join(dir, "m.json")
	if code, _, errOut := runCLI(t, nil, "loadtest", "merge", a, b, "--out", merged); code != 0 {
		t.Fatalf("merge: exit %d %s", code, errOut)
	}
	ra, _ := loadtest.ReadResult(a)
	rb, _ := loadtest.ReadResult(b)
	rm, err := loadtest.ReadResult(merged)
	if err != nil || rm.Completed != ra.Completed+rb.Completed {
		t.Errorf("merged completed %d, want %d (%v)", rm.Completed, ra.Completed+rb.Completed, err)
	}
	if code, out, _ := runCLI(t, nil, "loadtest", "report", merged); code != 0 || !strings.Contains(out, "smoke") {
		t.Errorf("report of merged: exit %d\n%s", code, out)
	}
}

func writeScenario(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "s.toml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const tinyScenario = `name = "tiny"
[duration]
total_seconds = 1
[arrival]
pattern = "constant"
rate = 50.0
[operations]
store_weight = 1.0
recall_weight = 1.0
[data]
num_nodes = 50
`

func TestLoadtestImpossibleThresholdExits3(t *testing.T) {
	url := startServer(t)
	p := writeScenario(t, tinyScenario+"[validation]\nexpected_p99_latency_ms = 0.001\n")
	code, out, errOut := runLoad(t, p, "--target", url)
	if code != exitNotPassed || !strings.Contains(out, "FAIL p99 latency") {
		t.Errorf("exit %d\n%s\n%s", code, out, errOut)
	}
}

func TestLoadtestBadInput(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"unknown scenario", []string{"loadtest", "run", "nosuch"}, exitUsage, "not a built-in scenario"},
		{"unknown key", []string{"loadtest", "run", writeScenario(t, tinyScenario+"bogus = 1\n")}, exitUsage, `unknown key "data.bogus"`},
		{"zero rate", []string{"loadtest", "run", writeScenario(t, strings.Replace(tinyScenario, "50.0", "0.0", 1))}, exitUsage, "must be > 0"},
		{"weights zero", []string{"loadtest", "run", writeScenario(t, strings.NewReplacer("store_weight = 1.0", "store_weight = 0.0", "recall_weight = 1.0", "recall_weight = 0.0").Replace(tinyScenario))}, exitUsage, "weights sum to 0"},
		{"negative --rate", []string{"loadtest", "run", "smoke", "--rate", "-3"}, exitUsage, "--rate"},
		{"bad target URL", []string{"loadtest", "run", "smoke", "--target", "ftp://x"}, exitUsage, "--target"},
		{"unreachable target", []string{"loadtest", "run", "smoke", "--target", dead}, exitFailed, "unreachable"},
		{"report missing file", []string{"loadtest", "report", "/nonexistent.json"}, exitFailed, "no such file"},
		{"report not a result", []string{"loadtest", "report", writeScenario(t, `{"schema":"x"}`)}, exitFailed, "not a loadtest result"},
		{"compare one arg", []string{"loadtest", "compare", "a.json"}, exitUsage, "accepts 2 arg"},
		{"show unknown", []string{"loadtest", "show", "nosuch"}, exitUsage, "no built-in scenario"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := runCLI(t, nil, append(tc.args, "--quiet")...)
			if code != tc.code || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d (want %d), stderr %q (want %q)", code, tc.code, errOut, tc.want)
			}
		})
	}
}

// A target that fails a share of recalls: errors are counted by kind, the
// run continues, and max_error_rate decides.
func TestLoadtestTargetErrorsCountedByKind(t *testing.T) {
	u, _ := url.Parse(startServer(t))
	proxy := httputil.NewSingleHostReverseProxy(u)
	var rng = rand.New(rand.NewPCG(1, 2))
	var mu = make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu <- struct{}{}
		fail := strings.HasSuffix(r.URL.Path, "/recall") && rng.IntN(3) == 0
		<-mu
		if fail {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"error":{"code":"OVERLOADED","message":"injected"}}`)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer srv.Close()
	p := writeScenario(t, tinyScenario+"[validation]\nmax_error_rate = 0.01\n")
	out := filepath.Join(t.TempDir(), "r.json")
	code, stdout, errOut := runLoad(t, p, "--target", srv.URL, "--out", out)
	if code != exitNotPassed || !strings.Contains(stdout, "503 OVERLOADED") || !strings.Contains(stdout, "FAIL error rate") {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, errOut)
	}
	res, err := loadtest.ReadResult(out)
	if err != nil {
		t.Fatal(err)
	}
	rec := res.Op("recall")
	if rec == nil || rec.ErrorsByKind["503 OVERLOADED"] == 0 || rec.OK == 0 || res.Op("store").Errors != 0 {
		t.Errorf("errors by kind: %+v", rec)
	}
}

func TestLoadtestInterruptWritesPartialResult(t *testing.T) {
	url := startServer(t)
	out := filepath.Join(t.TempDir(), "r.json")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	// Interrupt once the measured phase has made progress (the preload and
	// index settling before it take a variable time on a busy machine).
	go func() {
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) && ctx.Err() == nil {
			if strings.Contains(stderr.String(), "loadtest: measure") {
				time.Sleep(300 * time.Millisecond)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		cancel()
	}()
	a := newApp(strings.NewReader(""), &stdout, &stderr, func(string) string { return "" })
	code := a.run(ctx, []string{"loadtest", "run", "smoke", "--target", url, "--duration", "30s", "--warmup", "0s", "--out", out, "--progress-interval", "200ms"})
	if code != exitFailed || !strings.Contains(stderr.String(), "interrupted") {
		t.Fatalf("exit %d\n%s", code, stderr.String())
	}
	res, err := loadtest.ReadResult(out)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Interrupted || res.Completed == 0 || res.DurationSeconds > 5 {
		t.Errorf("partial result: interrupted %v completed %d duration %.1f", res.Interrupted, res.Completed, res.DurationSeconds)
	}
}

// After the preload the run waits for the server to index it, and the
// result records the wait (a separate server: the --target path).
func TestLoadtestPreloadSettlesIndex(t *testing.T) {
	url := startServer(t)
	out := filepath.Join(t.TempDir(), "r.json")
	preload := tinyScenario + "[preload]\nmemories = 50\n"
	code, stdout, errOut := runLoad(t, writeScenario(t, preload), "--target", url, "--out", out)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, errOut)
	}
	res, err := loadtest.ReadResult(out)
	if err != nil {
		t.Fatal(err)
	}
	if res.Setup.Preloaded != 50 || res.Setup.IndexPending != 0 || res.Setup.IndexSettleSeconds <= 0 {
		t.Errorf("setup %+v: want 50 preloaded, settled, the wait recorded", res.Setup)
	}
	if !strings.Contains(stdout, "index settled in") {
		t.Errorf("the report does not mention the wait:\n%s", stdout)
	}
	// settle_timeout_seconds = 0 does not wait; whatever is pending is reported.
	code, stdout, errOut = runLoad(t, writeScenario(t, preload+"settle_timeout_seconds = 0\n"), "--target", url, "--output", "json")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, errOut)
	}
	if r := checkSchema(t, []byte(stdout)); r.Setup.IndexPending > 0 && !strings.Contains(strings.Join(r.Audit.Findings, " "), "had not settled") {
		t.Errorf("%d pending but no finding: %q", r.Setup.IndexPending, r.Audit.Findings)
	}
}

func TestLoadtestCalibrate(t *testing.T) {
	url := startServer(t)
	args := []string{"loadtest", "calibrate", "--target", url, "--rounds", "1", "--phase", "300ms",
		"--check-rate", "200", "--check-duration", "300ms", "--quiet"}
	code, out, errOut := runCLI(t, nil, append(args, "--output", "json")...)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	var c loadtest.Calibration
	if err := json.Unmarshal([]byte(out), &c); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if len(c.TightLoopRates) != 1 || len(c.GeneratorRates) != 1 || c.TightLoopRate <= 0 || c.GeneratorRate <= 0 || c.Ratio <= 0 {
		t.Errorf("rates: %+v", c)
	}
	if c.Check == nil || c.Check.Scheduled != 60 || c.Check.Completed+c.Check.Audit.DroppedSends != 60 {
		t.Fatalf("check: %+v", c.Check)
	}
	switch c.Check.Audit.LimitedBy {
	case "", loadtest.LimitedByServer, loadtest.LimitedByGenerator, loadtest.LimitedByMachine:
	default:
		t.Errorf("limited_by %q", c.Check.Audit.LimitedBy)
	}
	code, out, errOut = runCLI(t, nil, args...)
	if code != 0 || !strings.Contains(out, "ratio") || !strings.Contains(out, "Scheduling check at 200 req/s") || !strings.Contains(out, "limited by") {
		t.Errorf("exit %d\n%s\n%s", code, out, errOut)
	}
}

// The table rendering of a fixed result is pinned by a golden file
// (go test ./cmd/engram-ops -run TestLoadtestReportGolden -update).
func TestLoadtestReportGolden(t *testing.T) {
	res := fixtureResult()
	p := filepath.Join(t.TempDir(), "r.json")
	if err := res.WriteFile(p); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, nil, "loadtest", "report", p)
	if code != 0 {
		t.Fatalf("exit %d %s", code, errOut)
	}
	golden(t, "loadtest-report.golden", out)
	// A run the machine limited, started before the index settled.
	res = fixtureResult()
	res.Setup.IndexSettleSeconds, res.Setup.IndexPending = 300, 1200
	wait := 6.5
	res.Audit.LateSends, res.Audit.LateDispatch, res.Audit.LateFraction, res.Audit.CPUWaitSec = 400, 350, 400.0/3000, &wait
	res.Audit.LimitedBy, res.Audit.Findings = loadtest.LimitedByMachine, []string{"an example finding"}
	if err := res.WriteFile(p); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runCLI(t, nil, "loadtest", "report", p)
	if code != 0 {
		t.Fatalf("exit %d %s", code, errOut)
	}
	golden(t, "loadtest-report-contention.golden", out)
	code, out, _ = runCLI(t, nil, "loadtest", "list")
	if code != 0 {
		t.Fatal(code)
	}
	golden(t, "loadtest-list.golden", out)
}

func fixtureResult() *loadtest.Result {
	hist := func(base int64, n int) loadtest.HistSummary {
		h := loadtest.NewHistogram()
		for i := range n {
			_ = h.RecordValue(base + int64(i*i)%(base*20))
		}
		return loadtest.Summarize(h)
	}
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	r := &loadtest.Result{Schema: loadtest.SchemaName, SchemaVersion: loadtest.SchemaVersion,
		Scenario:  loadtest.ScenarioInfo{Name: "fixture", Description: "A fixed result for the golden file", Pattern: "constant"},
		Target:    loadtest.TargetInfo{URL: "http://127.0.0.1:7432", Version: "v1.0.0"},
		Generator: loadtest.GeneratorInfo{Version: "test", Hosts: []string{"gen1"}, GOMAXPROCS: 2, NumCPU: 2},
		StartedAt: t0, EndedAt: t0.Add(12 * time.Second), DurationSeconds: 10, WarmupSeconds: 2,
		RequestedRate: 300, AchievedRate: 299.5, Scheduled: 3000, Completed: 2995, Errors: 5, ErrorRate: 5.0 / 2995,
		Setup: loadtest.SetupInfo{Spaces: []string{"lt-0", "lt-0-vec"}, Preloaded: 2000, PreloadSeconds: 1.25},
		Audit: loadtest.Audit{LateAfterMS: 1, DropAfterMS: 1000, LateSends: 12, LateFraction: 0.004, MaxWorkers: 1024, PeakWorkers: 17,
			SchedulingLag: hist(20, 3000), CPUUserSec: 1.5, CPUSystemSec: 0.5, CPUCores: 0.17,
			Findings: []string{"an example finding"}},
		Operations: []loadtest.OpResult{
			{Name: "store", Count: 1500, OK: 1495, Errors: 5, Rate: 150, ErrorsByKind: map[string]int64{"503 OVERLOADED": 3, "timeout": 2},
				Corrected: hist(900, 1500), Uncorrected: hist(800, 1500)},
			{Name: "recall", Count: 1495, OK: 1495, Rate: 149.5, ErrorsByKind: map[string]int64{},
				Corrected: hist(1500, 1495), Uncorrected: hist(1400, 1495),
				Recall: &loadtest.RecallStat{K: 10, Checked: 1495, Expected: 1495, Found: 1480, AtK: 1480.0 / 1495}},
		}}
	loadtest.Validate(r, loadtest.Validation{MaxErrorRate: ptr(0.001), ExpectedP99LatencyMS: ptr(50)})
	return r
}

func ptr(f float64) *float64 { return &f }
