package neo4j_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j/dbtype"

	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/internal/testsupport"
	"github.com/engram-ops/engram-ops/migrate"
	"github.com/engram-ops/engram-ops/migrate/migratetest"
	"github.com/engram-ops/engram-ops/migrate/neo4j"
	"github.com/engram-ops/engram-ops/migrate/neo4j/bolttest"
	"github.com/engram-ops/engram-ops/migrate/neo4j/neo4jtest"
)

// liveGraph is the graph of a generated APOC export, with the timestamps
// APOC writes as text held as datetimes, as Neo4j holds them.
func liveGraph(t *testing.T, n int) (string, *bolttest.Graph, neo4jtest.Counts) {
	path, c := neo4jtest.WriteFile(t, n)
	g := bolttest.FromExport(t, path)
	datetime := func(props map[string]any, key string) {
		s, ok := props[key].(string)
		if !ok {
			return
		}
		ts, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		props[key] = ts
	}
	for _, n := range g.Nodes {
		datetime(n.Props, "joined")
	}
	for _, r := range g.Rels {
		datetime(r.Props, "at")
	}
	return path, g, c
}

func boltSource(t *testing.T, srv *bolttest.Server, pageSize int) *neo4j.Bolt {
	src := &neo4j.Bolt{URI: srv.URI(), User: "neo4j", Password: "secret", PageSize: pageSize}
	t.Cleanup(func() { src.Close() })
	return src
}

// comparable is a record's fields with datetimes as the RFC 3339 text the
// export holds (they format to the same content).
func comparable(v any) any {
	switch x := v.(type) {
	case time.Time:
		return x.Format(time.RFC3339Nano)
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			out[k] = comparable(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = comparable(e)
		}
		return out
	}
	return v
}

