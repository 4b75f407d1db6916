package tui

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/engram-ops/engram-ops/ops/api"
)

// bounds are the operation histogram's upper bounds in the fixtures.
var bounds = []float64{0.001, 0.005, 0.01, 0.05, 0.1}

// fixture describes one /metrics answer: per operation, the number of
// samples per bucket (not cumulative; the last entry is above the last
// bound), and a few other figures.
type fixture struct {
	ops      map[string][]int // operation -> per-bucket counts, len(bounds)+1
	errors   map[string]int   // operation -> errors_total
	spaces   int              // extra spaces besides default
	hits     int
	misses   int
	http5xx  int
	http2xx  int
	pending  int
	hotBytes float64
	// migrated and rejected are the engram_migrate_* counters of a
	// migration run by source "pg-notes" (none when both are 0).
	migrated int
	rejected int
}

// text renders f as Prometheus text exposition, the way the server does.
func (f fixture) text() []byte {
	var b strings.Builder
	b.WriteString("# TYPE engram_build_info gauge\nengram_build_info{goversion=\"go1\",revision=\"abc\",version=\"v1.2.3\"} 1\n")
	b.WriteString("# TYPE engram_memory_operation_duration_seconds histogram\n")
	for _, op := range []string{"remember", "recall"} {
		counts := f.ops[op]
		if counts == nil {
			counts = make([]int, len(bounds)+1)
		}
		cum, sum := 0, 0.0
		for i, ub := range bounds {
			cum += counts[i]
			sum += float64(counts[i]) * ub / 2
			fmt.Fprintf(&b, "engram_memory_operation_duration_seconds_bucket{operation=%q,space=\"default\",le=\"%g\"} %d\n", op, ub, cum)
		}
		cum += counts[len(bounds)]
		fmt.Fprintf(&b, "engram_memory_operation_duration_seconds_bucket{operation=%q,space=\"default\",le=\"+Inf\"} %d\n", op, cum)
		fmt.Fprintf(&b, "engram_memory_operation_duration_seconds_sum{operation=%q,space=\"default\"} %g\n", op, sum)
		fmt.Fprintf(&b, "engram_memory_operation_duration_seconds_count{operation=%q,space=\"default\"} %d\n", op, cum)
	}
	b.WriteString("# TYPE engram_memory_operation_errors_total counter\n")
	for op, n := range f.errors {
		fmt.Fprintf(&b, "engram_memory_operation_errors_total{error_type=\"internal\",operation=%q,space=\"default\"} %d\n", op, n)
	}
	b.WriteString("# TYPE engram_http_requests_total counter\n")
	fmt.Fprintf(&b, "engram_http_requests_total{code=\"200\",method=\"POST\",route=\"/api/v1/memories/recall\"} %d\n", f.http2xx)
	fmt.Fprintf(&b, "engram_http_requests_total{code=\"500\",method=\"POST\",route=\"/api/v1/memories/recall\"} %d\n", f.http5xx)
	b.WriteString("# TYPE engram_memories gauge\n")
	names := []string{"default"}
	for i := 0; i < f.spaces; i++ {
		names = append(names, fmt.Sprintf("tenant-%02d", i))
	}
	for i, n := range names {
		fmt.Fprintf(&b, "engram_memories{space=%q,tier=\"hot\"} %d\nengram_memories{space=%q,tier=\"warm\"} %d\nengram_memories{space=%q,tier=\"cold\"} 0\n", n, 100+i, n, i, n)
	}
	b.WriteString("# TYPE engram_associations gauge\n# TYPE engram_index_pending_memories gauge\n")
	for _, n := range names {
		fmt.Fprintf(&b, "engram_associations{space=%q} 3\n", n)
		p := 0
		if n == "default" {
			p = f.pending
		}
		fmt.Fprintf(&b, "engram_index_pending_memories{space=%q} %d\n", n, p)
	}
	b.WriteString("# TYPE engram_cache_requests_total counter\n")
	fmt.Fprintf(&b, "engram_cache_requests_total{result=\"hit\"} %d\nengram_cache_requests_total{result=\"miss\"} %d\n", f.hits, f.misses)
	hot := f.hotBytes
	if hot == 0 {
		hot = 1 << 20
	}
	b.WriteString("# TYPE engram_storage_tier_bytes gauge\n")
	fmt.Fprintf(&b, "engram_storage_tier_bytes{tier=\"hot\"} %g\nengram_storage_tier_bytes{tier=\"warm\"} 4096\nengram_storage_tier_bytes{tier=\"cold\"} 0\n", hot)
	b.WriteString("# TYPE engram_storage_tier_capacity_bytes gauge\n")
	b.WriteString("engram_storage_tier_capacity_bytes{tier=\"hot\"} 6.7108864e+07\nengram_storage_tier_capacity_bytes{tier=\"warm\"} 8.589934592e+09\nengram_storage_tier_capacity_bytes{tier=\"cold\"} 6.8719476736e+10\n")
	b.WriteString("# TYPE engram_storage_disk_free_bytes gauge\nengram_storage_disk_free_bytes 1.073741824e+10\n")
	b.WriteString("# TYPE engram_storage_disk_total_bytes gauge\nengram_storage_disk_total_bytes 1.073741824e+11\n")
	b.WriteString("# TYPE engram_storage_min_free_bytes gauge\nengram_storage_min_free_bytes 2.68435456e+08\n")
	b.WriteString("# TYPE engram_storage_disk_bytes gauge\nengram_storage_disk_bytes 5.24288e+06\n")
	b.WriteString("# TYPE engram_storage_writes_refused gauge\nengram_storage_writes_refused 0\n")
	b.WriteString("# TYPE engram_storage_corruption_events_total counter\nengram_storage_corruption_events_total 0\n")
	if f.migrated > 0 || f.rejected > 0 {
		b.WriteString("# TYPE engram_migrate_records_total counter\n")
		fmt.Fprintf(&b, "engram_migrate_records_total{object=\"notes\",source=\"pg-notes\"} %d\n", f.migrated-f.migrated/4)
		fmt.Fprintf(&b, "engram_migrate_records_total{object=\"tags\",source=\"pg-notes\"} %d\n", f.migrated/4)
		b.WriteString("# TYPE engram_migrate_rejects_total counter\n")
		fmt.Fprintf(&b, "engram_migrate_rejects_total{object=\"notes\",source=\"pg-notes\"} %d\n", f.rejected)
		b.WriteString("# TYPE engram_migrate_source_position gauge\n")
		fmt.Fprintf(&b, "engram_migrate_source_position{object=\"notes\",source=\"pg-notes\"} %d\n", f.migrated+f.rejected)
	}
	return []byte(b.String())
}

