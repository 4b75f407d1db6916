package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/engram-ops/engram-ops/internal/cputime"
	"github.com/engram-ops/engram-ops/ops/client"
)

// The benchmarks drive the real binary over loopback, as a client would.
// Each runs a fixed amount of work once (use -benchtime=1x) and reports
// rates and latency percentiles with b.ReportMetric; the trivial-handler
// ceiling is measured in the same process run so ratios are what count.
//
//	go test -run '^$' -bench . -benchtime 1x ./e2e/

// latencies collects per-request latencies.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

func (l *latencies) pct(p float64) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.d) == 0 {
		return 0
	}
	sort.Slice(l.d, func(i, j int) bool { return l.d[i] < l.d[j] })
	i := int(math.Ceil(p*float64(len(l.d)))) - 1
	return l.d[max(i, 0)]
}

func report(b *testing.B, name string, n int, elapsed time.Duration, l *latencies, errs int64) {
	reportAs(b, name, "", n, elapsed, l, errs)
}

// reportAs is report with metric units prefixed by prefix, for a benchmark
// that reports two phases.
func reportAs(b *testing.B, name, prefix string, n int, elapsed time.Duration, l *latencies, errs int64) {
	rate := float64(n) / elapsed.Seconds()
	b.ReportMetric(rate, prefix+"req/s")
	b.ReportMetric(float64(l.pct(0.50).Microseconds())/1000, prefix+"p50-ms")
	b.ReportMetric(float64(l.pct(0.99).Microseconds())/1000, prefix+"p99-ms")
	b.ReportMetric(float64(errs), prefix+"errors")
	fmt.Fprintf(os.Stderr, "%-28s %8.0f req/s  p50 %6.2f ms  p99 %6.2f ms  errors %d  (n=%d)\n",
		name, rate, float64(l.pct(0.5).Microseconds())/1000, float64(l.pct(0.99).Microseconds())/1000, errs, n)
}

// contention measures, over one phase of a benchmark, the CPU the server's
// threads and this process's used and how long they waited for a CPU while
// runnable (Linux schedstat), the CPU everything else on the machine used
// (other processes and kernel threads: the machine's time neither idle nor
// stolen, less the server's and this process's) and the share of the
// machine's time the hypervisor gave to other guests (steal). On a shared
// two-core machine these say whether a phase's tail was the server's own
// work or a busy machine.
type contention struct {
	serverPID             int
	serverRun, serverWait float64 // schedstat seconds at the start, -1 unknown
	clientRun, clientWait float64
	steal, idle, total    uint64 // /proc/stat ticks at the start, 0 unknown
	start                 time.Time
}

// warnHostOnce tells, once per run, of host settings known to set a tail of
// their own.
var warnHostOnce sync.Once

// warnHost prints a note when the kernel's DAMON monitor runs: under load its
// sampling passes hold a core long enough to set the tail themselves
// (docs/benchmarks.md, "Host effects"; runbooks/serving.md, "Stalls the
// host's kernel causes").
func warnHost() {
	states, _ := filepath.Glob("/sys/kernel/mm/damon/admin/kdamonds/*/state")
	for _, p := range states {
		if b, err := os.ReadFile(p); err == nil && strings.TrimSpace(string(b)) == "on" {
			fmt.Fprintf(os.Stderr, "note: the kernel's DAMON monitor is on (%s): under load each of its sampling passes takes a core for tens of ms, which shows in every phase's p99 and as \"everything else\"\n", p)
		}
	}
}

func startContention(serverPID int) contention {
	warnHostOnce.Do(warnHost)
	c := contention{serverPID: serverPID, start: time.Now()}
	c.serverRun, c.serverWait = cputime.Threads(serverPID)
	c.clientRun, c.clientWait = cputime.Threads(0)
	m := cputime.Machine()
	c.steal, c.idle, c.total = m.Steal, m.Idle, m.Total
	return c
}

