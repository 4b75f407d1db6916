package main

import (
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/engram-ops/engram-ops/runbooks"
)

func TestCapacityPlanGolden(t *testing.T) {
	args := []string{"capacity", "plan", "--memories", "10000000", "--dimension", "768", "--write-rate", "200", "--recall-rate", "500", "--retention", "720h"}
	code, out, errOut := runCLI(t, nil, args...)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	golden(t, "capacity-plan.golden", out)

	code, out, errOut = runCLI(t, nil, append(args, "--output", "json")...)
	if code != exitOK {
		t.Fatalf("json: exit %d: %s", code, errOut)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"inputs", "ram_bytes", "memory_limit_bytes", "disk_bytes", "iops", "cpu_cores", "provision_cores", "backup_bytes"} {
		if _, ok := got[key]; !ok {
			t.Errorf("json lacks %q: %s", key, out)
		}
	}
	// 500 recalls at 800 µs and 200 remembers at 220 + 827 µs.
	if cores := got["cpu_cores"].(float64); cores < 0.609 || cores > 0.610 {
		t.Errorf("cpu_cores = %v, want 0.6094", cores)
	}
	if code, _, errOut := runCLI(t, nil, "capacity", "plan", "--memories", "10", "--dimension", "0"); code != exitUsage || !strings.Contains(errOut, "--dimension") {
		t.Errorf("bad dimension: exit %d %s", code, errOut)
	}
}

// TestCapacityCoefficientsMatchRunbook: every coefficient in the code is in
// the runbook's table within the tolerance stated there, and every quoted
// benchmark figure is still in docs/benchmarks.md, so a re-measured figure
// or a changed constant fails until both are brought together.
func TestCapacityCoefficientsMatchRunbook(t *testing.T) {
	rb, err := runbooks.Get(capacityRunbook)
	if err != nil {
		t.Fatal(err)
	}
	table, ok := rb.Section("Coefficients")
	if !ok {
		t.Fatal("runbook has no Coefficients section")
	}
	bench, err := os.ReadFile("../../docs/benchmarks.md")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(table, "\n") {
		cells := strings.Split(strings.Trim(line, "| "), "|")
		if len(cells) != 6 || strings.TrimSpace(cells[0]) == "coefficient" || strings.HasPrefix(strings.TrimSpace(cells[0]), "---") {
			continue
		}
		name := strings.TrimSpace(cells[0])
		doc, err := strconv.ParseFloat(strings.TrimSpace(cells[1]), 64)
		if err != nil {
			t.Errorf("%s: value %q: %v", name, cells[1], err)
			continue
		}
		tol, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(cells[2]), "%"), 64)
		if err != nil {
			t.Errorf("%s: tolerance %q: %v", name, cells[2], err)
			continue
		}
		code, ok := capacityCoefficients[name]
		if !ok {
			t.Errorf("runbook coefficient %s is not in the code", name)
			continue
		}
		seen[name] = true
		if diff := (code - doc) / doc; diff > tol/100+1e-9 || -diff > tol/100+1e-9 {
			t.Errorf("%s: code %v, runbook %v: differs by %.1f%%, tolerance %v%%", name, code, doc, 100*diff, tol)
		}
		source, quote := strings.TrimSpace(cells[3]), strings.TrimSpace(cells[4])
		if source == "structure" {
			continue
		}
		if !strings.Contains(string(bench), "### "+source) {
			t.Errorf("%s: docs/benchmarks.md has no section %q", name, source)
		}
		if !strings.Contains(string(bench), quote) {
			t.Errorf("%s: docs/benchmarks.md no longer says %q: re-derive the coefficient", name, quote)
		}
	}
	for name := range capacityCoefficients {
		if !seen[name] {
			t.Errorf("code coefficient %s is not in the runbook's table", name)
		}
	}
}
