package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/internal/testsupport"
	"github.com/engram-ops/engram-ops/migrate"
	"github.com/engram-ops/engram-ops/migrate/migratetest"
	"github.com/engram-ops/engram-ops/migrate/postgres"
	"github.com/engram-ops/engram-ops/migrate/postgres/pgtest"
)

func find(recs []migrate.Record, object, key string) *migrate.Record {
	for i := range recs {
		if recs[i].Object == object && recs[i].Key == key {
			return &recs[i]
		}
	}
	return nil
}

// Objects come in dependency order (users before posts before likes), the
// self-reference posts.parent_id as a relation after every table; every
// type maps to its documented value; NULLs are nil.
func TestObjectsAndTypes(t *testing.T) {
	dsn := pgtest.DSN(t)
	schema, c := pgtest.Create(t, dsn, 300)
	src := &postgres.Source{DSN: dsn, Schema: schema, PageSize: 7}
	objs, err := src.Objects(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range objs {
		names = append(names, o.Name+"/"+o.Kind.String()+"/"+strconv.FormatInt(o.Count, 10))
	}
	want := "users/entity/60 posts/entity/120 likes/entity/120 posts.posts_parent_id_fkey/relation/" + strconv.Itoa(c.Answers)
	if strings.Join(names, " ") != want {
		t.Fatalf("objects %v, want %s", names, want)
	}
	recs := migratetest.Records(t, src, "")
	if len(recs) != c.Rows()+c.Answers {
		t.Fatalf("%d records, want %d", len(recs), c.Rows()+c.Answers)
	}
	u := find(recs, "users", "14")
	if u == nil {
		t.Fatal("no users 14")
	}
	f := u.Fields
	checks := map[string]any{
		"id": int64(14), "name": "user 14", "email": nil, "age": int64(34), "rank": int64(14), "balance": json.Number("17.50"),
		"big": "10000000000000000000000014", "active": nil, "created_at": time.Date(2024, 1, 1, 0, 14, 0, 0, time.UTC),
		"seen_at": time.Date(2024, 1, 1, 0, 0, 14, 0, time.UTC), "birthday": "1990-01-15",
		"ext_id": "aab32389-22bc-c25a-6f60-6eb525ffdc56", "notes": nil, "idle": "00:00:14", "avatar": "qrMjiSK8wlpvYG61Jf/cVg==",
		"settings": nil,
	}
	for k, want := range checks {
		got := f[k]
		if k == "big" {
			got = formatNum(got)
		}
		if got != want {
			t.Errorf("users 14 %s = %#v (%T), want %#v", k, got, got, want)
		}
	}
	profile, _ := json.Marshal(f["profile"])
	if string(profile) != `{"big":12345678901234567,"city":"city 14","langs":["en","fr"],"level":4,"ratio":0.5,"zip":null}` {
		t.Errorf("profile %s", profile)
	}
	if p := f["profile"].(map[string]any); p["big"] != int64(12345678901234567) {
		t.Errorf("profile.big %#v: JSON integers must stay exact", p["big"])
	}
	if arr, _ := json.Marshal([]any{f["nicknames"], f["scores"]}); string(arr) != `[["u14","n14"],[4,null,3]]` {
		t.Errorf("arrays %s", arr)
	}
	if v, ok := f["embedding"].([]float32); !ok || len(v) != 768 || v[4] != float32(math.Sin(14*5)) {
		t.Errorf("embedding %#v", f["embedding"])
	}
	if v := find(recs, "users", "55").Fields; v["active"] != false || v["notes"] != "note of 55" || formatNum(v["big"]) != "13.75" || v["embedding"] != nil {
		t.Errorf("users 55: %v %v %v", v["active"], v["notes"], v["big"])
	}
	// A post's author is a reference; post 10's parent (post 11, read
	// later) is a record of the relation object.
	p := find(recs, "posts", "10")
	if len(p.Refs) != 1 || p.Refs[0] != (migrate.Reference{Kind: "posts_user_id_fkey", ToObject: "users", ToKey: "10"}) {
		t.Errorf("posts 10 refs %+v", p.Refs)
	}
	r := find(recs, "posts.posts_parent_id_fkey", "10")
	if r == nil || len(r.Refs) != 1 || r.Refs[0] != (migrate.Reference{Kind: "posts_parent_id_fkey", FromObject: "posts", FromKey: "10", ToObject: "posts", ToKey: "11"}) {
		t.Errorf("parent reference %+v", r)
	}
	l := find(recs, "likes", "8:1")
	if l == nil || len(l.Refs) != 2 || l.Position != "likes user_id=8,post_id=1" {
		t.Fatalf("likes 8:1 %+v", l)
	}
}

func formatNum(v any) string {
	switch x := v.(type) {
	case json.Number:
		return x.String()
	case int64:
		return strconv.FormatInt(x, 10)
	case string:
		return x
	}
	return "?"
}

// Reopening at any record's cursor yields exactly the records after it,
// across page and table boundaries.
func TestCursorResumesExactly(t *testing.T) {
	dsn := pgtest.DSN(t)
	schema, _ := pgtest.Create(t, dsn, 60)
	src := &postgres.Source{DSN: dsn, Schema: schema, PageSize: 5}
	all := migratetest.Records(t, src, "")
	for _, i := range []int{0, 4, 5, 11, 12, 13, 35, len(all) - 2, len(all) - 1} {
		rest := migratetest.Records(t, src, all[i].Cursor)
		if len(rest) != len(all)-i-1 {
			t.Fatalf("after record %d (%s %s): %d records, want %d", i, all[i].Object, all[i].Key, len(rest), len(all)-i-1)
		}
		for j := range rest {
			if rest[j].Object != all[i+1+j].Object || rest[j].Key != all[i+1+j].Key {
				t.Fatalf("after record %d: record %d is %s %s, want %s %s", i, j, rest[j].Object, rest[j].Key, all[i+1+j].Object, all[i+1+j].Key)
			}
		}
	}
	if _, err := src.Open(context.Background(), postgres.EncodeCursor("gone", []string{"1"})); err == nil || !strings.Contains(err.Error(), `"gone"`) {
		t.Fatalf("cursor in a missing table: %v", err)
	}
}

// One run reads one snapshot: rows inserted, updated and deleted after it
// began are not seen, even on later pages.
func TestOneSnapshot(t *testing.T) {
	dsn := pgtest.DSN(t)
	schema := pgtest.Schema(t, dsn)
	conn := pgtest.Connect(t, dsn)
	if _, err := conn.Exec(context.Background(), "CREATE TABLE "+schema+".users (id int PRIMARY KEY, name text); INSERT INTO "+schema+".users SELECT i, 'user ' || i FROM generate_series(1, 20) i"); err != nil {
		t.Fatal(err)
	}
	src := &postgres.Source{DSN: dsn, Schema: schema, PageSize: 3}
	it, err := src.Open(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	if _, err := it.Next(); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"INSERT INTO " + schema + ".users (id, name) VALUES (1000, 'late')",
		"UPDATE " + schema + ".users SET name = 'changed' WHERE id = 9",
		"DELETE FROM " + schema + ".users WHERE id = 8",
	} {
		if _, err := conn.Exec(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
	n := 1
	for {
		rec, err := it.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
		if rec.Key == "9" && rec.Fields["name"] != "user 9" {
			t.Errorf("users 9 read as %v, after the snapshot", rec.Fields["name"])
		}
	}
	if n != 20 {
		t.Fatalf("read %d users, want the snapshot's 20", n)
	}
}

// A table without a primary key, a missing table or schema: errors that
// name it, before anything is read.
func TestRefusedSelections(t *testing.T) {
	dsn := pgtest.DSN(t)
	schema, _ := pgtest.Create(t, dsn, 10)
	conn := pgtest.Connect(t, dsn)
	if _, err := conn.Exec(context.Background(), "CREATE TABLE "+schema+".audit (at timestamptz, what text)"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		src  *postgres.Source
		want string
	}{
		{&postgres.Source{DSN: dsn, Schema: schema}, "table audit of schema \"" + schema + "\" has no primary key"},
		{&postgres.Source{DSN: dsn, Schema: schema, Tables: []string{"users", "nope"}}, `has no table "nope" (its tables: audit, likes, posts, users)`},
		{&postgres.Source{DSN: dsn, Schema: "no_such_schema"}, `schema "no_such_schema" does not exist`},
	} {
		_, err := tc.src.Objects(context.Background())
		if !errors.Is(err, postgres.ErrSelection) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.src.Tables, err, tc.want)
		}
	}
	// Leaving it out works; a reference to a table outside the run is not
	// followed.
	src := &postgres.Source{DSN: dsn, Schema: schema, Tables: []string{"posts"}}
	for _, r := range migratetest.Records(t, src, "") {
		for _, ref := range r.Refs {
			if ref.ToObject != "posts" {
				t.Fatalf("reference %+v to a table outside the run", ref)
			}
		}
	}
	bad := &postgres.Source{DSN: strings.Replace(dsn, "postgres@", "nobody_here@", 1)}
	if _, err := bad.Objects(context.Background()); err == nil || !strings.Contains(err.Error(), `connect to PostgreSQL at 127.0.0.1`) || !strings.Contains(err.Error(), "nobody_here") {
		t.Fatalf("unknown user: %v", err)
	}
}

// Into a data directory: stopped midway and run again, exactly the rows
// land, with every foreign key as an association (the forward parent
// references too); verify matches; spreading from a post reaches its
// author; a real[] column mapped as the embedding is the memory's vector.
func TestIntoDataDirResumeVerifyRecall(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	schema, c := pgtest.Create(t, dsn, 3000)
	src := &postgres.Source{DSN: dsn, Schema: schema}
	m := migratetest.Compile(t, src, "[objects.users]\nembedding = \"embedding\"\n", "pgsql")
	e := testsupport.OpenEngine(t, t.TempDir())
	sink := &migrate.EngineSink{E: e}
	migratetest.RunInterrupted(t, migrate.Options{Source: src, SourceName: "pgsql", Mapping: m, Sink: sink, BatchSize: 100},
		1234, int64(c.Rows()+c.Answers))
	st, err := e.Space("pgsql")
	if err != nil {
		t.Fatal(err)
	}
	if st.Total() != int64(c.Rows()) || st.Associations != int64(c.Associations()) {
		t.Fatalf("%d memories and %d associations, want %d and %d", st.Total(), st.Associations, c.Rows(), c.Associations())
	}
	rep, err := migrate.Verify(ctx, src, m, sink, "pgsql")
	if err != nil || !rep.OK {
		t.Fatalf("verify %+v %v", rep, err)
	}
	u, err := e.Get(ctx, "pgsql", "users:3", true)
	if err != nil {
		t.Fatal(err)
	}
	if len(u.Embedding) != 768 || u.Embedding[5] != float32(math.Sin(18)) || !strings.Contains(u.Content, "email: user3@example.com") || u.Metadata["balance"] != "3.75" {
		t.Errorf("users:3 embedding %v content %q metadata %v", u.Embedding, u.Content, u.Metadata)
	}
	res, err := e.Recall(ctx, "pgsql", core.RecallQuery{Text: "post7 about gardening", MaxResults: 50, NoReinforce: true})
	if err != nil {
		t.Fatal(err)
	}
	var reached []string
	for _, r := range res.Associated {
		reached = append(reached, r.Memory.ID)
	}
	if !slices.Contains(reached, "users:7") {
		t.Errorf("spreading from post 7 reached %v, not its author users:7", reached)
	}
}
