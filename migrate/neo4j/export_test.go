package neo4j_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/migrate"
	"github.com/engram-ops/engram-ops/migrate/migratetest"
	"github.com/engram-ops/engram-ops/migrate/neo4j"
	"github.com/engram-ops/engram-ops/migrate/neo4j/neo4jtest"
)

// A generated export (three labels, two relationship types, nested, list
// and null properties) lands completely in a data directory, a second run
// writes nothing new, verify matches, and spreading activation from a post
// reaches the user who wrote it.
func TestExportIntoDataDir(t *testing.T) {
	ctx := context.Background()
	path, counts := neo4jtest.WriteFile(t, 10_000)
	src := &neo4j.Export{Path: path}
	m := migratetest.Compile(t, src, "", "neo4j")
	e := migratetest.OpenEngine(t, t.TempDir())
	sink := &migrate.EngineSink{E: e}
	sum, err := migrate.Run(ctx, migrate.Options{Source: src, SourceName: "test", Mapping: m, Sink: sink, MaxRejects: 0})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Memories != int64(counts.Nodes) || sum.Associations != int64(counts.Relationships) || sum.Rejects != 0 || !sum.Complete {
		t.Fatalf("summary %+v, want %d memories and %d associations", sum, counts.Nodes, counts.Relationships)
	}
	st, err := e.Space("neo4j")
	if err != nil {
		t.Fatal(err)
	}
	if st.Total() != int64(counts.Nodes) || st.Associations != int64(counts.Relationships) {
		t.Fatalf("space has %d memories and %d associations, want %d and %d", st.Total(), st.Associations, counts.Nodes, counts.Relationships)
	}
	again, err := migrate.Run(ctx, migrate.Options{Source: src, SourceName: "test", Mapping: m, Sink: sink})
	if err != nil || !again.Resumed || again.Records != 0 {
		t.Fatalf("second run: %+v %v", again, err)
	}
	rep, err := migrate.Verify(ctx, src, m, sink, "test")
	if err != nil || !rep.OK {
		t.Fatalf("verify: %+v %v", rep, err)
	}
	mem, err := e.Get(ctx, "neo4j", "User:0", false)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"address: {\"city\":\"city 0\",\"zip\":null}", "nicknames: [\"u0\",\"n0\"]", "name: user 0"} {
		if !strings.Contains(mem.Content, want) {
			t.Errorf("content %q lacks %q", mem.Content, want)
		}
	}
	if !slices.Contains(mem.Tags, "Admin") || !slices.Contains(mem.Tags, "User") || mem.Metadata["age"] != "20" || mem.Metadata[migrate.MetaKey] != "0" {
		t.Errorf("tags %v metadata %v", mem.Tags, mem.Metadata)
	}
	// Post 0 (node id Users) was written by user 0: spreading from the
	// post reaches the user.
	res, err := e.Recall(ctx, "neo4j", core.RecallQuery{Text: "post0 about gardening", MaxResults: 50, NoReinforce: true})
	if err != nil {
		t.Fatal(err)
	}
	var reached []string
	for _, r := range res.Associated {
		reached = append(reached, r.Memory.ID)
	}
	if !slices.Contains(reached, "Topic:"+itoa(counts.Users+counts.Posts)) {
		t.Errorf("spreading from post 0 reached %v, not its topic", reached)
	}
	// Tampering with one memory is found.
	if _, err := e.Batch(ctx, "neo4j", core.BatchInput{Memories: []core.RememberInput{{ID: "Topic:" + itoa(counts.Users+counts.Posts), Content: "changed"}}}); err != nil {
		t.Fatal(err)
	}
	rep, err = migrate.Verify(ctx, src, m, sink, "test")
	if err != nil || rep.OK {
		t.Fatalf("verify after tampering: ok=%v %v", rep.OK, err)
	}
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

