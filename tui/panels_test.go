package tui

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/exp/golden"
)

// A migration the server's engram_migrate_* counters show moving gets its
// line on the board and its object in the JSON snapshot; once the counters
// stop, it is gone.
func TestBoardMigration(t *testing.T) {
	src := &fakeSource{health: healthy()}
	s := NewScraper(src, nil, mustRules(t))
	a := observe(t, s, src, 0, fixture{migrated: 1000, rejected: 3})
	b := observe(t, s, src, 2, fixture{migrated: 5000, rejected: 7})
	if a.Migration != nil {
		t.Errorf("migration after one scrape (no rate yet): %+v", *a.Migration)
	}
	m := run(t, &scriptPoller{snaps: []Snapshot{a, b}}, 100, 30, "Migration in progress")
	v := screen(t, m)
	for _, want := range []string{"Migration in progress", "from pg-notes: 5000 records at 2000/s, 7 rejects"} {
		if !strings.Contains(v, want) {
			t.Errorf("screen lacks %q:\n%s", want, v)
		}
	}
	golden.RequireEqual(t, []byte(v))

	j, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if want := `"migration":{"source":"pg-notes","records":5000,"rejects":7,"per_second":2000}`; !strings.Contains(string(j), want) {
		t.Errorf("JSON snapshot lacks %s:\n%s", want, j)
	}
	done := observe(t, s, src, 4, fixture{migrated: 5000, rejected: 7})
	if done.Migration != nil {
		t.Errorf("migration still shown when its counters stopped: %+v", *done.Migration)
	}
	if j, _ := json.Marshal(done); !strings.Contains(string(j), `"migration":null`) {
		t.Errorf("JSON snapshot without a migration lacks \"migration\":null:\n%s", j)
	}
}

// checkFits fails when the screen is taller or wider than w×h.
func checkFits(t *testing.T, v string, w, h int) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(v, "\n"), "\n")
	if len(lines) > h {
		t.Errorf("%d lines on a %d-line terminal", len(lines), h)
	}
	for i, l := range lines {
		if lw := lipgloss.Width(l); lw > w {
			t.Errorf("line %d is %d cells on a %d-column terminal: %q", i+1, lw, w, l)
		}
	}
}

// The board drawn at 80×24, resized to 160×50 and back: each lays out
// within the terminal, the wide one uses the room, and going back gives the
// first screen again.
func TestBoardResize(t *testing.T) {
	p := &scriptPoller{snaps: healthySnaps(t, 50, 0.95*67108864)}
	m := plainModel(p)
	m.Init()
	m.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
	m.Update(snapshotMsg{p.Poll(context.Background())})
	m.Update(snapshotMsg{p.Poll(context.Background())})
	var screens []string
	for _, sz := range [][2]int{{80, 24}, {160, 50}, {80, 24}} {
		w, h := sz[0], sz[1]
		m.Update(tea.WindowSizeMsg{Width: w, Height: h})
		v := m.View() // the resize alone must redraw
		if strings.Contains(v, "\x1b[") {
			t.Fatalf("escape sequences with colour off:\n%q", v)
		}
		screens = append(screens, v)
		t.Run(fmt.Sprintf("%dx%d-%d", w, h, len(screens)), func(t *testing.T) {
			checkFits(t, v, w, h)
			if !strings.Contains(v, "runbook alerts/StorageTierNearCapacity") {
				t.Errorf("the alert's runbook name is not on screen")
			}
			golden.RequireEqual(t, []byte(v))
		})
	}
	if screens[0] != screens[2] {
		t.Errorf("80×24 after a resize to 160×50 and back differs from the first 80×24:\n%s\n---\n%s", screens[0], screens[2])
	}
	wide := screens[1]
	if n := len(strings.Split(strings.TrimRight(wide, "\n"), "\n")); n < 40 {
		t.Errorf("160×50 uses only %d lines:\n%s", n, wide)
	}
	if !strings.Contains(wide, "tenant-25") {
		t.Errorf("160×50 does not show more spaces than 80×24:\n%s", wide)
	}
}

