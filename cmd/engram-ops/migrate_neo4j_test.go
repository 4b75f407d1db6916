package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/engram-ops/engram-ops/internal/testsupport"
	"github.com/engram-ops/engram-ops/migrate/neo4j/bolttest"
	"github.com/engram-ops/engram-ops/migrate/neo4j/neo4jtest"
)

// migrate neo4j against the Bolt test server, through the real driver:
// a dry run prints counts and examples and writes nothing, a run into a
// data directory reconciles, verify and plan work; wrong credentials, an
// unset password variable, an unreachable server and a missing database
// are clear errors with their exit codes, and nothing is written.
func TestMigrateNeo4jLive(t *testing.T) {
	path, c := neo4jtest.WriteFile(t, 200)
	srv := bolttest.Start(t, bolttest.FromExport(t, path), "neo4j", "secret")
	env := map[string]string{"NEO4J_PW": "secret", "BAD_PW": "wrong"}
	base := []string{"migrate", "neo4j", "--uri", srv.URI(), "--user", "neo4j", "--password-env", "NEO4J_PW", "--page-size", "64"}
	totals := fmt.Sprintf("%d memories, %d associations, 0 rejected", c.Nodes, c.Relationships)

	dir := t.TempDir()
	code, out, errOut := runCLI(t, env, append(base, "--dry-run", "--data-dir", dir)...)
	if code != 0 || !strings.Contains(out, "would migrate (dry run, nothing written) neo4j:"+strings.TrimPrefix(srv.URI(), "bolt://")+"/default") ||
		!strings.Contains(out, totals) || !strings.Contains(out, "User example 1: id User:") {
		t.Fatalf("dry run: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, env, append(base, "--data-dir", dir, "--reject-file", filepath.Join(t.TempDir(), "r.jsonl"))...)
	if code != 0 || !strings.Contains(out, "reconciliation:") || !strings.Contains(out, totals) || !strings.Contains(out, "from the start") {
		t.Fatalf("run: exit %d\n%s\n%s", code, out, errOut)
	}
	verify := append([]string{"migrate", "verify"}, base[1:]...)
	if code, out, errOut := runCLI(t, env, append(verify, "--data-dir", dir)...); code != 0 || !strings.Contains(out, "reconciliation:") {
		t.Fatalf("verify: exit %d\n%s\n%s", code, out, errOut)
	}
	plan := append([]string{"migrate", "plan"}, base[1:]...)
	if code, out, errOut := runCLI(t, env, append(plan, "--sample", "100")...); code != 0 || !strings.Contains(out, "estimate:") || !strings.Contains(out, "WROTE") {
		t.Fatalf("plan: exit %d\n%s\n%s", code, out, errOut)
	}

	empty := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"wrong password", []string{"migrate", "neo4j", "--uri", srv.URI(), "--password-env", "BAD_PW"}, exitFailed,
			fmt.Sprintf("the Neo4j server at %s refused the credentials of user \"neo4j\"", srv.URI())},
		{"password env unset", []string{"migrate", "neo4j", "--uri", srv.URI(), "--password-env", "NOPE_PW"}, exitUsage, "--password-env NOPE_PW: the variable is not set"},
		{"no password env", []string{"migrate", "neo4j", "--uri", srv.URI()}, exitUsage, "give --password-env NAME"},
		{"no uri", []string{"migrate", "neo4j", "--password-env", "NEO4J_PW"}, exitUsage, "give --uri bolt://HOST:PORT"},
		{"unreachable", []string{"migrate", "neo4j", "--uri", "bolt://" + testsupport.FreeAddr(t), "--password-env", "NEO4J_PW"}, exitFailed, "is unreachable"},
		{"missing database", []string{"migrate", "neo4j", "--uri", srv.URI(), "--password-env", "NEO4J_PW", "--database", "nope"}, exitFailed, `has no database "nope"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, env, append(tc.args, "--data-dir", empty)...)
			if code != tc.code || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d (want %d), stderr does not say %q:\n%s\n%s", code, tc.code, tc.want, out, errOut)
			}
		})
	}
	e := testsupport.OpenEngine(t, empty)
	if _, err := e.Space("neo4j"); err == nil {
		t.Error("a failed run created the space")
	}
}
