package main

import (
	"bytes"
	"context"
	"encoding/json"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/engram-ops/engram-ops/internal/testsupport"
	"github.com/engram-ops/engram-ops/ops/api"
)

// keysOf returns the sorted keys of a JSON object.
func keysOf(t *testing.T, v any) []string {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%v is not a JSON object", v)
	}
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sameKeys(t *testing.T, what string, v any, want ...string) {
	t.Helper()
	sort.Strings(want)
	if got := keysOf(t, v); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("%s keys:\n got %v\nwant %v", what, got, want)
	}
}

// TestStatusJSONShape: the documented --output json shape, with the real
// figures of a server holding one memory.
func TestStatusJSONShape(t *testing.T) {
	p := startServe(t, t.TempDir())
	if _, err := p.c.Remember(context.Background(), api.RememberRequest{Content: "the status of a memory"}); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, nil, "status", "--target", p.base, "--interval", "100ms", "--output", "json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	sameKeys(t, "top level", doc, "target", "time", "health", "version", "uptime_seconds", "durability", "changelog_sequence",
		"checks", "spaces", "disk", "backup", "requests")
	sameKeys(t, "disk", doc["disk"], "free_bytes", "total_bytes", "reserve_bytes", "data_bytes", "writes_refused")
	sameKeys(t, "backup", doc["backup"], "configured", "targets")
	sameKeys(t, "requests", doc["requests"], "interval_seconds", "per_second", "operations")
	ops := doc["requests"].(map[string]any)["operations"].([]any)
	if len(ops) == 0 {
		t.Fatal("no operations")
	}
	sameKeys(t, "operation", ops[0], "name", "per_second", "error_ratio", "p99_seconds")
	spaces := doc["spaces"].([]any)
	if len(spaces) != 1 {
		t.Fatalf("spaces %v", spaces)
	}
	sameKeys(t, "space", spaces[0], "name", "memories", "hot", "warm", "cold", "associations", "index_pending")
	sameKeys(t, "check", doc["checks"].([]any)[0], "name", "status", "message")

	var rep statusReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	sp := rep.Spaces[0]
	if rep.Health != "healthy" || rep.Durability == nil || *rep.Durability != "sync" || rep.ChangelogSequence == nil || *rep.ChangelogSequence == 0 ||
		sp.Name != "default" || sp.Memories != 1 || sp.Hot+sp.Warm+sp.Cold != 1 || rep.Disk.FreeBytes == nil || rep.Disk.ReserveBytes == nil ||
		rep.Backup.Configured || rep.Requests == nil || rep.Requests.IntervalSeconds <= 0 {
		t.Errorf("figures: %s", out)
	}
}

// TestStatusGolden: the text form, with the figures that change from run
// to run (time, version, uptime, disk, rates) set to fixed values.
func TestStatusGolden(t *testing.T) {
	p := startServe(t, t.TempDir())
	ctx := context.Background()
	for _, sp := range []string{"alpha", "beta"} {
		for i := range 2 {
			if _, err := p.c.WithSpace(sp).Remember(ctx, api.RememberRequest{Content: sp + " memory " + string(rune('a'+i))}); err != nil {
				t.Fatal(err)
			}
		}
	}
	rep := gatherStatus(ctx, p.c, 50*time.Millisecond)
	if rep.Requests == nil || rep.Disk.FreeBytes == nil || rep.UptimeSeconds == nil {
		t.Fatalf("missing figures: %+v", rep)
	}
	f := func(v float64) *float64 { return &v }
	rep.Target, rep.Version, rep.UptimeSeconds = "http://127.0.0.1:7432", "v1.2.3", f(3725)
	rep.Disk.FreeBytes, rep.Disk.TotalBytes, rep.Disk.DataBytes = f(40<<30), f(100<<30), f(3<<20)
	rep.Requests.IntervalSeconds = 1
	for i := range rep.Requests.Operations {
		rep.Requests.Operations[i].PerSecond = nil
	}
	rep.Requests.Operations[0].PerSecond = f(7.5)
	rep.Requests.PerSecond = 7.5
	var buf bytes.Buffer
	renderStatus(&buf, rep)
	golden(t, "status.golden", buf.String())
}

// TestStatusUnreachable: one clear line and exit 1, not a stack of errors;
// the JSON form still prints, saying unreachable.
func TestStatusUnreachable(t *testing.T) {
	target := "http://" + testsupport.FreeAddr(t)
	code, out, errOut := runCLI(t, nil, "status", "--target", target)
	if code != exitFailed || out != "" || strings.Count(strings.TrimSpace(errOut), "\n") != 0 ||
		!strings.Contains(errOut, "cannot read the server at "+target) || !strings.Contains(errOut, "connection refused") ||
		!strings.Contains(errOut, "Try:") {
		t.Errorf("exit %d\nstdout %q\nstderr %q", code, out, errOut)
	}
	code, out, _ = runCLI(t, nil, "status", "--target", target, "--output", "json")
	var rep statusReport
	if code != exitFailed || json.Unmarshal([]byte(out), &rep) != nil || rep.Health != "unreachable" || rep.Error == "" {
		t.Errorf("json: exit %d %s", code, out)
	}
}

// TestStatusAndDiagnoseWithBackup: a server shipping backups shows its
// target in status (RPO, last snapshot) and diagnose judges it.
func TestStatusAndDiagnoseWithBackup(t *testing.T) {
	archive := t.TempDir()
	p := startServe(t, t.TempDir(), "--backup-to", "file://"+archive)
	if _, err := p.c.Remember(context.Background(), api.RememberRequest{Content: "shipped"}); err != nil {
		t.Fatal(err)
	}
	// The server's own health report carries the shipper's state.
	deadline := time.Now().Add(15 * time.Second)
	for {
		h, err := p.c.SystemHealth(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		b := h.Backup
		if b.Configured && b.ShippedSequence != nil && *b.ShippedSequence >= 1 && b.LagSequences != nil && b.LastSuccess != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("system health's backup block while shipping: %+v", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	code, out, errOut := runCLI(t, nil, "status", "--target", p.base, "--interval", "0", "--output", "json")
	if code != exitOK {
		t.Fatalf("exit %d %s", code, errOut)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	if doc["requests"] != nil {
		t.Errorf("--interval 0 measured rates: %v", doc["requests"])
	}
	backup := doc["backup"].(map[string]any)
	targets, _ := backup["targets"].([]any)
	if backup["configured"] != true || len(targets) != 1 {
		t.Fatalf("backup: %v", backup)
	}
	sameKeys(t, "backup target", targets[0], "target", "rpo_seconds", "last_snapshot", "last_log", "shipped_sequence",
		"lag_sequences", "last_verified", "restore_drill_seconds", "errors")
	target := targets[0].(map[string]any)["target"].(string)

	_, out, _ = runCLI(t, nil, "diagnose", "health", "--target", p.base, "--output", "json")
	var rep diagReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if c := statusOf(&rep, "backup"); c.Status == "missing" || !strings.Contains(c.Message, target+":") || strings.Contains(c.Message, "ships no backups") {
		t.Errorf("diagnose backup: %+v", c)
	}
}
