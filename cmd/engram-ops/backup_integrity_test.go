package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/engram-ops/engram-ops/backup"
	"github.com/engram-ops/engram-ops/core"
)

// TestBackupMetadataDamage runs the probes through the CLI on a
// file:// target: one bit flipped in a manifest's last_change (07:56:31 ->
// 07:56:11), in head.json or in verify/last.json fails `backup verify
// --level 1` (exit 3) and the flipped manifest is not used by a restore to
// 07:56:14; the newest segment deleted fails verify, and a restore to the
// newest state writes what the target holds and exits 3 naming the
// sequence it reached and the one shipped.
func TestBackupMetadataDamage(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	target := "file://" + filepath.ToSlash(dir)
	env := map[string]string{"XDG_CACHE_HOME": t.TempDir()}
	a := openFileArchive(t, dir)
	at := func(sec int) time.Time { return time.Date(2026, 11, 27, 7, 56, sec, 0, time.UTC) }
	var (
		mu  sync.Mutex
		now = at(0)
	)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	setClock := func(t time.Time) { mu.Lock(); now = t; mu.Unlock() }
	eng, err := core.Open(t.TempDir(), core.Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	remember := func(id string) {
		t.Helper()
		if _, err := eng.Remember(ctx, "default", core.RememberInput{ID: id, Content: "memory " + id}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		remember(fmt.Sprintf("m%d", i))
	}
	if _, err := a.SnapshotEngine(ctx, eng); err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	sh := a.NewShipper(eng, backup.ShipperOptions{Interval: 10 * time.Millisecond, FinalFlush: -1, VerifyPoll: -1})
	done := make(chan error, 1)
	go func() { done <- sh.Run(sctx) }()
	shipped := func() {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); sh.Status().ShippedSequence < eng.LastSequence(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("shipped %d of %d", sh.Status().ShippedSequence, eng.LastSequence())
			}
		}
	}
	setClock(at(10))
	remember("keep")
	shipped()
	setClock(at(20))
	if _, err := eng.Forget(ctx, "default", "m1"); err != nil {
		t.Fatal(err)
	}
	shipped()
	setClock(at(31))
	remember("after")
	shipped()
	snapB, err := sh.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	setClock(at(40))
	remember("tail1")
	remember("tail2")
	shipped()
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	segs, err := a.Segments(ctx)
	if err != nil || len(segs) == 0 {
		t.Fatalf("segments %v %v", segs, err)
	}
	newest := segs[len(segs)-1]

	verify := func(t *testing.T, want int, wantOut ...string) {
		t.Helper()
		code, out, errOut := runCLI(t, env, "backup", "verify", "--from", target, "--level", "1")
		if code != want {
			t.Fatalf("verify --level 1: exit %d, want %d\n%s\n%s", code, want, out, errOut)
		}
		for _, w := range wantOut {
			if !strings.Contains(out, w) {
				t.Errorf("verify output lacks %q:\n%s", w, out)
			}
		}
	}
	// damage replaces an object's bytes for the rest of a subtest.
	damage := func(t *testing.T, key string, mutate func([]byte) []byte) {
		t.Helper()
		path := filepath.Join(dir, filepath.FromSlash(key))
		orig, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.WriteFile(path, orig, 0o644) })
		if mutate == nil {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			return
		}
		if err := os.WriteFile(path, mutate(append([]byte(nil), orig...)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	verify(t, 0)

	t.Run("manifest last_change", func(t *testing.T) {
		damage(t, "snapshots/"+snapB.Manifest.ID+".json", func(b []byte) []byte {
			field := []byte(`"last_change": "2026-11-27T07:56:31`)
			i := bytes.Index(b, field)
			if i < 0 {
				t.Fatalf("no %s in\n%s", field, b)
			}
			b[i+len(field)-2] ^= 0x02 // '3' -> '1'
			return b
		})
		verify(t, 3, "FAIL", snapB.Manifest.ID)
		dest := filepath.Join(t.TempDir(), "pitr")
		code, out, errOut := runCLI(t, env, "restore", "--from", target, "--data-dir", dest, "--to-time", at(14).Format(time.RFC3339))
		if code != 0 {
			t.Fatalf("restore --to-time: exit %d\n%s\n%s", code, out, errOut)
		}
		got := listIDs(t, dest)
		if !got["m1"] || !got["keep"] || got["after"] {
			t.Errorf("restore to 07:56:14 holds %v: want m1 and keep, not after", got)
		}
	})
	t.Run("head.json", func(t *testing.T) {
		damage(t, "head.json", func(b []byte) []byte {
			i := bytes.Index(b, []byte(`"sequence":`))
			b[i+len(`"sequence":`)] ^= 0x01
			return b
		})
		verify(t, 3, "head.json")
	})
	t.Run("verify/last.json", func(t *testing.T) {
		damage(t, "verify/last.json", func(b []byte) []byte {
			i := bytes.Index(b, []byte(`"ok":true`))
			b[i+1] ^= 0x20 // "ok" -> "Ok": JSON decodes it the same, the bytes differ
			return b
		})
		verify(t, 3, "verify/last.json")
	})
	t.Run("newest segment deleted", func(t *testing.T) {
		damage(t, newest.Key, nil)
		verify(t, 3, fmt.Sprintf("sequences %d-%d were shipped", newest.First, newest.Last))
		dest := filepath.Join(t.TempDir(), "latest")
		code, out, errOut := runCLI(t, env, "restore", "--from", target, "--data-dir", dest)
		if want := fmt.Sprintf("reached %d, shipped %d", newest.First-1, newest.Last); code != 3 || !strings.Contains(errOut, want) {
			t.Fatalf("restore without the newest segment: exit %d, want 3 and %q\n%s\n%s", code, want, out, errOut)
		}
		if got := listIDs(t, dest); !got["after"] || got["tail2"] {
			t.Errorf("short restore holds %v: want what the target has", got)
		}
		code, out, errOut = runCLI(t, env, "restore", "--from", target, "--data-dir", filepath.Join(t.TempDir(), "bounded"),
			"--to-sequence", fmt.Sprint(newest.First-1))
		if code != 0 {
			t.Fatalf("restore --to-sequence %d: exit %d\n%s\n%s", newest.First-1, code, out, errOut)
		}
	})
}

// TestBackupListEmptySnapshot: a snapshot holding no change shows "-" as
// its last change in list and inspect, not the zero time.
func TestBackupListEmptySnapshot(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a := openFileArchive(t, dir)
	eng, err := core.Open(t.TempDir(), core.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	res, err := a.SnapshotEngine(ctx, eng)
	if err != nil {
		t.Fatal(err)
	}
	target := "file://" + filepath.ToSlash(dir)
	for _, args := range [][]string{{"backup", "list", "--from", target}, {"backup", "inspect", res.Manifest.ID, "--from", target}} {
		code, out, errOut := runCLI(t, nil, args...)
		if code != 0 || strings.Contains(out, "0001-01-01") || !strings.Contains(out, " - ") && !strings.Contains(out, "change -") {
			t.Errorf("%s: exit %d\n%s\n%s", strings.Join(args[:2], " "), code, out, errOut)
		}
	}
}