// Over Bolt, through the real driver, the live source yields the objects
// and records the APOC export of the same graph yields (three labels, one
// of them on nodes with two, two relationship types, nested, list, null
// and datetime properties), paged by element id; a run stopped midway and
// resumed lands exactly the graph in a data directory, the APOC export's
// reconciliation of that directory matches too, and the export migrated
// on its own lands as the same memories.
func TestBoltMatchesExport(t *testing.T) {
	ctx := context.Background()
	path, g, c := liveGraph(t, 400)
	srv := bolttest.Start(t, g, "neo4j", "secret")
	src := boltSource(t, srv, 37)
	exp := &neo4j.Export{Path: path}

	liveObjs, err := src.Objects(ctx)
	if err != nil {
		t.Fatal(err)
	}
	expObjs, err := exp.Objects(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(liveObjs, expObjs) {
		t.Fatalf("objects differ:\nlive %+v\nAPOC %+v", liveObjs, expObjs)
	}

	live := migratetest.Records(t, src, "")
	apoc := migratetest.Records(t, exp, "")
	if len(live) != c.Nodes+c.Relationships || len(apoc) != len(live) {
		t.Fatalf("%d live and %d APOC records, want %d", len(live), len(apoc), c.Nodes+c.Relationships)
	}
	byKey := map[string]migrate.Record{}
	for _, r := range apoc {
		byKey[r.Object+"\x00"+r.Key] = r
	}
	seenRel := false
	for i, r := range live {
		isRel := len(r.Refs) > 0 && r.Refs[0].FromKey != ""
		if seenRel && !isRel {
			t.Fatalf("record %d (%s %s) is a node after a relationship", i, r.Object, r.Key)
		}
		seenRel = seenRel || isRel
		a, ok := byKey[r.Object+"\x00"+r.Key]
		if !ok {
			t.Fatalf("live record %s %s is not in the export", r.Object, r.Key)
		}
		delete(byKey, r.Object+"\x00"+r.Key)
		if !reflect.DeepEqual(r.Tags, a.Tags) || !reflect.DeepEqual(r.Refs, a.Refs) || !reflect.DeepEqual(comparable(r.Fields), a.Fields) {
			t.Fatalf("%s %s differs:\nlive tags %v refs %+v fields %v\nAPOC tags %v refs %+v fields %v", r.Object, r.Key, r.Tags, r.Refs, r.Fields, a.Tags, a.Refs, a.Fields)
		}
		if r.Object == "User" {
			if _, ok := r.Fields["joined"].(time.Time); !ok {
				t.Fatalf("User %s joined is a %T, not a time", r.Key, r.Fields["joined"])
			}
		}
	}
	// 300 nodes at 37 a page: 9 pages, the last one empty.
	if got, want := srv.Runs(neo4j.NodePageQuery), (c.Nodes+36)/37+1; got != want {
		t.Errorf("%d node page queries, want %d", got, want)
	}

	m := migratetest.Compile(t, src, "", "neo4j")
	e := migratetest.OpenEngine(t, t.TempDir())
	sink := &migrate.EngineSink{E: e}
	migratetest.RunInterrupted(t, migrate.Options{Source: src, SourceName: "live", Mapping: m, Sink: sink, BatchSize: 50},
		333, int64(c.Nodes+c.Relationships))
	st, err := e.Space("neo4j")
	if err != nil {
		t.Fatal(err)
	}
	if st.Total() != int64(c.Nodes) || st.Associations != int64(c.Relationships) {
		t.Fatalf("%d memories and %d associations, want %d and %d", st.Total(), st.Associations, c.Nodes, c.Relationships)
	}
	if rep, err := migrate.Verify(ctx, src, m, sink, "live"); err != nil || !rep.OK {
		t.Fatalf("verify live: %+v %v", rep, err)
	}
	if rep, err := migrate.Verify(ctx, exp, migratetest.Compile(t, exp, "", "neo4j"), sink, "live"); err != nil || !rep.OK {
		t.Fatalf("verify against the APOC export: %+v %v", rep, err)
	}
	// The APOC export migrated into another data directory lands as the
	// same memories (content, tags, metadata) and associations.
	e2 := migratetest.OpenEngine(t, t.TempDir())
	if _, err := migrate.Run(ctx, migrate.Options{Source: exp, SourceName: "apoc", Mapping: migratetest.Compile(t, exp, "", "neo4j"), Sink: &migrate.EngineSink{E: e2}, MaxRejects: 0}); err != nil {
		t.Fatal(err)
	}
	if st2, err := e2.Space("neo4j"); err != nil || st2.Total() != st.Total() || st2.Associations != st.Associations {
		t.Fatalf("APOC: %+v %v, live: %d memories and %d associations", st2, err, st.Total(), st.Associations)
	}
	memories := func(e *core.Engine) map[string]string {
		out := map[string]string{}
		err := e.ScanMemories(ctx, "neo4j", false, func(m core.Memory) error {
			out[m.ID] = fmt.Sprintf("%q %v %v", m.Content, m.Tags, m.Metadata)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if lm, am := memories(e), memories(e2); !reflect.DeepEqual(lm, am) {
		for id, l := range lm {
			if am[id] != l {
				t.Fatalf("%s: live %s\nAPOC %s", id, l, am[id])
			}
		}
		t.Fatalf("live %d memories, APOC %d", len(lm), len(am))
	}
	mem, err := e.Get(ctx, "neo4j", "User:0", false)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(mem.Content, "joined: 2024-01-01T10:00:00Z") || mem.Metadata["joined"] != "2024-01-01T10:00:00Z" {
		t.Errorf("User:0 content %q metadata %v", mem.Content, mem.Metadata)
	}
}

// Every property type the driver hands over becomes its documented record
// value.
func TestBoltValues(t *testing.T) {
	berlin := time.FixedZone("", 3600)
	g := &bolttest.Graph{Nodes: []bolttest.Node{{ID: 7, Labels: []string{"Thing", "Extra"}, Props: map[string]any{
		"int": int64(-300000), "float": 2.5, "str": "ä", "yes": true, "null": nil, "bytes": []byte{1, 2, 3},
		"list":  []any{int64(1), "two", []any{3.5}},
		"map":   map[string]any{"a": map[string]any{"b": int64(1)}},
		"dt":    time.Date(2024, 3, 1, 10, 30, 0, 500, berlin),
		"date":  dbtype.Date(time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)),
		"ldt":   dbtype.LocalDateTime(time.Date(2024, 2, 29, 23, 59, 58, 0, time.UTC)),
		"lt":    dbtype.LocalTime(time.Date(0, 1, 1, 8, 5, 0, 1000, time.UTC)),
		"time":  dbtype.Time(time.Date(0, 1, 1, 8, 5, 0, 0, time.FixedZone("", -7200))),
		"dur":   dbtype.Duration{Months: 14, Days: 3, Seconds: 3661, Nanos: 500000000},
		"zero":  dbtype.Duration{},
		"neg":   dbtype.Duration{Seconds: -62, Nanos: 500000000},
		"cart":  dbtype.Point2D{X: 1, Y: 2, SpatialRefId: 7203},
		"geo3d": dbtype.Point3D{X: 12.5, Y: 55.7, Z: 10, SpatialRefId: 4979},
	}}, {ID: 8}}}
	g.Rels = []bolttest.Rel{{ID: 0, Type: "LINKS", Start: 7, End: 8, Props: map[string]any{"w": 0.5}}}
	srv := bolttest.Start(t, g, "neo4j", "secret")
	recs := migratetest.Records(t, boltSource(t, srv, 1000), "")
	if len(recs) != 3 {
		t.Fatalf("%d records", len(recs))
	}
	want := map[string]any{
		"int": int64(-300000), "float": 2.5, "str": "ä", "yes": true, "null": nil, "bytes": "AQID",
		"list": []any{int64(1), "two", []any{3.5}},
		"map":  map[string]any{"a": map[string]any{"b": int64(1)}},
		"date": "2024-02-29", "ldt": "2024-02-29T23:59:58", "lt": "08:05:00.000001", "time": "08:05:00-02:00",
		"dur": "P1Y2M3DT1H1M1.5S", "zero": "PT0S", "neg": "PT-1M-1.5S",
		"cart":  map[string]any{"crs": "cartesian", "x": 1.0, "y": 2.0},
		"geo3d": map[string]any{"crs": "wgs-84-3d", "longitude": 12.5, "latitude": 55.7, "height": 10.0},
	}
	got := recs[0].Fields
	dt, ok := got["dt"].(time.Time)
	if !ok || dt.Format(time.RFC3339Nano) != "2024-03-01T10:30:00.0000005+01:00" {
		t.Errorf("dt = %#v", got["dt"])
	}
	delete(got, "dt")
	if !reflect.DeepEqual(got, want) {
		t.Errorf("fields\n got %#v\nwant %#v", got, want)
	}
	if r := recs[0]; r.Object != "Thing" || r.Key != "7" || !reflect.DeepEqual(r.Tags, []string{"Thing", "Extra"}) {
		t.Errorf("node %+v", r)
	}
	if r := recs[1]; r.Object != neo4j.Unlabelled || r.Key != "8" || r.Tags != nil {
		t.Errorf("unlabelled node %+v", r)
	}
	wantRef := []migrate.Reference{{Kind: "LINKS", FromObject: "Thing", FromKey: "7", ToObject: neo4j.Unlabelled, ToKey: "8"}}
	if r := recs[2]; r.Object != "LINKS" || r.Key != "0" || !reflect.DeepEqual(r.Refs, wantRef) || r.Fields["w"] != 0.5 {
		t.Errorf("relationship %+v", r)
	}
	// Each record's cursor resumes after it.
	for i, r := range recs {
		rest := migratetest.Records(t, boltSource(t, srv, 1), r.Cursor)
		if len(rest) != len(recs)-i-1 {
			t.Errorf("after %s: %d records, want %d", r.Position, len(rest), len(recs)-i-1)
		}
	}
}

// Wrong credentials, an unreachable server and a missing database are
// clear errors naming the user, the URI or the database.
func TestBoltErrors(t *testing.T) {
	ctx := context.Background()
	srv := bolttest.Start(t, &bolttest.Graph{}, "neo4j", "secret")
	for _, tc := range []struct {
		src  *neo4j.Bolt
		want string
	}{
		{&neo4j.Bolt{URI: srv.URI(), User: "neo4j", Password: "wrong"}, fmt.Sprintf("the Neo4j server at %s refused the credentials of user \"neo4j\"", srv.URI())},
		{&neo4j.Bolt{URI: "bolt://" + testsupport.FreeAddr(t), User: "neo4j", Password: "secret"}, "is unreachable"},
		{&neo4j.Bolt{URI: srv.URI(), User: "neo4j", Password: "secret", Database: "nope"}, fmt.Sprintf("the Neo4j server at %s has no database \"nope\"", srv.URI())},
		{&neo4j.Bolt{URI: "http://" + testsupport.FreeAddr(t), User: "neo4j", Password: "secret"}, "is not valid"},
	} {
		_, err := tc.src.Objects(ctx)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %s: %v, want %q", tc.src.URI, tc.src.Database, err, tc.want)
		}
		if _, err := tc.src.Open(ctx, ""); tc.src.Database == "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("open %s: %v, want %q", tc.src.URI, err, tc.want)
		}
		tc.src.Close()
	}
	if _, err := (&neo4j.Bolt{URI: srv.URI()}).Open(ctx, "neo1.!!"); err == nil || !strings.Contains(err.Error(), "not one this version wrote") {
		t.Errorf("bad cursor: %v", err)
	}
}
