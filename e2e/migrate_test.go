package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/internal/testsupport"
	"github.com/engram-ops/engram-ops/migrate/neo4j/bolttest"
	"github.com/engram-ops/engram-ops/migrate/neo4j/neo4jtest"
	"github.com/engram-ops/engram-ops/migrate/postgres/pgtest"
	"github.com/engram-ops/engram-ops/migrate/redis/redistest"
	"github.com/engram-ops/engram-ops/ops/api"
)

// migrateRecords polls the migration's metrics until it has committed at
// least n records (or the process ended).
func migrateRecords(addr string) float64 {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var total float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "engram_migrate_records_total{") {
			var v float64
			fmt.Sscanf(line[strings.LastIndexByte(line, ' ')+1:], "%g", &v)
			total += v
		}
	}
	return total
}

// killMidway runs the migration binary, SIGKILLs it once it has committed
// some batches, and returns how many records it had committed.
func killMidway(t *testing.T, args ...string) float64 {
	t.Helper()
	metrics := testsupport.FreeAddr(t)
	cmd := exec.Command(binPath, append(args, "--metrics-listen", metrics, "--batch-size", "100")...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if n := migrateRecords(metrics); n >= 1000 {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			<-done
			return n
		}
		select {
		case err := <-done:
			t.Fatalf("the migration ended before it could be killed (%v):\n%s", err, out.String())
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("the migration did not commit 1000 records in 60s:\n%s", out.String())
		}
	}
}

// runBin runs the binary to completion: its exit code, then stdout and
// stderr in that order.
func runBin(t *testing.T, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	// stdout first, whole, so a JSON report decodes from the front even
	// when stderr carried retry notes.
	out := stdout.String() + stderr.String()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), out
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, out
}

// A migration SIGKILLed midway and run again ends with exactly the
// source's records, reconciled (exit 0): into a data directory, and into a
// running server.
func TestMigrateKilledMidwayResumes(t *testing.T) {
	export, counts := neo4jtest.WriteFile(t, 10_000)
	source := []string{"neo4j-export", export}
	want := killResume{records: counts.Nodes + counts.Relationships, memories: counts.Nodes, associations: counts.Relationships, space: "neo4j"}
	t.Run("data-dir", func(t *testing.T) { want.dataDir(t, source) })
	t.Run("server", func(t *testing.T) { want.server(t, source) })
}

// The live Neo4j path, its driver talking Bolt to the test server of
// migrate/neo4j/bolttest (serving the same generated graph), SIGKILLed
// midway and run again: exactly the graph's nodes and relationships,
// reconciled (exit 0), into a data directory and into a running server.
func TestMigrateNeo4jLiveKilledMidwayResumes(t *testing.T) {
	export, counts := neo4jtest.WriteFile(t, 10_000)
	srv := bolttest.Start(t, bolttest.FromExport(t, export), "neo4j", "secret")
	t.Setenv("ENGRAM_TEST_NEO4J_PASSWORD", "secret") // the binary inherits it
	source := []string{"neo4j", "--uri", srv.URI(), "--user", "neo4j", "--password-env", "ENGRAM_TEST_NEO4J_PASSWORD"}
	want := killResume{records: counts.Nodes + counts.Relationships, memories: counts.Nodes, associations: counts.Relationships, space: "neo4j"}
	t.Run("data-dir", func(t *testing.T) { want.dataDir(t, source) })
	t.Run("server", func(t *testing.T) { want.server(t, source) })
}

// PostgreSQL: 100,000 rows over three tables with foreign keys (one a
// self-reference, read as a relation after the tables) killed midway and
// resumed into a data directory; 20,000 rows into a running server. The
// resumed run's own reconciliation is the check (exit 0); migrate verify
// on its own is tested in cmd/engram-ops.
func TestMigratePostgresKilledMidwayResumes(t *testing.T) {
	dsn := pgtest.DSN(t)
	for _, tc := range []struct {
		name string
		rows int
		run  func(killResume, *testing.T, []string)
	}{{"data-dir", 100_000, killResume.dataDir}, {"server", 20_000, killResume.server}} {
		t.Run(tc.name, func(t *testing.T) {
			schema, c := pgtest.Create(t, dsn, tc.rows)
			want := killResume{records: c.Rows() + c.Answers, memories: c.Rows(), associations: c.Associations(), space: "postgres", noVerify: true}
			tc.run(want, t, []string{"postgres", "--dsn", dsn, "--schema", schema})
		})
	}
}

// killResume is what a migration killed midway and resumed must end with.
type killResume struct {
	records, memories, associations int
	space                           string
	noVerify                        bool     // skip running migrate verify after the resumed run
	runFlags                        []string // flags of the migration runs only (not of verify)
}

// check kills the migration of source into target midway, resumes it,
// and checks the counts space reports and that verify exits 0.
func (w killResume) check(t *testing.T, source, target []string, space func() (int64, int64)) {
	base := append(append(append([]string{"migrate"}, source...), target...), w.runFlags...)
	killed := killMidway(t, base...)
	mem, _ := space()
	if killed >= float64(w.records) || mem == 0 {
		t.Fatalf("killed after %v records with %d memories stored: not midway", killed, mem)
	}
	code, out := runBin(t, append(base, "--output", "json")...)
	if code != 0 {
		t.Fatalf("resumed run exited %d:\n%s", code, out)
	}
	var sum struct {
		Resumed bool  `json:"resumed"`
		Records int64 `json:"records"`
	}
	if err := json.NewDecoder(strings.NewReader(out)).Decode(&sum); err != nil || !sum.Resumed || sum.Records == 0 || sum.Records >= int64(w.records) {
		t.Fatalf("resumed run %+v %v:\n%s", sum, err, out)
	}
	if mem, assoc := space(); mem != int64(w.memories) || assoc != int64(w.associations) {
		t.Fatalf("%d memories and %d associations, want exactly %d and %d", mem, assoc, w.memories, w.associations)
	}
	if w.noVerify {
		return
	}
	if code, out := runBin(t, append(append([]string{"migrate", "verify"}, source...), target...)...); code != 0 {
		t.Fatalf("verify exited %d:\n%s", code, out)
	}
}