// report prints the phase's CPU use and waits per second of the phase and
// its steal, and reports the server's wait as prefix+"server-cpu-wait-ms/s"
// and the rest of the machine's CPU as prefix+"other-cores". It returns
// the CPU time the server used over the phase (0 if unknown).
func (c contention) report(b *testing.B, name, prefix string) (serverCPU time.Duration) {
	secs := time.Since(c.start).Seconds()
	serverRun, serverWait := cputime.Threads(c.serverPID)
	clientRun, clientWait := cputime.Threads(0)
	if c.serverRun < 0 || serverRun < 0 || c.clientRun < 0 || clientRun < 0 {
		return 0
	}
	m := cputime.Machine()
	steal, idle, total := m.Steal, m.Idle, m.Total
	stealPct, others := 0.0, 0.0
	if total > c.total {
		ticks := float64(total - c.total)
		stealPct = 100 * float64(steal-c.steal) / ticks
		// Idle time is measured precisely on tickless kernels, but the busy
		// ticks are sampled and miss work done with interrupts off, so the
		// machine's busy time is its capacity less idle and steal.
		busy := float64(runtime.NumCPU())*secs - float64(idle-c.idle+steal-c.steal)/cputime.TicksPerSecond
		others = max(0, busy-(serverRun-c.serverRun)-(clientRun-c.clientRun)) / secs
	}
	b.ReportMetric(1000*(serverWait-c.serverWait)/secs, prefix+"server-cpu-wait-ms/s")
	b.ReportMetric(others, prefix+"other-cores")
	fmt.Fprintf(os.Stderr, "%-28s cores used: server %.2f, benchmark client %.2f, everything else %.2f; waited for a CPU per second: server %.0f ms, benchmark client %.0f ms; steal %.1f%%\n",
		name, (serverRun-c.serverRun)/secs, (clientRun-c.clientRun)/secs, others,
		1000*(serverWait-c.serverWait)/secs, 1000*(clientWait-c.clientWait)/secs, stealPct)
	return time.Duration((serverRun - c.serverRun) * float64(time.Second))
}

var benchClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256}}

// closedLoop runs n requests from c concurrent clients, each sending its next
// request when the previous answers.
func closedLoop(n, c int, do func(i int) error) (time.Duration, *latencies, int64) {
	var next, errs atomic.Int64
	l := &latencies{d: make([]time.Duration, 0, n)}
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < c; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				t0 := time.Now()
				if err := do(i); err != nil {
					errs.Add(1)
				}
				l.add(time.Since(t0))
			}
		}()
	}
	wg.Wait()
	return time.Since(start), l, errs.Load()
}

// openLoop sends n requests at a fixed rate regardless of answers, measuring
// latency from the intended send time (so a stalled server is not hidden).
func openLoop(n int, rate float64, do func(i int) error) (time.Duration, *latencies, int64) {
	var errs atomic.Int64
	l := &latencies{d: make([]time.Duration, 0, n)}
	byStart := make([]time.Duration, n) // latency of request i, for the timeline
	var wg sync.WaitGroup
	interval := time.Duration(float64(time.Second) / rate)
	start := time.Now()
	for i := 0; i < n; i++ {
		intended := start.Add(time.Duration(i) * interval)
		if d := time.Until(intended); d > 0 {
			time.Sleep(d)
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if err := do(i); err != nil {
				errs.Add(1)
			}
			byStart[i] = time.Since(intended)
			l.add(byStart[i])
		}(i)
	}
	wg.Wait()
	if os.Getenv("ENGRAM_BENCH_TIMELINE") != "" {
		fmt.Fprintf(os.Stderr, "phase started %s\n", start.UTC().Format(time.RFC3339Nano))
		printTimeline(byStart, interval)
	}
	return time.Since(start), l, errs.Load()
}

