package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/ops/api"
)

// s3Env returns the S3 target of the real test server (scripts/test.sh
// starts versitygw), or "" when it is not configured.
func s3Env(t *testing.T) (string, map[string]string) {
	ep := os.Getenv("ENGRAM_TEST_S3_ENDPOINT")
	if ep == "" {
		return "", nil
	}
	env := map[string]string{
		"ENGRAM_S3_ENDPOINT":          ep,
		"ENGRAM_S3_ACCESS_KEY_ID":     os.Getenv("ENGRAM_TEST_S3_ACCESS_KEY"),
		"ENGRAM_S3_SECRET_ACCESS_KEY": os.Getenv("ENGRAM_TEST_S3_SECRET_KEY"),
		"ENGRAM_S3_REGION":            "us-east-1",
		"ENGRAM_S3_PATH_STYLE":        "1",
	}
	if !strings.HasPrefix(ep, "https://") {
		env["ENGRAM_S3_INSECURE"] = "1"
	}
	prefix := fmt.Sprintf("cycle-%d", time.Now().UnixNano())
	return "s3://" + os.Getenv("ENGRAM_TEST_S3_BUCKET") + "/" + prefix, env
}

// TestBackupFullCycle is the "done when": serve with shipping, write,
// forget one by accident, write more, restore to the second before the
// deletion, and the deleted memory is back and everything after is not.
func TestBackupFullCycle(t *testing.T) {
	t.Run("file", func(t *testing.T) {
		fullCycle(t, "file://"+filepath.ToSlash(t.TempDir()), nil)
	})
	t.Run("s3", func(t *testing.T) {
		target, env := s3Env(t)
		if target == "" {
			t.Skip("ENGRAM_TEST_S3_ENDPOINT is not set: the S3 cycle runs under `make test` (scripts/test.sh starts versitygw)")
		}
		fullCycle(t, target, env)
	})
}

func fullCycle(t *testing.T, target string, env map[string]string) {
	ctx := context.Background()
	dataDir := t.TempDir()
	srv := startServeEnv(t, dataDir, env, "--backup-to", target, "--backup-interval", "50ms", "--snapshot-interval", "0s")
	put := func(id, content string) {
		t.Helper()
		if _, err := srv.c.Remember(ctx, api.RememberRequest{ID: id, Content: content}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 10; i++ {
		put(fmt.Sprintf("before-%d", i), fmt.Sprintf("a memory about the sea number %d", i))
	}
	// The moment to return to: a whole second after the last write before it.
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second + 50*time.Millisecond)))
	moment := time.Now().UTC().Truncate(time.Second)
	time.Sleep(time.Until(moment.Add(time.Second + 50*time.Millisecond)))
	if _, err := srv.c.Forget(ctx, "before-3"); err != nil {
		t.Fatal(err)
	}
	put("after-1", "written after the accident")

	// Admin endpoint: status, then a snapshot of the running server.
	resp, err := http.Get(srv.base + "/api/v1/admin/backup")
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Target  string `json:"target"`
		Running bool   `json:"running"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if resp.StatusCode != 200 || !st.Running {
		t.Fatalf("backup status %d %+v", resp.StatusCode, st)
	}
	code, out, errOut := runCLI(t, env, "backup", "create", "--server", srv.base)
	if code != 0 {
		t.Fatalf("backup create --server: %d %s %s", code, out, errOut)
	}
	put("after-2", "written after the second snapshot")
	if code := srv.stop(); code != 0 {
		t.Fatalf("serve exited %d:\n%s", code, srv.stderr.String())
	}
	metricsOK := strings.Contains(srv.stderr.String(), "backup shipping started")
	if !metricsOK {
		t.Fatalf("shipper did not start:\n%s", srv.stderr.String())
	}

	// Point-in-time restore into a new directory.
	dest := filepath.Join(t.TempDir(), "pitr")
	code, out, errOut = runCLI(t, env, "restore", "--from", target, "--data-dir", dest,
		"--to-time", moment.Format(time.RFC3339), "--output", "json")
	if code != 0 {
		t.Fatalf("restore: exit %d\n%s\n%s", code, out, errOut)
	}
	var rep struct {
		Snapshot       string  `json:"snapshot"`
		ChangesApplied int     `json:"changes_applied"`
		Seconds        float64 `json:"seconds"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("restore json: %v\n%s", err, out)
	}
	t.Logf("restore took %.3fs, snapshot %s, %d changes replayed", rep.Seconds, rep.Snapshot, rep.ChangesApplied)
	got := listIDs(t, dest)
	for i := 0; i < 10; i++ {
		if !got[fmt.Sprintf("before-%d", i)] {
			t.Errorf("before-%d missing after PITR (the forgotten one is before-3)", i)
		}
	}
	if got["after-1"] || got["after-2"] {
		t.Errorf("PITR restored memories written after the moment: %v", got)
	}

	// Latest: everything, including the forget.
	latest := filepath.Join(t.TempDir(), "latest")
	if code, out, errOut := runCLI(t, env, "restore", "--from", target, "--data-dir", latest); code != 0 {
		t.Fatalf("restore latest: %d %s %s", code, out, errOut)
	}
	got = listIDs(t, latest)
	if got["before-3"] || !got["after-1"] || !got["after-2"] {
		t.Errorf("latest restore: %v", got)
	}

	// Refusals: non-empty destination, a time before the first snapshot.
	code, _, errOut = runCLI(t, env, "restore", "--from", target, "--data-dir", latest)
	if code != 1 || !strings.Contains(errOut, "not empty") {
		t.Errorf("non-empty destination: exit %d %s", code, errOut)
	}
	early := filepath.Join(t.TempDir(), "early")
	code, _, errOut = runCLI(t, env, "restore", "--from", target, "--data-dir", early, "--to-time", "2001-01-01T00:00:00Z")
	if code != 1 || !strings.Contains(errOut, "no snapshot at or before") {
		t.Errorf("time before first snapshot: exit %d %s", code, errOut)
	}
	if _, err := os.Stat(early); !os.IsNotExist(err) {
		t.Errorf("failed restore created %s", early)
	}

	// list, inspect, verify.
	code, out, _ = runCLI(t, env, "backup", "list", "--from", target, "--output", "json")
	if code != 0 || !strings.Contains(out, `"snapshots"`) {
		t.Fatalf("list: %d %s", code, out)
	}
	for _, level := range []string{"1", "2", "4"} {
		code, out, errOut = runCLI(t, env, "backup", "verify", "--from", target, "--level", level)
		if code != 0 {
			t.Errorf("verify level %s: exit %d\n%s\n%s", level, code, out, errOut)
		}
	}
}

func listIDs(t *testing.T, dir string) map[string]bool {
	t.Helper()
	eng, err := core.Open(dir, core.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	res, err := eng.List(context.Background(), "default", core.ListOptions{AllTiers: true, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, m := range res.Memories {
		out[m.ID] = true
	}
	return out
}
