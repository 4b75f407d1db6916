package core

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// corruptingFS damages every read from a table file while on is set, as a
// disk returning rotten blocks would.
type corruptingFS struct {
	vfs.FS
	on atomic.Bool
}

func (fs *corruptingFS) Open(name string, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := fs.FS.Open(name, opts...)
	if err != nil || !strings.HasSuffix(name, ".sst") {
		return f, err
	}
	return &corruptingFile{File: f, fs: fs}, nil
}

type corruptingFile struct {
	vfs.File
	fs *corruptingFS
}

func (f *corruptingFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := f.File.ReadAt(p, off)
	if f.fs.on.Load() && n > 0 {
		p[n/2] ^= 0xff
	}
	return n, err
}

// TestCorruptionFailsTheReadNotTheServer: a table block that fails its
// checksum while serving fails the read that needs it with STORAGE_CORRUPT
// (Pebble's default would end the process), is logged once per file and
// counted for health and metrics, and the engine goes on serving what it
// can.
func TestCorruptionFailsTheReadNotTheServer(t *testing.T) {
	fs := &corruptingFS{FS: vfs.Default}
	var logs lockedBuffer
	e, err := Open(t.TempDir(), Options{FS: fs, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx := context.Background()
	var ids []string
	for i := 0; i < 50; i++ {
		r, err := e.Remember(ctx, "default", RememberInput{Content: "memory number " + strconv.Itoa(i)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	if err := e.db.Flush(); err != nil { // into a table file, read through fs
		t.Fatal(err)
	}

	fs.on.Store(true)
	for range 3 {
		_, err = e.ChangesSince(0, 100)
		if CodeOf(err) != "STORAGE_CORRUPT" {
			t.Fatalf("reading the change log from a damaged table: %v (code %s), want STORAGE_CORRUPT", err, CodeOf(err))
		}
	}
	fs.on.Store(false)

	m := e.Metrics().Corruption
	if m.Events < 3 || len(m.Files) != 1 || !strings.HasSuffix(m.Files[0], ".sst") {
		t.Fatalf("corruption stats %+v, want at least 3 events in one table file", m)
	}
	if n := strings.Count(logs.String(), "on-disk corruption"); n != 1 {
		t.Fatalf("logged %d corruption lines for one file, want 1:\n%s", n, logs.String())
	}
	if _, err := e.Get(ctx, "default", ids[0], false); err != nil {
		t.Fatalf("the engine stopped serving after the damaged read: %v", err)
	}
	if _, err := e.Remember(ctx, "default", RememberInput{Content: "written after the damaged read"}); err != nil {
		t.Fatalf("writes stopped after the damaged read: %v", err)
	}
}

// TestOpenOnCorruptTables: damaged tables met while loading make Open fail
// with STORAGE_CORRUPT naming the file and the runbook, rather than ending
// the process.
func TestOpenOnCorruptTables(t *testing.T) {
	fs := &corruptingFS{FS: vfs.Default}
	dir := t.TempDir()
	e, err := Open(dir, Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		if _, err := e.Remember(context.Background(), "default", RememberInput{Content: "memory number " + strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.db.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	fs.on.Store(true)
	_, err = Open(dir, Options{FS: fs, Logger: slog.New(slog.DiscardHandler)})
	if CodeOf(err) != "STORAGE_CORRUPT" || !strings.Contains(err.Error(), ".sst") || !strings.Contains(err.Error(), "disaster-recovery") {
		t.Fatalf("open on damaged tables: %v (code %s), want STORAGE_CORRUPT naming the table and the runbook", err, CodeOf(err))
	}
}
