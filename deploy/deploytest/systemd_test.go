package deploytest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const unitFile = "../systemd/engram-ops.service"

// unitExecStart is where the unit runs the binary (the runbook installs it
// there).
const unitExecStart = "/usr/local/bin/engram-ops serve"

// systemd-analyze verify accepts the unit without a word. It checks that
// ExecStart's binary exists, so the copy verified runs this test's binary
// from its path; nothing else changes.
func TestSystemdUnitVerifies(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed (scripts/test.sh installs Debian's systemd package)")
	}
	unit, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(unit, []byte("\nExecStart="+unitExecStart+"\n")) {
		t.Fatalf("the unit's ExecStart is not %q, where runbooks/deployment.md installs the binary", unitExecStart)
	}
	bin := engramBinary(t)
	dir := t.TempDir()
	copyUnit := filepath.Join(dir, "engram-ops.service")
	if err := os.WriteFile(copyUnit, bytes.Replace(unit, []byte("ExecStart=/usr/local/bin/engram-ops"), []byte("ExecStart="+bin), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sa, "verify", copyUnit).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	// The hardening the unit promises is in it.
	for _, want := range []string{"NoNewPrivileges=yes", "ProtectSystem=strict", "ReadWritePaths=/var/lib/engram-ops",
		"ProtectHome=yes", "PrivateTmp=yes", "CapabilityBoundingSet=\n", "User=engram-ops", "LimitNOFILE=65536"} {
		if !strings.Contains(string(unit), "\n"+want) {
			t.Errorf("the unit has no %q", strings.TrimSpace(want))
		}
	}
}
