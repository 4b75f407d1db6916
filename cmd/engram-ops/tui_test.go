package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/engram-ops/engram-ops/tui"
)

// `tui --prometheus` against a real Prometheus scraping a real server with
// the shipped HighErrorRate rule: the alert Prometheus reports firing is on
// the board with its runbook; with Prometheus unreachable the board says so
// and shows its own evaluation of the same rule.
func TestTUIAlertsFromRealPrometheus(t *testing.T) {
	bin := os.Getenv("ENGRAM_TEST_PROMETHEUS")
	if bin == "" {
		t.Skip("ENGRAM_TEST_PROMETHEUS is not set: run scripts/test.sh (make test), which extracts prometheus from Debian's prometheus package")
	}
	p := startServe(t, t.TempDir(), "--set", "testing.fault_injection=true", "--no-access-log")
	prom := startPrometheus(t, bin, strings.TrimPrefix(p.base, "http://"), testRules(t, "HighErrorRate"))
	if code, b := httpDo(t, "POST", p.base+"/api/v1/memories/remember", `{"content":"tui prometheus"}`); code != http.StatusCreated {
		t.Fatalf("remember: %d %s", code, b)
	}
	if code, b := httpDo(t, "POST", p.base+"/api/v1/admin/faults", `{"operations":["recall"],"error_ratio":1}`); code != http.StatusOK {
		t.Fatalf("fault: %d %s", code, b)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // every recall answers 503
		defer wg.Done()
		c := &http.Client{Timeout: 5 * time.Second}
		for ctx.Err() == nil {
			if resp, err := c.Get(p.base + "/api/v1/memories/recall?query=tui"); err == nil {
				resp.Body.Close()
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	defer func() { cancel(); wg.Wait() }()
	fired := waitAlert(t, prom, "HighErrorRate", "firing", 30*time.Second)
	t.Logf("HighErrorRate firing in Prometheus after %.1fs", fired.Seconds())

	board := func(promURL string, args ...string) (tui.Snapshot, string) {
		t.Helper()
		code, out, errOut := runCLI(t, nil, append([]string{"tui", "--target", p.base, "--prometheus", promURL, "--once", "--refresh", "500ms"}, args...)...)
		if code != exitOK {
			t.Fatalf("tui --once: exit %d\n%s\n%s", code, out, errOut)
		}
		var s tui.Snapshot
		if len(args) > 0 {
			if err := json.Unmarshal([]byte(out), &s); err != nil {
				t.Fatalf("tui --once --output json: %v\n%s", err, out)
			}
		}
		return s, out
	}
	find := func(s tui.Snapshot, name string) *tui.Alert {
		for i := range s.Alerts {
			if s.Alerts[i].Name == name {
				return &s.Alerts[i]
			}
		}
		return nil
	}

	s, out := board(prom, "--output", "json")
	a := find(s, "HighErrorRate")
	if a == nil || a.Source != "prometheus" || a.State != "firing" || a.Runbook != "alerts/HighErrorRate" {
		t.Fatalf("HighErrorRate from Prometheus: %+v\n%s", a, out)
	}
	if r := s.Unknown["alerts"]; r != "" {
		t.Errorf("unknown.alerts %q while Prometheus answers", r)
	}
	_, text := board(prom)
	if !strings.Contains(text, "firing") || !strings.Contains(text, "HighErrorRate") || !strings.Contains(text, "runbook alerts/HighErrorRate") {
		t.Errorf("board text lacks the firing alert with its runbook:\n%s", text)
	}

	down := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	s, out = board(down, "--output", "json")
	if r := s.Unknown["alerts"]; !strings.Contains(r, "prometheus: ") || !strings.Contains(r, "connection refused") || !strings.Contains(r, "own evaluation") {
		t.Errorf("unknown.alerts %q does not say Prometheus is unreachable and what is shown instead", r)
	}
	if a := find(s, "HighErrorRate"); a == nil || a.Source != "rules" {
		t.Errorf("with Prometheus unreachable, HighErrorRate from the board's own evaluation: %+v\n%s", a, out)
	}
	_, text = board(down)
	if !strings.Contains(text, "connection refused") || !strings.Contains(text, "showing the board's own") || !strings.Contains(text, "HighErrorRate") {
		t.Errorf("board text with Prometheus unreachable:\n%s", text)
	}
}
