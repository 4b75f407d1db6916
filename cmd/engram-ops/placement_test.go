package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A bad placement file is a usage error naming file:line; a good one
// writes both files.
func TestPlacementHAProxyCommand(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte("default_shard = \"a\"\n[[shards]]\nname = \"a\"\nprimary = \"https://h:1\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCLI(t, nil, "placement", "haproxy", "--placement", bad, "--out", dir)
	if code != exitUsage || !strings.Contains(stderr, "bad.toml:4: shards[0].primary") {
		t.Fatalf("bad placement: exit %d, %s", code, stderr)
	}
	good := filepath.Join(dir, "good.toml")
	if err := os.WriteFile(good, []byte("default_shard = \"a\"\n[router]\nlisten = \"127.0.0.1:7400\"\nstats_socket = \"/run/r.sock\"\n[[shards]]\nname = \"a\"\nprimary = \"http://h:1\"\n[spaces]\ntenant = \"a\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	code, stdout, stderr := runCLI(t, nil, "placement", "haproxy", "--placement", good, "--out", out)
	if code != exitOK || !strings.Contains(stdout, "1 shards, 1 mapped spaces") {
		t.Fatalf("good placement: exit %d, %s %s", code, stdout, stderr)
	}
	m, err := os.ReadFile(filepath.Join(out, "spaces.map"))
	if err != nil || !strings.Contains(string(m), "tenant a\n") {
		t.Fatalf("spaces.map: %q %v", m, err)
	}
	if cfg, err := os.ReadFile(filepath.Join(out, "haproxy.cfg")); err != nil || !strings.Contains(string(cfg), "map("+filepath.Join(out, "spaces.map")+",a)") {
		t.Fatalf("haproxy.cfg does not read the map it was written beside: %v", err)
	}
}

// A move purges the source: it needs --yes or --dry-run, and a switch
// needs the map and the destination's shard.
func TestSpaceMoveUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"space", "move", "tenant", "--from", "http://127.0.0.1:1", "--to", "http://127.0.0.1:2"}, "add --yes, or --dry-run"},
		{[]string{"space", "move", "tenant", "--from", "http://127.0.0.1:1", "--to", "http://127.0.0.1:1/", "--yes"}, "the same server"},
		{[]string{"space", "move", "tenant", "--to", "http://127.0.0.1:2", "--yes"}, "--from URL --to URL"},
		{[]string{"space", "move", "tenant", "--from", "http://127.0.0.1:1", "--to", "http://127.0.0.1:2", "--yes", "--haproxy-socket", "/run/x.sock"}, "--map PATH --to-shard NAME"},
	} {
		code, _, stderr := runCLI(t, nil, c.args...)
		if code != exitUsage || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, %s", c.args, code, stderr)
		}
	}
}
