package e2e

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// memoriesOf reads engram_memories of space (all tiers) from the
// server's own /metrics.
func memoriesOf(t *testing.T, base, space string) float64 {
	t.Helper()
	resp, err := httpClient.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var total float64
	re := regexp.MustCompile(`(?m)^engram_memories\{space="` + space + `",tier="[a-z]+"\} (\S+)$`)
	for _, m := range re.FindAllStringSubmatch(string(b), -1) {
		v, _ := strconv.ParseFloat(m[1], 64)
		total += v
	}
	return total
}

// tmuxOn returns a runner of tmux commands on the server at socket sock;
// a failing command fails the test.
func tmuxOn(t *testing.T, tmux, sock string) func(args ...string) string {
	return func(args ...string) string {
		t.Helper()
		out, err := exec.Command(tmux, append([]string{"-L", sock}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("tmux %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
}

// TestTUIUnderLoadInTmux runs `engram-ops tui` in tmux against a real
// server under light load, captures the pane twice and checks that the
// numbers move and agree with the server's /metrics within one refresh.
// ENGRAM_TUI_CAPTURE names a file that receives the second capture.
func TestTUIUnderLoadInTmux(t *testing.T) {
	tmux, err := exec.LookPath("tmux")
	if err != nil {
		t.Skip("tmux is not installed (scripts/test.sh installs it: apt-get install -y tmux)")
	}
	s := startServer(t, t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var sent atomic.Int64
	go func() {
		for i := 0; ctx.Err() == nil; i++ {
			if code, err := remember(ctx, s.URL, "", fmt.Sprintf("tui load %d", i)); err == nil && code < 300 {
				sent.Add(1)
			}
			req := strings.NewReader(`{"query":"tui load"}`)
			if resp, err := httpClient.Post(s.URL+"/api/v1/memories/recall", "application/json", req); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()

	const refresh = time.Second
	sock := fmt.Sprintf("engram-tui-%d", os.Getpid())
	tm := tmuxOn(t, tmux, sock)
	board := fmt.Sprintf("env NO_COLOR=1 TERM=xterm-256color %s tui --target %s --refresh %s", binPath, s.URL, refresh)
	tm("new-session", "-d", "-s", "board", "-x", "110", "-y", "40", board)
	t.Cleanup(func() { _ = exec.Command(tmux, "-L", sock, "kill-server").Run() })

	memRe := regexp.MustCompile(`(?m)^\s+default\s+(\d+)\s`)
	rateRe := regexp.MustCompile(`(?m)^\s+remember\s+([0-9.]+)\s`)
	capture := func() (string, float64, float64, float64) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			lo := memoriesOf(t, s.URL, "default")
			time.Sleep(refresh + 500*time.Millisecond) // the board scrapes at least once in between
			pane := tm("capture-pane", "-p", "-t", "board")
			hi := memoriesOf(t, s.URL, "default")
			m, r := memRe.FindStringSubmatch(pane), rateRe.FindStringSubmatch(pane)
			if m != nil && r != nil && strings.Contains(pane, "over the last") {
				mem, _ := strconv.ParseFloat(m[1], 64)
				rate, _ := strconv.ParseFloat(r[1], 64)
				if mem < lo || mem > hi {
					t.Fatalf("board shows %v memories in default; /metrics said %v one refresh before and %v after:\n%s", mem, lo, hi, pane)
				}
				return pane, mem, rate, hi
			}
			if time.Now().After(deadline) {
				t.Fatalf("the board did not show rates within 15s:\n%s", pane)
			}
		}
	}
	pane1, mem1, rate1, _ := capture()
	pane2, mem2, rate2, _ := capture()
	if mem2 <= mem1 {
		t.Fatalf("memories did not move: %v then %v\n%s\n%s", mem1, mem2, pane1, pane2)
	}
	if rate1 <= 0 || rate2 <= 0 {
		t.Fatalf("remember ops/s not positive under load: %v, %v\n%s", rate1, rate2, pane2)
	}
	if !strings.Contains(pane2, "● READY") {
		t.Fatalf("board not READY:\n%s", pane2)
	}
	if p := os.Getenv("ENGRAM_TUI_CAPTURE"); p != "" {
		if err := os.WriteFile(p, []byte(pane2), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tm("send-keys", "-t", "board", "q")
	time.Sleep(300 * time.Millisecond)
	if exec.Command(tmux, "-L", sock, "has-session", "-t", "board").Run() == nil {
		t.Fatalf("q did not quit the board")
	}
	t.Logf("sent %d remembers; board showed %v then %v memories, %v and %v remember/s", sent.Load(), mem1, mem2, rate1, rate2)
}

// TestTUINoColorInTmux runs the board in a real terminal (tmux) with and
// without NO_COLOR and reads the panes with their attributes: with
// NO_COLOR the board writes no SGR sequence at all; without it, it does
// (so the check can see colour when there is some).
func TestTUINoColorInTmux(t *testing.T) {
	tmux, err := exec.LookPath("tmux")
	if err != nil {
		t.Skip("tmux is not installed (scripts/test.sh installs it: apt-get install -y tmux)")
	}
	s := startServer(t, t.TempDir())
	sgr := regexp.MustCompile(`\x1b\[[0-9;:]*m`)
	for _, c := range []struct {
		name, env string
		colour    bool
	}{
		{"nocolor", "NO_COLOR=1", false},
		// The test's own environment may carry NO_COLOR or CLICOLOR=0
		// (CI machines often export them); the colour case clears them.
		{"colour", "-u NO_COLOR -u CLICOLOR -u CLICOLOR_FORCE", true},
	} {
		// A tmux server per case: the first exits when its board quits.
		sock := fmt.Sprintf("engram-tui-%s-%d", c.name, os.Getpid())
		tm := tmuxOn(t, tmux, sock)
		t.Cleanup(func() { _ = exec.Command(tmux, "-L", sock, "kill-server").Run() })
		board := fmt.Sprintf("env %s TERM=xterm-256color COLORTERM=truecolor %s tui --target %s --refresh 1s", c.env, binPath, s.URL)
		tm("new-session", "-d", "-s", c.name, "-x", "100", "-y", "30", board)
		deadline := time.Now().Add(15 * time.Second)
		for !strings.Contains(tm("capture-pane", "-p", "-t", c.name), "over the last") {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the board did not draw within 15s:\n%s", c.name, tm("capture-pane", "-p", "-t", c.name))
			}
			time.Sleep(200 * time.Millisecond)
		}
		pane := tm("capture-pane", "-p", "-e", "-t", c.name)
		if got := sgr.FindAllString(pane, -1); (len(got) > 0) != c.colour {
			t.Errorf("%s: %d SGR sequences (want colour %v), e.g. %q:\n%s", c.name, len(got), c.colour, got[:min(len(got), 5)], pane)
		}
		tm("send-keys", "-t", c.name, "q")
	}
}