// printTimeline prints the worst latency of each 250 ms of intended send
// times (ENGRAM_BENCH_TIMELINE=1): when a tail comes from stalls, it shows
// when they happened.
func printTimeline(byStart []time.Duration, interval time.Duration) {
	per := max(1, int(250*time.Millisecond/interval))
	var line strings.Builder
	for off := 0; off < len(byStart); off += per {
		worst := time.Duration(0)
		for _, d := range byStart[off:min(off+per, len(byStart))] {
			worst = max(worst, d)
		}
		fmt.Fprintf(&line, " %.0f", float64(worst.Microseconds())/1000)
	}
	fmt.Fprintf(os.Stderr, "worst latency (ms) per 250 ms of sends:%s\n", line.String())
}

func doJSON(method, url string, body []byte, header map[string]string, want int, out any) error {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := benchClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s %s: %d %s", method, url, resp.StatusCode, msg)
	}
	if out != nil {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}

func ceiling(b *testing.B, s *server, n, c int) {
	elapsed, l, errs := closedLoop(n, c, func(int) error {
		return doJSON("GET", s.URL+"/health/alive", nil, nil, 200, nil)
	})
	report(b, "ceiling /health/alive", n, elapsed, l, errs)
}

var words = []string{"river", "mountain", "ocean", "forest", "city", "engine", "signal", "memory", "protein", "galaxy",
	"harbor", "lantern", "violin", "glacier", "orchard", "circuit", "library", "comet", "meadow", "canyon"}

func sentence(r *rand.Rand) string {
	var bb bytes.Buffer
	for i := 0; i < 12; i++ {
		bb.WriteString(words[r.Intn(len(words))])
		bb.WriteByte(' ')
	}
	bb.WriteString(strconv.Itoa(r.Int()))
	return bb.String()
}

// BenchmarkHTTPRemember: concurrent clients remembering text (embedded by
// the built-in embedder) with sync durability, next to the ceiling, for 16,
// 20, 24, 32 and 64 clients. In a closed loop each client waits for its answer, so
// more clients buy throughput (bigger fsync groups) with latency: the sweep
// shows where the rate passes 5,000/s and what the p99 is there. Each count
// gets a fresh server. The bound on the index backlog is off: this is the
// durable write path's rate, which a burst gets until the backlog reaches
// index.max_pending; the rate a space sustains is its indexing rate
// (BenchmarkWriteBurstThenRecall, BenchmarkMixedSustained).
func BenchmarkHTTPRemember(b *testing.B) {
	for _, c := range []int{16, 20, 24, 32, 64} {
		b.Run(fmt.Sprintf("clients=%d", c), func(b *testing.B) {
			args := append([]string{"--set", "index.max_pending=0"}, strings.Fields(os.Getenv("ENGRAM_BENCH_SERVER_ARGS"))...)
			s := startServer(b, b.TempDir(), args...)
			const n = 30000
			ceiling(b, s, n, c)
			bodies := make([][]byte, n)
			r := rand.New(rand.NewSource(1))
			for i := range bodies {
				bodies[i], _ = json.Marshal(map[string]any{"content": sentence(r), "confidence": 0.8})
			}
			b.ResetTimer()
			cont := startContention(s.Cmd.Process.Pid)
			elapsed, l, errs := closedLoop(n, c, func(i int) error {
				return doJSON("POST", s.URL+"/api/v1/memories/remember", bodies[i], nil, 201, nil)
			})
			name := fmt.Sprintf("remember (sync, %d clients)", c)
			report(b, name, n, elapsed, l, errs)
			cont.report(b, name, "")
		})
	}
}

// clustered returns n unit vectors of dimension dim around k random centres.
func clustered(n, dim, k int, seed int64) [][]float32 {
	r := rand.New(rand.NewSource(seed))
	centres := make([][]float32, k)
	for i := range centres {
		centres[i] = make([]float32, dim)
		for j := range centres[i] {
			centres[i][j] = float32(r.NormFloat64())
		}
	}
	out := make([][]float32, n)
	for i := range out {
		c := centres[r.Intn(k)]
		v := make([]float32, dim)
		var norm float64
		for j := range v {
			v[j] = c[j] + float32(r.NormFloat64()*0.6)
			norm += float64(v[j]) * float64(v[j])
		}
		inv := float32(1 / math.Sqrt(norm))
		for j := range v {
			v[j] *= inv
		}
		out[i] = v
	}
	return out
}

