package redis_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/engram-ops/engram-ops/migrate"
	"github.com/engram-ops/engram-ops/migrate/migratetest"
	"github.com/engram-ops/engram-ops/migrate/redis"
	"github.com/engram-ops/engram-ops/migrate/redis/redistest"
)

func connect(t testing.TB, patterns ...string) *redis.Source {
	t.Helper()
	src, err := redis.Connect(context.Background(), redis.Config{Addr: redistest.Addr(t), Patterns: patterns, Count: 100})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

func byKey(recs []migrate.Record) map[string]migrate.Record {
	m := map[string]migrate.Record{}
	for _, r := range recs {
		m[r.Key] = r
	}
	return m
}

// Every type becomes the fields the package doc promises; a TTL becomes an
// absolute expiry in metadata; a key matching two patterns is the first
// pattern's only.
func TestKeyTypes(t *testing.T) {
	t.Parallel()
	c := redistest.Client(t)
	p := redistest.Prefix(t, c)
	ctx := context.Background()
	c.HSet(ctx, p+":h", "name", "Ann", "prefs", `{"theme":"dark","size":12}`)
	c.Set(ctx, p+":j", `  {"title":"x","n":3,"f":1.5,"nested":{"a":[1,2]}}`, 0)
	c.Set(ctx, p+":arr", `[1,"two"]`, 0)
	c.Set(ctx, p+":plain", `{not json`, 0)
	c.Set(ctx, p+":num", `42`, 0)
	c.RPush(ctx, p+":l", "b", "a")
	c.SAdd(ctx, p+":s", "z", "x", "y")
	c.ZAdd(ctx, p+":z", goredis.Z{Score: 2, Member: "q"}, goredis.Z{Score: 1, Member: "p"})
	c.XAdd(ctx, &goredis.XAddArgs{Stream: p + ":x", ID: "5-1", Values: []any{"k", "v"}})
	c.Set(ctx, p+":ttl", "soon", 0)
	at := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	c.PExpireAt(ctx, p+":ttl", at)

	src := connect(t, p+":h", p+":*")
	got := byKey(migratetest.Records(t, src, ""))
	if len(got) != 10 {
		t.Fatalf("%d records, want 10: %v", len(got), got)
	}
	check := func(key, object, typ string, fields string) {
		t.Helper()
		r := got[key]
		if r.Object != object || r.Metadata[redis.MetaType] != typ || fmt.Sprint(r.Fields) != fields {
			t.Errorf("%s: object %q type %q fields %v; want %q %q %s", key, r.Object, r.Metadata[redis.MetaType], r.Fields, object, typ, fields)
		}
	}
	check(p+":h", p+":h", "hash", "map[name:Ann prefs:map[size:12 theme:dark]]")
	check(p+":j", p+":*", "string", "map[f:1.5 n:3 nested:map[a:[1 2]] title:x]")
	check(p+":arr", p+":*", "string", "map[value:[1 two]]")
	check(p+":plain", p+":*", "string", "map[value:{not json]")
	check(p+":num", p+":*", "string", "map[value:42]")
	check(p+":l", p+":*", "list", "map[items:[b a]]")
	check(p+":s", p+":*", "set", "map[members:[x y z]]")
	check(p+":z", p+":*", "zset", "map[members:[map[member:p score:1] map[member:q score:2]]]")
	check(p+":x", p+":*", "stream", "map[entries:[map[fields:map[k:v] id:5-1]]]")
	if n, ok := got[p+":j"].Fields["n"].(int64); !ok || n != 3 {
		t.Errorf("JSON integer decoded as %T %v, want int64 3", got[p+":j"].Fields["n"], got[p+":j"].Fields["n"])
	}
	if e := got[p+":ttl"].Metadata[redis.MetaExpires]; e != at.UTC().Format(time.RFC3339Nano) {
		t.Errorf("expiry %q, want %q", e, at.UTC().Format(time.RFC3339Nano))
	}
	if _, ok := got[p+":h"].Metadata[redis.MetaExpires]; ok {
		t.Errorf("a key without TTL has an expiry")
	}
}

// A generated keyspace (mixed types, TTLs, doc->user references) migrates
// into a data directory with exactly one memory per key and one
// association per reference, reconciles, and a run stopped midway resumes
// to the same end state.
func TestMigrateKeyspaceResume(t *testing.T) {
	t.Parallel()
	c := redistest.Client(t)
	p := redistest.Prefix(t, c)
	cnt := redistest.Fill(t, c, p, 5000)
	src := connect(t, redistest.Patterns(p)...)
	m := migratetest.Compile(t, src, "", "redis")
	objs := m.Objects()
	if len(objs) != 4 || objs[3].Name != redis.RelationName(p+":doc:*", "author") || objs[3].Count != int64(cnt.Refs) {
		t.Fatalf("objects %+v", objs)
	}
	if objs[0].Count != int64(cnt.Users) || objs[1].Count != int64(cnt.Docs) || objs[2].Count != int64(cnt.Rest) {
		t.Fatalf("counts %+v, want %+v", objs, cnt)
	}
	e := migratetest.OpenEngine(t, t.TempDir())
	sink := &migrate.EngineSink{E: e}
	o := migrate.Options{Source: src, SourceName: "redis-test", Mapping: m, Sink: sink, MaxRejects: 0, BatchSize: 200, Limit: 1700}
	sum, err := migrate.Run(context.Background(), o)
	if err != nil || sum.Complete {
		t.Fatalf("first run %+v %v", sum, err)
	}
	o.Limit = 0
	sum, err = migrate.Run(context.Background(), o)
	if err != nil || !sum.Complete || !sum.Resumed {
		t.Fatalf("resumed run %+v %v", sum, err)
	}
	// The resumed run re-read at most one SCAN page of what the first
	// committed.
	if sum.Records > int64(cnt.Keys+cnt.Refs)-1700+100 {
		t.Errorf("resumed run read %d records; the first had committed 1700 of %d", sum.Records, cnt.Keys+cnt.Refs)
	}
	st, err := e.Space("redis")
	if err != nil {
		t.Fatal(err)
	}
	if st.Total() != int64(cnt.Keys) || st.Associations != int64(cnt.Refs) {
		t.Fatalf("%d memories, %d associations; want %d, %d", st.Total(), st.Associations, cnt.Keys, cnt.Refs)
	}
	rep, err := migrate.Verify(context.Background(), src, m, sink, "redis-test")
	if err != nil || !rep.OK {
		t.Fatalf("verify %+v %v", rep, err)
	}
	mem, err := e.Get(context.Background(), "redis", idOf(p+":doc:*", p+":doc:3"), false)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(mem.Content, "doc3 about "+redistest.Topic(3)) || mem.Metadata[redis.MetaType] != "string" {
		t.Fatalf("doc 3: %q %v", mem.Content, mem.Metadata)
	}
	// A key of the source deleted after the migration is reported.
	c.Del(context.Background(), p+":doc:3")
	defer c.Set(context.Background(), p+":doc:3", "x", 0)
	if rep, err := migrate.Verify(context.Background(), src, m, sink, "redis-test"); err != nil || rep.OK {
		t.Fatalf("verify after a delete: ok %v, %v", rep.OK, err)
	}
}

// idOf is the default mapping's memory id of key under pattern.
func idOf(pattern, key string) string {
	return strings.NewReplacer("*", "_", "?", "_", "[", "_", "]", "_").Replace(pattern + ":" + key)
}

// References: a field naming an existing key of a pattern is one, a field
// naming a missing key, itself, or a key of no pattern is not.
func TestReferences(t *testing.T) {
	t.Parallel()
	c := redistest.Client(t)
	p := redistest.Prefix(t, c)
	ctx := context.Background()
	c.HSet(ctx, p+":u:1", "name", "Ann", "boss", p+":u:2", "self", p+":u:1", "gone", p+":u:9", "other", p+"-x")
	c.HSet(ctx, p+":u:2", "name", "Bob")
	c.Set(ctx, p+"-x", "outside", 0)
	c.Set(ctx, p+":d:1", `{"by":"`+p+`:u:2"}`, 0)
	src := connect(t, p+":u:*", p+":d:*")
	var rels []string
	for _, r := range migratetest.Records(t, src, "") {
		if len(r.Refs) > 0 {
			ref := r.Refs[0]
			rels = append(rels, fmt.Sprintf("%s %s->%s/%s", r.Object, ref.FromKey, ref.ToObject, ref.ToKey))
		}
	}
	want := []string{
		fmt.Sprintf("%s:d:*->by %[1]s:d:1->%[1]s:u:*/%[1]s:u:2", p),
		fmt.Sprintf("%s:u:*->boss %[1]s:u:1->%[1]s:u:*/%[1]s:u:2", p),
	}
	if strings.Join(rels, "\n") != strings.Join(want, "\n") {
		t.Fatalf("references\n%s\nwant\n%s", strings.Join(rels, "\n"), strings.Join(want, "\n"))
	}
	// Skipping the relation object leaves the association out.
	m := migratetest.Compile(t, src, fmt.Sprintf("[objects.%q]\nskip = true\n", redis.RelationName(p+":u:*", "boss")), "redis")
	e := migratetest.OpenEngine(t, t.TempDir())
	if _, err := migrate.Run(ctx, migrate.Options{Source: src, SourceName: "r", Mapping: m, Sink: &migrate.EngineSink{E: e}}); err != nil {
		t.Fatal(err)
	}
	if st, _ := e.Space("redis"); st.Total() != 3 || st.Associations != 1 {
		t.Fatalf("%d memories, %d associations; want 3 and 1", st.Total(), st.Associations)
	}
}

// A stored cursor resumes inside the right phase and pattern; one written
// for other patterns is refused.
func TestCursor(t *testing.T) {
	t.Parallel()
	c := redistest.Client(t)
	p := redistest.Prefix(t, c)
	ctx := context.Background()
	for i := 0; i < 250; i++ {
		c.Set(ctx, fmt.Sprintf("%s:a:%d", p, i), "v", 0)
		c.Set(ctx, fmt.Sprintf("%s:b:%d", p, i), "v", 0)
	}
	src := connect(t, p+":a:*", p+":b:*")
	all := migratetest.Records(t, src, "")
	if len(all) != 500 {
		t.Fatalf("%d records", len(all))
	}
	// Resuming after every record yields the rest, re-reading at most the
	// page of that record, never skipping one.
	for i := 0; i < len(all); i += 37 {
		rest := migratetest.Records(t, src, all[i].Cursor)
		seen := byKey(rest)
		for _, r := range all[i+1:] {
			if _, ok := seen[r.Key]; !ok {
				t.Fatalf("resuming after record %d (cursor %s) misses %s", i, all[i].Cursor, r.Key)
			}
		}
		if extra := len(rest) - (len(all) - i - 1); extra > 200 {
			t.Fatalf("resuming after record %d re-read %d records", i, extra)
		}
	}
	other := connect(t, p+":b:*", p+":a:*")
	if _, err := other.Open(ctx, all[10].Cursor); err == nil || !strings.Contains(err.Error(), "--pattern") {
		t.Fatalf("a cursor of other patterns: %v", err)
	}
	if _, err := src.Open(ctx, "k/9/0/"+strings.Split(all[0].Cursor, "/")[3]); err == nil {
		t.Fatal("a cursor past the patterns was accepted")
	}
}

// Connection problems name themselves.
func TestConnectErrors(t *testing.T) {
	t.Parallel()
	c := redistest.Client(t)
	ctx := context.Background()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	if _, err := redis.Connect(ctx, redis.Config{Addr: closed}); err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Errorf("closed port: %v", err)
	}
	user := "engram-test-" + redistest.Prefix(t, c)
	if err := c.Do(ctx, "ACL", "SETUSER", user, "on", ">right", "~*", "+@all").Err(); err != nil {
		t.Fatal(err)
	}
	defer c.Do(ctx, "ACL", "DELUSER", user)
	if _, err := redis.Connect(ctx, redis.Config{Addr: redistest.Addr(t), Username: user, Password: "wrong"}); err == nil || !strings.Contains(err.Error(), "refused the credentials") {
		t.Errorf("wrong password: %v", err)
	}
	src, err := redis.Connect(ctx, redis.Config{Addr: redistest.Addr(t), Username: user, Password: "right"})
	if err != nil {
		t.Errorf("right password: %v", err)
	} else {
		src.Close()
	}
	if _, err := redis.Connect(ctx, redis.Config{Addr: redistest.Addr(t), DB: 999}); err == nil || !strings.Contains(err.Error(), "no database 999") {
		t.Errorf("db out of range: %v", err)
	}
}

// Unsupported values are rejected records naming the key, and the run
// continues.
func TestBadKeys(t *testing.T) {
	t.Parallel()
	c := redistest.Client(t)
	p := redistest.Prefix(t, c)
	ctx := context.Background()
	big := make([]any, 0, redis.MaxItems+1)
	for i := 0; i <= redis.MaxItems; i++ {
		big = append(big, i)
	}
	c.SAdd(ctx, p+":big", big...)
	c.Set(ctx, p+":ok", "fine", 0)
	src := connect(t, p+":*")
	it, err := src.Open(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	var ok, bad int
	for {
		_, err := it.Next()
		if err == io.EOF {
			break
		}
		var be *migrate.BadRecordError
		if errors.As(err, &be) {
			if !strings.Contains(be.Position, p+":big") || !strings.Contains(be.Reason, "more than 10000") {
				t.Errorf("bad record %+v", be)
			}
			bad++
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		ok++
	}
	if ok != 1 || bad != 1 {
		t.Fatalf("%d records, %d rejected; want 1 and 1", ok, bad)
	}
}
