package core_test

import (
	"testing"

	"github.com/engram-ops/engram-ops/core"
)

// System records are written through the change log: they survive a
// reopen, a replay reproduces them (so a point-in-time restore carries
// them), and a nil value deletes one.
func TestSystemRecordsAreDurableAndReplayed(t *testing.T) {
	dir := t.TempDir()
	src := open(t, dir)
	for _, kv := range [][2]string{{"apikey/a", "1"}, {"apikey/b", "2"}, {"other/x", "3"}} {
		if _, err := src.PutSystem(ctx, kv[0], []byte(kv[1])); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := src.PutSystem(ctx, "apikey/b", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := src.PutSystem(ctx, "", []byte("x")); core.CodeOf(err) != "INVALID_SYSTEM_KEY" {
		t.Fatalf("empty key: %v", err)
	}
	check := func(e *core.Engine, what string) {
		t.Helper()
		recs, err := e.SystemRecords("apikey/")
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 1 || recs[0].Key != "apikey/a" || string(recs[0].Value) != "1" {
			t.Fatalf("%s: records %+v, want only apikey/a=1", what, recs)
		}
	}
	check(src, "written")
	changes, err := src.ChangesSince(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	reopened := open(t, dir)
	defer reopened.Close()
	check(reopened, "reopened")
	dst := open(t, t.TempDir())
	defer dst.Close()
	if err := dst.ApplyChanges(ctx, changes); err != nil {
		t.Fatal(err)
	}
	check(dst, "replayed")
}
