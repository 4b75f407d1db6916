package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/engram-ops/engram-ops/internal/testsupport"
	"github.com/engram-ops/engram-ops/migrate/neo4j/neo4jtest"
	"github.com/engram-ops/engram-ops/migrate/postgres/pgtest"
	"github.com/engram-ops/engram-ops/migrate/redis/redistest"
	"github.com/engram-ops/engram-ops/ops/api"
	"github.com/engram-ops/engram-ops/runbooks"
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
	if !slices.Contains(reached, "Topic:300") {
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

// PostgreSQL into an in-process server, the DSN from a variable: the run
// reconciles (exit 0), verify on its own too, and recall reaches a post's
// author (its foreign key) by spreading activation.
func TestMigratePostgresIntoServerAndRecall(t *testing.T) {
	dsn := pgtest.DSN(t)
	schema, _ := pgtest.Create(t, dsn, 2000)
	p := startServe(t, t.TempDir())
	env := map[string]string{"PG_DSN": dsn}
	code, out, errOut := runCLI(t, env, "migrate", "postgres", "--dsn-env", "PG_DSN", "--schema", schema, "--target", p.base)
	if code != 0 || !strings.Contains(out, "reconciliation:") || !strings.Contains(out, "posts.posts_parent_id_fkey") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	if code, out, errOut := runCLI(t, env, "migrate", "verify", "postgres", "--dsn-env", "PG_DSN", "--schema", schema, "--target", p.base); code != 0 {
		t.Fatalf("verify: exit %d\n%s\n%s", code, out, errOut)
	}
	res, err := p.c.WithSpace("postgres").Recall(context.Background(), api.RecallRequest{Query: "post7 about gardening", MaxResults: 20})
	if err != nil {
		t.Fatal(err)
	}
	var reached []string
	for _, m := range res.Memories.Associated {
		reached = append(reached, m.ID)
	}
	if !slices.Contains(reached, "users:7") {
		t.Fatalf("spreading from post 7 reached %v, not its author users:7", reached)
	}
}

// Bad PostgreSQL input: an unreachable server and an unknown user exit 1
// naming the server; a missing table, a table without a primary key and a
// mapping naming a missing column exit 2 naming them; nothing is written.
func TestMigratePostgresBadInput(t *testing.T) {
	dsn := pgtest.DSN(t)
	schema, _ := pgtest.Create(t, dsn, 50)
	mapping := filepath.Join(t.TempDir(), "m.toml")
	os.WriteFile(mapping, []byte("[objects.users]\ncontent = \"{nmae}\"\n"), 0o644)
	dir := t.TempDir()
	run := func(dsn string, args ...string) (int, string) {
		code, _, errOut := runCLI(t, map[string]string{"PG_DSN": dsn}, append([]string{"migrate", "postgres", "--dsn-env", "PG_DSN", "--data-dir", dir}, args...)...)
		return code, errOut
	}
	for _, tc := range []struct {
		dsn  string
		args []string
		code int
		want string
	}{
		{"postgres://postgres@127.0.0.1:1/postgres?connect_timeout=5", nil, exitFailed, "connect to PostgreSQL at 127.0.0.1:1"},
		{strings.Replace(dsn, "postgres@", "nobody_here@", 1), []string{"--schema", schema}, exitFailed, `role "nobody_here" does not exist`},
		{dsn, []string{"--schema", schema, "--tables", "users,nope"}, exitUsage, `has no table "nope"`},
		{dsn, []string{"--schema", schema, "--mapping", mapping}, exitUsage, `objects.users.content: "nmae" is not a field of users`},
	} {
		if code, errOut := run(tc.dsn, tc.args...); code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, want %d with %q:\n%s", tc.args, code, tc.code, tc.want, errOut)
		}
	}
	conn := pgtest.Connect(t, dsn)
	if _, err := conn.Exec(context.Background(), "CREATE TABLE "+schema+".audit (at timestamptz)"); err != nil {
		t.Fatal(err)
	}
	if code, errOut := run(dsn, "--schema", schema); code != exitUsage || !strings.Contains(errOut, "table audit of schema") || !strings.Contains(errOut, "no primary key") {
		t.Errorf("no primary key: exit %d\n%s", code, errOut)
	}
	if code, out, _ := runCLI(t, nil, "runbook", "list"); code != 0 || !strings.Contains(out, "migrate-postgresql") {
		t.Errorf("runbook list: %s", out)
	}
	if code, out, _ := runCLI(t, nil, "migrate", "postgres", "--help"); code != 0 || !strings.Contains(out, "# Migrating from PostgreSQL") {
		t.Errorf("migrate postgres --help lacks its runbook:\n%s", out)
	}
	e := testsupport.OpenEngine(t, dir)
	if _, err := e.Space("postgres"); err == nil {
		t.Error("a failed run created the space")
	}
}

