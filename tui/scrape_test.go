package tui

import (
	"bytes"
	"context"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/engram-ops/engram-ops/ops/client"
	"github.com/engram-ops/engram-ops/ops/metrics"
)

func near(t *testing.T, what string, got *float64, want float64) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s: nil, want %g", what, want)
	}
	if math.Abs(*got-want) > 1e-9*math.Max(1, math.Abs(want)) {
		t.Fatalf("%s = %g, want %g", what, *got, want)
	}
}

func op(s Snapshot, name string) Operation {
	for _, o := range s.Operations {
		if o.Name == name {
			return o
		}
	}
	return Operation{}
}

// Percentiles come from the buckets' increase between scrapes, not from
// the cumulative histogram: 1000 fast samples before the interval must not
// hide 100 slow ones inside it.
func TestHistogramDeltaPercentiles(t *testing.T) {
	src := &fakeSource{health: healthy()}
	s := NewScraper(src, nil, mustRules(t))
	first := observe(t, s, src, 0, fixture{ops: map[string][]int{"recall": {1000, 0, 0, 0, 0, 0}}})
	if op(first, "recall").P99 != nil || first.Unknown["operations.latency"] == "" {
		t.Fatalf("first scrape must leave percentiles unknown with a reason: %+v %v", op(first, "recall"), first.Unknown)
	}
	// 100 new samples: 50 in (0.01,0.05], 50 in (0.05,0.1].
	snap := observe(t, s, src, 2, fixture{ops: map[string][]int{"recall": {1000, 0, 0, 50, 50, 0}}, errors: map[string]int{"recall": 5}})
	r := op(snap, "recall")
	near(t, "per_second", r.PerSecond, 50)
	near(t, "error_ratio", r.ErrorRatio, 0.05)
	// rank 50 of 100 ends the (0.01,0.05] bucket.
	near(t, "p50", r.P50, 0.05)
	// rank 95: 45 into the 50 of (0.05,0.1].
	near(t, "p95", r.P95, 0.05+0.05*45/50)
	near(t, "p99", r.P99, 0.05+0.05*49/50)
	if r.Total != 1100 {
		t.Fatalf("total = %g, want 1100", r.Total)
	}
	// Samples above the last finite bound answer that bound, as
	// histogram_quantile does.
	snap = observe(t, s, src, 4, fixture{ops: map[string][]int{"recall": {1000, 0, 0, 50, 50, 10}}})
	near(t, "p99 in +Inf", op(snap, "recall").P99, 0.1)
}

// A server restart resets its counters: the board takes the new values as
// the increase (Prometheus' rule), never a negative rate.
func TestCounterResetNeverNegative(t *testing.T) {
	src := &fakeSource{health: healthy()}
	s := NewScraper(src, nil, mustRules(t))
	observe(t, s, src, 0, fixture{ops: map[string][]int{"remember": {500, 400, 100, 0, 0, 0}}, errors: map[string]int{"remember": 90}, hits: 900, misses: 100, http2xx: 1000})
	snap := observe(t, s, src, 2, fixture{ops: map[string][]int{"remember": {0, 10, 0, 0, 0, 0}}, errors: map[string]int{"remember": 1}, hits: 3, misses: 1, http2xx: 10})
	r := op(snap, "remember")
	near(t, "per_second", r.PerSecond, 5)
	near(t, "error_ratio", r.ErrorRatio, 0.1)
	near(t, "p50", r.P50, 0.001+0.004*5/10)
	near(t, "cache_hit_ratio", snap.CacheHitRatio, 0.75)
	for _, o := range snap.Operations {
		if o.PerSecond != nil && *o.PerSecond < 0 || o.ErrorRatio != nil && *o.ErrorRatio < 0 {
			t.Fatalf("negative figure after a reset: %+v", o)
		}
	}
}

