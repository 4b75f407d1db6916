package server

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/ops/config"
)

// manySpacesRun is what one data directory of many small spaces costs.
type manySpacesRun struct {
	heap        int64 // HeapInuse over the baseline, engine and server open and filled
	reopenHeap  int64 // the same after Close and Open again
	metricsSize int   // bytes of one /metrics scrape after the fill
	close, open time.Duration
}

// heapInuse is HeapInuse after collections have freed everything
// unreachable (two, so sync.Pool victims go too).
func heapInuse() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse)
}

// runManySpaces remembers one line into each of memories memories spread
// round-robin over spaces spaces through the HTTP handler (768-dimension
// spaces of the built-in embedder, as by default), scrapes /metrics, then
// closes and reopens the engine.
func runManySpaces(tb testing.TB, cfg config.Config, spaces, memories int) manySpacesRun {
	tb.Helper()
	cfg.Spaces.DefaultDimension = 768
	cfg.Durability = "relaxed"
	dir := tb.TempDir()
	opts := cfg.EngineOptions(nil, nil)
	var run manySpacesRun
	base := heapInuse()
	eng, err := core.Open(dir, opts)
	if err != nil {
		tb.Fatal(err)
	}
	h := newTestServer(tb, cfg, eng).Handler()
	for i := range memories {
		hdr := map[string]string{"X-Memory-Space": fmt.Sprintf("tenant-%05d", i%spaces)}
		body := fmt.Sprintf(`{"content":"note %d about the harbour lighthouse"}`, i)
		if w := do(tb, h, request{method: "POST", path: "/api/v1/memories", body: body, headers: hdr}); w.Code != 201 {
			tb.Fatalf("remember %d: %d %s", i, w.Code, w.Body.String())
		}
	}
	if err := eng.WaitIndexed(tb.Context()); err != nil {
		tb.Fatal(err)
	}
	w := do(tb, h, request{method: "GET", path: "/metrics"})
	if w.Code != 200 {
		tb.Fatalf("/metrics: %d", w.Code)
	}
	run.metricsSize = w.Body.Len()
	run.heap = heapInuse() - base
	start := time.Now()
	if err := eng.Close(); err != nil {
		tb.Fatal(err)
	}
	run.close = time.Since(start)
	h = nil
	base = heapInuse()
	start = time.Now()
	eng, err = core.Open(dir, opts)
	if err != nil {
		tb.Fatal(err)
	}
	run.open = time.Since(start)
	defer eng.Close()
	if n := len(eng.Spaces()); n != spaces {
		tb.Fatalf("reopened with %d spaces, want %d", n, spaces)
	}
	if err := eng.WaitIndexed(tb.Context()); err != nil {
		tb.Fatal(err)
	}
	run.reopenHeap = heapInuse() - base
	return run
}

// BenchmarkManySpaces: 10,000 spaces of one memory each against the same
// 10,000 memories in one space (the reference), through the HTTP handler.
// Reported: heap per space (the excess over the reference, divided by the
// spaces), after the fill and after a restart; the /metrics scrape size;
// Close and Open times; and each against the reference as a ratio.
// Run with -benchtime=1x: one iteration fills two data directories.
func BenchmarkManySpaces(b *testing.B) {
	const n = 10_000
	for range b.N {
		ref := runManySpaces(b, testConfig(), 1, n)
		many := runManySpaces(b, testConfig(), n, n)
		b.ReportMetric(float64(many.heap-ref.heap)/n, "heap-B/space")
		b.ReportMetric(float64(many.reopenHeap-ref.reopenHeap)/n, "reopen-heap-B/space")
		b.ReportMetric(float64(many.heap)/float64(ref.heap), "heap-x-ref")
		b.ReportMetric(float64(many.metricsSize), "metrics-bytes")
		b.ReportMetric(float64(many.metricsSize)/float64(ref.metricsSize), "metrics-x-ref")
		b.ReportMetric(float64(many.open.Milliseconds()), "open-ms")
		b.ReportMetric(float64(many.open)/float64(ref.open), "open-x-ref")
		b.ReportMetric(float64(many.close.Milliseconds()), "close-ms")
		b.ReportMetric(float64(many.close)/float64(ref.close), "close-x-ref")
	}
}