// Stopping after part of the source and running again ends with exactly
// the source's records.
func TestExportResume(t *testing.T) {
	ctx := context.Background()
	path, counts := neo4jtest.WriteFile(t, 2_000)
	src := &neo4j.Export{Path: path}
	m := migratetest.Compile(t, src, "", "neo4j")
	e := migratetest.OpenEngine(t, t.TempDir())
	sink := &migrate.EngineSink{E: e}
	migratetest.RunInterrupted(t, migrate.Options{Source: src, SourceName: "s", Mapping: m, Sink: sink, BatchSize: 100},
		1234, int64(counts.Nodes+counts.Relationships))
	if rep, err := migrate.Verify(ctx, src, m, sink, "s"); err != nil || !rep.OK {
		t.Fatalf("verify: %+v %v", rep, err)
	}
	// Another mapping cannot resume this cursor.
	other := migratetest.Compile(t, src, `space = "neo4j"`+"\n[objects.Topic]\ncontent = \"{name}\"\n", "neo4j")
	_, err := migrate.Run(ctx, migrate.Options{Source: src, SourceName: "s", Mapping: other, Sink: sink})
	if !errors.Is(err, migrate.ErrMappingChanged) {
		t.Fatalf("resume with another mapping: %v", err)
	}
}

// A malformed line is rejected with its line number and the run goes on;
// --max-rejects stops the run past the limit.
func TestExportMalformedLine(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "bad.jsonl")
	lines := []string{
		`{"type":"node","id":"0","labels":["User"],"properties":{"name":"ann"}}`,
		`{"type":"node","id":"1","labels":["User"],"properties":{"name":"bob"`,
		``,
		`{"type":"node","id":2,"labels":["User"],"properties":{"name":"cy"}}`,
		`{"type":"edge","id":"3"}`,
		`{"type":"relationship","id":"0","label":"KNOWS","properties":{},"start":{"id":"0","labels":["User"]},"end":{"id":"2","labels":["User"]}}`,
	}
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	src := &neo4j.Export{Path: path}
	m := migratetest.Compile(t, src, "", "neo4j")
	e := migratetest.OpenEngine(t, t.TempDir())
	var rejects bytes.Buffer
	sum, err := migrate.Run(ctx, migrate.Options{Source: src, SourceName: "bad", Mapping: m, Sink: &migrate.EngineSink{E: e}, Rejects: &rejects, MaxRejects: 5})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Memories != 2 || sum.Associations != 1 || sum.Rejects != 2 {
		t.Fatalf("summary %+v", sum)
	}
	var got []map[string]any
	sc := bufio.NewScanner(&rejects)
	for sc.Scan() {
		var l map[string]any
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatal(err)
		}
		got = append(got, l)
	}
	if len(got) != 2 || got[0]["position"] != "line 2" || got[1]["position"] != "line 5" ||
		!strings.Contains(got[0]["reason"].(string), "not an APOC export line") || !strings.Contains(got[1]["reason"].(string), `"edge"`) ||
		!strings.Contains(got[0]["record"].(string), `"bob"`) {
		t.Fatalf("reject lines %v", got)
	}
	_, err = migrate.Run(ctx, migrate.Options{Source: src, SourceName: "bad2", Mapping: m, Sink: &migrate.EngineSink{E: migratetest.OpenEngine(t, t.TempDir())}, MaxRejects: 1})
	if !errors.Is(err, migrate.ErrTooManyRejects) || !strings.Contains(err.Error(), "line 5") {
		t.Fatalf("max rejects: %v", err)
	}
}