func TestShippedRulesThresholds(t *testing.T) {
	rules := mustRules(t)
	want := map[string]struct{ thr, q float64 }{
		"HighErrorRate":           {0.05, 0},
		"HighRecallLatency":       {0.01, 0.95},
		"HighRememberLatency":     {0.05, 0.95},
		"StorageTierNearCapacity": {0.9, 0},
		"IndexBacklogGrowing":     {10000, 0},
		"SlowWALSync":             {0.05, 0.99},
		"BackupStale":             {26 * 3600, 0},
		"RestoreDrillStale":       {8 * 86400, 0},
		"WritesRefusedDiskFull":   {1, 0},
	}
	seen := map[string]bool{}
	for _, r := range rules {
		seen[r.Name] = true
		if w, ok := want[r.Name]; ok && (r.Threshold != w.thr || r.Quantile != w.q) {
			t.Errorf("%s: threshold %g quantile %g, want %g %g", r.Name, r.Threshold, r.Quantile, w.thr, w.q)
		}
		if _, ok := evaluators[r.Name]; !ok && r.NotEvaluated == "" {
			t.Errorf("%s: neither evaluated nor explained", r.Name)
		}
	}
	for n := range want {
		if !seen[n] {
			t.Errorf("rule %s missing from the shipped alerts.yml", n)
		}
	}
}

// An alert is pending while its condition holds for less than the rule's
// for:, then firing; the board's scrape failures raise EngramDown.
func TestAlertsPendingFiringAndDown(t *testing.T) {
	src := &fakeSource{health: healthy()}
	s := NewScraper(src, nil, mustRules(t))
	f := fixture{hotBytes: 0.95 * 67108864}
	snap := observe(t, s, src, 0, f)
	if len(snap.Alerts) != 1 || snap.Alerts[0].Name != "StorageTierNearCapacity" || snap.Alerts[0].State != "pending" {
		t.Fatalf("alerts = %+v", snap.Alerts)
	}
	snap = observe(t, s, src, 16*60, f)
	if snap.Alerts[0].State != "firing" || snap.Alerts[0].Runbook != "alerts/StorageTierNearCapacity" {
		t.Fatalf("after 16m: %+v", snap.Alerts[0])
	}
	src.herr = errors.New("dial tcp 127.0.0.1:7432: connect: connection refused")
	src.health = nil
	snap = observe(t, s, src, 17*60, f)
	if snap.Health.Status != "unreachable" || snap.Health.LastSuccess == nil || len(snap.Alerts) != 1 || snap.Alerts[0].Name != "EngramDown" {
		t.Fatalf("unreachable: %+v %+v", snap.Health, snap.Alerts)
	}
}

func TestNotPrometheusText(t *testing.T) {
	src := &fakeSource{health: healthy()}
	s := NewScraper(src, nil, mustRules(t))
	snap := s.Observe(t0, src.health, nil, Exposition{Body: []byte("<html>hello</html>\n")}, nil)
	if snap.Health.Status != "error" || snap.Unknown["operations"] == "" || s.Failures() != 1 {
		t.Fatalf("got %+v %v", snap.Health, snap.Unknown)
	}
}

// FuzzParseMetrics feeds arbitrary bytes as text and as delimited
// protobuf (proto) to the scraper, twice so rates are computed.
func FuzzParseMetrics(f *testing.F) {
	hist := []byte("# TYPE x histogram\nx_bucket{le=\"1\"} 1\n")
	for _, b := range [][]byte{fixture{}.text(), hist} {
		f.Add(b, false)
		f.Add(protoOf(b), true)
	}
	f.Fuzz(func(t *testing.T, b []byte, proto bool) {
		src := &fakeSource{health: healthy()}
		s := NewScraper(src, nil, nil)
		exp := Exposition{Body: b}
		if proto {
			exp.ContentType = protoContentType
		}
		s.Observe(t0, src.health, nil, exp, nil)
		s.Observe(t0.Add(1e9), src.health, nil, exp, nil)
	})
}

