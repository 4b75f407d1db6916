package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/engram-ops/engram-ops/internal/testsupport"
)

// TestPromoteAfterKill9 is the failover a follower exists for, on real
// binaries and a file:// archive: a primary's writes reach its follower;
// the primary is SIGKILLed; the follower is stopped and promoted
// (engram-ops promote) and serves as the new primary with every write
// the old one shipped; the old primary, started again on its own data
// directory and archive, is fenced: it refuses writes from its first
// request.
func TestPromoteAfterKill9(t *testing.T) {
	ctx := context.Background()
	archive := "file://" + t.TempDir()
	oldDir, followerDir := t.TempDir(), t.TempDir()
	primary := startServer(t, oldDir, "--backup-to", archive, "--backup-interval", "50ms")
	testsupport.WaitSnapshot(t, strings.TrimPrefix(archive, "file://"))
	follower := startServer(t, followerDir, "--follow", archive, "--primary-url", primary.URL,
		"--set", "replica.poll_interval=50ms")

	const shipped = 40
	for i := range shipped {
		if code, err := remember(ctx, primary.URL, fmt.Sprintf("shipped-%d", i), fmt.Sprintf("a write the primary shipped, number %d", i)); err != nil || code != http.StatusCreated {
			t.Fatalf("remember %d on the primary: %d %v", i, code, err)
		}
	}
	// Shipped: the follower applies only what the archive's head names.
	last := fmt.Sprintf("shipped-%d", shipped-1)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if code, _, _ := get(follower.URL, last); code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the follower never applied %s; follower logs:\n%s", last, follower.Logs.String())
		}
	}
	// Writes acknowledged right before the kill may or may not have been
	// shipped; nothing is promised for them.
	for i := range 5 {
		_, _ = remember(ctx, primary.URL, fmt.Sprintf("late-%d", i), "a write right before the kill")
	}
	primary.Kill9(t)
	if err := follower.Stop(); err != nil {
		t.Fatalf("stop the follower: %v", err)
	}

	if code, out := runBin(t, "promote", "--data-dir", followerDir, "--target", archive); code == 0 {
		t.Fatalf("promote without --yes exited 0:\n%s", out)
	}
	if code, out := runBin(t, "promote", "--data-dir", followerDir, "--target", archive, "--yes"); code != 0 {
		t.Fatalf("promote exited %d:\n%s", code, out)
	}
	promoted := startServer(t, followerDir, "--backup-to", archive, "--backup-interval", "50ms")
	for i := range shipped {
		if code, _, err := get(promoted.URL, fmt.Sprintf("shipped-%d", i)); code != http.StatusOK {
			t.Fatalf("shipped-%d on the promoted primary: %d %v", i, code, err)
		}
	}
	if code, err := remember(ctx, promoted.URL, "after-promotion", "the new primary takes writes"); err != nil || code != http.StatusCreated {
		t.Fatalf("remember on the promoted primary: %d %v; logs:\n%s", code, err, promoted.Logs.String())
	}

	// The old primary comes back on its own directory and archive: its
	// generation is no longer the archive's, so it takes no write.
	back := startServer(t, oldDir, "--backup-to", archive, "--backup-interval", "50ms")
	req, err := http.NewRequest("POST", back.URL+"/api/v1/memories/remember", strings.NewReader(`{"id":"split-brain","content":"a write to the old primary"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var env struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal(b, &env)
	if resp.StatusCode != http.StatusMisdirectedRequest || env.Error.Code != "PRIMARY_FENCED" {
		t.Fatalf("the first write to the returned old primary: %d %s, want 421 PRIMARY_FENCED", resp.StatusCode, b)
	}
	if code, _, _ := get(promoted.URL, "split-brain"); code != http.StatusNotFound {
		t.Fatalf("the old primary's write reached the new one: %d", code)
	}
}