// dataDir runs the migration into a data directory with --defer-index:
// the index build after the load is not what these tests check
// (TestMigrateKilledDuringIndexBuild is), and on 100,000 records it would
// be most of their time.
func (w killResume) dataDir(t *testing.T, source []string) {
	dir := t.TempDir()
	w.runFlags = []string{"--defer-index"}
	w.check(t, source, []string{"--data-dir", dir}, func() (int64, int64) { return dataDirSpace(t, dir, w.space) })
}

func (w killResume) server(t *testing.T, source []string) {
	s := startServer(t, t.TempDir())
	defer s.Kill9(t)
	w.check(t, source, []string{"--target", s.URL}, func() (int64, int64) { return serverSpace(t, s.URL, w.space) })
}

// dataDirSpace counts the memories and associations of a space of a
// stopped data directory (0, 0 when it does not exist).
func dataDirSpace(t *testing.T, dir, space string) (int64, int64) {
	e, err := core.Open(dir, core.Options{Tiers: core.TierOptions{SweepInterval: -1}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	st, err := e.Space(space)
	if err != nil {
		return 0, 0
	}
	return st.Total(), st.Associations
}

// serverSpace counts the memories and associations of a space of a
// running server (0, 0 when it does not exist).
func serverSpace(t *testing.T, url, space string) (int64, int64) {
	resp, err := http.Get(url + "/api/v1/spaces/" + space)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sp struct {
		Memories     map[string]int64 `json:"memories"`
		Associations int64            `json:"associations"`
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == 404 {
		return 0, 0
	}
	if err := json.Unmarshal(b, &sp); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	var n int64
	for k, v := range sp.Memories {
		if k != "total" {
			n += v
		}
	}
	return n, sp.Associations
}

// A Redis migration of 100,000 keys of mixed types with TTLs, SIGKILLed
// midway and run again, ends with exactly one memory per key and one
// association per reference, reconciled (exit 0): into a data directory,
// and into a running server.
func TestMigrateRedisKilledMidwayResumes(t *testing.T) {
	c := redistest.Client(t)
	pre := redistest.Prefix(t, c)
	counts := redistest.Fill(t, c, pre, 100_000)
	source := []string{"redis", "--addr", redistest.Addr(t)}
	for _, p := range redistest.Patterns(pre) {
		source = append(source, "--pattern", p)
	}
	want := killResume{records: counts.Keys + counts.Refs, memories: counts.Keys, associations: counts.Refs, space: "redis"}
	t.Run("data-dir", func(t *testing.T) { want.dataDir(t, source) })
	t.Run("server", func(t *testing.T) { want.server(t, source) })
}

// A bulk load into a data directory SIGKILLed while it builds the ANN
// index loses nothing: every memory and association was durable before the
// build began, the next open of the directory indexes what the saved index
// lacks, recall finds a memory through the index, and verify matches.
func TestMigrateKilledDuringIndexBuild(t *testing.T) {
	export, counts := neo4jtest.WriteFile(t, 10_000)
	dir := t.TempDir()
	cmd := exec.Command(binPath, "migrate", "neo4j-export", export, "--data-dir", dir)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	building := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		found := false
		for sc.Scan() {
			if !found && strings.Contains(sc.Text(), "building the ANN index") {
				found = true
				building <- true
			}
		}
		if !found {
			building <- false
		}
	}()
	select {
	case ok := <-building:
		if !ok {
			cmd.Wait()
			t.Fatalf("the migration ended without building the index:\n%s", stdout.String())
		}
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		t.Fatal("the migration did not reach the index build in 2 minutes")
	}
	time.Sleep(300 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err == nil || strings.Contains(stdout.String(), "end to end") {
		t.Fatalf("the index build finished before the kill (%v):\n%s", err, stdout.String())
	}

	// The server that opens the directory indexes what the saved index
	// lacks (the binary, not this race-instrumented test process, does
	// the inserts).
	srv := startServer(t, dir)
	var sp api.Space
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		resp, err := http.Get(srv.URL + "/api/v1/spaces/neo4j")
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(resp.Body).Decode(&sp)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if sp.Memories.Total != int64(counts.Nodes) || sp.Associations != int64(counts.Relationships) {
			t.Fatalf("after the kill: %d memories, %d associations; want %d and %d",
				sp.Memories.Total, sp.Associations, counts.Nodes, counts.Relationships)
		}
		if sp.IndexPending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the reopened directory did not index the rest: %d still pending", sp.IndexPending)
		}
	}
	req, err := http.NewRequest("POST", srv.URL+"/api/v1/memories/recall",
		strings.NewReader(`{"query":"post17 about gardening","max_results":3}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Memory-Space", "neo4j")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "post17 about") {
		t.Fatalf("recall through the rebuilt index: %d %s", resp.StatusCode, body)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	if code, out := runBin(t, "migrate", "verify", "neo4j-export", export, "--data-dir", dir); code != 0 {
		t.Fatalf("verify exited %d:\n%s", code, out)
	}
}
