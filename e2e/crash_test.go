// Package e2e holds tests that drive the real engram-ops binary as an
// operator would: build it, start it, kill it, start it again. They cover
// what needs a separate process: SIGKILL durability, a full disk, the data
// directory's lock between processes, and HTTP benchmarks over loopback.
// cmd/engram-ops's own tests run the CLI in-process instead: every
// command's flags, output and exit codes, and serve's behaviour over HTTP.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/engram-ops/engram-ops/internal/testsupport"
)

// binPath is the binary under test (testsupport.Binary).
var binPath string

func TestMain(m *testing.M) {
	if spec, ok := os.LookupEnv(referenceServerEnv); ok {
		os.Exit(referenceServerMain(spec))
	}
	if spec, ok := os.LookupEnv(burstWriterEnv); ok {
		os.Exit(burstWriterMain(spec))
	}
	p, err := testsupport.Binary()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = p
	code := m.Run()
	testsupport.Cleanup()
	os.Exit(code)
}

type server = testsupport.Server

func startServer(t testing.TB, dataDir string, extra ...string) *server {
	t.Helper()
	return testsupport.StartServe(t, dataDir, extra...)
}

func tryStartServer(t testing.TB, dataDir string, extra ...string) (*server, error) {
	t.Helper()
	return testsupport.TryStartServe(t, dataDir, testsupport.ServeOptions{}, extra...)
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
				code, err := remember(ctx, s.URL, id, content)
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
					if code, err := forget(ctx, s.URL, id); err == nil && code == http.StatusOK {
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
	s.Kill9(t)
	cancel()
	wg.Wait()
	if len(remembered) < 100 {
		t.Fatalf("only %d acknowledged writes before the kill; logs:\n%s", len(remembered), s.Logs.String())
	}
	t.Logf("%d remembers and %d forgets acknowledged before SIGKILL", len(remembered), len(forgotten))

	s2 := startServer(t, dir)
	var missing, resurrected []string
	for id, content := range remembered {
		code, body, err := get(s2.URL, id)
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
	if code, err := remember(context.Background(), s2.URL, "after-restart", "written after recovery"); err != nil || code != http.StatusCreated {
		t.Fatalf("write after restart: %d %v", code, err)
	}
}

func head(s []string) string {
	if len(s) > 5 {
		s = s[:5]
	}
	return strings.Join(s, ",")
}
