package main

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestValidateDeployment: a free port, a writable data directory and a
// file:// target that a probe object is written to and removed from pass;
// a held port, a data directory under a file and a missing backup
// directory each FAIL with exit 3, as diagnose's checks do.
func TestValidateDeployment(t *testing.T) {
	dir, backupDir := t.TempDir(), t.TempDir()
	code, out, errOut := runCLI(t, nil, "validate", "deployment", "--listen", "127.0.0.1:0",
		"--data-dir", dir, "--backup-to", "file://"+backupDir, "--output", "json")
	var rep diagReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("json: %v\n%s%s", err, out, errOut)
	}
	status := map[string]diagCheck{}
	for _, c := range rep.Checks {
		status[c.Name] = c
	}
	for _, name := range []string{"config", "listen", "data directory", "backup target"} {
		if status[name].Status != diagPass {
			t.Errorf("%s: %+v, want PASS", name, status[name])
		}
	}
	if _, ok := status["memory"]; !ok {
		t.Errorf("no memory check: %+v", rep.Checks)
	}
	if code != exitOK && rep.Summary.Fail == 0 || code == exitOK && rep.Summary.Fail > 0 {
		t.Errorf("exit %d with %d FAIL", code, rep.Summary.Fail)
	}
	left, _ := os.ReadDir(backupDir)
	for _, e := range left {
		if sub, _ := os.ReadDir(filepath.Join(backupDir, e.Name())); !e.IsDir() || len(sub) > 0 {
			t.Errorf("the probe left %s in the backup target", e.Name())
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("the probe left files in the data directory: %v", entries)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	file := filepath.Join(dir, "plain-file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, _ = runCLI(t, nil, "validate", "deployment", "--listen", ln.Addr().String(),
		"--data-dir", file, "--backup-to", "file://"+filepath.Join(backupDir, "missing"))
	if code != exitNotPassed {
		t.Fatalf("exit %d, want 3\n%s", code, out)
	}
	for _, want := range []string{
		"FAIL  listen               cannot listen on " + ln.Addr().String(),
		"FAIL  data directory       " + file + " is not a directory",
		"FAIL  backup target        cannot open file://" + filepath.Join(backupDir, "missing"),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
