package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/engram-ops/engram-ops/backup"
	"github.com/engram-ops/engram-ops/backup/file"
	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/ops/api"
)

// fileArchive builds a file:// archive without a server: a snapshot of
// before memories, then one segment of after more. It returns the target
// URL, the archive's directory and the newest shipped sequence.
func fileArchive(t *testing.T, before, after int) (string, string, uint64) {
	t.Helper()
	ctx := context.Background()
	eng, err := core.Open(t.TempDir(), core.Options{Tiers: core.TierOptions{SweepInterval: -1}})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	root := t.TempDir()
	st, err := file.New(root)
	if err != nil {
		t.Fatal(err)
	}
	a, err := backup.New(st, backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	put := func(i int) {
		if _, err := eng.Remember(ctx, "default", core.RememberInput{ID: fmt.Sprintf("m%03d", i), Content: fmt.Sprintf("memory %d about the harbour", i)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < before; i++ {
		put(i)
	}
	snap, err := a.SnapshotEngine(ctx, eng)
	if err != nil {
		t.Fatal(err)
	}
	for i := before; i < before+after; i++ {
		put(i)
	}
	if after > 0 {
		// One segment, shipped as a server ships it (head.json names it).
		sh := a.NewShipper(eng, backup.ShipperOptions{Interval: 10 * time.Millisecond, FinalFlush: -1, VerifyPoll: -1})
		sctx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- sh.Run(sctx) }()
		for deadline := time.Now().Add(10 * time.Second); sh.Status().ShippedSequence < eng.LastSequence(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("shipped %d of %d after snapshot %s", sh.Status().ShippedSequence, eng.LastSequence(), snap.Manifest.ID)
			}
		}
		stop()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	return st.String(), root, eng.LastSequence()
}

// TestRestoreRefusesRunningServer: restore --force (and --dry-run) into the
// data directory of a running server fails as serve does on it (same
// message, same exit code) and changes nothing: the server keeps its
// directory and keeps accepting writes.
func TestRestoreRefusesRunningServer(t *testing.T) {
	target, _, _ := fileArchive(t, 5, 0)
	parent := t.TempDir()
	dir := filepath.Join(parent, "live")
	srv := startServeEnv(t, dir, nil)
	ctx := context.Background()
	if _, err := srv.c.Remember(ctx, api.RememberRequest{ID: "before", Content: "written before the restore"}); err != nil {
		t.Fatal(err)
	}

	serveCode, _, serveErr := runCLI(t, nil, "serve", "--listen", "127.0.0.1:0", "--data-dir", dir)
	lock := filepath.Join(dir, "db", "LOCK")
	i := strings.Index(serveErr, "another process")
	if serveCode != exitFailed || i < 0 || !strings.Contains(serveErr, lock) {
		t.Fatalf("second serve on the directory: exit %d %s", serveCode, serveErr)
	}
	msg := strings.TrimSpace(serveErr[i:])
	for _, extra := range [][]string{nil, {"--dry-run"}} {
		code, out, errOut := runCLI(t, nil, append([]string{"restore", "--from", target, "--data-dir", dir, "--force"}, extra...)...)
		if code != serveCode || !strings.Contains(errOut, msg) {
			t.Errorf("restore --force %v over a running server: exit %d (serve: %d)\nstdout: %s\nstderr: %s\nwant the message serve gives: %s", extra, code, serveCode, out, errOut, msg)
		}
	}
	if entries, _ := os.ReadDir(parent); len(entries) != 1 {
		t.Errorf("a refused restore changed %s: %v", parent, entries)
	}
	if _, err := srv.c.Remember(ctx, api.RememberRequest{ID: "after", Content: "written after the refused restore"}); err != nil {
		t.Fatal(err)
	}
	if code := srv.stop(); code != 0 {
		t.Fatalf("serve exited %d:\n%s", code, srv.stderr.String())
	}
	if got := listIDs(t, dir); !got["before"] || !got["after"] || got["m000"] {
		t.Errorf("the server's directory after a refused restore holds %v", got)
	}
}

// TestRestoreDryRunCLI: the dry run predicts the changes and the sequence
// the restore then reports, and says so in the conditional.
func TestRestoreDryRunCLI(t *testing.T) {
	target, _, last := fileArchive(t, 3, 51)
	dest := filepath.Join(t.TempDir(), "restored")
	type report struct {
		DryRun         bool      `json:"dry_run"`
		ChangesApplied int       `json:"changes_applied"`
		Sequence       uint64    `json:"sequence"`
		LastChangeTime time.Time `json:"last_change_time"`
	}
	run := func(args ...string) report {
		t.Helper()
		code, out, errOut := runCLI(t, nil, append([]string{"restore", "--from", target, "--data-dir", dest, "--output", "json"}, args...)...)
		var r report
		if code != 0 || json.Unmarshal([]byte(out), &r) != nil {
			t.Fatalf("restore %v: exit %d\n%s\n%s", args, code, out, errOut)
		}
		return r
	}
	dry := run("--dry-run")
	code, text, errOut := runCLI(t, nil, "restore", "--from", target, "--data-dir", dest, "--dry-run")
	if code != 0 || !strings.Contains(text, "would replay  51 changes from 1 segments") ||
		!strings.Contains(text, fmt.Sprintf("would reach   sequence %d", last)) || strings.Contains(text, "replayed") || strings.Contains(text, "now at") {
		t.Errorf("dry run text: exit %d\n%s\n%s", code, text, errOut)
	}
	if _, err := os.Stat(dest); !os.IsNotExist(err) {
		t.Fatalf("a dry run created %s", dest)
	}
	done := run()
	if !dry.DryRun || done.ChangesApplied != 51 || done.Sequence != last || dry.ChangesApplied != done.ChangesApplied ||
		dry.Sequence != done.Sequence || !dry.LastChangeTime.Equal(done.LastChangeTime) {
		t.Errorf("dry run %+v, restore %+v (newest shipped %d)", dry, done, last)
	}
}

// TestVerifyLevel2ChecksEverything: a byte flipped in place, with size and
// modification time kept, fails level 2 at the default settings even after
// a passing run filled the cache; only the opt-in --cache skips it, and
// says how many objects it skipped.
func TestVerifyLevel2ChecksEverything(t *testing.T) {
	target, root, _ := fileArchive(t, 20, 5)
	env := map[string]string{"XDG_CACHE_HOME": t.TempDir()}
	type report struct {
		Checked  int      `json:"checked"`
		Cached   int      `json:"cached"`
		Problems []string `json:"problems"`
	}
	verify := func(wantCode int, args ...string) (report, string) {
		t.Helper()
		code, out, errOut := runCLI(t, env, append([]string{"backup", "verify", "--from", target, "--level", "2"}, args...)...)
		if code != wantCode {
			t.Fatalf("verify %v: exit %d, want %d\n%s\n%s", args, code, wantCode, out, errOut)
		}
		var r report
		if strings.Contains(strings.Join(args, " "), "json") {
			if err := json.Unmarshal([]byte(out), &r); err != nil {
				t.Fatalf("verify %v: %v\n%s", args, err, out)
			}
		}
		return r, out
	}
	first, _ := verify(0, "--cache", "--output", "json")
	if first.Checked < 2 || first.Cached != 0 {
		t.Fatalf("first run with --cache: %+v", first)
	}
	all := first.Checked

	// Flip one byte in the middle of the largest engine file, in place.
	var victim string
	var size int64
	_ = filepath.Walk(filepath.Join(root, "files"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() && fi.Size() > size {
			victim, size = p, fi.Size()
		}
		return nil
	})
	if victim == "" {
		t.Fatalf("no engine file under %s", root)
	}
	st, err := os.Stat(victim)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(victim)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x01
	if err := os.WriteFile(victim, b, st.Mode()); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(victim, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
	if now, _ := os.Stat(victim); now.Size() != st.Size() || !now.ModTime().Equal(st.ModTime()) {
		t.Fatalf("size or time changed: %v %v -> %v %v", st.Size(), st.ModTime(), now.Size(), now.ModTime())
	}

	def, _ := verify(exitNotPassed, "--output", "json")
	if def.Checked != all || def.Cached != 0 || len(def.Problems) != 1 {
		t.Errorf("default level 2 after an in-place flip: %+v, want %d checked and one problem", def, all)
	}
	_, text := verify(exitNotPassed)
	if !strings.Contains(text, fmt.Sprintf("checksums: %d objects read and checksummed, 0 skipped", all)) || !strings.Contains(text, "FAIL") {
		t.Errorf("default level 2 text:\n%s", text)
	}
	verify(exitNotPassed, "--no-cache")
	cached, _ := verify(0, "--cache", "--output", "json")
	if cached.Checked != 0 || cached.Cached != all {
		t.Errorf("--cache after an in-place flip: %+v, want all %d skipped", cached, all)
	}
	_, text = verify(0, "--cache")
	if !strings.Contains(text, fmt.Sprintf("0 objects read and checksummed, %d skipped by --cache", all)) {
		t.Errorf("--cache text:\n%s", text)
	}
}
