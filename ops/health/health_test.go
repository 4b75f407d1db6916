package health

import (
	"strings"
	"testing"
	"time"

	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/ops/api"
)

func check(t *testing.T, h api.SystemHealth, name string) api.HealthCheck {
	t.Helper()
	for _, c := range h.Checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no %s check in %+v", name, h.Checks)
	return api.HealthCheck{}
}

func baseInput() Input {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	m := core.Metrics{ChangelogSequence: 42, Durability: core.DurabilityRelaxed}
	m.TierCapacityBytes[core.TierWarm] = 1000
	m.Spaces = []core.SpaceStats{{SpaceInfo: core.SpaceInfo{Name: "a"}, IndexPending: 3}, {SpaceInfo: core.SpaceInfo{Name: "b"}, IndexPending: 4}}
	return Input{Now: now, Started: now.Add(-time.Minute), Version: "v", Metrics: m,
		Memory: Memory{TotalBytes: 100, LimitBytes: 1000}, Background: &Background{Errors: 1}}
}

func TestEvaluateHealthyByDefault(t *testing.T) {
	h := Evaluate(baseInput(), DefaultThresholds())
	if h.Status != Healthy || h.Changelog.Sequence != 42 || h.Durability != "relaxed" || h.UptimeSeconds != 60 || len(h.Spaces) != 2 {
		t.Fatalf("report %+v", h)
	}
	if c := check(t, h, "index"); c.Figures["index_pending"] != 7 || c.Figures["degraded_above"] != 100_000 {
		t.Errorf("index figures %v", c.Figures)
	}
	if c := check(t, h, "storage"); c.Message != "every tier is below 90% of its capacity" {
		t.Errorf("storage message %q", c.Message)
	}
}

// Each threshold is a field: moving it changes the verdict on the same
// figures, and the message names the threshold.
func TestEvaluateJudgesAgainstThresholds(t *testing.T) {
	in := baseInput()
	in.Requests, in.ServerErrors = 1000, 3
	in.Metrics.TierBytes[core.TierWarm] = 800
	in.Memory.TotalBytes = 850
	in.Background.LastGrew = in.Now.Add(-2 * time.Minute)
	def := DefaultThresholds()
	if h := Evaluate(in, def); check(t, h, "error_rate").Status != Healthy || check(t, h, "storage").Status != Healthy ||
		check(t, h, "memory").Status != Healthy || check(t, h, "background").Status != Degraded {
		t.Fatalf("default thresholds: %+v", h.Checks)
	}
	th := def
	th.ErrorRate, th.TierFull, th.Memory, th.IndexPending, th.BackgroundWindow = 0.001, 0.75, 0.8, 5, time.Minute
	h := Evaluate(in, th)
	for name, msg := range map[string]string{
		"error_rate": "more than 0.1% of requests",
		"storage":    "warm tier is above 75% of its capacity",
		"memory":     "above 80% of GOMEMLIMIT",
		"index":      "far behind",
	} {
		if c := check(t, h, name); c.Status != Degraded || !strings.Contains(c.Message, msg) {
			t.Errorf("%s: %s %q, want degraded with %q", name, c.Status, c.Message, msg)
		}
	}
	if c := check(t, h, "background"); c.Status != Healthy {
		t.Errorf("background failure 2m ago with a 1m window: %+v", c)
	}
	if h.Status != Degraded {
		t.Errorf("status %s", h.Status)
	}
	// Too few requests to judge a rate.
	in.Requests, in.ServerErrors = 19, 19
	if c := check(t, Evaluate(in, def), "error_rate"); c.Status != Healthy {
		t.Errorf("19 requests judged: %+v", c)
	}
}

func TestEvaluateUnhealthy(t *testing.T) {
	in := baseInput()
	in.ReadyErr = &api.ErrorBody{Code: "NOT_READY", Message: "closing"}
	in.LastSequence = 7
	h := Evaluate(in, DefaultThresholds())
	if h.Status != Unhealthy || h.Error == nil || h.Error.Code != "NOT_READY" || h.Changelog.Sequence != 7 || len(h.Spaces) != 0 {
		t.Fatalf("not ready: %+v", h)
	}
	in = baseInput()
	in.Metrics.Corruption = core.CorruptionStats{Events: 1, Files: []string{"000123.sst"}}
	if h := Evaluate(in, DefaultThresholds()); h.Status != Unhealthy || !strings.Contains(check(t, h, "storage").Message, "000123.sst") {
		t.Fatalf("corruption: %+v", h)
	}
}

func TestEvaluateOneSpace(t *testing.T) {
	in := baseInput()
	in.Space = "b"
	h := Evaluate(in, DefaultThresholds())
	if len(h.Spaces) != 1 || h.Spaces[0].Space != "b" || check(t, h, "index").Figures["index_pending"] != 4 {
		t.Fatalf("space b: %+v", h)
	}
}

// A space whose index backlog is at index.max_pending degrades the index
// check and is named: its writes are being held for the indexer.
func TestEvaluateIndexBacklogAtBound(t *testing.T) {
	in := baseInput()
	in.Metrics.Backlog = core.BacklogStats{Limit: 4, Waits: 9, Refused: 2}
	h := Evaluate(in, DefaultThresholds())
	c := check(t, h, "index")
	if c.Status != Degraded || !strings.Contains(c.Message, "index backlog of b is at its bound (index.max_pending 4)") {
		t.Errorf("index check %+v, want degraded naming space b", c)
	}
	if c.Figures["pending_limit"] != 4 || c.Figures["writes_waited"] != 9 || c.Figures["writes_refused"] != 2 {
		t.Errorf("index figures %v", c.Figures)
	}
	in.Metrics.Backlog.Limit = 5
	if c := check(t, Evaluate(in, DefaultThresholds()), "index"); c.Status != Healthy {
		t.Errorf("under the bound: %+v, want healthy", c)
	}
}
