package neo4j_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"testing"

	"github.com/engram-ops/engram-ops/migrate"
	"github.com/engram-ops/engram-ops/migrate/migratetest"
	"github.com/engram-ops/engram-ops/migrate/neo4j"
	"github.com/engram-ops/engram-ops/migrate/neo4j/neo4jtest"
)

// BenchmarkNeo4jExportMigrate migrates a generated export
// (ENGRAM_BENCH_APOC_NODES nodes and as many relationships, default 40,000)
// into a data directory as a bulk load, and, in the same run, reads the
// same file line by line with a plain JSON decode of each line: the
// reference the migration rates (the load, and the load with the index
// build) are compared with.
func BenchmarkNeo4jExportMigrate(b *testing.B) {
	n := 40_000
	if s := os.Getenv("ENGRAM_BENCH_APOC_NODES"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			b.Fatal(err)
		}
	}
	path, counts := neo4jtest.WriteFile(b, n)
	records := float64(counts.Nodes + counts.Relationships)
	src := &neo4j.Export{Path: path}
	var readRate float64
	b.Run("read+decode", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			f, err := os.Open(path)
			if err != nil {
				b.Fatal(err)
			}
			sc := bufio.NewScanner(f)
			sc.Buffer(make([]byte, 1<<20), 64<<20)
			n := 0
			for sc.Scan() {
				var v map[string]any
				if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
					b.Fatal(err)
				}
				n++
			}
			f.Close()
			if n != int(records) {
				b.Fatalf("%d lines", n)
			}
		}
		readRate = records * float64(b.N) / b.Elapsed().Seconds()
		b.ReportMetric(readRate, "records/s")
	})
	m := migratetest.Compile(b, src, "", "neo4j")
	migratetest.BenchmarkBulkLoad(b, src, m, records, readRate, "records", func(sum *migrate.Summary) error {
		if sum.Records != int64(records) {
			return fmt.Errorf("%d records", sum.Records)
		}
		return nil
	})
}
