package server

import (
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/engram-ops/engram-ops/ops/api"
)

// TestTierFiguresAfterReplace: rewriting an id (remember, then batch) and
// forgetting it keep every exported per-tier figure non-negative and
// summing to the memories stored: the space, the space list, the list's
// tier counts and engram_memories{tier}.
func TestTierFiguresAfterReplace(t *testing.T) {
	cfg := testConfig()
	eng := openEngine(t, cfg)
	reg := prometheus.NewRegistry()
	s, err := New(cfg, eng, slog.New(slog.DiscardHandler), reg)
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	check := func(step string, want int64) {
		t.Helper()
		counts := map[string]api.TierCounts{}
		counts["space"] = decodeJSONBody[api.Space](t, do(t, h, request{method: "GET", path: "/api/v1/spaces/default"})).Memories
		for _, sp := range decodeJSONBody[api.SpacesResponse](t, do(t, h, request{method: "GET", path: api.PathSpaces})).Spaces {
			if sp.ID == "default" {
				counts["spaces"] = sp.Memories
			}
		}
		counts["list"] = decodeJSONBody[api.ListResponse](t, do(t, h, request{method: "GET", path: api.PathMemories})).TierCounts
		fams, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var gauge api.TierCounts
		for _, f := range fams {
			if f.GetName() != "engram_memories" {
				continue
			}
			for _, m := range f.GetMetric() {
				var space, tier string
				for _, l := range m.GetLabel() {
					switch l.GetName() {
					case "space":
						space = l.GetValue()
					case "tier":
						tier = l.GetValue()
					}
				}
				if space != "default" {
					continue
				}
				v := int64(m.GetGauge().GetValue())
				switch tier {
				case "hot":
					gauge.Hot = v
				case "warm":
					gauge.Warm = v
				case "cold":
					gauge.Cold = v
				}
				gauge.Total += v
			}
		}
		counts["engram_memories"] = gauge
		for where, c := range counts {
			if c.Hot < 0 || c.Warm < 0 || c.Cold < 0 || c.Hot+c.Warm+c.Cold != c.Total || c.Total != want {
				t.Errorf("%s: %s tiers %+v; want %d memories, none negative", step, where, c, want)
			}
		}
	}
	for i, body := range []string{`{"id":"r","content":"lighthouses guide ships"}`, `{"id":"r","content":"lighthouses guide ships home"}`} {
		if w := do(t, h, request{method: "POST", path: api.PathRemember, body: body}); w.Code != 201 && w.Code != 200 {
			t.Fatalf("remember %d: %d %s", i, w.Code, w.Body)
		}
	}
	do(t, h, request{method: "GET", path: "/api/v1/memories/r"})
	check("replace", 1)
	if w := do(t, h, request{method: "POST", path: api.PathBatch, body: `{"memories":[{"id":"r","content":"harbours"},{"id":"s","content":"docks"}]}`}); w.Code/100 != 2 {
		t.Fatalf("batch: %d %s", w.Code, w.Body)
	}
	check("batch replace", 2)
	do(t, h, request{method: "DELETE", path: "/api/v1/memories/r"})
	do(t, h, request{method: "DELETE", path: "/api/v1/memories/s"})
	check("forget", 0)
}