// The runbook's worked mapping file fits the generated schema it describes:
// a dry run with it exits 0 and maps every row.
func TestMigratePostgresRunbookMapping(t *testing.T) {
	dsn := pgtest.DSN(t)
	schema, c := pgtest.Create(t, dsn, 500)
	rb, err := runbooks.Get("migrate-postgresql")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, _ := strings.Cut(rb.Body, "```toml\n")
	toml, _, ok := strings.Cut(rest, "```")
	if !ok {
		t.Fatal("no toml block in the runbook")
	}
	mapping := filepath.Join(t.TempDir(), "app.toml")
	os.WriteFile(mapping, []byte(toml), 0o644)
	code, out, errOut := runCLI(t, map[string]string{"PG_DSN": dsn}, "migrate", "postgres", "--dsn-env", "PG_DSN", "--schema", schema,
		"--mapping", mapping, "--dry-run", "--output", "json")
	if code != 0 || !strings.Contains(out, fmt.Sprintf(`"memories": %d`, c.Rows())) || !strings.Contains(out, `"rejects": 0`) {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
}

// Redis into an in-process server: the run reconciles (exit 0), and recall
// of a doc reaches its author (the reference in its JSON) by spreading
// activation.
func TestMigrateRedisIntoServerAndRecall(t *testing.T) {
	c := redistest.Client(t)
	pre := redistest.Prefix(t, c)
	cnt := redistest.Fill(t, c, pre, 2000)
	p := startServe(t, t.TempDir())
	args := []string{"migrate", "redis", "--addr", redistest.Addr(t), "--target", p.base, "--reject-file", filepath.Join(t.TempDir(), "r.jsonl")}
	for _, pat := range redistest.Patterns(pre) {
		args = append(args, "--pattern", pat)
	}
	code, out, errOut := runCLI(t, nil, args...)
	if code != 0 || !strings.Contains(out, "reconciliation:") || !strings.Contains(out, fmt.Sprintf("%d memories, %d associations, 0 rejected", cnt.Keys, cnt.Refs)) {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	const d = 7
	res, err := p.c.WithSpace("redis").Recall(context.Background(), api.RecallRequest{Query: fmt.Sprintf("doc%d about %s", d, redistest.Topic(d)), MaxResults: 20})
	if err != nil {
		t.Fatal(err)
	}
	author := fmt.Sprintf("%s:user:_:%s:user:%d", pre, pre, redistest.Author(d, cnt))
	var reached []string
	for _, m := range res.Memories.Associated {
		reached = append(reached, m.ID)
	}
	if !slices.Contains(reached, author) {
		t.Fatalf("spreading from doc %d reached %v, not its author %s", d, reached, author)
	}
}

// Redis bad input: each a clear message and its exit code.
func TestMigrateRedisBadInput(t *testing.T) {
	c := redistest.Client(t)
	pre := redistest.Prefix(t, c)
	redistest.Fill(t, c, pre, 60)
	addr := redistest.Addr(t)
	user := "engram-test-" + pre
	if err := c.Do(context.Background(), "ACL", "SETUSER", user, "on", ">right", "~*", "+@all").Err(); err != nil {
		t.Fatal(err)
	}
	defer c.Do(context.Background(), "ACL", "DELUSER", user)
	base := []string{"migrate", "redis", "--addr", addr, "--pattern", pre + ":user:*", "--pattern", pre + ":doc:*"}
	mapping := filepath.Join(t.TempDir(), "m.toml")
	for _, tc := range []struct {
		name    string
		env     map[string]string
		args    []string
		mapping string
		code    int
		want    string
	}{
		{"no addr", nil, []string{"migrate", "redis", "--data-dir", t.TempDir()}, "", exitUsage, "--addr HOST:PORT"},
		{"unreachable", nil, []string{"migrate", "redis", "--addr", testsupport.FreeAddr(t), "--data-dir", t.TempDir()}, "", exitFailed, "unreachable"},
		{"password env unset", nil, append(base, "--password-env", "NOPE_PW", "--data-dir", t.TempDir()), "", exitUsage, "--password-env NOPE_PW: the variable is not set"},
		{"wrong password", map[string]string{"PW": "wrong"}, append(base, "--user", user, "--password-env", "PW", "--data-dir", t.TempDir()), "", exitFailed, "refused the credentials"},
		{"missing pattern", nil, append(base, "--mapping", mapping, "--data-dir", t.TempDir()), "[objects.\"other:*\"]\nskip = true\n", exitUsage, `the source has no object "other:*"`},
		{"missing field", nil, append(base, "--mapping", mapping, "--data-dir", t.TempDir()), fmt.Sprintf("[objects.%q]\ncontent = \"{nmae}\"\n", pre+":user:*"), exitUsage, `"nmae" is not a field of ` + pre + `:user:*`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.WriteFile(mapping, []byte(tc.mapping), 0o644)
			code, out, errOut := runCLI(t, tc.env, tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d (want %d), stderr does not say %q:\n%s\n%s", code, tc.code, tc.want, out, errOut)
			}
		})
	}
}

// Dry run, the default mapping and plan work on a Redis source.
func TestMigrateRedisDryRunPlanDefaultMapping(t *testing.T) {
	c := redistest.Client(t)
	pre := redistest.Prefix(t, c)
	redistest.Fill(t, c, pre, 300)
	base := []string{"migrate", "redis", "--addr", redistest.Addr(t), "--pattern", pre + ":user:*", "--pattern", pre + ":doc:*"}
	code, out, errOut := runCLI(t, nil, append(base, "--dry-run")...)
	if code != 0 || !strings.Contains(out, "would migrate") || !strings.Contains(out, pre+":doc:* example 1") || !strings.Contains(out, "180 memories, 90 associations") {
		t.Fatalf("dry run: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, nil, append(base, "--print-default-mapping")...)
	if code != 0 || !strings.Contains(out, pre+":doc:*->author") || !strings.Contains(out, "email: {email}") {
		t.Fatalf("default mapping: exit %d\n%s\n%s", code, out, errOut)
	}
	mapping := filepath.Join(t.TempDir(), "m.toml")
	os.WriteFile(mapping, []byte(out), 0o644)
	planArgs := append([]string{"migrate", "plan"}, base[1:]...)
	code, out, errOut = runCLI(t, nil, append(planArgs, "--mapping", mapping)...)
	if code != 0 || !strings.Contains(out, "estimate:") || !strings.Contains(out, pre+":user:*") {
		t.Fatalf("plan: exit %d\n%s\n%s", code, out, errOut)
	}
}
