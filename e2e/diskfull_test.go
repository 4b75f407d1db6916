package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/internal/testsupport"
)

// TestDiskReserveRefusesWrites fills the real filesystem of a data
// directory up to the server's reserve (min_free_space set 128 MiB under
// the free space at the start) and checks what an operator relies on: the
// server answers 507 INSUFFICIENT_STORAGE instead of crashing on a failed
// log write, keeps serving reads, shuts down cleanly, refuses to start
// while the filesystem is under the reserve, and after that keeps every
// acknowledged write. Other processes on the machine write too, so the
// checks after the first refusal do not assume the server is still under
// its reserve.
func TestDiskReserveRefusesWrites(t *testing.T) {
	dir := t.TempDir()
	const margin = 128 << 20
	// Other processes write to the same filesystem: if they take the
	// margin between the measurement and the start, measure again.
	var s *server
	var reserve int64
	for attempt := 1; s == nil; attempt++ {
		free, _, err := core.FilesystemSpace(dir)
		if err != nil {
			t.Skipf("cannot measure free space here: %v", err)
		}
		if free < 2*margin {
			t.Skipf("only %d bytes free", free)
		}
		reserve = free - margin
		s, err = tryStartServer(t, dir, "--set", "min_free_space="+strconv.FormatInt(reserve, 10), "--no-access-log")
		if err != nil && attempt == 3 {
			t.Fatal(err)
		}
	}

	rng := rand.New(rand.NewSource(1))
	payload := func() string {
		b := make([]byte, 66_000) // 88,000 base64 characters: snappy cannot shrink them
		rng.Read(b)
		return base64.StdEncoding.EncodeToString(b)
	}
	var acked []string
	var refusal map[string]any
	for batch := 0; batch < 200 && refusal == nil; batch++ {
		var mems []map[string]any
		for i := range 50 {
			mems = append(mems, map[string]any{"id": fmt.Sprintf("fill-%03d-%02d", batch, i), "content": payload()})
		}
		body, _ := json.Marshal(map[string]any{"memories": mems})
		resp, err := httpClient.Post(s.URL+"/api/v1/memories/batch", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatalf("batch %d: %v (the server died?)\n%s", batch, err, tail(s.Logs.String()))
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusCreated:
			for _, m := range mems {
				acked = append(acked, m["id"].(string))
			}
		case http.StatusInsufficientStorage:
			if err := json.Unmarshal(raw, &refusal); err != nil {
				t.Fatalf("507 body %q: %v", raw, err)
			}
		default:
			t.Fatalf("batch %d: status %d %s", batch, resp.StatusCode, raw)
		}
	}
	if refusal == nil {
		t.Fatalf("200 batches (~880 MB) were accepted without reaching the reserve 128 MiB below the free space")
	}
	if e, _ := refusal["error"].(map[string]any); e["code"] != "INSUFFICIENT_STORAGE" || !strings.Contains(fmt.Sprint(e["message"]), "min_free_space") {
		t.Fatalf("refusal body %v: want code INSUFFICIENT_STORAGE and a message naming min_free_space", refusal)
	}
	if len(acked) == 0 {
		t.Fatal("the first batch was already refused: the filesystem filled up before the test wrote anything")
	}
	t.Logf("%d memories acknowledged before the first refusal", len(acked))

	// Still serving: probes, reads, metrics.
	if code, _, err := get(s.URL, acked[len(acked)-1]); err != nil || code != 200 {
		t.Fatalf("reading an acknowledged memory after the refusal: %d %v", code, err)
	}
	resp, err := httpClient.Get(s.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := "engram_storage_min_free_bytes " + strconv.FormatFloat(float64(reserve), 'g', -1, 64)
	if !strings.Contains(string(metrics), want) || !strings.Contains(string(metrics), "engram_storage_writes_refused ") {
		t.Fatalf("/metrics lacks %q or engram_storage_writes_refused", want)
	}

	// A clean shutdown, even with the disk at its reserve.
	if err := s.Cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := s.Wait(); err != nil {
		t.Fatalf("shutdown at the reserve: %v\n%s", err, tail(s.Logs.String()))
	}

	// Under the reserve, serve refuses to start, changing nothing.
	now, _, _ := core.FilesystemSpace(dir)
	cmd := exec.Command(binPath, "serve", "--listen", testsupport.FreeAddr(t), "--data-dir", dir,
		"--set", "min_free_space="+strconv.FormatInt(now+1<<30, 10))
	out, err := runWithTimeout(cmd, 30*time.Second)
	if err == nil || !strings.Contains(string(out), "INSUFFICIENT_STORAGE") && !strings.Contains(string(out), "min_free_space") {
		t.Fatalf("serve under the reserve: err %v, output:\n%s", err, out)
	}

	// With space to spare, every acknowledged write is there and writes
	// are accepted again.
	s2 := startServer(t, dir, "--set", "min_free_space=0")
	for _, id := range acked {
		if code, m, err := get(s2.URL, id); err != nil || code != 200 || len(fmt.Sprint(m["content"])) != 88_000 {
			t.Fatalf("acknowledged %s after restart: %d %v", id, code, err)
		}
	}
	if code, err := remember(t.Context(), s2.URL, "after-restart", "the disk has room again"); err != nil || code != 201 {
		t.Fatalf("a write after restart: %d %v", code, err)
	}
}

func runWithTimeout(cmd *exec.Cmd, d time.Duration) ([]byte, error) {
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.Bytes(), err
	case <-time.After(d):
		_ = cmd.Process.Kill()
		<-done
		return out.Bytes(), fmt.Errorf("still running after %v", d)
	}
}

func tail(s string) string {
	if len(s) > 4000 {
		return "…" + s[len(s)-4000:]
	}
	return s
}
