package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/internal/testsupport"
	"github.com/engram-ops/engram-ops/ops/api"
	"github.com/engram-ops/engram-ops/runbooks"
)

// Every runbook section a diagnose check points to exists.
func TestDiagnoseRunbookSectionsExist(t *testing.T) {
	for key, ref := range diagRunbooks {
		rb, err := runbooks.Get(ref.name)
		if err != nil {
			t.Errorf("%s: %v", key, err)
			continue
		}
		if _, ok := rb.Section(ref.section); !ok {
			t.Errorf("%s: runbook %s has no section %q", key, ref.name, ref.section)
		}
	}
}

// testDiagnose is a diagnose command on an in-memory app with a host whose
// figures the test fixes.
func testDiagnose(t *testing.T, target, dataDir string, fs fsStats) (*diagnoseCmd, *syncBuffer) {
	t.Helper()
	out := &syncBuffer{}
	a := newApp(strings.NewReader(""), out, &syncBuffer{}, func(string) string { return "" })
	a.global.output = "table"
	d := newDiagnoseCmd(a)
	d.target, d.dataDir, d.apiKeyEnv = target, dataDir, "ENGRAM_API_KEY"
	damon := filepath.Join(t.TempDir(), "kdamonds")
	if err := os.MkdirAll(filepath.Join(damon, "0"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(damon, "0", "state"), []byte("on\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d.host.damonDir = damon
	d.host.filesystem = func(string) (fsStats, error) { return fs, nil }
	d.host.fileLimit = func() (uint64, uint64, error) { return 1024, 4096, nil }
	return d, out
}

func statusOf(rep *diagReport, name string) diagCheck {
	for _, c := range rep.Checks {
		if c.Name == name {
			return c
		}
	}
	return diagCheck{Name: name, Status: "missing"}
}

// TestDiagnoseServerDownGolden: with the server stopped, reachability
// FAILs, the checks needing it are skipped, and the host checks still
// run: a disk under the reserve, no lock holder, a low open-file limit,
// DAMON on.
func TestDiagnoseServerDownGolden(t *testing.T) {
	dir := t.TempDir()
	if err := testsupport.OpenEngine(t, dir).Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	target := "http://" + testsupport.FreeAddr(t)
	d, out := testDiagnose(t, target, dir, fsStats{FreeBytes: 100 << 20, TotalBytes: 10 << 30, FreeInodes: 40, TotalInodes: 1000})
	err := d.runHealth(context.Background())
	var cf *checkFailed
	if !errors.As(err, &cf) {
		t.Fatalf("want a failed check (exit 3), got %v", err)
	}
	got := strings.ReplaceAll(out.String(), target, "http://TARGET")
	got = strings.ReplaceAll(got, strings.TrimPrefix(target, "http://"), "TARGET")
	got = strings.ReplaceAll(got, dir, "DATADIR")
	got = strings.ReplaceAll(got, filepath.Dir(d.host.damonDir), "DAMON")
	got = regexp.MustCompile(`owner uid \d+`).ReplaceAllString(got, "owner uid UID")
	golden(t, "diagnose-down.golden", got)
}

// The same through the CLI: exit 3, and a process holding the lock while
// no server answers is named.
func TestDiagnoseServerDownLockHeld(t *testing.T) {
	dir := t.TempDir()
	testsupport.OpenEngine(t, dir) // holds the lock, serves nothing
	target := "http://" + testsupport.FreeAddr(t)
	code, out, errOut := runCLI(t, nil, "diagnose", "health", "--target", target, "--data-dir", dir, "--output", "json")
	if code != exitNotPassed {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rep diagReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	reach, lock := statusOf(&rep, "reachability"), statusOf(&rep, "lock holder")
	if reach.Status != diagFail || lock.Status != diagFail || !strings.Contains(lock.Message, "process "+strconv.Itoa(os.Getpid())) ||
		!strings.Contains(lock.Message, "no server answers") || lock.Runbook != "serving" || lock.Section != "Data directory" {
		t.Errorf("reachability %+v\nlock %+v", reach, lock)
	}
	if c := statusOf(&rep, "probe recall"); c.Status != diagSkip {
		t.Errorf("probe recall with the server down: %+v", c)
	}
}

// TestDiagnoseLive: against a running server every check runs, the JSON
// shape holds, and a healthy server on its own data directory passes
// (exit 0; this host's DAMON may WARN).
func TestDiagnoseLive(t *testing.T) {
	dir := t.TempDir()
	p := startServe(t, dir)
	if _, err := p.c.Remember(context.Background(), api.RememberRequest{Content: "diagnose me"}); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, nil, "diagnose", "health", "--target", p.base, "--data-dir", dir, "--output", "json")
	if code != exitOK {
		t.Fatalf("exit %d: %s\n%s", code, errOut, out)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	sameKeys(t, "report", doc, "target", "data_dir", "time", "checks", "summary")
	sameKeys(t, "summary", doc["summary"], "pass", "warn", "fail", "skip")
	var rep diagReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"reachability", "readiness", "server: engine", "server: storage", "memory", "probe recall",
		"metrics", "open files", "clock skew", "disk space", "inodes", "permissions", "lock holder"} {
		if c := statusOf(&rep, name); c.Status != diagPass {
			t.Errorf("%s: %+v", name, c)
		}
	}
	if c := statusOf(&rep, "backup"); c.Status != diagWarn || c.Runbook != "disaster-recovery" {
		t.Errorf("backup without shipping: %+v", c)
	}
	if c := statusOf(&rep, "kernel reclaim"); c.Status == "missing" {
		t.Error("no kernel reclaim check")
	}
	for _, c := range rep.Checks {
		if (c.Status == diagWarn || c.Status == diagFail) && (c.Fix == "" || c.Runbook == "") {
			t.Errorf("%s %s without a fix or runbook: %+v", c.Status, c.Name, c)
		}
	}
	// --strict turns the backup WARN into exit 3.
	if code, _, _ := runCLI(t, nil, "diagnose", "health", "--target", p.base, "--strict"); code != exitNotPassed {
		t.Errorf("--strict with a WARN: exit %d", code)
	}
}

// TestDiagnoseDiskNearlyFull: a server whose reserve (min_free_space) is
// set just under the free space reports it through its own figures, and
// diagnose says the disk is nearly full; a filesystem under the reserve
// FAILs.
func TestDiagnoseDiskNearlyFull(t *testing.T) {
	dir := t.TempDir()
	free, _, err := core.FilesystemSpace(dir)
	if err != nil || free < 2<<30 {
		t.Skipf("free space %d (%v): need 2 GiB", free, err)
	}
	reserve := free - 512<<20
	p := startServe(t, dir, "--set", "min_free_space="+strconv.FormatInt(reserve, 10))
	code, out, errOut := runCLI(t, nil, "diagnose", "health", "--target", p.base, "--output", "json", "--strict")
	if code != exitNotPassed {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rep diagReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	c := statusOf(&rep, "disk space")
	if c.Status == diagPass || !strings.Contains(c.Message, "the server's data directory") || !strings.Contains(c.Message, "reserve") ||
		c.Runbook != "serving" || c.Section != "Disk space" {
		t.Errorf("disk nearly full: %+v", c)
	}

	d, buf := testDiagnose(t, "http://"+testsupport.FreeAddr(t), dir, fsStats{FreeBytes: 10 << 20, TotalBytes: 1 << 30, FreeInodes: 1, TotalInodes: 1000})
	d.app.global.output = "json"
	if err := d.runHealth(context.Background()); err == nil {
		t.Fatal("a filesystem under the reserve passed")
	}
	if err := json.Unmarshal([]byte(buf.String()), &rep); err != nil {
		t.Fatal(err)
	}
	if c := statusOf(&rep, "disk space"); c.Status != diagFail || !strings.Contains(c.Message, "writes are refused") {
		t.Errorf("under the reserve: %+v", c)
	}
	if c := statusOf(&rep, "inodes"); c.Status != diagFail {
		t.Errorf("inodes: %+v", c)
	}
}
