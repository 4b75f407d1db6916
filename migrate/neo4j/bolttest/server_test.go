package bolttest_test

import (
	"context"
	"errors"
	"testing"

	driver "github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/engram-ops/engram-ops/migrate/neo4j"
	"github.com/engram-ops/engram-ops/migrate/neo4j/bolttest"
)

// The real driver's protocol paths against the server: results pulled in
// several batches (has_more), a result left unconsumed in a transaction
// that is rolled back, and a failed query after which the connection is
// reset and serves the next one.
func TestDriverProtocol(t *testing.T) {
	ctx := context.Background()
	g := &bolttest.Graph{}
	for i := int64(0); i < 25; i++ {
		g.Nodes = append(g.Nodes, bolttest.Node{ID: i, Labels: []string{"N"}, Props: map[string]any{"i": i}})
	}
	srv := bolttest.Start(t, g, "u", "p")
	d, err := driver.NewDriverWithContext(srv.URI(), driver.BasicAuth("u", "p", ""))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close(ctx)
	s := d.NewSession(ctx, driver.SessionConfig{AccessMode: driver.AccessModeRead, FetchSize: 4})
	defer s.Close(ctx)
	page := map[string]any{"after": "", "limit": int64(100)}

	rows, err := driver.ExecuteRead(ctx, s, func(tx driver.ManagedTransaction) ([]*driver.Record, error) {
		res, err := tx.Run(ctx, neo4j.NodePageQuery, page)
		if err != nil {
			return nil, err
		}
		return res.Collect(ctx)
	})
	if err != nil || len(rows) != 25 {
		t.Fatalf("%d rows in batches of 4: %v", len(rows), err)
	}
	// Element ids order as strings: 4:graph:10 comes before 4:graph:2.
	if n := rows[2].Values[0].(driver.Node); n.ElementId != bolttest.NodeElementID(10) {
		t.Fatalf("third node %s", n.ElementId)
	}

	tx, err := s.BeginTransaction(ctx)
	if err != nil {
		t.Fatal(err)
	}
	res, err := tx.Run(ctx, neo4j.NodePageQuery, page)
	if err != nil || !res.Next(ctx) {
		t.Fatalf("run: %v", err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatalf("rollback with an open result: %v", err)
	}

	_, err = driver.ExecuteRead(ctx, s, func(tx driver.ManagedTransaction) (any, error) {
		res, err := tx.Run(ctx, "MATCH (n) RETURN n", nil)
		if err != nil {
			return nil, err
		}
		return res.Collect(ctx)
	})
	var ne *driver.Neo4jError
	if !errors.As(err, &ne) || ne.Code != "Neo.ClientError.Statement.SyntaxError" {
		t.Fatalf("unknown query: %v", err)
	}
	rows, err = driver.ExecuteRead(ctx, s, func(tx driver.ManagedTransaction) ([]*driver.Record, error) {
		res, err := tx.Run(ctx, neo4j.NodePageQuery, map[string]any{"after": bolttest.NodeElementID(20), "limit": int64(3)})
		if err != nil {
			return nil, err
		}
		return res.Collect(ctx)
	})
	if err != nil || len(rows) != 3 || rows[0].Values[0].(driver.Node).ElementId != bolttest.NodeElementID(21) {
		t.Fatalf("after a failure: %d rows %v", len(rows), err)
	}
	if got := srv.Runs(neo4j.NodePageQuery); got != 3 {
		t.Fatalf("%d page queries run, want 3", got)
	}
	// 25 rows in batches of 4 take 7 PULLs; the rollback discarded the
	// open result; the failure was followed by a RESET.
	if srv.Messages("PULL") < 7+1+1 || srv.Messages("DISCARD") < 1 || srv.Messages("ROLLBACK") < 1 || srv.Messages("RESET") < 1 || srv.Messages("COMMIT") < 2 {
		t.Fatalf("PULL %d ROLLBACK %d RESET %d DISCARD %d", srv.Messages("PULL"), srv.Messages("ROLLBACK"), srv.Messages("RESET"), srv.Messages("DISCARD"))
	}
}
