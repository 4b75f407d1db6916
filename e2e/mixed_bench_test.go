package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/engram-ops/engram-ops/internal/cputime"
	"github.com/engram-ops/engram-ops/loadtest"
	"github.com/engram-ops/engram-ops/tui"
)

// mixedScenario is mixed_balanced with its operation weights replaced (the
// per-operation runs use one weight each, the same data and rate).
func mixedScenario(b *testing.B, store, recall, search float64) string {
	src := fmt.Sprintf(`name = "mixed_parts"
description = "mixed_balanced's data with weights %g/%g/%g"
[duration]
total_seconds = 20
[warmup]
seconds = 3
[arrival]
pattern = "constant"
rate = 500.0
[operations]
store_weight = %g
recall_weight = %g
embedding_search_weight = %g
[data]
num_nodes = 4000
embedding_dim = 768
memory_spaces = 1
[data.embedding_distribution]
type = "clustered"
num_clusters = 10
std_dev = 0.1
[preload]
memories = 4000
[ground_truth]
k = 10
cue_pool = 128
`, store, recall, search, store, recall, search)
	p := filepath.Join(b.TempDir(), "scenario.toml")
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		b.Fatal(err)
	}
	return p
}

// serverGauges polls a server's /metrics for the index backlog (summed over
// spaces) and the writes refused for it, keeping the largest backlog seen.
type serverGauges struct {
	url              string
	stop, done       chan struct{}
	maxPending       atomic.Int64
	lastPending      atomic.Int64
	refused, waiting atomic.Int64
}

