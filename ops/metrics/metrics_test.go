package metrics_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/ops/api"
	"github.com/engram-ops/engram-ops/ops/client"
	"github.com/engram-ops/engram-ops/ops/config"
	"github.com/engram-ops/engram-ops/ops/server"
)

// TestScrapeContract starts a live in-process server, runs a small
// workload through the client, scrapes /metrics and checks that every
// metric name of design brief §5 (except the backup ones, which belong to
// the backup component) is present with its type.
func TestScrapeContract(t *testing.T) {
	cfg := config.Default()
	cfg.Log.Access = false
	ctx := context.Background()
	eng, err := core.Open(t.TempDir(), cfg.EngineOptions(nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := eng.Close(); err != nil {
			t.Error(err)
		}
	}()
	srv, err := server.New(cfg, eng, nil, nil, server.WithBuildInfo(server.BuildInfo{Version: "v-test", Revision: "abc", GoVersion: "go-test"}))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	c, err := client.New(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range []string{"the sky is blue", "grass is green", "the sea is blue too"} {
		if _, err := c.Remember(ctx, api.RememberRequest{ID: fmt.Sprintf("m%d", i), Content: s}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Associate(ctx, api.AssociationRequest{From: "m0", To: "m2", Weight: 0.8}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Batch(ctx, api.BatchRequest{Memories: []api.BatchMemory{{Content: "batched"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Recall(ctx, api.RecallRequest{Query: "blue sky"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, "m1", false); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, "missing", false); !client.IsNotFound(err) {
		t.Fatalf("want 404, got %v", err)
	}
	if _, err := c.Forget(ctx, "m1"); err != nil {
		t.Fatal(err)
	}

	raw, err := c.Metrics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("parse exposition: %v", err)
	}
	want := map[string]dto.MetricType{
		"engram_build_info":                        dto.MetricType_GAUGE,
		"engram_http_requests_total":               dto.MetricType_COUNTER,
		"engram_http_request_duration_seconds":     dto.MetricType_HISTOGRAM,
		"engram_http_in_flight_requests":           dto.MetricType_GAUGE,
		"engram_memory_operation_duration_seconds": dto.MetricType_HISTOGRAM,
		"engram_memory_operation_errors_total":     dto.MetricType_COUNTER,
		"engram_memories":                          dto.MetricType_GAUGE,
		"engram_associations":                      dto.MetricType_GAUGE,
		"engram_recall_confidence":                 dto.MetricType_HISTOGRAM,
		"engram_spreading_activated_memories":      dto.MetricType_HISTOGRAM,
		"engram_storage_tier_bytes":                dto.MetricType_GAUGE,
		"engram_storage_tier_capacity_bytes":       dto.MetricType_GAUGE,
		"engram_storage_tier_migrations_total":     dto.MetricType_COUNTER,
		"engram_cache_requests_total":              dto.MetricType_COUNTER,
		"engram_storage_disk_bytes":                dto.MetricType_GAUGE,
		"engram_storage_disk_free_bytes":           dto.MetricType_GAUGE,
		"engram_storage_disk_total_bytes":          dto.MetricType_GAUGE,
		"engram_storage_min_free_bytes":            dto.MetricType_GAUGE,
		"engram_storage_writes_refused":            dto.MetricType_GAUGE,
		"engram_storage_corruption_events_total":   dto.MetricType_COUNTER,
		"engram_storage_compactions_total":         dto.MetricType_COUNTER,
		"engram_changelog_sequence":                dto.MetricType_GAUGE,
		"engram_storage_wal_sync_duration_seconds": dto.MetricType_HISTOGRAM,
		"engram_storage_wal_synced_writes_total":   dto.MetricType_COUNTER,
		"engram_auth_failures_total":               dto.MetricType_COUNTER,
		"engram_rate_limited_total":                dto.MetricType_COUNTER,
		"engram_audit_write_failures_total":        dto.MetricType_COUNTER,
		"go_goroutines":                            dto.MetricType_GAUGE,
		"process_cpu_seconds_total":                dto.MetricType_COUNTER,
	}
	for name, typ := range want {
		f, ok := fams[name]
		if !ok {
			t.Errorf("metric %s missing", name)
			continue
		}
		if f.GetType() != typ {
			t.Errorf("metric %s has type %s, want %s", name, f.GetType(), typ)
		}
	}

	// Spot-check values and labels.
	labels := func(m *dto.Metric) map[string]string {
		out := map[string]string{}
		for _, l := range m.GetLabel() {
			out[l.GetName()] = l.GetValue()
		}
		return out
	}
	find := func(name string, match map[string]string) *dto.Metric {
		for _, m := range fams[name].GetMetric() {
			ls := labels(m)
			ok := true
			for k, v := range match {
				if ls[k] != v {
					ok = false
				}
			}
			if ok {
				return m
			}
		}
		return nil
	}
	if m := find("engram_build_info", map[string]string{"version": "v-test", "revision": "abc", "goversion": "go-test"}); m == nil || m.GetGauge().GetValue() != 1 {
		t.Errorf("build info: %v", fams["engram_build_info"])
	}
	if m := find("engram_memories", map[string]string{"space": "default"}); m == nil {
		t.Errorf("engram_memories{space=default} missing")
	}
	var total float64
	for _, m := range fams["engram_memories"].GetMetric() {
		total += m.GetGauge().GetValue()
	}
	if total != 3 { // 3 remembered + 1 batched - 1 forgotten
		t.Errorf("engram_memories sums to %v, want 3", total)
	}
	if m := find("engram_associations", map[string]string{"space": "default"}); m == nil || m.GetGauge().GetValue() != 1 {
		t.Errorf("engram_associations: %v", m)
	}
	if m := find("engram_http_requests_total", map[string]string{"route": "/api/v1/memories/{id}", "method": "GET", "code": "404"}); m == nil || m.GetCounter().GetValue() != 1 {
		t.Errorf("http requests by route pattern: %v", fams["engram_http_requests_total"])
	}
	if m := find("engram_memory_operation_errors_total", map[string]string{"operation": "get", "space": "default", "error_type": "not_found"}); m == nil {
		t.Errorf("operation errors: %v", fams["engram_memory_operation_errors_total"])
	}
	for _, op := range []string{"remember", "recall", "get", "forget", "associate", "batch"} {
		if find("engram_memory_operation_duration_seconds", map[string]string{"operation": op, "space": "default"}) == nil {
			t.Errorf("no duration observed for operation %s", op)
		}
	}
	if m := find("engram_changelog_sequence", nil); m == nil || m.GetGauge().GetValue() < 6 {
		t.Errorf("changelog sequence: %v", m)
	}
	if m := find("engram_recall_confidence", map[string]string{"space": "default"}); m == nil || m.GetHistogram().GetSampleCount() != 1 {
		t.Errorf("recall confidence: %v", m)
	}
	// Every durable write (space creation, 3 remembers, the association,
	// the batch, the forget) waited for a counted fsync.
	if m := find("engram_storage_wal_synced_writes_total", nil); m == nil || m.GetCounter().GetValue() < 7 {
		t.Errorf("writes made durable by fsyncs: %v", m)
	}
	if m := find("engram_storage_wal_sync_duration_seconds", nil); m == nil || m.GetHistogram().GetSampleCount() == 0 ||
		len(m.GetHistogram().GetBucket()) < 10 || m.GetHistogram().GetSampleSum() <= 0 {
		t.Errorf("WAL fsync histogram: %v", m)
	}
}