// promAlertsAnswer is a Prometheus /api/v1/alerts answer with one firing
// alert of the shipped rules.
const promAlertsAnswer = `{"status":"success","data":{"alerts":[
{"labels":{"alertname":"HighRecallLatency","severity":"warning","space":"default","instance":"127.0.0.1:7432","job":"engram"},
 "annotations":{"summary":"recall p99 above 10ms","runbook_url":"https://example.com/engram/runbooks/alerts/HighRecallLatency.md"},
 "state":"firing","activeAt":"2026-03-01T11:58:00Z","value":"2.5e-02"}]}}`

// With --prometheus the alerts are Prometheus': its firing alert shows with
// its runbook, in place of the board's own evaluation. With Prometheus
// unreachable the board says so and falls back to its own evaluation
// instead of claiming no alerts.
func TestBoardPrometheusAlerts(t *testing.T) {
	promUp := true
	prom := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/alerts" {
			http.NotFound(w, r)
			return
		}
		if !promUp {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, promAlertsAnswer)
	}))
	defer prom.Close()

	// The hot tier is 95% full: the board's own evaluation has
	// StorageTierNearCapacity; Prometheus reports HighRecallLatency.
	src := &fakeSource{health: healthy()}
	src.body = fixture{hotBytes: 0.95 * 67108864}.text()
	s := NewScraper(src, PrometheusAlerts{URL: prom.URL}, mustRules(t))
	ctx := context.Background()
	s.Poll(ctx)
	snap := s.Poll(ctx)
	if len(snap.Alerts) != 1 {
		t.Fatalf("alerts %+v, want Prometheus' one", snap.Alerts)
	}
	a := snap.Alerts[0]
	if a.Name != "HighRecallLatency" || a.State != "firing" || a.Source != "prometheus" || a.Runbook != "alerts/HighRecallLatency" || a.Labels != "instance=127.0.0.1:7432,space=default" {
		t.Errorf("alert %+v", a)
	}
	if r, ok := snap.Unknown["alerts"]; ok {
		t.Errorf("unknown.alerts %q while Prometheus answers (it evaluates every rule)", r)
	}
	v := Render(snap, 100, NewStyles(nil, false))
	if strings.Contains(v, "not evaluated") {
		t.Errorf("board says rules are not evaluated while Prometheus answers:\n%s", v)
	}
	if !strings.Contains(v, "firing  warning  HighRecallLatency{instance=127.0.0.1:7432,space=default}") || !strings.Contains(v, "runbook alerts/HighRecallLatency") {
		t.Errorf("board lacks Prometheus' alert with its runbook:\n%s", v)
	}
	if strings.Contains(v, "StorageTierNearCapacity") {
		t.Errorf("board shows its own evaluation next to Prometheus':\n%s", v)
	}

	for _, c := range []struct {
		name, says string
		stop       func()
	}{
		{"error", "503 Service Unavailable", func() { promUp = false }},
		{"unreachable", "connection refused", prom.Close},
	} {
		name := c.name
		c.stop()
		snap = s.Poll(ctx)
		v = Render(snap, 100, NewStyles(nil, false))
		if r := snap.Unknown["alerts"]; !strings.Contains(r, "prometheus") || !strings.Contains(r, "the board's own evaluation") {
			t.Errorf("%s: unknown.alerts %q does not say Prometheus failed and what is shown instead", name, r)
		}
		if len(snap.Alerts) != 1 || snap.Alerts[0].Name != "StorageTierNearCapacity" || snap.Alerts[0].Source != "rules" {
			t.Errorf("%s: alerts %+v, want the board's own StorageTierNearCapacity", name, snap.Alerts)
		}
		if !strings.Contains(v, "StorageTierNearCapacity{tier=hot}") || !strings.Contains(v, "showing the board's own") {
			t.Errorf("%s: board does not show its own alert and Prometheus' failure:\n%s", name, v)
		}
		if !strings.Contains(v, c.says) {
			t.Errorf("%s: board does not say %q:\n%s", name, c.says, v)
		}
	}
}
