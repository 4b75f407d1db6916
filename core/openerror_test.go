package core_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/engram-ops/engram-ops/core"
)

// TestOpenDataDirInUse: a second Open of a data directory says another
// process holds it, with the lock file's path.
func TestOpenDataDirInUse(t *testing.T) {
	dir := t.TempDir()
	e, err := core.Open(dir, core.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	_, err = core.Open(dir, core.Options{})
	if core.CodeOf(err) != "DATA_DIR_IN_USE" || !strings.Contains(err.Error(), filepath.Join(dir, "db", "LOCK")) {
		t.Fatalf("second open: %v (code %s), want DATA_DIR_IN_USE naming the lock file", err, core.CodeOf(err))
	}
}

// TestLockDataDir: LockDataDir takes the lock a server holds: refused with
// the same DATA_DIR_IN_USE error while an engine has the directory open,
// and while it is held an engine cannot open the directory.
func TestLockDataDir(t *testing.T) {
	dir := t.TempDir()
	e, err := core.Open(dir, core.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = core.LockDataDir(dir)
	if core.CodeOf(err) != "DATA_DIR_IN_USE" || !strings.Contains(err.Error(), filepath.Join(dir, "db", "LOCK")) {
		t.Fatalf("lock of an open data directory: %v (code %s), want DATA_DIR_IN_USE naming the lock file", err, core.CodeOf(err))
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	release, err := core.LockDataDir(dir)
	if err != nil {
		t.Fatalf("lock of a closed data directory: %v", err)
	}
	if _, err := core.Open(dir, core.Options{}); core.CodeOf(err) != "DATA_DIR_IN_USE" {
		t.Fatalf("open of a locked data directory: %v (code %s)", err, core.CodeOf(err))
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
	e, err = core.Open(dir, core.Options{})
	if err != nil {
		t.Fatalf("open after release: %v", err)
	}
	_ = e.Close()
}

// TestOpenCorruptLog: a write-ahead log damaged before its end (disk rot,
// not a torn last write) makes Open fail with STORAGE_CORRUPT, pointing to
// a restore, and leaves every file as it was.
func TestOpenCorruptLog(t *testing.T) {
	dir := t.TempDir()
	e, err := core.Open(dir, core.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// Enough writes for the engine to move to a new log at least once:
	// only a log that is not the newest must end cleanly.
	for b := 0; b < 10; b++ {
		var in core.BatchInput
		for i := 0; i < 200; i++ {
			in.Memories = append(in.Memories, core.RememberInput{Content: "memory " + strconv.Itoa(b) + "-" + strconv.Itoa(i) + strings.Repeat(" padding", 20)})
		}
		if _, err := e.Batch(ctx, "default", in); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	logs, _ := filepath.Glob(filepath.Join(dir, "db", "*.log"))
	sort.Strings(logs)
	if len(logs) < 2 {
		t.Fatalf("want at least two write-ahead logs to damage an older one, have %v", logs)
	}
	old, err := os.ReadFile(logs[0])
	if err != nil {
		t.Fatal(err)
	}
	old[len(old)/2] ^= 0xff
	if err := os.WriteFile(logs[0], old, 0o644); err != nil {
		t.Fatal(err)
	}
	before := dirDigest(t, dir)

	_, err = core.Open(dir, core.Options{})
	if core.CodeOf(err) != "STORAGE_CORRUPT" || !strings.Contains(err.Error(), "disaster-recovery") {
		t.Fatalf("open with a damaged log: %v (code %s), want STORAGE_CORRUPT with the runbook", err, core.CodeOf(err))
	}
	if after := dirDigest(t, dir); after != before {
		t.Fatalf("a failed open changed the data directory:\nbefore %s\nafter  %s", before, after)
	}
}

// dirDigest lists every file under dir with its size and SHA-256.
func dirDigest(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fmt.Fprintf(&b, "%s:%d:%x ", rel, len(data), sha256.Sum256(data))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}
