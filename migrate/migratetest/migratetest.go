// Package migratetest holds what the tests of every migration source
// share: opening a scratch engine, compiling a mapping for a source, and
// reading a source to the end.
package migratetest

import (
	"context"
	"io"
	"testing"

	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/internal/testsupport"
	"github.com/engram-ops/engram-ops/migrate"
)

// OpenEngine opens an engine on dir with relaxed durability and no tier
// sweep, closed when the test ends.
func OpenEngine(tb testing.TB, dir string) *core.Engine {
	tb.Helper()
	return testsupport.OpenEngine(tb, dir, func(o *core.Options) {
		o.Durability = core.DurabilityRelaxed
		o.Tiers.SweepInterval = -1
	})
}

// Compile compiles mappingTOML ("" for the default mapping) for src's
// objects, with space as the default target space.
func Compile(tb testing.TB, src migrate.Source, mappingTOML, space string) *migrate.Mapping {
	tb.Helper()
	objs, err := src.Objects(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	var f *migrate.MappingFile
	if mappingTOML != "" {
		if f, err = migrate.ParseMappingFile([]byte(mappingTOML), "mapping.toml"); err != nil {
			tb.Fatal(err)
		}
	}
	m, err := migrate.Compile(f, objs, space)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// Records reads every record of src from cursor on.
func Records(tb testing.TB, src migrate.Source, cursor string) []migrate.Record {
	tb.Helper()
	it, err := src.Open(context.Background(), cursor)
	if err != nil {
		tb.Fatal(err)
	}
	defer it.Close()
	var out []migrate.Record
	for {
		rec, err := it.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, rec)
	}
}
