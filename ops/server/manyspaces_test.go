package server

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/ops/api"
)

// TestSpaceLimitOverHTTP: with limits.max_spaces = 3 the write that would
// create a 4th space, and an explicit create, get 409 SPACE_LIMIT_REACHED
// naming the limit and its key; the first three spaces keep working, and
// so does the cap after a restart.
func TestSpaceLimitOverHTTP(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.MaxSpaces = 3
	dir := t.TempDir()
	start := func() (*core.Engine, http.Handler) {
		eng, err := core.Open(dir, cfg.EngineOptions(nil, nil))
		if err != nil {
			t.Fatal(err)
		}
		return eng, newTestServer(t, cfg, eng).Handler()
	}
	remember := func(h http.Handler, space string) *httptest.ResponseRecorder {
		return do(t, h, request{method: "POST", path: api.PathRemember, body: `{"content":"a note"}`,
			headers: map[string]string{api.HeaderSpace: space}})
	}
	refused := func(w *httptest.ResponseRecorder) {
		t.Helper()
		if w.Code != http.StatusConflict {
			t.Fatalf("status %d, want 409: %s", w.Code, w.Body.String())
		}
		e := decodeEnvelope(t, w)
		if e.Code != "SPACE_LIMIT_REACHED" || !strings.Contains(e.Message, "limits.max_spaces (3)") {
			t.Fatalf("error %+v: want SPACE_LIMIT_REACHED naming limits.max_spaces (3)", e)
		}
	}
	eng, h := start()
	for _, sp := range []string{"tenant-a", "tenant-b", "tenant-c"} {
		if w := remember(h, sp); w.Code != http.StatusCreated {
			t.Fatalf("remember into %s: %d %s", sp, w.Code, w.Body.String())
		}
	}
	refused(remember(h, "tenant-d"))
	refused(do(t, h, request{method: "POST", path: "/api/v1/spaces", body: `{"id":"tenant-e"}`}))
	if w := remember(h, "tenant-a"); w.Code != http.StatusCreated {
		t.Fatalf("remember into an existing space at the cap: %d %s", w.Code, w.Body.String())
	}
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}

	eng, h = start()
	defer eng.Close()
	refused(remember(h, "tenant-d"))
	for _, sp := range []string{"tenant-a", "tenant-b", "tenant-c"} {
		if w := remember(h, sp); w.Code != http.StatusCreated {
			t.Fatalf("remember into %s after restart: %d %s", sp, w.Code, w.Body.String())
		}
	}
	if n := len(eng.Spaces()); n != 3 {
		t.Fatalf("%d spaces after restart, want 3", n)
	}
}

// scrape returns /metrics parsed.
func scrape(t *testing.T, h http.Handler) (map[string]*dto.MetricFamily, int) {
	t.Helper()
	w := do(t, h, request{method: "GET", path: "/metrics"})
	if w.Code != 200 {
		t.Fatalf("/metrics: %d", w.Code)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(w.Body.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	return fams, w.Body.Len()
}

// spaceValues sums each space label's values of a gauge, or counts each
// space label's samples of a histogram.
func spaceValues(f *dto.MetricFamily) map[string]float64 {
	out := map[string]float64{}
	for _, m := range f.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "space" {
				if h := m.GetHistogram(); h != nil {
					out[l.GetValue()] += float64(h.GetSampleCount())
				} else {
					out[l.GetValue()] += m.GetGauge().GetValue()
				}
			}
		}
	}
	return out
}

// TestSpaceLabelsTopN: with metrics.max_space_labels = 2, /metrics labels
// the two spaces holding the most memories by name and sums the others
// under space="_other", in the engine gauges and the operation histograms
// alike, though small spaces were written first.
func TestSpaceLabelsTopN(t *testing.T) {
	cfg := testConfig()
	cfg.Metrics.MaxSpaceLabels = 2
	eng := openEngine(t, cfg)
	h := newTestServer(t, cfg, eng).Handler()
	sizes := []struct {
		space string
		n     int
	}{{"small-1", 1}, {"small-2", 1}, {"small-3", 2}, {"mid", 3}, {"big", 4}}
	for _, s := range sizes {
		for i := range s.n {
			w := do(t, h, request{method: "POST", path: api.PathRemember, body: fmt.Sprintf(`{"content":"note %d"}`, i),
				headers: map[string]string{api.HeaderSpace: s.space}})
			if w.Code != http.StatusCreated {
				t.Fatalf("remember: %d %s", w.Code, w.Body.String())
			}
		}
	}
	fams, _ := scrape(t, h)
	want := map[string]float64{"big": 4, "mid": 3, "_other": 4}
	if got := spaceValues(fams["engram_memories"]); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("engram_memories by space = %v, want %v", got, want)
	}
	// Before the first scrape the first two spaces written were labelled;
	// the ranking dropped their series. What big and mid did meanwhile was
	// recorded under _other.
	want = map[string]float64{"_other": 9}
	if got := spaceValues(fams["engram_memory_operation_duration_seconds"]); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("operations by space = %v, want %v", got, want)
	}
	for _, sp := range []string{"big", "mid", "small-1"} {
		do(t, h, request{method: "POST", path: api.PathRemember, body: `{"content":"later"}`,
			headers: map[string]string{api.HeaderSpace: sp}})
	}
	fams, _ = scrape(t, h)
	want = map[string]float64{"big": 1, "mid": 1, "_other": 10}
	if got := spaceValues(fams["engram_memory_operation_duration_seconds"]); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("operations by space after the ranking = %v, want %v", got, want)
	}
	want = map[string]float64{"big": 5, "mid": 4, "_other": 5}
	if got := spaceValues(fams["engram_memories"]); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("engram_memories by space = %v, want %v", got, want)
	}
}

// TestManySpacesStayBounded: 2,000 spaces of one memory each cost little
// heap beyond the same memories in one space, before and after a restart,
// and /metrics stays small.
// (BenchmarkManySpaces measures 10,000.)
func TestManySpacesStayBounded(t *testing.T) {
	const n = 2000
	ref := runManySpaces(t, testConfig(), 1, n)
	many := runManySpaces(t, testConfig(), n, n)
	perSpace := (many.heap - ref.heap) / n
	reopenPerSpace := (many.reopenHeap - ref.reopenHeap) / n
	t.Logf("heap per space %d B (after a restart %d B); /metrics %d B (reference %d B)", perSpace, reopenPerSpace, many.metricsSize, ref.metricsSize)
	if perSpace > 8<<10 || reopenPerSpace > 8<<10 {
		t.Errorf("a space of one memory holds %d B of heap (%d B after a restart); want at most 8 KiB", perSpace, reopenPerSpace)
	}
	// The 50 spaces labelled by default and _other: about 2 KB each.
	if many.metricsSize > 256<<10 {
		t.Errorf("/metrics is %d B with %d spaces (%d B with one); want at most 256 KiB", many.metricsSize, n, ref.metricsSize)
	}
}
