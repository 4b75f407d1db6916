package tui

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/exp/golden"
	"github.com/charmbracelet/x/exp/teatest"
)

func TestMain(m *testing.M) {
	time.Local = time.UTC // header clocks in golden screens
	os.Exit(m.Run())
}

// scriptPoller hands out prepared snapshots, the last one repeatedly.
type scriptPoller struct {
	mu    sync.Mutex
	snaps []Snapshot
	fails []int
	n     int
}

func (p *scriptPoller) Poll(context.Context) Snapshot {
	p.mu.Lock()
	defer p.mu.Unlock()
	i := min(p.n, len(p.snaps)-1)
	p.n++
	return p.snaps[i]
}

func (p *scriptPoller) Failures() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.fails) == 0 {
		return 0
	}
	return p.fails[min(p.n, len(p.fails))-1]
}

func plainModel(p Poller) *Model {
	return New(p, Config{Refresh: time.Hour, Styles: NewStyles(io.Discard, false), Runbook: func(name string) (string, string, error) {
		if name != "alerts/StorageTierNearCapacity" {
			return "", "", errors.New("no runbook named " + name)
		}
		return "StorageTierNearCapacity", "# StorageTierNearCapacity\n\nA tier is **nearly full**.\n\n## Fix\n\nRaise its capacity.\n", nil
	}})
}

// healthySnaps is a server under load: two scrapes 2 s apart.
func healthySnaps(t *testing.T, spaces int, hot float64) []Snapshot {
	src := &fakeSource{health: healthy()}
	s := NewScraper(src, nil, mustRules(t))
	a := observe(t, s, src, 0, fixture{spaces: spaces, hotBytes: hot, ops: map[string][]int{"remember": {10, 5, 0, 0, 0, 0}, "recall": {40, 0, 0, 0, 0, 0}}, hits: 10, http2xx: 55})
	b := observe(t, s, src, 2, fixture{spaces: spaces, hotBytes: hot, ops: map[string][]int{"remember": {50, 45, 5, 0, 0, 0}, "recall": {140, 20, 0, 0, 0, 0}}, errors: map[string]int{"recall": 2}, hits: 70, misses: 20, http2xx: 300})
	return []Snapshot{a, b}
}

// run drives the board in teatest at w×h until cond holds on screen,
// sends keys, quits and returns the final model.
func run(t *testing.T, p Poller, w, h int, until string, keys ...string) *Model {
	t.Helper()
	m := plainModel(p)
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(w, h))
	wait := func(s string) {
		teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte(s)) },
			teatest.WithDuration(5*time.Second), teatest.WithCheckInterval(5*time.Millisecond))
	}
	wait("Operations") // the first scrape
	tm.Type("r")       // the second, now rather than in an hour
	wait(until)
	for _, k := range keys {
		switch k {
		case "tab":
			tm.Send(tea.KeyMsg{Type: tea.KeyTab})
		case "enter":
			tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
		case "esc":
			tm.Send(tea.KeyMsg{Type: tea.KeyEsc})
		default:
			tm.Type(k)
		}
	}
	if err := tm.Quit(); err != nil {
		t.Fatal(err)
	}
	return tm.FinalModel(t, teatest.WithFinalTimeout(5*time.Second)).(*Model)
}

func screen(t *testing.T, m *Model) string {
	t.Helper()
	m.dirty = true
	v := m.View()
	if strings.Contains(v, "\x1b[") {
		t.Fatalf("escape sequences with colour off:\n%q", v)
	}
	return v
}

func TestBoardHealthy(t *testing.T) {
	p := &scriptPoller{snaps: healthySnaps(t, 3, 0)}
	m := run(t, p, 120, 40, "over the last 2s")
	v := screen(t, m)
	for _, want := range []string{"● READY", "version v1.2.3", "up 1h2m", "remember          42", "75.0%"} {
		if !strings.Contains(v, want) {
			t.Errorf("screen lacks %q", want)
		}
	}
	golden.RequireEqual(t, []byte(v))
}

