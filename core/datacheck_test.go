package core_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/engram-ops/engram-ops/core"
)

// checkStore writes a store of one space with enough memories for a
// persisted index graph and two associations, and closes it.
func checkStore(t *testing.T) (dir string, ids []string) {
	t.Helper()
	dir = t.TempDir()
	e := open(t, dir)
	for i := range 70 {
		ids = append(ids, remember(t, e, "sss", "fact number "+strconv.Itoa(i)+" about "+facts[i%len(facts)]).ID)
	}
	for _, a := range []core.Association{{From: ids[0], To: ids[1], Weight: 0.5}, {From: ids[2], To: ids[3], Weight: 0.5}} {
		if _, err := e.Associate(ctx, "sss", a); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.Forget(ctx, "sss", ids[69]); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, ids
}

// damage applies f to the closed store's Pebble database directly.
func damage(t *testing.T, dir string, f func(db *pebble.DB) error) {
	t.Helper()
	db, err := pebble.Open(filepath.Join(dir, "db"), &pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := f(db); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestCheckDataDirCleanStorePasses(t *testing.T) {
	dir, _ := checkStore(t)
	rep, err := core.CheckDataDir(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Findings) != 0 {
		t.Fatalf("findings on a clean store: %+v", rep.Findings)
	}
	if len(rep.Spaces) != 1 {
		t.Fatalf("spaces: %+v", rep.Spaces)
	}
	sp := rep.Spaces[0]
	t.Logf("space %+v, log %d..%d", sp, rep.LogFirst, rep.LogLast)
	if sp.Name != "sss" || sp.Memories != 69 || sp.Associations != 2 || !sp.Graph || sp.Indexed+sp.IndexPending != 69 {
		t.Fatalf("space summary %+v: want sss with 69 memories, 2 associations, a graph file indexing or pending all 69", sp)
	}
	if rep.LogFirst != 1 || rep.LogLast != rep.LogEntries || rep.LogEntries < 72 {
		t.Fatalf("change log %d..%d (%d entries)", rep.LogFirst, rep.LogLast, rep.LogEntries)
	}
}

// TestCheckDataDirFindsDamage: a record whose bytes are damaged, a
// dangling association and a gap in the change log are each reported with
// the key and space; --repair drops the association and leaves the record
// (no safe repair), and the repaired store then opens.
func TestCheckDataDirFindsDamage(t *testing.T) {
	dir, ids := checkStore(t)
	recKey := append([]byte("Msss\x00"), ids[5]...)
	damage(t, dir, func(db *pebble.DB) error {
		b := db.NewBatch()
		// A record cut short, an edge to a memory that does not exist (and
		// its reverse entry), and a change-log entry removed mid-log.
		v, closer, err := db.Get(recKey)
		if err != nil {
			return err
		}
		short := append([]byte(nil), v[:len(v)/2]...)
		closer.Close()
		_ = b.Set(recKey, short, nil)
		_ = b.Set([]byte("Asss\x00"+ids[0]+"\x00ghost"), []byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, nil)
		_ = b.Set([]byte("Rsss\x00ghost\x00"+ids[0]), nil, nil)
		_ = b.Delete([]byte{'L', 0, 0, 0, 0, 0, 0, 0, 10}, nil)
		return b.Commit(pebble.Sync)
	})
	rep, err := core.CheckDataDir(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"records":      `memory "` + ids[5] + `" does not decode`,
		"associations": "association " + ids[0] + " -> ghost is dangling: no memory \"ghost\"",
		"change_log":   "gap in the change log: sequences 10..10 are missing",
	}
	for check, msg := range want {
		found := false
		for _, f := range rep.Findings {
			if f.Check == check && strings.Contains(f.Problem, msg) && f.Severity == core.SeverityDamage {
				found = true
				if check != "change_log" && (f.Space != "sss" || f.Key == "") {
					t.Errorf("finding %+v: want space sss and the key", f)
				}
			}
		}
		if !found {
			t.Errorf("no %s finding containing %q in %+v", check, msg, rep.Findings)
		}
	}
	if rep.Damaged() != 3 {
		t.Fatalf("damaged = %d, want 3: %+v", rep.Damaged(), rep.Findings)
	}

	rep, err = core.CheckDataDir(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Damaged() != 2 {
		t.Fatalf("after repair damaged = %d, want the record and the gap left: %+v", rep.Damaged(), rep.Findings)
	}
	for _, f := range rep.Findings {
		if f.Check == "associations" && !f.Repaired {
			t.Fatalf("association not repaired: %+v", f)
		}
	}
	rep, err = core.CheckDataDir(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range rep.Findings {
		if f.Check == "associations" {
			t.Fatalf("association still there after repair: %+v", f)
		}
	}
}

func TestCheckDataDirRefusesHeldDirectory(t *testing.T) {
	dir := t.TempDir()
	e := open(t, dir)
	_, err := core.CheckDataDir(dir, false)
	if core.CodeOf(err) != "DATA_DIR_IN_USE" || !strings.Contains(err.Error(), filepath.Join(dir, "db", "LOCK")) {
		t.Fatalf("check of an open data directory: %v (code %s), want DATA_DIR_IN_USE naming the lock file", err, core.CodeOf(err))
	}
	_ = e.Close()
	if _, err := core.CheckDataDir(filepath.Join(dir, "nope"), false); core.CodeOf(err) != "NOT_A_DATA_DIR" {
		t.Fatalf("check of a missing directory: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "nope")); !os.IsNotExist(err) {
		t.Fatalf("the check created the directory it was given: %v", err)
	}
}