func watchServer(url string) *serverGauges {
	g := &serverGauges{url: url, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(g.done)
		for {
			g.poll()
			select {
			case <-g.stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return g
}

func (g *serverGauges) poll() {
	resp, err := httpClient.Get(g.url + "/metrics")
	if err != nil {
		return
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return
	}
	fams, err := tui.ParseMetrics(tui.Exposition{Body: body, ContentType: resp.Header.Get("Content-Type")})
	if err != nil {
		return
	}
	total := func(name string) float64 {
		var v float64
		if f := fams[name]; f != nil {
			for _, m := range f.GetMetric() {
				v += m.GetGauge().GetValue() + m.GetCounter().GetValue()
			}
		}
		return v
	}
	pending := int64(total("engram_index_pending_memories"))
	g.refused.Store(int64(total("engram_index_backlog_refused_writes_total")))
	g.waiting.Store(int64(total("engram_index_backpressure_waits_total")))
	g.lastPending.Store(pending)
	if pending > g.maxPending.Load() {
		g.maxPending.Store(pending)
	}
}

func (g *serverGauges) close() { close(g.stop); <-g.done; g.poll() }

// loadRun is one `engram-ops loadtest run` in its own process with the
// server's CPU over its measured phase.
type loadRun struct {
	res       *loadtest.Result
	serverCPU float64 // seconds, measured phase only
	measured  float64 // seconds of the measured phase the server CPU covers
	genCPU    float64 // the generator's CPU seconds over warm-up and measured phase
}

// runLoad runs scenario at rate against s. The server's CPU is read when
// the generator reports its first measured-phase progress and when it
// exits, and scaled to the whole measured phase.
func runLoad(b *testing.B, s *server, scenario string, rate int, dur time.Duration) loadRun {
	b.Helper()
	out := filepath.Join(b.TempDir(), "r.json")
	cmd := exec.Command(binPath, "loadtest", "run", scenario, "--rate", strconv.Itoa(rate),
		"--duration", dur.String(), "--target", s.URL, "--out", out, "--progress-interval", "200ms")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	var (
		mu       sync.Mutex
		cpu0     = -1.0
		elapsed0 float64
		tail     []string
	)
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		line := sc.Text()
		mu.Lock()
		if tail = append(tail, line); len(tail) > 20 {
			tail = tail[1:]
		}
		if f := strings.Fields(strings.TrimPrefix(line, "loadtest: ")); cpu0 < 0 && len(f) > 1 && f[0] == "measure" {
			cpu0, _ = cputime.Threads(s.PID())
			el, _, _ := strings.Cut(f[1], "s/")
			elapsed0, _ = strconv.ParseFloat(el, 64)
		}
		mu.Unlock()
	}
	cpu1, _ := cputime.Threads(s.PID())
	if err := cmd.Wait(); err != nil {
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 {
			b.Fatalf("loadtest run: %v\n%s", err, strings.Join(tail, "\n"))
		}
	}
	r, err := loadtest.ReadResult(out)
	if err != nil {
		b.Fatal(err)
	}
	lr := loadRun{res: r, genCPU: r.Audit.CPUUserSec + r.Audit.CPUSystemSec}
	if cpu0 >= 0 && cpu1 >= cpu0 {
		lr.serverCPU, lr.measured = cpu1-cpu0, r.DurationSeconds-elapsed0
	}
	return lr
}

// BenchmarkMixedSustained is the sustained mixed load a user would offer:
// mixed_balanced (40% text remembers, 50% text recalls, 10% vector
// searches; 768 dimensions) from the load tester in its own process, at
// increasing rates, each on a fresh server with the default bound on the
// index backlog. It reports, for each rate, the achieved rate, p99 and the
// largest backlog, and the highest rate holding p99 < 50 ms with the
// backlog bounded and nothing refused. Next to it, in the same run: the
// trivial /health/alive handler's ceiling, and the ceiling the sum of the
// parts allows: each operation alone at a moderate rate, with the server's
// CPU per operation (a remember's includes the index insertion it defers,
// measured until the backlog drains) and the generator's, so that
// cores / Σ weight × CPU is the most the machine could complete.
// ENGRAM_BENCH_MIXED_RATES overrides the rates (comma-separated).
func BenchmarkMixedSustained(b *testing.B) {
	dur := 20 * time.Second
	if d, err := time.ParseDuration(os.Getenv("ENGRAM_BENCH_MIXED_DURATION")); err == nil {
		dur = d
	}
	// The ceiling of a trivial handler on this machine state.
	{
		s := startServer(b, b.TempDir(), "--no-access-log")
		out, err := exec.Command(binPath, "loadtest", "calibrate", "--target", s.URL, "--rounds", "1", "--phase", "3s",
			"--check-duration", "3s", "--output", "json", "--quiet").Output()
		if err != nil {
			b.Fatalf("calibrate: %v\n%s", err, out)
		}
		var cal struct {
			TightLoopRate float64 `json:"tight_loop_rate"`
			GeneratorRate float64 `json:"generator_rate"`
		}
		if err := json.Unmarshal(out, &cal); err != nil {
			b.Fatalf("calibrate output: %v\n%s", err, out)
		}
		fmt.Fprintf(os.Stderr, "ceiling /health/alive: tight net/http loop %.0f req/s, load generator %.0f req/s\n", cal.TightLoopRate, cal.GeneratorRate)
		s.Stop()
	}
	// The parts: each operation alone.
	weights := map[string]float64{"store": 0.4, "recall": 0.5, "embedding_search": 0.1}
	perOp := map[string]float64{}
	for _, op := range []string{"store", "recall", "embedding_search"} {
		w := func(name string) float64 {
			if name == op {
				return 1
			}
			return 0
		}
		s := startServer(b, b.TempDir(), "--no-access-log")
		const partRate = 400
		lr := runLoad(b, s, mixedScenario(b, w("store"), w("recall"), w("embedding_search")), partRate, dur)
		o := lr.res.Op(op)
		if o == nil || lr.measured <= 0 {
			b.Fatalf("%s alone: no figures", op)
		}
		done := float64(o.OK)
		serverCPU := lr.serverCPU / lr.measured * lr.res.DurationSeconds
		deferred := 0.0
		if op == "store" { // the index insertions it left behind
			before, _ := cputime.Threads(s.PID())
			for _, sp := range lr.res.Setup.Spaces {
				waitIndexed(b, s, sp)
			}
			after, _ := cputime.Threads(s.PID())
			deferred = after - before
			serverCPU += deferred
		}
		// The generator's CPU covers warm-up too: scale by the operations
		// it sent then, at the same rate.
		gen := lr.genCPU * lr.res.DurationSeconds / (lr.res.DurationSeconds + lr.res.WarmupSeconds)
		perOp[op] = (serverCPU + gen) / done
		fmt.Fprintf(os.Stderr, "%-17s alone at %d/s: server %.0f µs CPU per op (%.0f µs of it deferred index insertion), generator %.0f µs; p99 %.2f ms, errors %d\n",
			op, partRate, 1e6*serverCPU/done, 1e6*deferred/done, 1e6*gen/done, o.Corrected.P99MS, o.Errors)
		s.Stop()
	}
	mixCPU := 0.0
	for op, w := range weights {
		mixCPU += w * perOp[op]
	}
	bound := float64(runtime.NumCPU()) / mixCPU
	fmt.Fprintf(os.Stderr, "sum of the parts: %.0f µs of CPU per mixed_balanced operation, server and generator: at most %.0f ops/s on %d cores\n",
		1e6*mixCPU, bound, runtime.NumCPU())
	b.ReportMetric(bound, "bound-ops/s")

	rates := []int{600, 800, 1000, 1500, 2000}
	if env := os.Getenv("ENGRAM_BENCH_MIXED_RATES"); env != "" {
		rates = rates[:0]
		for _, f := range strings.Split(env, ",") {
			r, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				b.Fatalf("ENGRAM_BENCH_MIXED_RATES: %v", err)
			}
			rates = append(rates, r)
		}
	}
	best := 0.0
	for _, rate := range rates {
		s := startServer(b, b.TempDir(), "--no-access-log")
		g := watchServer(s.URL)
		lr := runLoad(b, s, filepath.Join("..", "loadtest", "scenarios", "mixed_balanced.toml"), rate, dur)
		g.close()
		r := lr.res
		p99 := 0.0
		for _, o := range r.Operations {
			p99 = max(p99, o.Corrected.P99MS)
		}
		ok := p99 < 50 && r.Errors == 0 && g.refused.Load() == 0 && r.AchievedRate >= 0.95*float64(rate)
		verdict := "holds"
		if !ok {
			verdict = "does not hold"
		} else {
			best = max(best, r.AchievedRate)
		}
		fmt.Fprintf(os.Stderr, "mixed_balanced at %d/s: achieved %.0f/s, worst corrected p99 %.2f ms (store %.2f, recall %.2f, search %.2f), errors %d, dropped %d; backlog max %d, at the end %d, writes held %d, refused %d; server %.2f cores, generator %.2f; %s (%.2f of the sum-of-parts bound)\n",
			rate, r.AchievedRate, p99, opP99(r, "store"), opP99(r, "recall"), opP99(r, "embedding_search"), r.Errors, r.Audit.DroppedSends,
			g.maxPending.Load(), g.lastPending.Load(), g.waiting.Load(), g.refused.Load(),
			lr.serverCPU/max(lr.measured, 1e-9), r.Audit.CPUCores, verdict, r.AchievedRate/bound)
		s.Stop()
	}
	b.ReportMetric(best, "sustained-ops/s")
	fmt.Fprintf(os.Stderr, "highest rate holding p99 < 50 ms with the backlog bounded: %.0f ops/s = %.2f of the sum-of-parts bound (%.0f)\n", best, best/bound, bound)
}

func opP99(r *loadtest.Result, name string) float64 {
	if o := r.Op(name); o != nil {
		return o.Corrected.P99MS
	}
	return 0
}

// BenchmarkWriteBurstThenRecall: recall latency during and after a write
// burst at the most the server accepts. A space of 20,000 text memories
// (768 dimensions, indexed) gets 20 clients remembering as fast as the
// server lets them for 10 s twice: first while it is recalled by text cue
// at a fixed 200/s (recall during the burst), then alone, with the same
// recalls right after it (recall after the burst, over whatever backlog the
// burst left). Reports both recall p99s, the remembers accepted per second
// in each burst, and the largest index backlog, which the default bound
// (index.max_pending) keeps recall's exact scan within.
// ENGRAM_BENCH_SERVER_ARGS="--set index.max_pending=0" gives the reference
// without the bound.
func BenchmarkWriteBurstThenRecall(b *testing.B) {
	s := startServer(b, b.TempDir(), strings.Fields(os.Getenv("ENGRAM_BENCH_SERVER_ARGS"))...)
	const space, preload = "burst", 20000
	r := rand.New(rand.NewSource(7))
	contents := make([]string, preload)
	for i := range contents {
		contents[i] = sentence(r)
	}
	for i := 0; i < preload; i += 500 {
		var ms []map[string]any
		for _, c := range contents[i:min(i+500, preload)] {
			ms = append(ms, map[string]any{"content": c})
		}
		body, _ := json.Marshal(map[string]any{"memories": ms})
		if err := doJSON("POST", s.URL+"/api/v1/memories/batch", body, map[string]string{"X-Memory-Space": space}, 201, nil); err != nil {
			b.Fatal(err)
		}
	}
	fmt.Fprintf(os.Stderr, "preloaded %d memories, indexed in %v\n", preload, waitIndexed(b, s, space).Round(time.Millisecond))
	recall := func(i int) error {
		words := strings.Fields(contents[(i*7919)%preload])
		body, _ := json.Marshal(map[string]any{"query": strings.Join(words[:8], " "), "max_results": 10})
		return doJSON("POST", s.URL+"/api/v1/memories/recall", body, map[string]string{"X-Memory-Space": space}, 200, nil)
	}
	const recallRate, phase = 200.0, 10 * time.Second
	n := int(recallRate * phase.Seconds())

	// startBurst starts 20 clients remembering as fast as the server
	// answers, in a process of their own so the recalls measured here do
	// not queue behind them in this process's scheduler; the returned func
	// stops them and says how many writes were accepted and refused, over
	// how long.
	startBurst := func(seed int64) func() (accepted, refused int64, took time.Duration) {
		return startBurstWriter(b, s.URL, space, seed, 20)
	}

	// Burst 1, recalled meanwhile.
	g := watchServer(s.URL)
	stopBurst := startBurst(0)
	cont := startContention(s.PID())
	slow := slowRecalls(s.URL)
	_, during, errsDuring := openLoop(n, recallRate, recall)
	slowRecalls(s.URL).report(b, slow, "recall during the burst", "during-")
	cont.report(b, "recall during the burst", "during-")
	accepted, refused, took := stopBurst()
	reportAs(b, "recall at 200/s during the burst", "during-", n, phase, during, errsDuring)
	fmt.Fprintf(os.Stderr, "burst with recalls: %d remembers accepted in %v (%.0f/s), %d refused; largest index backlog %d\n",
		accepted, took.Round(time.Millisecond), float64(accepted)/took.Seconds(), refused, g.maxPending.Load())
	b.ReportMetric(float64(accepted)/took.Seconds(), "burst-writes/s")
	waitIndexed(b, s, space)

	// Burst 2, alone; then the recalls.
	g.maxPending.Store(0)
	stopBurst = startBurst(100)
	time.Sleep(phase)
	accepted, refused, took = stopBurst()
	g.poll()
	left := g.lastPending.Load()
	fmt.Fprintf(os.Stderr, "burst alone: %d remembers accepted in %v (%.0f/s), %d refused; index backlog at its end %d; writes held %d, refused by the bound %d\n",
		accepted, took.Round(time.Millisecond), float64(accepted)/took.Seconds(), refused, left, g.waiting.Load(), g.refused.Load())
	b.ReportMetric(float64(accepted)/took.Seconds(), "alone-burst-writes/s")
	b.ReportMetric(float64(left), "backlog-after-burst")
	cont = startContention(s.PID())
	slow = slowRecalls(s.URL)
	_, after, errsAfter := openLoop(n, recallRate, recall)
	slowRecalls(s.URL).report(b, slow, "recall after the burst", "after-")
	cont.report(b, "recall after the burst", "after-")
	g.close()
	reportAs(b, "recall at 200/s after the burst", "after-", n, phase, after, errsAfter)
	fmt.Fprintf(os.Stderr, "after the burst: largest index backlog %d, at the end %d\n", g.maxPending.Load(), g.lastPending.Load())
}

// slowCounts are how many recalls a server has served in over 10 ms, as
// its HTTP handler and its engine operation timed them (the histograms on
// /metrics): set beside the latency the client saw, they say how much of a
// tail was spent outside the server's handler (the network, the client,
// waiting for a CPU before the request is read).
type slowCounts struct{ handler, engine float64 }

func slowRecalls(url string) slowCounts {
	resp, err := httpClient.Get(url + "/metrics")
	if err != nil {
		return slowCounts{}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fams, err := tui.ParseMetrics(tui.Exposition{Body: body, ContentType: resp.Header.Get("Content-Type")})
	if err != nil {
		return slowCounts{}
	}
	over10ms := func(name, label, value string) (n float64) {
		if f := fams[name]; f != nil {
			for _, m := range f.GetMetric() {
				if !slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool {
					return l.GetName() == label && strings.HasSuffix(l.GetValue(), value)
				}) {
					continue
				}
				h := m.GetHistogram()
				for _, bk := range h.GetBucket() {
					if bk.GetUpperBound() == 0.01 {
						n += float64(h.GetSampleCount() - bk.GetCumulativeCount())
					}
				}
			}
		}
		return n
	}
	return slowCounts{
		handler: over10ms("engram_http_request_duration_seconds", "route", "/recall"),
		engine:  over10ms("engram_memory_operation_duration_seconds", "operation", "recall"),
	}
}

// report prints and reports the recalls over 10 ms since before.
func (c slowCounts) report(b *testing.B, before slowCounts, name, prefix string) {
	h, e := c.handler-before.handler, c.engine-before.engine
	fmt.Fprintf(os.Stderr, "%s: %.0f recalls over 10 ms in the server's handler, %.0f in the engine\n", name, h, e)
	b.ReportMetric(h, prefix+"server-over-10ms")
}

// burstWriterEnv, set to "URL SPACE SEED CLIENTS", makes the test binary
// run burstWriterMain instead of the tests (see TestMain).
const burstWriterEnv = "ENGRAM_BENCH_BURST_WRITER"

// burstWriterMain remembers sentences into SPACE from CLIENTS connections
// as fast as the server answers, until stdin closes; then it prints the
// writes accepted and refused.
func burstWriterMain(spec string) int {
	var (
		url, space string
		seed       int64
		clients    int
		acc, ref   atomic.Int64
		wg         sync.WaitGroup
	)
	if _, err := fmt.Sscan(spec, &url, &space, &seed, &clients); err != nil {
		fmt.Fprintf(os.Stderr, "%s=%q: want URL SPACE SEED CLIENTS: %v\n", burstWriterEnv, spec, err)
		return 2
	}
	stop := make(chan struct{})
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewSource(seed + int64(c)))
			for {
				select {
				case <-stop:
					return
				default:
				}
				body, _ := json.Marshal(map[string]any{"content": sentence(r)})
				if err := doJSON("POST", url+"/api/v1/memories/remember", body, map[string]string{"X-Memory-Space": space}, 201, nil); err != nil {
					ref.Add(1)
					time.Sleep(10 * time.Millisecond)
					continue
				}
				acc.Add(1)
			}
		}()
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
	close(stop)
	wg.Wait()
	fmt.Println(acc.Load(), ref.Load())
	return 0
}

// startBurstWriter starts burstWriterMain in a child process; the returned
// func stops it and returns its counts and how long it ran.
func startBurstWriter(b *testing.B, url, space string, seed int64, clients int) func() (accepted, refused int64, took time.Duration) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %s %d %d", burstWriterEnv, url, space, seed, clients))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	var out strings.Builder
	cmd.Stdout = &out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	return func() (int64, int64, time.Duration) {
		stdin.Close()
		err := cmd.Wait()
		took := time.Since(start)
		var acc, ref int64
		if _, serr := fmt.Sscan(out.String(), &acc, &ref); err != nil || serr != nil {
			b.Fatalf("burst writer: %v %v (output %q)", err, serr, out.String())
		}
		return acc, ref, took
	}
}
