package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/engram-ops/engram-ops/migrate/neo4j/neo4jtest"
	"github.com/engram-ops/engram-ops/ops/api"
)

// Into an in-process server: the run reconciles (exit 0), and recall
// through the REST API reaches a post's topic (its ABOUT neighbour) by
// spreading activation.
func TestMigrateIntoServerAndRecall(t *testing.T) {
	export := exportPath(t, 400)
	p := startServe(t, t.TempDir())
	code, out, errOut := runCLI(t, nil, "migrate", "neo4j-export", export, "--target", p.base)
	if code != 0 || !strings.Contains(out, "reconciliation:") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	res, err := p.c.WithSpace("neo4j").Recall(context.Background(), api.RecallRequest{Query: "post0 about gardening", MaxResults: 20})
	if err != nil {
		t.Fatal(err)
	}
	// 100 users and 200 posts: post 0 is ABOUT topic 0, node 300.
	var reached []string
	for _, m := range res.Memories.Associated {
		reached = append(reached, m.ID)
	}
	if !contains(reached, "Topic:300") {
		t.Fatalf("spreading from post 0 reached %v, not its topic Topic:300", reached)
	}
}

// Bad input: a mapping naming a missing property is a usage error naming
// it; no target is a usage error; a malformed line is rejected with its
// line number into the reject file.
func TestMigrateBadInput(t *testing.T) {
	export := exportPath(t, 40)
	mapping := filepath.Join(t.TempDir(), "m.toml")
	os.WriteFile(mapping, []byte("[objects.User]\ncontent = \"{nmae}\"\n"), 0o644)
	code, _, errOut := runCLI(t, nil, "migrate", "neo4j-export", export, "--mapping", mapping, "--data-dir", t.TempDir())
	if code != exitUsage || !strings.Contains(errOut, `objects.User.content: "nmae" is not a field of User`) {
		t.Fatalf("missing field: exit %d %s", code, errOut)
	}
	if code, _, errOut := runCLI(t, nil, "migrate", "neo4j-export", export); code != exitUsage || !strings.Contains(errOut, "--target") {
		t.Fatalf("no target: exit %d %s", code, errOut)
	}
	data, _ := os.ReadFile(export)
	lines := strings.SplitAfter(string(data), "\n")
	lines[3] = "{not json\n"
	os.WriteFile(export, []byte(strings.Join(lines, "")), 0o644)
	rejects := filepath.Join(t.TempDir(), "r.jsonl")
	code, out, errOut := runCLI(t, nil, "migrate", "neo4j-export", export, "--data-dir", t.TempDir(), "--reject-file", rejects)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	got, _ := os.ReadFile(rejects)
	if !strings.Contains(string(got), `"position":"line 4"`) {
		t.Fatalf("reject file %s", got)
	}
}

// exportPath is the path of a test export of n nodes.
func exportPath(t *testing.T, n int) string {
	path, _ := neo4jtest.WriteFile(t, n)
	return path
}
