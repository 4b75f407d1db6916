package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestRunbookListAndShow(t *testing.T) {
	code, out, errOut := runCLI(t, nil, "runbook", "list")
	if code != 0 || !strings.Contains(out, "disaster-recovery") || !strings.Contains(out, "alerts/IndexBacklogGrowing") {
		t.Fatalf("list: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = runCLI(t, nil, "runbook", "show", "alerts/EngramDown")
	if code != 0 || !strings.HasPrefix(out, "# Alert: EngramDown") || !strings.Contains(out, "## Mitigation") {
		t.Fatalf("show: exit %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, nil, "runbook", "list", "--output", "json")
	var list []struct{ Name, Title string }
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list) < 15 {
		t.Fatalf("list json: exit %d\n%s", code, out)
	}
	code, _, errOut = runCLI(t, nil, "runbook", "show", "nosuch")
	if code != exitUsage || !strings.Contains(errOut, `no runbook named "nosuch"`) || !strings.Contains(errOut, "disaster-recovery") {
		t.Fatalf("unknown runbook: exit %d\n%s", code, errOut)
	}
}

// TestRunbookShowSection: --section prints one section; an unknown section
// is a usage error listing the runbook's sections.
func TestRunbookShowSection(t *testing.T) {
	code, out, errOut := runCLI(t, nil, "runbook", "show", "disaster-recovery", "--section", "Offline integrity check")
	if code != exitOK || !strings.HasPrefix(out, "## Offline integrity check\n") || !strings.Contains(out, "validate data") || strings.Contains(out, "## Total loss") {
		t.Fatalf("section: exit %d\n%s%s", code, out, errOut)
	}
	code, _, errOut = runCLI(t, nil, "runbook", "show", "disaster-recovery", "--section", "Nope")
	if code != exitUsage || !strings.Contains(errOut, `has no section "Nope"`) || !strings.Contains(errOut, `"Total loss (the machine or disk is gone)"`) {
		t.Fatalf("unknown section: exit %d\n%s", code, errOut)
	}
}
