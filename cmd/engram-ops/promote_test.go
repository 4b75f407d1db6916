package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/engram-ops/engram-ops/backup"
	"github.com/engram-ops/engram-ops/backup/file"
	"github.com/engram-ops/engram-ops/core"
)

// TestPromoteCLI: a follower restored from the snapshot only (two shipped
// changes behind) is promoted: without --yes nothing happens (exit 2);
// --dry-run predicts the sequence it would reach, the head and the
// generation to claim and writes nothing; --yes applies the two changes,
// claims generation 2 on the target and records it in the data directory,
// where a server's shipper finds it.
func TestPromoteCLI(t *testing.T) {
	ctx := context.Background()
	target, root, newest := fileArchive(t, 3, 2)
	a := openFileArchive(t, root)
	dir := filepath.Join(t.TempDir(), "follower")
	rep, err := a.Restore(ctx, backup.RestoreOptions{DataDir: dir, SnapshotOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	behind := rep.Sequence
	if behind != newest-2 {
		t.Fatalf("follower at %d, want %d", behind, newest-2)
	}
	headGen := func() uint64 {
		t.Helper()
		h, err := a.Head(ctx)
		if err != nil || h == nil {
			t.Fatalf("head: %v %v", h, err)
		}
		return h.Gen()
	}
	unchanged := func(what string) {
		t.Helper()
		if g := headGen(); g != 1 {
			t.Fatalf("%s: the target is at generation %d", what, g)
		}
		if _, err := os.Stat(filepath.Join(dir, "backup-generation.json")); !os.IsNotExist(err) {
			t.Fatalf("%s: the data directory has a generation record (%v)", what, err)
		}
	}

	code, out, errOut := runCLI(t, nil, "promote", "--data-dir", dir, "--target", target)
	if code != 2 || !strings.Contains(errOut, "--yes") {
		t.Fatalf("promote without --yes: exit %d, want 2 naming --yes\n%s%s", code, out, errOut)
	}
	unchanged("without --yes")

	code, out, errOut = runCLI(t, nil, "promote", "--data-dir", dir, "--target", target, "--dry-run")
	want := []string{"would promote " + dir + " on " + target,
		fmt.Sprintf("applied     sequence %d + 2 changes from the archive = %d", behind, newest),
		fmt.Sprintf("head        sequence %d (generation 1)", newest),
		fmt.Sprintf("generation  2, from sequence %d", newest+1)}
	for _, w := range want {
		if code != 0 || !strings.Contains(out, w) {
			t.Fatalf("promote --dry-run: exit %d, output lacks %q:\n%s%s", code, w, out, errOut)
		}
	}
	if strings.Contains(out, "recorded") {
		t.Fatalf("a dry run says it recorded something:\n%s", out)
	}
	unchanged("--dry-run")

	code, out, errOut = runCLI(t, nil, "promote", "--data-dir", dir, "--target", target, "--yes", "--output", "json")
	if code != 0 {
		t.Fatalf("promote --yes: exit %d\n%s%s", code, out, errOut)
	}
	var res backup.PromoteDataDirResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("promote --output json: %v\n%s", err, out)
	}
	if res.DryRun || res.Replayed != 2 || res.AppliedSequence != newest || res.Generation != 2 || res.FirstSequence != newest+1 ||
		res.Recorded != filepath.Join(dir, "backup-generation.json") {
		t.Fatalf("promote --yes reported %+v", res)
	}
	if g := headGen(); g != 2 {
		t.Fatalf("after promote the target is at generation %d, want 2", g)
	}
	if g, err := backup.ReadGeneration(dir, target); err != nil || g != 2 {
		t.Fatalf("the data directory ships as generation %d (%v), want 2", g, err)
	}
	eng, err := core.Open(dir, core.Options{Tiers: core.TierOptions{SweepInterval: -1}})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	if got := eng.LastSequence(); got != newest {
		t.Fatalf("the promoted data directory is at sequence %d, want %d (caught up)", got, newest)
	}
}

// TestServeFencedUnhealthy: a server shipping as generation 1 to an archive
// a promotion moved to generation 2 is fenced at start: the health check
// backup_fencing makes /api/v1/system/health unhealthy (503),
// engram_backup_fenced is 1 and backup list shows the generation.
func TestServeFencedUnhealthy(t *testing.T) {
	target, root, newest := fileArchive(t, 3, 2)
	a := openFileArchive(t, root)
	if _, err := a.Promote(context.Background(), newest, backup.PromoteOptions{}); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCLI(t, nil, "backup", "list", "--from", target); code != 0 || !strings.Contains(out, "(generation 2)") {
		t.Fatalf("backup list: exit %d, no generation 2:\n%s%s", code, out, errOut)
	}
	srv := startServe(t, t.TempDir(), "--backup-to", target, "--snapshot-interval", "0s")
	var body string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get(srv.base + "/api/v1/system/health")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(b)
		if resp.StatusCode == http.StatusServiceUnavailable && strings.Contains(body, `"backup_fencing"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("health never reported the fenced shipper: %d %s", resp.StatusCode, body)
		}
	}
	if !strings.Contains(body, "generation 2") {
		t.Fatalf("the backup_fencing check does not name the current generation: %s", body)
	}
	resp, err := http.Get(srv.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(m), "engram_backup_fenced{target=\""+target+"\"} 1") {
		t.Fatalf("engram_backup_fenced{target=%q} is not 1 in /metrics", target)
	}
	// A fenced primary's writes would never be shipped: it refuses them.
	code, w := httpDo(t, "POST", srv.base+"/api/v1/memories/remember", `{"content":"written after the promotion"}`)
	if code != http.StatusMisdirectedRequest || !strings.Contains(string(w), "PRIMARY_FENCED") {
		t.Fatalf("a write on the fenced primary: %d %s, want 421 PRIMARY_FENCED", code, w)
	}
}

// openFileArchive opens the archive in the directory root.
func openFileArchive(t *testing.T, root string) *backup.Archive {
	t.Helper()
	st, err := file.New(root)
	if err != nil {
		t.Fatal(err)
	}
	a, err := backup.New(st, backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// A primary shipping to an archive takes no write until its shipper has
// confirmed on the archive that it is still the primary: a primary
// promoted over while it was down would otherwise acknowledge writes
// nobody ships. An archive it cannot read holds writes (503
// BACKUP_STARTING, not ready) for backup.start_hold, then lets them in.
func TestServeHoldsWritesUntilBackupConfirms(t *testing.T) {
	// An S3 service that answers the start's bucket check, then is down
	// (503 to everything): shipping cannot confirm anything and retries.
	var listed atomic.Bool
	s3 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Query().Has("location"):
			fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/">us-east-1</LocationConstraint>`)
		case r.URL.Query().Has("list-type") && !listed.Swap(true):
			fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>engram</Name><Prefix>held/</Prefix><KeyCount>0</KeyCount><MaxKeys>1</MaxKeys><IsTruncated>false</IsTruncated></ListBucketResult>`)
		default:
			http.Error(w, "down", http.StatusServiceUnavailable)
		}
	}))
	defer s3.Close()
	srv := startServeEnv(t, t.TempDir(), map[string]string{
		"ENGRAM_BACKUP_TO": "s3://engram/held", "ENGRAM_S3_ENDPOINT": s3.URL,
		"ENGRAM_S3_ACCESS_KEY_ID": "k", "ENGRAM_S3_SECRET_ACCESS_KEY": "s", "ENGRAM_BACKUP_START_HOLD": "2s"})
	code, body := httpDo(t, "POST", srv.base+"/api/v1/memories/remember", `{"content":"before the archive answered"}`)
	if code != http.StatusServiceUnavailable || !strings.Contains(string(body), "BACKUP_STARTING") {
		t.Fatalf("a write before shipping confirmed the archive: %d %s, want 503 BACKUP_STARTING", code, body)
	}
	if code, body := httpDo(t, "GET", srv.base+"/health/ready", ""); code != http.StatusServiceUnavailable {
		t.Fatalf("ready while writes are held: %d %s", code, body)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		code, body = httpDo(t, "POST", srv.base+"/api/v1/memories/remember", `{"content":"after backup.start_hold"}`)
		if code == http.StatusCreated {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("writes still refused after backup.start_hold: %d %s", code, body)
		}
	}
	if !strings.Contains(srv.stderr.String(), "accepting writes anyway") {
		t.Fatalf("the log does not say writes opened unconfirmed:\n%s", srv.stderr.String())
	}
}
