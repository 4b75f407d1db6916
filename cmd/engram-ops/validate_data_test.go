package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/internal/testsupport"
)

// TestValidateData: a clean stopped store passes (exit 0), a dangling
// association planted through Pebble is reported with its space and key
// (exit 3), --repair without --yes is a usage error, --repair --dry-run
// changes nothing, --repair --yes fixes it, and a directory an engine holds
// is refused naming its lock file (exit 1).
func TestValidateData(t *testing.T) {
	dir := t.TempDir()
	e := testsupport.OpenEngine(t, dir, func(o *core.Options) { o.DefaultDimension = 32 })
	r, err := e.Remember(context.Background(), "team", core.RememberInput{Content: "the deploy key rotates monthly"})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCLI(t, nil, "validate", "data", "--data-dir", dir); code != exitOK || !strings.Contains(out, "data OK") {
		t.Fatalf("clean store: exit %d\n%s%s", code, out, errOut)
	}

	db, err := pebble.Open(filepath.Join(dir, "db"), &pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	edge := []byte("Ateam\x00" + r.ID + "\x00gone")
	if err := db.Set(edge, []byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, nil, "validate", "data", "--data-dir", dir)
	if code != exitNotPassed || !strings.Contains(out, `association `+r.ID+` -> gone is dangling: no memory "gone" (space team, key "Ateam/`+r.ID+`/gone")`) {
		t.Fatalf("dangling association: exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, "repair (--repair): drop the association") || !strings.Contains(errOut, "1 problem(s)") {
		t.Fatalf("dangling association: no repair offered\n%s%s", out, errOut)
	}
	if code, _, errOut := runCLI(t, nil, "validate", "data", "--data-dir", dir, "--repair"); code != exitUsage || !strings.Contains(errOut, "--yes") {
		t.Fatalf("--repair without --yes: exit %d %s", code, errOut)
	}
	code, out, _ = runCLI(t, nil, "validate", "data", "--data-dir", dir, "--repair", "--dry-run")
	if code != exitNotPassed || !strings.Contains(out, "would repair: drop the association") {
		t.Fatalf("--dry-run: exit %d\n%s", code, out)
	}
	code, out, errOut = runCLI(t, nil, "validate", "data", "--data-dir", dir, "--repair", "--yes", "--output", "json")
	var rep core.DataReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("json: %v\n%s", err, out)
	}
	if code != exitOK || len(rep.Findings) != 1 || !rep.Findings[0].Repaired || rep.Findings[0].Space != "team" {
		t.Fatalf("--repair --yes: exit %d %+v %s", code, rep.Findings, errOut)
	}
	if code, out, errOut := runCLI(t, nil, "validate", "data", "--data-dir", dir); code != exitOK {
		t.Fatalf("after repair: exit %d\n%s%s", code, out, errOut)
	}

	e = testsupport.OpenEngine(t, dir, func(o *core.Options) { o.DefaultDimension = 32 })
	defer e.Close()
	code, _, errOut = runCLI(t, nil, "validate", "data", "--data-dir", dir)
	if code != exitFailed || !strings.Contains(errOut, filepath.Join(dir, "db", "LOCK")) {
		t.Fatalf("held directory: exit %d %s", code, errOut)
	}
}