// A mapping naming a property no node of the label has is refused at load
// time, naming the object, the key and the fields there are.
func TestMappingMissingField(t *testing.T) {
	path, _ := neo4jtest.WriteFile(t, 40)
	src := &neo4j.Export{Path: path}
	objs, err := src.Objects(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	f, err := migrate.ParseMappingFile([]byte("[objects.User]\ncontent = \"{nmae} is {age}\"\nobserved_at = \"joind\"\n[objects.Robot]\n"), "m.toml")
	if err != nil {
		t.Fatal(err)
	}
	_, err = migrate.Compile(f, objs, "neo4j")
	if err == nil {
		t.Fatal("compiled")
	}
	for _, want := range []string{`objects.User.content: "nmae" is not a field of User`, `objects.User.observed_at: "joind"`, "its fields: active, address, age", `objects.Robot: the source has no object "Robot"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	_, err = migrate.ParseMappingFile([]byte("space = \"x\"\n[objects.User]\ncontnet = \"{name}\"\n"), "m.toml")
	if err == nil || !strings.Contains(err.Error(), "m.toml:3") || !strings.Contains(err.Error(), "contnet") {
		t.Fatalf("unknown key: %v", err)
	}
}

// A worked mapping: content and id templates, tags, metadata, observed_at,
// confidence, a weight from a relationship property.
func TestExportWorkedMapping(t *testing.T) {
	ctx := context.Background()
	path, _ := neo4jtest.WriteFile(t, 40)
	src := &neo4j.Export{Path: path}
	m := migratetest.Compile(t, src, `
space = "graph"
[objects.User]
content = "{name}, {age}, lives in {address.city}"
id = "user-{_key}"
tags = ["person"]
metadata = ["age"]
observed_at = "joined"
confidence = 0.9
[objects.Post]
content = "{title}"
[objects.Topic]
skip = true
[objects.ABOUT]
skip = true
[objects.WROTE]
weight = 0.6
kind = "wrote"
`, "neo4j")
	e := migratetest.OpenEngine(t, t.TempDir())
	sum, err := migrate.Run(ctx, migrate.Options{Source: src, SourceName: "w", Mapping: m, Sink: &migrate.EngineSink{E: e}})
	if err != nil || sum.Rejects != 0 {
		t.Fatalf("%+v %v", sum, err)
	}
	mem, err := e.Get(ctx, "graph", "user-1", false)
	if err != nil {
		t.Fatal(err)
	}
	if mem.Content != "user 1, 21, lives in city 1" || mem.Confidence != 0.9 || mem.ObservedAt.Format("2006-01-02") != "2024-01-02" ||
		!slices.Contains(mem.Tags, "person") || mem.Metadata["age"] != "21" || mem.Metadata["name"] != "" {
		t.Fatalf("memory %+v", mem)
	}
	st, _ := e.Space("graph")
	if st.Total() != 30 || st.Associations != 20 {
		t.Fatalf("%d memories %d associations", st.Total(), st.Associations)
	}
}

// The reader's cursor resumes exactly after the line it names.
func TestReaderCursor(t *testing.T) {
	data := "{\"type\":\"node\",\"id\":\"a\",\"labels\":[\"X\"]}\r\n\n{\"type\":\"node\",\"id\":\"b\",\"labels\":[],\"properties\":null}\n{\"type\":\"node\",\"id\":\"c\"}"
	rd := neo4j.NewReader(strings.NewReader(data), 0, 0)
	var keys, cursors []string
	for {
		rec, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, rec.Object+"/"+rec.Key)
		cursors = append(cursors, rec.Cursor)
	}
	if strings.Join(keys, ",") != "X/a,_unlabelled/b,_unlabelled/c" {
		t.Fatalf("keys %v", keys)
	}
	first := strings.Index(data, "\n") + 1
	second := first + 1 + strings.Index(data[first+1:], "\n") + 1
	if cursors[0] != fmt.Sprintf("1:%d", first) || cursors[1] != fmt.Sprintf("3:%d", second) || cursors[2] != fmt.Sprintf("4:%d", len(data)) {
		t.Fatalf("cursors %v", cursors)
	}
	rd = neo4j.NewReader(strings.NewReader(data[first:]), 1, int64(first))
	rec, err := rd.Next()
	if err != nil || rec.Key != "b" || rec.Position != "line 3" {
		t.Fatalf("resumed at %+v %v", rec, err)
	}
}