func TestBoardUnreachable(t *testing.T) {
	src := &fakeSource{health: healthy()}
	s := NewScraper(src, nil, mustRules(t))
	ok := observe(t, s, src, 0, fixture{})
	src.health, src.herr = nil, errors.New("Get \"http://127.0.0.1:7432/api/v1/system/health\": dial tcp 127.0.0.1:7432: connect: connection refused")
	down := observe(t, s, src, 90, fixture{})
	p := &scriptPoller{snaps: []Snapshot{ok, down}, fails: []int{0, 3}}
	m := plainModel(p)
	m.cfg.Refresh, m.cfg.MaxBackoff = time.Second, 30*time.Second
	m.Init()
	m.Update(snapshotMsg{p.Poll(context.Background())})
	m.Update(tea.WindowSizeMsg{Width: 100, Height: 30})
	m.Update(snapshotMsg{p.Poll(context.Background())})
	v := screen(t, m)
	for _, want := range []string{"✖ UNREACHABLE", "connection refused", "last success: 12:00:00 (1m30s ago)", "retry in 4s", "EngramDown", "—"} {
		if !strings.Contains(v, want) {
			t.Errorf("screen lacks %q", want)
		}
	}
	if m.next != 4*time.Second {
		t.Errorf("next poll in %s after 3 failures, want 4×refresh", m.next)
	}
	golden.RequireEqual(t, []byte(v))
}

func TestBoardCounterReset(t *testing.T) {
	src := &fakeSource{health: healthy()}
	s := NewScraper(src, nil, mustRules(t))
	a := observe(t, s, src, 0, fixture{ops: map[string][]int{"remember": {5000, 0, 0, 0, 0, 0}}, hits: 9000, http2xx: 5000})
	b := observe(t, s, src, 2, fixture{ops: map[string][]int{"remember": {8, 0, 0, 0, 0, 0}}, hits: 4, http2xx: 8})
	p := &scriptPoller{snaps: []Snapshot{a, b}}
	m := run(t, p, 100, 30, "over the last 2s")
	v := screen(t, m)
	if strings.Contains(v, "-") && strings.Contains(v, " -") {
		for _, l := range strings.Split(v, "\n") {
			if strings.Contains(l, "remember") && strings.Contains(l, " -") {
				t.Fatalf("negative figure after a reset: %q", l)
			}
		}
	}
	if !strings.Contains(v, "remember           4") {
		t.Errorf("rate after reset is not 4/s:\n%s", v)
	}
	golden.RequireEqual(t, []byte(v))
}

// 80×24 with 50 spaces: everything fits, nothing wraps.
func TestBoard80x24(t *testing.T) {
	p := &scriptPoller{snaps: healthySnaps(t, 50, 0.95*67108864)}
	m := run(t, p, 80, 24, "over the last 2s")
	v := screen(t, m)
	lines := strings.Split(strings.TrimRight(v, "\n"), "\n")
	if len(lines) > 24 {
		t.Errorf("%d lines on a 24-line terminal", len(lines))
	}
	for _, l := range lines {
		if w := len([]rune(l)); w > 80 {
			t.Errorf("line of %d cells: %q", w, l)
		}
	}
	if !strings.Contains(v, "more (tab to Spaces") {
		t.Errorf("hidden spaces not announced:\n%s", v)
	}
	golden.RequireEqual(t, []byte(v))
}

func TestKeys(t *testing.T) {
	snaps := healthySnaps(t, 30, 0.95*67108864)
	p := &scriptPoller{snaps: snaps}
	// help
	m := run(t, p, 100, 30, "over the last", "?")
	if v := screen(t, m); !strings.Contains(v, "filter spaces") || !strings.Contains(v, ":runbook NAME") {
		t.Errorf("? shows no full help:\n%s", v)
	}
	// pause
	m = run(t, &scriptPoller{snaps: snaps}, 100, 30, "over the last", "p")
	if !m.Paused() || !strings.Contains(screen(t, m), "PAUSED") {
		t.Errorf("p did not pause")
	}
	// filter
	m = run(t, &scriptPoller{snaps: snaps}, 100, 30, "over the last", "/", "tenant-1", "enter")
	v := screen(t, m)
	if !strings.Contains(v, "10 of 31") || strings.Contains(v, "tenant-22") || !strings.Contains(v, "tenant-10") {
		t.Errorf("filter tenant-1 not applied:\n%s", v)
	}
	// tab to alerts, enter opens the runbook
	m = run(t, &scriptPoller{snaps: snaps}, 100, 30, "over the last", "tab", "tab", "enter")
	if v := screen(t, m); !strings.Contains(v, "Runbook: StorageTierNearCapacity") || !strings.Contains(v, "nearly full") {
		t.Errorf("enter on the alert did not open its runbook:\n%s", v)
	}
	// :runbook with an unknown name says so
	m = run(t, &scriptPoller{snaps: snaps}, 100, 30, "over the last", ":", "runbook nope", "enter")
	if v := screen(t, m); !strings.Contains(v, "no runbook named") {
		t.Errorf(":runbook nope:\n%s", v)
	}
	// q quits (run returns only once the program finished)
	tm := teatest.NewTestModel(t, plainModel(p), teatest.WithInitialTermSize(80, 24))
	tm.Type("q")
	tm.WaitFinished(t, teatest.WithFinalTimeout(5*time.Second))
}
