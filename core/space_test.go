package core_test

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/engram-ops/engram-ops/core"
)

// TestSpaceLimit: past limits.max_spaces neither an explicit create nor an
// auto-creating write makes a space; existing spaces keep working, the cap
// holds across a restart, and a replay of the change log recreates every
// space it holds even past a lower cap.
func TestSpaceLimit(t *testing.T) {
	dir := t.TempDir()
	capped := func(o *core.Options) { o.Limits.MaxSpaces = 3 }
	e := open(t, dir, capped)
	for i := range 3 {
		remember(t, e, "space-"+strconv.Itoa(i), "a note")
	}
	refused := func(e *core.Engine) {
		t.Helper()
		_, err := e.Remember(ctx, "space-3", core.RememberInput{Content: "one too many"})
		if core.KindOf(err) != core.KindConflict || core.CodeOf(err) != "SPACE_LIMIT_REACHED" {
			t.Fatalf("remember into a 4th space: %v, want SPACE_LIMIT_REACHED", err)
		}
		if _, _, err := e.CreateSpace(ctx, core.SpaceConfig{Name: "space-4"}); core.CodeOf(err) != "SPACE_LIMIT_REACHED" {
			t.Fatalf("create a 4th space: %v, want SPACE_LIMIT_REACHED", err)
		}
		if n := len(e.Spaces()); n != 3 {
			t.Fatalf("%d spaces after refusals, want 3", n)
		}
		for i := range 3 {
			remember(t, e, "space-"+strconv.Itoa(i), "still writable")
		}
	}
	refused(e)
	changes, err := e.ChangesSince(0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e = open(t, dir, capped)
	refused(e)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	r := open(t, t.TempDir(), func(o *core.Options) { o.Limits.MaxSpaces = 1 })
	defer r.Close()
	if err := r.ApplyChanges(ctx, changes); err != nil {
		t.Fatalf("replay past a lower cap: %v", err)
	}
	if n := len(r.Spaces()); n != 3 {
		t.Fatalf("replay recreated %d spaces, want 3", n)
	}
}

// TestSmallGraphsAreRebuiltNotSaved: closing a store of many small spaces
// writes no index graph per space (a file and an fsync each); the next
// open indexes their few vectors again.
func TestSmallGraphsAreRebuiltNotSaved(t *testing.T) {
	dir := t.TempDir()
	e := open(t, dir)
	for i := range 20 {
		remember(t, e, "tenant-"+strconv.Itoa(i), facts[i%len(facts)])
	}
	if err := e.WaitIndexed(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	graphs, err := os.ReadDir(filepath.Join(dir, "index"))
	if err != nil {
		t.Fatal(err)
	}
	if len(graphs) != 0 {
		t.Fatalf("closing 20 spaces of one memory wrote %d graph files, e.g. %s", len(graphs), graphs[0].Name())
	}
	e = open(t, dir)
	defer e.Close()
	if err := e.WaitIndexed(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		res, err := e.Recall(ctx, "tenant-"+strconv.Itoa(i), core.RecallQuery{Text: facts[i%len(facts)], MaxResults: 1, NoReinforce: true})
		if err != nil || len(res.Vivid) != 1 || res.Vivid[0].Memory.Content != facts[i%len(facts)] {
			t.Fatalf("recall in tenant-%d after reopen: %v %+v", i, err, res)
		}
	}
}
