// Package e2e holds tests that drive the real engram-ops binary as an
// operator would: build it, start it, kill it, start it again.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var binPath string

func TestMain(m *testing.M) {
	if spec, ok := os.LookupEnv(referenceServerEnv); ok {
		os.Exit(referenceServerMain(spec))
	}
	dir, err := os.MkdirTemp("", "engram-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "engram-ops")
	// ENGRAM_E2E_BIN runs the tests and benchmarks against a prebuilt
	// binary instead, so two builds can be compared side by side.
	if p := os.Getenv("ENGRAM_E2E_BIN"); p != "" {
		binPath = p
	} else {
		build := exec.Command("go", "build", "-o", binPath, "github.com/engram-ops/engram-ops/cmd/engram-ops")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building engram-ops:", err)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// server is a running engram-ops serve process.
type server struct {
	cmd  *exec.Cmd
	base string
	logs *bytes.Buffer

	exited  chan struct{} // closed once the process has exited
	waitErr error         // cmd.Wait's result, set before exited is closed
}

// wait waits for the process to exit and returns how it exited.
func (s *server) wait() error {
	<-s.exited
	return s.waitErr
}

func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func startServer(t testing.TB, dataDir string, extra ...string) *server {
	t.Helper()
	s, err := tryStartServer(t, dataDir, extra...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// tryStartServer is startServer returning an error, with the server's
// output, when it does not become ready.
func tryStartServer(t testing.TB, dataDir string, extra ...string) (*server, error) {
	t.Helper()
	addr := freePort(t)
	args := append([]string{"serve", "--listen", addr, "--data-dir", dataDir, "--log-format", "json"}, extra...)
	cmd := exec.Command(binPath, args...)
	logs := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	// ENGRAM_BENCH_SERVER_LOG names a file that also receives the server's
	// output (with GODEBUG=gctrace=1, its collections), for diagnosing a
	// benchmark's stalls.
	if p := os.Getenv("ENGRAM_BENCH_SERVER_LOG"); p != "" {
		f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		cmd.Stdout, cmd.Stderr = io.MultiWriter(logs, f), io.MultiWriter(logs, f)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, base: "http://" + addr, logs: logs, exited: make(chan struct{})}
	go func() { s.waitErr = cmd.Wait(); close(s.exited) }()
	t.Cleanup(func() {
		select {
		case <-s.exited:
		default:
			_ = s.cmd.Process.Kill()
			_ = s.wait()
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(s.base + "/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s, nil
			}
		}
		select {
		case <-s.exited:
			return nil, fmt.Errorf("server exited before it was ready (%v); logs:\n%s", s.waitErr, logs.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil, fmt.Errorf("server did not become ready; logs:\n%s", logs.String())
}

func (s *server) kill9(t testing.TB) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = s.wait()
}

var httpClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

func remember(ctx context.Context, base, id, content string) (int, error) {
	body, _ := json.Marshal(map[string]any{"id": id, "content": content, "confidence": 0.9})
	req, _ := http.NewRequestWithContext(ctx, "POST", base+"/api/v1/memories/remember", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

func forget(ctx context.Context, base, id string) (int, error) {
	req, _ := http.NewRequestWithContext(ctx, "DELETE", base+"/api/v1/memories/"+id, nil)
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

func get(base, id string) (int, map[string]any, error) {
	resp, err := httpClient.Get(base + "/api/v1/memories/" + id)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m, nil
}

// TestAcknowledgedWritesSurviveKill9 writes from many clients, kills the
// server with SIGKILL mid-load, restarts it and checks that every
// acknowledged remember is present with its content and every acknowledged
// forget is gone.
func TestAcknowledgedWritesSurviveKill9(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	remembered := map[string]string{}
	forgotten := map[string]bool{}
	forgetSent := map[string]bool{}
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				id := fmt.Sprintf("w%02d-%06d", w, i)
				content := fmt.Sprintf("writer %d wrote item %d about topic %d", w, i, i%17)
				code, err := remember(ctx, s.base, id, content)
				if err != nil || code != http.StatusCreated {
					continue // in flight at the kill, or refused: not acknowledged
				}
				mu.Lock()
				remembered[id] = content
				mu.Unlock()
				if i%5 == 0 {
					mu.Lock()
					forgetSent[id] = true // may take effect even if the answer is lost in the kill
					mu.Unlock()
					if code, err := forget(ctx, s.base, id); err == nil && code == http.StatusOK {
						mu.Lock()
						forgotten[id] = true
						mu.Unlock()
					}
				}
			}
		}(w)
	}
	// Kill once there is enough load to mean something (at least 2 s,
	// longer on a busy machine, at most 30 s).
	start := time.Now()
	for {
		time.Sleep(100 * time.Millisecond)
		mu.Lock()
		n := len(remembered)
		mu.Unlock()
		if elapsed := time.Since(start); elapsed >= 2*time.Second && n >= 200 || elapsed > 30*time.Second {
			break
		}
	}
	s.kill9(t)
	cancel()
	wg.Wait()
	if len(remembered) < 100 {
		t.Fatalf("only %d acknowledged writes before the kill; logs:\n%s", len(remembered), s.logs.String())
	}
	t.Logf("%d remembers and %d forgets acknowledged before SIGKILL", len(remembered), len(forgotten))

	s2 := startServer(t, dir)
	var missing, resurrected []string
	for id, content := range remembered {
		code, body, err := get(s2.base, id)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case forgotten[id]:
			if code != http.StatusNotFound {
				resurrected = append(resurrected, id)
			}
		case forgetSent[id]:
			// A forget was in flight at the kill: either state is correct.
		case code != http.StatusOK:
			missing = append(missing, id)
		case body["content"] != content:
			t.Errorf("%s: content %q, want %q", id, body["content"], content)
		}
	}
	if len(missing) > 0 || len(resurrected) > 0 {
		t.Fatalf("after kill -9: %d acknowledged remembers missing (e.g. %v), %d acknowledged forgets undone (e.g. %v)",
			len(missing), head(missing), len(resurrected), head(resurrected))
	}
	// The restarted server keeps accepting writes after recovery.
	if code, err := remember(context.Background(), s2.base, "after-restart", "written after recovery"); err != nil || code != http.StatusCreated {
		t.Fatalf("write after restart: %d %v", code, err)
	}
}

func head(s []string) string {
	if len(s) > 5 {
		s = s[:5]
	}
	return strings.Join(s, ",")
}
