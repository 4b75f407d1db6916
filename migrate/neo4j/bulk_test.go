package neo4j_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/internal/testsupport"
	"github.com/engram-ops/engram-ops/migrate"
	"github.com/engram-ops/engram-ops/migrate/migratetest"
	"github.com/engram-ops/engram-ops/migrate/neo4j"
	"github.com/engram-ops/engram-ops/migrate/neo4j/neo4jtest"
)

// A bulk load (large batches, index insertion deferred, the index built
// after the load) leaves a data directory that, opened by the engine,
// answers recall with the same results as one loaded record by record with
// the index built alongside; both are searched through their ANN index,
// which each saved complete.
func TestBulkLoadRecallsAsRecordByRecord(t *testing.T) {
	ctx := context.Background()
	path, counts := neo4jtest.WriteFile(t, 400)
	src := &neo4j.Export{Path: path}
	m := migratetest.Compile(t, src, "", "neo4j")

	bulkDir := t.TempDir()
	e := migratetest.OpenBulkEngine(t, bulkDir)
	sum, err := migrate.Run(ctx, migrate.Options{Source: src, SourceName: "test", Mapping: m, Sink: &migrate.EngineSink{E: e},
		BatchSize: migrate.BulkBatchSize, BatchBytes: migrate.BulkBatchBytes})
	if err != nil || sum.Memories != int64(counts.Nodes) || sum.Batches > 2 {
		t.Fatalf("bulk load: %+v %v", sum, err)
	}
	if st, err := e.Space("neo4j"); err != nil || st.IndexPending != counts.Nodes {
		t.Fatalf("after the load %d of %d memories wait for the index (%v); want all: insertion is deferred", st.IndexPending, counts.Nodes, err)
	}
	if n, err := e.BuildIndex(ctx); err != nil || n != counts.Nodes {
		t.Fatalf("BuildIndex inserted %d of %d: %v", n, counts.Nodes, err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	oneDir := t.TempDir()
	e = migratetest.OpenEngine(t, oneDir)
	if sum, err := migrate.Run(ctx, migrate.Options{Source: src, SourceName: "test", Mapping: m, Sink: &migrate.EngineSink{E: e}, BatchSize: 1}); err != nil || sum.Memories != int64(counts.Nodes) {
		t.Fatalf("record by record: %+v %v", sum, err)
	}
	if err := e.WaitIndexed(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	open := func(dir string) *core.Engine {
		e := testsupport.OpenEngine(t, dir, func(o *core.Options) {
			o.Tiers.SweepInterval = -1
			o.Index.ExactThreshold = 10 // search the index, not an exact scan
		})
		if st, err := e.Space("neo4j"); err != nil || st.IndexPending != 0 || st.Total() != int64(counts.Nodes) {
			t.Fatalf("%s reopened: %d memories, %d not in the saved index (%v)", dir, st.Total(), st.IndexPending, err)
		}
		return e
	}
	bulk, one := open(bulkDir), open(oneDir)
	type hit struct {
		id  string
		sim float64
	}
	// Direct matches in rank order with their similarity; those reached
	// by spreading as a set with their activation (equal activations
	// rank in no defined order).
	hits := func(rs []core.Recalled, spread bool) []hit {
		out := make([]hit, len(rs))
		for i, r := range rs {
			out[i] = hit{r.Memory.ID, r.Similarity}
			if spread {
				out[i].sim = r.Activation
			}
		}
		if spread {
			slices.SortFunc(out, func(a, b hit) int { return strings.Compare(a.id, b.id) })
		}
		return out
	}
	for _, q := range []string{"post17 about gardening", "user 42", "topic 7", "words of post99", "city 3", "post 3"} {
		rq := core.RecallQuery{Text: q, MaxResults: 10, NoReinforce: true}
		a, err := bulk.Recall(ctx, "neo4j", rq)
		if err != nil {
			t.Fatal(err)
		}
		b, err := one.Recall(ctx, "neo4j", rq)
		if err != nil {
			t.Fatal(err)
		}
		if len(a.Vivid) == 0 || !slices.Equal(hits(a.Vivid, false), hits(b.Vivid, false)) || !slices.Equal(hits(a.Associated, true), hits(b.Associated, true)) {
			t.Errorf("recall %q: bulk-loaded %v + %v, record by record %v + %v", q, hits(a.Vivid, false), hits(a.Associated, true), hits(b.Vivid, false), hits(b.Associated, true))
		}
	}
}