// fakeSource answers with canned health and metrics.
type fakeSource struct {
	health *api.SystemHealth
	herr   error
	body   []byte
	ctype  string // Content-Type of body; empty is text
	merr   error
	proto  bool // observe sends fixtures as delimited protobuf
}

func (f *fakeSource) Target() string { return "http://127.0.0.1:7432" }
func (f *fakeSource) Health(context.Context) (*api.SystemHealth, error) {
	return f.health, f.herr
}
func (f *fakeSource) Metrics(context.Context) (Exposition, error) {
	return Exposition{Body: f.body, ContentType: f.ctype}, f.merr
}

func healthy() *api.SystemHealth {
	return &api.SystemHealth{Status: "healthy", Version: "v1.2.3", UptimeSeconds: 3725}
}

// t0 is the fixtures' clock.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// observe feeds one scrape of f at t0+at seconds.
func observe(t interface{ Fatal(...any) }, s *Scraper, src *fakeSource, at float64, f fixture) Snapshot {
	src.body, src.ctype = f.text(), ""
	if src.proto {
		src.body, src.ctype = protoOf(src.body), protoContentType
	}
	exp := Exposition{Body: src.body, ContentType: src.ctype}
	return s.Observe(t0.Add(time.Duration(at*float64(time.Second))), src.health, src.herr, exp, src.merr)
}

// protoContentType is what the server's promhttp handler answers with when
// the board asks for protobuf.
const protoContentType = string(expfmt.FmtProtoDelim) + "; escaping=underscores"

// protoOf re-encodes a text exposition as delimited protobuf, the
// families in name order as promhttp writes them.
func protoOf(text []byte) []byte {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(text))
	if err != nil {
		panic(err)
	}
	names := make([]string, 0, len(fams))
	for n := range fams {
		names = append(names, n)
	}
	sort.Strings(names)
	var b bytes.Buffer
	enc := expfmt.NewEncoder(&b, expfmt.FmtProtoDelim)
	for _, n := range names {
		if err := enc.Encode(fams[n]); err != nil {
			panic(err)
		}
	}
	return b.Bytes()
}

func mustRules(t interface{ Fatal(...any) }) []Rule {
	r, err := ShippedRules()
	if err != nil {
		t.Fatal(err)
	}
	return r
}
