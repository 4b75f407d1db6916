package core

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestDiskGuard: under the reserve every write is refused with
// INSUFFICIENT_STORAGE and changes nothing, reads go on, and writes are
// accepted again once space is freed.
func TestDiskGuard(t *testing.T) {
	var free atomic.Int64
	free.Store(10 << 20)
	ctx := context.Background()
	e, err := Open(t.TempDir(), Options{DefaultDimension: 64, MinFreeBytes: 1 << 20,
		DiskFree: func(string) (int64, error) { return free.Load(), nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	kept, err := e.Remember(ctx, "notes", RememberInput{Content: "the lighthouse keeper's log"})
	if err != nil {
		t.Fatal(err)
	}

	free.Store(512 << 10)
	e.checkDiskSpace()
	refused := func(what string, err error) {
		t.Helper()
		var ce *Error
		if !errors.As(err, &ce) || ce.Kind != KindInsufficientStorage || ce.Code != "INSUFFICIENT_STORAGE" {
			t.Fatalf("%s with 512 KiB free under a 1 MiB reserve: %v, want INSUFFICIENT_STORAGE", what, err)
		}
		if !strings.Contains(ce.Message, "512.0 KiB free") || !strings.Contains(ce.Message, "1.0 MiB") {
			t.Fatalf("%s: message %q does not name the free space and the reserve", what, ce.Message)
		}
	}
	_, err = e.Remember(ctx, "notes", RememberInput{Content: "refused"})
	refused("remember", err)
	_, err = e.Batch(ctx, "notes", BatchInput{Memories: []RememberInput{{Content: "refused too"}}})
	refused("batch", err)
	_, err = e.Forget(ctx, "notes", kept.ID)
	refused("forget", err)
	refused("replay", e.ApplyChanges(ctx, []Change{{Seq: e.LastSequence() + 1}}))
	if d := e.Metrics().Disk; !d.WritesRefused || d.MinFreeBytes != 1<<20 {
		t.Fatalf("metrics while refusing: %+v", d)
	}
	before := e.LastSequence()
	if _, err := e.Get(ctx, "notes", kept.ID, false); err != nil {
		t.Fatalf("a read while writes are refused: %v", err)
	}
	if got, err := e.Recall(ctx, "notes", RecallQuery{Text: "lighthouse keeper", Threshold: -1}); err != nil || len(got.Vivid) == 0 {
		t.Fatalf("a recall while writes are refused: %v, %d results", err, len(got.Vivid))
	}
	if e.LastSequence() != before {
		t.Fatalf("the change log moved from %d to %d while writes were refused", before, e.LastSequence())
	}

	free.Store(2 << 20)
	e.checkDiskSpace()
	if _, err := e.Remember(ctx, "notes", RememberInput{Content: "accepted again"}); err != nil {
		t.Fatalf("a write once space is freed: %v", err)
	}
	if e.Metrics().Disk.WritesRefused {
		t.Fatal("metrics still say writes are refused")
	}
}

// TestOpenRefusesBelowReserve: Open on a filesystem under the reserve
// fails with INSUFFICIENT_STORAGE before anything is created.
func TestOpenRefusesBelowReserve(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	_, err := Open(dir, Options{MinFreeBytes: 1 << 30, DiskFree: func(string) (int64, error) { return 100 << 20, nil }})
	if KindOf(err) != KindInsufficientStorage || !strings.Contains(err.Error(), "100.0 MiB free") {
		t.Fatalf("open under the reserve: %v", err)
	}
	if _, statErr := os.Stat(dir); !os.IsNotExist(statErr) {
		t.Fatalf("the data directory was created anyway: %v", statErr)
	}
}

// TestQuietLoggerLimitsErrors: a storm of storage errors is logged once per
// interval, the next line counting what was left out, and does not hold
// back an error of another kind.
func TestQuietLoggerLimitsErrors(t *testing.T) {
	var buf bytes.Buffer
	q := &quietLogger{l: slog.New(slog.NewTextHandler(&buf, nil))}
	for range 1000 {
		q.Errorf("background error: %s", "no space left on device")
	}
	if n := strings.Count(buf.String(), "\n"); n != 1 {
		t.Fatalf("1,000 errors within the interval logged %d lines, want 1:\n%s", n, buf.String())
	}
	q.Errorf("pebble: corruption in %s", "000123.sst")
	if n := strings.Count(buf.String(), "\n"); n != 2 || !strings.Contains(buf.String(), "corruption") {
		t.Fatalf("an error of another kind during the storm was held back:\n%s", buf.String())
	}
	q.errors["background error: %s"].last = time.Now().Add(-errorLogInterval)
	q.Errorf("background error: %s", "no space left on device")
	if lines := strings.Split(strings.TrimSpace(buf.String()), "\n"); len(lines) != 3 || !strings.Contains(lines[2], "errors_not_logged_since_last=999") {
		t.Fatalf("after the interval: %q, want a third line counting 999 left out", lines)
	}
}

// TestDiskGuardMeasurementFails: a free-space measurement that keeps
// failing is logged once, and the guard keeps its last state.
func TestDiskGuardMeasurementFails(t *testing.T) {
	var fail atomic.Bool
	var free atomic.Int64
	free.Store(2 << 20)
	var logs lockedBuffer // the guard's ticker logs too
	e, err := Open(t.TempDir(), Options{DefaultDimension: 64, MinFreeBytes: 1 << 20,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		DiskFree: func(string) (int64, error) {
			if fail.Load() {
				return 0, errors.New("statfs: no such file or directory")
			}
			return free.Load(), nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	free.Store(512 << 10) // under the reserve
	e.checkDiskSpace()
	if !e.diskLow() {
		t.Fatal("the guard does not refuse writes under the reserve")
	}
	fail.Store(true)
	for range 100 {
		e.checkDiskSpace()
	}
	if n := strings.Count(logs.String(), "cannot measure"); n != 1 {
		t.Fatalf("100 failed measurements logged %d lines, want 1:\n%s", n, logs.String())
	}
	if !e.diskLow() {
		t.Fatal("a failed measurement lifted the guard")
	}
}

// lockedBuffer is a bytes.Buffer safe for a logger on another goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
