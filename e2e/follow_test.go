package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/engram-ops/engram-ops/internal/testsupport"
)

// TestFollowerTailsPrimary runs a primary shipping to a file:// archive
// and `serve --follow` of that archive: a memory remembered on the primary
// is read on the follower within a bounded wait, and a write sent to the
// follower is refused with 421 naming the primary.
func TestFollowerTailsPrimary(t *testing.T) {
	ctx := context.Background()
	archive := t.TempDir()
	primary := startServer(t, t.TempDir(), "--backup-to", "file://"+archive, "--backup-interval", "50ms")
	// The primary's shipper takes the first snapshot as it starts; the
	// follower is seeded from it.
	testsupport.WaitSnapshot(t, archive)
	follower := startServer(t, t.TempDir(), "--follow", "file://"+archive, "--primary-url", primary.URL,
		"--set", "replica.poll_interval=50ms")

	if code, err := remember(ctx, primary.URL, "shipped-1", "remembered on the primary, read on the follower"); err != nil || code != http.StatusCreated && code != http.StatusOK {
		t.Fatalf("remember on the primary: %d %v", code, err)
	}
	start := time.Now()
	for {
		resp, err := httpClient.Get(follower.URL + "/api/v1/memories/shipped-1")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Since(start) > 15*time.Second {
			t.Fatalf("the follower did not serve the primary's write within 15s; follower logs:\n%s", follower.Logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("primary write readable on the follower after %s", time.Since(start).Round(time.Millisecond))

	// Recall reads it too.
	body, _ := json.Marshal(map[string]any{"query": "remembered on the primary"})
	resp, err := httpClient.Post(follower.URL+"/api/v1/memories/recall", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "shipped-1") {
		t.Fatalf("recall on the follower: %d %s", resp.StatusCode, b)
	}

	// A write to the follower is refused, naming the primary.
	wb, _ := json.Marshal(map[string]any{"id": "local", "content": "a write sent to the follower"})
	resp, err = httpClient.Post(follower.URL+"/api/v1/memories/remember", "application/json", bytes.NewReader(wb))
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	var env struct {
		Error struct {
			Code    string         `json:"code"`
			Message string         `json:"message"`
			Details map[string]any `json:"details"`
		} `json:"error"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatalf("421 body %q: %v", b, err)
	}
	if resp.StatusCode != http.StatusMisdirectedRequest || env.Error.Code != "READ_ONLY_REPLICA" ||
		env.Error.Details["primary"] != primary.URL || !strings.Contains(env.Error.Message, primary.URL) {
		t.Fatalf("write on the follower: %d %s, want 421 READ_ONLY_REPLICA naming %s", resp.StatusCode, b, primary.URL)
	}

	// Health names the role and the figures; metrics export them.
	resp, err = httpClient.Get(follower.URL + "/api/v1/system/health")
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Replica *struct {
			Role            string `json:"role"`
			Primary         string `json:"primary"`
			AppliedSequence uint64 `json:"applied_sequence"`
			Ready           bool   `json:"ready"`
		} `json:"replica"`
	}
	err = json.NewDecoder(resp.Body).Decode(&h)
	resp.Body.Close()
	if err != nil || h.Replica == nil || h.Replica.Role != "follower" || h.Replica.Primary != primary.URL || h.Replica.AppliedSequence == 0 || !h.Replica.Ready {
		t.Fatalf("follower health: %+v %v", h.Replica, err)
	}
	resp, err = httpClient.Get(follower.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range []string{"engram_replica_lag_seconds", "engram_replica_applied_sequence", "engram_replica_head_sequence", "engram_replica_apply_errors_total"} {
		if !strings.Contains(string(b), m) {
			t.Fatalf("/metrics lacks %s", m)
		}
	}
}
