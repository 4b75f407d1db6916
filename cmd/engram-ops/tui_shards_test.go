package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/engram-ops/engram-ops/internal/testsupport"
	"github.com/engram-ops/engram-ops/ops/api"
	"github.com/engram-ops/engram-ops/tui"
)

// `tui --placement FILE --once --output json` reads every server the
// placement file names: a real primary shipping to a file:// archive and a
// real follower of it show their roles and applied sequences (the
// follower's lag from its metrics), shard b's primary, which does not
// listen, is down, and the command exits 1 naming it. --server takes the
// same servers with their shards.
func TestTUIShardBoardOnce(t *testing.T) {
	archive := t.TempDir()
	primary := startServe(t, t.TempDir(), "--backup-to", "file://"+archive, "--backup-interval", "100ms", "--no-access-log")
	remember := func(i int) {
		if code, b := httpDo(t, "POST", primary.base+"/api/v1/memories/remember", fmt.Sprintf(`{"content":"shard board %d"}`, i)); code != http.StatusCreated {
			t.Fatalf("remember: %d %s", code, b)
		}
	}
	remember(0)
	// A follower seeds from a snapshot, then applies the shipped log (the
	// later writes).
	if code, b := httpDo(t, "POST", primary.base+api.PathAdminBackup, `{}`); code >= 300 {
		t.Fatalf("snapshot: %d %s", code, b)
	}
	follower := startServe(t, t.TempDir(), "--follow", "file://"+archive, "--primary-url", primary.base, "--no-access-log")
	remember(1)
	remember(2)
	down := "http://" + testsupport.FreeAddr(t)
	file := filepath.Join(t.TempDir(), "placement.toml")
	toml := fmt.Sprintf("default_shard = \"a\"\n[router]\nlisten = \"127.0.0.1:7400\"\nstats_socket = \"/run/r.sock\"\n"+
		"[[shards]]\nname = \"a\"\nprimary = %q\nfollowers = [%q]\n[[shards]]\nname = \"b\"\nprimary = %q\n", primary.base, follower.base, down)
	if err := os.WriteFile(file, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}

	board := func(args ...string) tui.ShardSnapshot {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			code, out, errOut := runCLI(t, nil, append(args, "--once", "--output", "json")...)
			var s tui.ShardSnapshot
			if err := json.Unmarshal([]byte(out), &s); err != nil {
				t.Fatalf("tui %v: %v\n%s\n%s", args, err, out, errOut)
			}
			if code != exitFailed || !strings.Contains(errOut, "could not read 1 of 3 servers: "+down) {
				t.Fatalf("tui %v: exit %d, want 1 naming %s\n%s", args, code, down, errOut)
			}
			// The follower catches up with the primary's writes.
			p, f := s.Servers[0], s.Servers[1]
			if p.AppliedSequence != nil && f.AppliedSequence != nil && *p.AppliedSequence >= 3 && *f.AppliedSequence == *p.AppliedSequence || time.Now().After(deadline) {
				return s
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	for _, args := range [][]string{
		{"tui", "--placement", file},
		{"tui", "--server", "a=" + primary.base, "--server", "a=" + follower.base, "--server", "b=" + down},
	} {
		s := board(args...)
		if len(s.Servers) != 3 {
			t.Fatalf("%v: %d servers, want 3: %+v", args, len(s.Servers), s.Servers)
		}
		p, f, d := s.Servers[0], s.Servers[1], s.Servers[2]
		if p.Shard != "a" || p.Role != "primary" || !p.Up || p.AppliedSequence == nil || *p.AppliedSequence < 3 || p.LagSeconds != nil {
			t.Errorf("%v: primary %+v", args, p)
		}
		if f.Shard != "a" || f.Role != "follower" || !f.Up || f.AppliedSequence == nil || *f.AppliedSequence != *p.AppliedSequence || f.LagSeconds == nil {
			t.Errorf("%v: follower %+v (primary at %v)", args, f, p.AppliedSequence)
		}
		if d.Shard != "b" || d.Up || d.Status != "unreachable" || d.Generation != nil {
			t.Errorf("%v: shard b %+v", args, d)
		}
		if s.Unknown["servers.generation"] == "" {
			t.Errorf("%v: unknown lacks why the generation is null: %v", args, s.Unknown)
		}
	}
	for _, bad := range [][]string{
		{"tui", "--placement", file, "--server", primary.base, "--once"},
		{"tui", "--placement", file, "--target", primary.base, "--once"},
		{"tui", "--server", "=" + primary.base, "--once"},
	} {
		if code, _, errOut := runCLI(t, nil, bad...); code != exitUsage {
			t.Errorf("%v: exit %d, want 2\n%s", bad, code, errOut)
		}
	}
}