// The board asks for delimited protobuf; both formats of the same
// families give the same snapshot, poll after poll (rates, percentiles,
// a counter reset, alerts pending then firing).
func TestProtobufSameSnapshotAsText(t *testing.T) {
	seq := []fixture{
		{ops: map[string][]int{"recall": {1000, 0, 0, 0, 0, 0}}, hits: 10, misses: 2, spaces: 3},
		{ops: map[string][]int{"recall": {1000, 0, 0, 50, 50, 3}, "remember": {5, 1, 0, 0, 0, 0}}, errors: map[string]int{"recall": 5}, hits: 30, misses: 4, spaces: 3, pending: 7},
		{ops: map[string][]int{"remember": {0, 10, 0, 0, 0, 0}}, hits: 3, misses: 1, hotBytes: 0.95 * 67108864},
		{ops: map[string][]int{"remember": {0, 20, 0, 0, 0, 0}}, hits: 3, misses: 1, hotBytes: 0.95 * 67108864},
	}
	text, proto := &fakeSource{health: healthy()}, &fakeSource{health: healthy(), proto: true}
	st, sp := NewScraper(text, nil, mustRules(t)), NewScraper(proto, nil, mustRules(t))
	at := 0.0
	for i, f := range seq {
		want := observe(t, st, text, at, f)
		got := observe(t, sp, proto, at, f)
		if got.Health.Error != "" || want.Health.Error != "" {
			t.Fatalf("poll %d: text error %q, protobuf error %q", i, want.Health.Error, got.Health.Error)
		}
		tp := expfmt.NewTextParser(model.UTF8Validation)
		if _, err := tp.TextToMetricFamilies(bytes.NewReader(proto.body)); err == nil {
			t.Fatalf("poll %d: the protobuf fixture also parses as text", i)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("poll %d: protobuf snapshot differs from text\nprotobuf: %+v\ntext:     %+v", i, got, want)
		}
		at += 16 * 60
	}
	if len(st.active) == 0 {
		t.Fatal("the sequence raised no alert: it does not compare alert state")
	}
}

// A protobuf answer that does not decode is reported like bad text.
func TestNotPrometheusProtobuf(t *testing.T) {
	good := protoOf(fixture{}.text())
	for name, body := range map[string][]byte{
		"text":       fixture{}.text(),
		"truncated":  good[:len(good)-1],
		"duplicated": append(append([]byte(nil), good...), good...),
		"html":       []byte("<html>hello</html>\n"),
	} {
		src := &fakeSource{health: healthy()}
		s := NewScraper(src, nil, mustRules(t))
		snap := s.Observe(t0, src.health, nil, Exposition{Body: body, ContentType: protoContentType}, nil)
		if snap.Health.Status != "error" || !strings.Contains(snap.Health.Error, "not Prometheus protobuf") || s.Failures() != 1 {
			t.Errorf("%s: got %+v", name, snap.Health)
		}
	}
}

// ClientSource gets protobuf from the server's own /metrics handler, and
// text from a server that only speaks text.
func TestClientSourceFormats(t *testing.T) {
	m, err := metrics.New(prometheus.NewRegistry(), nil, metrics.BuildInfo{Version: "v-test"})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		m.ObserveOperation("recall", "default", 3*time.Millisecond, nil)
	}
	var accept string
	textOnly := fixture{ops: map[string][]int{"recall": {4, 0, 0, 0, 0, 0}}}.text()
	mux := http.NewServeMux()
	mux.Handle("/metrics", m.Handler())
	ts := httptest.NewServer(mux)
	defer ts.Close()
	tt := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		accept = r.Header.Get("Accept")
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		w.Write(textOnly)
	}))
	defer tt.Close()
	for _, c := range []struct {
		url, format string
		recalls     float64
	}{{ts.URL, "protobuf", 10}, {tt.URL, "text", 4}} {
		cl, err := client.New(c.url)
		if err != nil {
			t.Fatal(err)
		}
		src := ClientSource{C: cl}
		exp, err := src.Metrics(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		isProto := expfmt.ResponseFormat(http.Header{"Content-Type": {exp.ContentType}}).FormatType() == expfmt.TypeProtoDelim
		if isProto != (c.format == "protobuf") {
			t.Fatalf("%s: answered %q, want %s", c.url, exp.ContentType, c.format)
		}
		snap := NewScraper(src, nil, mustRules(t)).Observe(t0, healthy(), nil, exp, nil)
		if snap.Health.Error != "" || op(snap, "recall").Total != c.recalls {
			t.Fatalf("%s: %+v recall %+v", c.format, snap.Health, op(snap, "recall"))
		}
	}
	if !strings.HasPrefix(accept, "application/vnd.google.protobuf;") || !strings.Contains(accept, "text/plain") {
		t.Fatalf("Accept: %q, want protobuf then text", accept)
	}
}