func dot(a, b []float32) float32 {
	var s float32
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

func waitIndexed(b *testing.B, s *server, space string) time.Duration {
	start := time.Now()
	for {
		var sp struct {
			IndexPending int `json:"index_pending"`
		}
		if err := doJSON("GET", s.URL+"/api/v1/spaces/"+space, nil, nil, 200, &sp); err != nil {
			b.Fatal(err)
		}
		if sp.IndexPending == 0 {
			return time.Since(start)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

type recallResp struct {
	Memories struct {
		Vivid []struct {
			ID string `json:"id"`
		} `json:"vivid"`
	} `json:"memories"`
}

// BenchmarkHTTPRecall100k: 100,000 memories of dimension 768 (clustered
// vectors, as text embeddings are), recalled at a fixed 1,000/s by vector
// cue; reports latency from the intended send time, ANN recall@10 against
// an exact scan, and restart time with the data set.
func BenchmarkHTTPRecall100k(b *testing.B) {
	const n, dim, queries = 100_000, 768, 10_000
	dir := b.TempDir()
	// ENGRAM_BENCH_SERVER_ARGS adds serve flags (as for BenchmarkHTTPRemember),
	// e.g. a profiling endpoint: --set server.debug_listen=127.0.0.1:6060
	s := startServer(b, dir, strings.Fields(os.Getenv("ENGRAM_BENCH_SERVER_ARGS"))...)
	space := "bench"
	if err := doJSON("POST", s.URL+"/api/v1/spaces", []byte(`{"id":"bench","dimension":768}`), nil, 201, nil); err != nil {
		b.Fatal(err)
	}
	vecs := clustered(n, dim, 200, 7)
	hdr := map[string]string{"X-Memory-Space": space}
	loadStart := time.Now()
	const batch = 500
	var wg sync.WaitGroup
	sem := make(chan struct{}, 2)
	var loadErr atomic.Value
	for off := 0; off < n; off += batch {
		var mems []map[string]any
		for i := off; i < off+batch; i++ {
			mems = append(mems, map[string]any{"id": "v" + strconv.Itoa(i), "content": "vector memory " + strconv.Itoa(i), "embedding": vecs[i], "confidence": 0.9})
		}
		body, _ := json.Marshal(map[string]any{"memories": mems})
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := doJSON("POST", s.URL+"/api/v1/memories/batch", body, hdr, 201, nil); err != nil {
				loadErr.Store(err)
			}
		}()
	}
	wg.Wait()
	if err, _ := loadErr.Load().(error); err != nil {
		b.Fatal(err)
	}
	loaded := time.Since(loadStart)
	indexWait := waitIndexed(b, s, space)
	fmt.Fprintf(os.Stderr, "loaded %d vectors in %v (%.0f/s); index caught up %v later\n", n, loaded.Round(time.Millisecond), float64(n)/loaded.Seconds(), indexWait.Round(time.Millisecond))
	ceiling(b, s, 20000, 32)

	qs := clustered(queries, dim, 200, 7) // same centres, fresh points
	bodies := make([][]byte, queries)
	for i := range qs {
		bodies[i], _ = json.Marshal(map[string]any{"embedding": qs[i], "max_results": 10, "threshold": -1, "mode": "similarity"})
	}
	// Recall quality on a sample, against an exact scan of the known vectors.
	const sample = 200
	var hitsTotal int
	for i := 0; i < sample; i++ {
		var rr recallResp
		if err := doJSON("POST", s.URL+"/api/v1/memories/recall", bodies[i], hdr, 200, &rr); err != nil {
			b.Fatal(err)
		}
		type sc struct {
			id int
			s  float32
		}
		best := make([]sc, 0, n)
		for j, v := range vecs {
			best = append(best, sc{j, dot(qs[i], v)})
		}
		sort.Slice(best, func(a, c int) bool { return best[a].s > best[c].s })
		truth := map[string]bool{}
		for _, x := range best[:10] {
			truth["v"+strconv.Itoa(x.id)] = true
		}
		for _, m := range rr.Memories.Vivid {
			if truth[m.ID] {
				hitsTotal++
			}
		}
	}
	recallAt10 := float64(hitsTotal) / (sample * 10)
	b.ReportMetric(recallAt10, "recall@10")
	fmt.Fprintf(os.Stderr, "ANN recall@10 vs exact: %.4f (%d queries)\n", recallAt10, sample)
	// Drop the client's 300 MB of known vectors: its own collections
	// would otherwise stall the client in the timed phases.
	vecs = nil
	runtime.GC()

	b.ResetTimer()
	// ENGRAM_BENCH_CLIENT_PROFILE names a file for a CPU profile of this
	// process over the JSON-cue phase: the client's share of the machine.
	if p := os.Getenv("ENGRAM_BENCH_CLIENT_PROFILE"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			b.Fatal(err)
		}
		defer f.Close()
	}
	cont := startContention(s.Cmd.Process.Pid)
	elapsed, l, errs := openLoop(queries, 1000, func(i int) error {
		return doJSON("POST", s.URL+"/api/v1/memories/recall", bodies[i], hdr, 200, nil)
	})
	report(b, "recall 100k@768 at 1000/s", queries, elapsed, l, errs)
	cont.report(b, "recall 100k@768 at 1000/s", "")
	pprof.StopCPUProfile()
	b.StopTimer()
	// The same cues as base64 strings (api.Vector's compact form), which
	// the server decodes in a fifth of the time of 768 decimal numbers.
	for i := range qs {
		bodies[i], _ = json.Marshal(map[string]any{"embedding": client.EncodeVectorBase64(qs[i]), "max_results": 10, "threshold": -1, "mode": "similarity"})
	}
	cont = startContention(s.Cmd.Process.Pid)
	elapsed, l, errs = openLoop(queries, 1000, func(i int) error {
		return doJSON("POST", s.URL+"/api/v1/memories/recall", bodies[i], hdr, 200, nil)
	})
	reportAs(b, "recall 100k@768 at 1000/s, base64 cues", "b64-", queries, elapsed, l, errs)
	perRecall := cont.report(b, "recall 100k@768 at 1000/s, base64 cues", "b64-") / queries

	// The same cues at the same rate to the reference server, which spends
	// the server's CPU per recall (background work included) on each and
	// answers as many bytes: the p99 the machine allows a server this busy.
	if perRecall > 0 {
		var answer json.RawMessage
		if err := doJSON("POST", s.URL+"/api/v1/memories/recall", bodies[0], hdr, 200, &answer); err != nil {
			b.Fatal(err)
		}
		ref := startReferenceServer(b, perRecall, len(answer))
		name := fmt.Sprintf("reference: %d µs of CPU a request", perRecall.Microseconds())
		cont = startContention(ref.cmd.Process.Pid)
		elapsed, l, errs = openLoop(queries, 1000, func(i int) error {
			return doJSON("POST", ref.url, bodies[i], nil, 200, nil)
		})
		reportAs(b, name, "ref-", queries, elapsed, l, errs)
		cont.report(b, name, "ref-")
		ref.stop()
	}

	// Restart: graceful stop, then time until ready and a recall answers.
	if err := s.Cmd.Process.Signal(os.Interrupt); err != nil {
		b.Fatal(err)
	}
	_ = s.Wait()
	t0 := time.Now()
	s2 := startServer(b, dir)
	if err := doJSON("POST", s2.URL+"/api/v1/memories/recall", bodies[0], hdr, 200, nil); err != nil {
		b.Fatal(err)
	}
	restart := time.Since(t0)
	b.ReportMetric(restart.Seconds(), "restart-s")
	fmt.Fprintf(os.Stderr, "restart with %d memories: ready and recalled in %v\n", n, restart.Round(time.Millisecond))
}
