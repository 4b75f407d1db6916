package backup

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/engram-ops/engram-ops/core"
)

// TestRestoreRefusesLockedDataDir: restore --force (and its dry run) into
// the data directory of a running engine is refused with DATA_DIR_IN_USE,
// naming the lock file; the directory stays where it is and the engine
// keeps writing into it.
func TestRestoreRefusesLockedDataDir(t *testing.T) {
	ctx := context.Background()
	src := openEngine(t, t.TempDir(), nil)
	defer src.Close()
	a, _ := newArchive(t, nil)
	remember(t, src, "default", "archived", "in the backup")
	if _, err := a.SnapshotEngine(ctx, src); err != nil {
		t.Fatal(err)
	}

	parent := t.TempDir()
	dest := filepath.Join(parent, "live")
	live := openEngine(t, dest, nil)
	defer live.Close()
	remember(t, live, "default", "before", "written before the restore")
	for _, dry := range []bool{true, false} {
		_, err := a.Restore(ctx, RestoreOptions{DataDir: dest, Force: true, DryRun: dry})
		if core.CodeOf(err) != "DATA_DIR_IN_USE" || !strings.Contains(err.Error(), filepath.Join(dest, "db", "LOCK")) {
			t.Fatalf("restore (dry run %v) over a running engine: %v (code %q), want DATA_DIR_IN_USE naming the lock file", dry, err, core.CodeOf(err))
		}
	}
	if entries, _ := os.ReadDir(parent); len(entries) != 1 || entries[0].Name() != "live" {
		t.Fatalf("a refused restore changed the parent directory: %v", entries)
	}
	remember(t, live, "default", "after", "written after the refused restore")
	if err := live.Close(); err != nil {
		t.Fatal(err)
	}
	r := openEngine(t, dest, nil)
	got := ids(t, r, "default")
	r.Close()
	if len(got) != 2 || got["before"] == "" || got["after"] == "" {
		t.Fatalf("the running engine's data after a refused restore: %v", got)
	}
	// Stopped, the same directory is replaced and the lock released.
	rep, err := a.Restore(ctx, RestoreOptions{DataDir: dest, Force: true})
	if err != nil || rep.MovedAside == "" {
		t.Fatalf("restore over a stopped data directory: %v %+v", err, rep)
	}
	r = openEngine(t, dest, nil)
	got = ids(t, r, "default")
	r.Close()
	if len(got) != 1 || got["archived"] == "" {
		t.Fatalf("restored data: %v", got)
	}
}

// TestRestoreWarnsOnSkippedSnapshot: when the newest manifest is unreadable
// restore falls back to an older snapshot and says so, naming the skipped
// snapshot and why.
func TestRestoreWarnsOnSkippedSnapshot(t *testing.T) {
	ctx := context.Background()
	clock := &testClock{t: time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)}
	eng := openEngine(t, t.TempDir(), clock.Now)
	defer eng.Close()
	var events []Event
	st := newMemStore()
	a, err := New(st, Options{EngineOptions: testEngineOptions(nil), Progress: func(e Event) { events = append(events, e) }})
	if err != nil {
		t.Fatal(err)
	}
	remember(t, eng, "default", "a", "first")
	older, err := a.SnapshotEngine(ctx, eng)
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second)
	remember(t, eng, "default", "b", "second")
	shipOnce(t, a, eng)
	clock.Advance(time.Second)
	newer, err := a.SnapshotEngine(ctx, eng)
	if err != nil {
		t.Fatal(err)
	}
	key := manifestKey(newer.Manifest.ID)
	bad := []byte("{not a manifest")
	if err := st.Put(ctx, key, bytes.NewReader(bad), int64(len(bad))); err != nil {
		t.Fatal(err)
	}
	for _, dry := range []bool{true, false} {
		events = nil
		rep, err := a.Restore(ctx, RestoreOptions{DataDir: filepath.Join(t.TempDir(), "r"), DryRun: dry})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Snapshot != older.Manifest.ID || rep.Sequence != eng.LastSequence() {
			t.Fatalf("dry run %v: restored from %s to %d, want %s to %d", dry, rep.Snapshot, rep.Sequence, older.Manifest.ID, eng.LastSequence())
		}
		if len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], newer.Manifest.ID) ||
			!strings.Contains(rep.Warnings[0], "unreadable") || !strings.Contains(rep.Warnings[0], older.Manifest.ID) {
			t.Fatalf("dry run %v: warnings %q, want one naming %s as skipped", dry, rep.Warnings, newer.Manifest.ID)
		}
		found := false
		for _, e := range events {
			found = found || (e.Stage == "warning" && e.Message == rep.Warnings[0])
		}
		if !found {
			t.Fatalf("dry run %v: no warning event in %+v", dry, events)
		}
	}
}

// TestRestoreDryRunPredicts: a dry run reports the changes, segments and
// sequence the real restore then reaches, for every kind of target.
func TestRestoreDryRunPredicts(t *testing.T) {
	ctx := context.Background()
	clock := &testClock{t: time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)}
	eng := openEngine(t, t.TempDir(), clock.Now)
	defer eng.Close()
	a, err := New(newMemStore(), Options{EngineOptions: testEngineOptions(nil), Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.SnapshotEngine(ctx, eng); err != nil { // empty: sequence 0
		t.Fatal(err)
	}
	var mid time.Time
	for round := 0; round < 3; round++ {
		for i := 0; i < 17; i++ {
			clock.Advance(time.Second)
			remember(t, eng, "default", fmt.Sprintf("r%d-%d", round, i), "shipped later")
			if round == 1 && i == 8 {
				mid = clock.Now()
			}
		}
		shipOnce(t, a, eng)
	}
	for _, o := range []RestoreOptions{{}, {ToSequence: 20}, {ToTime: mid}} {
		o.DataDir = filepath.Join(t.TempDir(), "r")
		real := o
		o.DryRun = true
		dry, err := a.Restore(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(o.DataDir); !os.IsNotExist(err) {
			t.Fatalf("a dry run created %s", o.DataDir)
		}
		done, err := a.Restore(ctx, real)
		if err != nil {
			t.Fatal(err)
		}
		if done.ChangesApplied == 0 || dry.ChangesApplied != done.ChangesApplied || dry.Sequence != done.Sequence ||
			!dry.LastChangeTime.Equal(done.LastChangeTime) || !reflect.DeepEqual(dry.Segments, done.Segments) {
			t.Errorf("target %s: dry run predicted %d changes to %d (%v, %v), the restore did %d to %d (%v, %v)", o.describeTarget(),
				dry.ChangesApplied, dry.Sequence, dry.LastChangeTime, dry.Segments, done.ChangesApplied, done.Sequence, done.LastChangeTime, done.Segments)
		}
	}
}
