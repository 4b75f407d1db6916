package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/engram-ops/engram-ops/ops/api"
)

// The README's 60-second tour works verbatim: its curl commands, run by
// a shell against a real server (only the address changed), remember three
// facts, recall one by a partial cue, forget it, see it gone, and show the
// tenant and metrics lines the README promises.
func TestReadmeTourWorksVerbatim(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("the README tour needs curl on PATH:", err)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	cmds := tourCommands(t, string(readme))
	if len(cmds) != 10 {
		t.Fatalf("the tour has %d commands, this test knows 10: %q", len(cmds), cmds)
	}
	p := startServe(t, t.TempDir())
	addr := strings.TrimPrefix(p.base, "http://")
	out := make([]string, len(cmds))
	for i, c := range cmds {
		if !strings.Contains(c, "localhost:7432") {
			t.Fatalf("command %d does not use the documented address localhost:7432: %s", i+1, c)
		}
		b, err := exec.Command("sh", "-c", strings.ReplaceAll(c, "localhost:7432", addr)).Output()
		if err != nil {
			t.Fatalf("command %d failed: %v\n%s\noutput: %s", i+1, err, c, b)
		}
		out[i] = string(b)
	}
	for i, id := range []string{"mito", "paris", "water"} {
		if !strings.Contains(out[i], `"memory_id":"`+id+`"`) {
			t.Errorf("remember %s answered %s", id, out[i])
		}
	}
	vivid := func(s string) []string {
		var r api.RecallResponse
		if err := json.Unmarshal([]byte(s), &r); err != nil {
			t.Fatalf("recall answered %q: %v", s, err)
		}
		var ids []string
		for _, m := range r.Memories.Vivid {
			ids = append(ids, m.ID)
		}
		return ids
	}
	if ids := vivid(out[3]); len(ids) != 1 || ids[0] != "mito" {
		t.Errorf("recall by a partial cue found %v, want [mito]", ids)
	}
	if !strings.Contains(out[4], `"forgotten"`) {
		t.Errorf("forget answered %s", out[4])
	}
	if !strings.Contains(out[5], "MEMORY_NOT_FOUND") {
		t.Errorf("get after forget answered %s", out[5])
	}
	for _, id := range vivid(out[6]) {
		if id == "mito" {
			t.Errorf("a forgotten memory was recalled: %s", out[6])
		}
	}
	if !strings.Contains(out[7], `"memory_id":"`) || !strings.Contains(out[8], `"id":"tenant-a"`) {
		t.Errorf("tenant remember %s; spaces %s", out[7], out[8])
	}
	if !strings.Contains(out[9], `engram_memories{space="tenant-a",tier="hot"} 1`) {
		t.Errorf("metrics lines: %s", out[9])
	}
}

// tourCommands returns the shell commands of the README's tour: the first
// sh block after "## A 60-second tour", continuation lines joined, comments
// and blank lines dropped.
func tourCommands(t *testing.T, readme string) []string {
	t.Helper()
	_, after, ok := strings.Cut(readme, "## A 60-second tour")
	if !ok {
		t.Fatal("README has no \"## A 60-second tour\" section")
	}
	_, block, ok := strings.Cut(after, "```sh\n")
	if !ok {
		t.Fatal("the tour has no ```sh block")
	}
	block, _, _ = strings.Cut(block, "```")
	var cmds []string
	pending := ""
	for _, line := range strings.Split(block, "\n") {
		trimmed := strings.TrimSpace(line)
		if pending == "" && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if cont, ok := strings.CutSuffix(trimmed, "\\"); ok {
			pending += cont + " "
			continue
		}
		cmds = append(cmds, pending+trimmed)
		pending = ""
	}
	return cmds
}
