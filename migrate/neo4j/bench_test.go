package neo4j_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"testing"

	"github.com/engram-ops/engram-ops/migrate"
	"github.com/engram-ops/engram-ops/migrate/migratetest"
	"github.com/engram-ops/engram-ops/migrate/neo4j"
	"github.com/engram-ops/engram-ops/migrate/neo4j/neo4jtest"
)

// BenchmarkNeo4jExportMigrate migrates a generated export into a data
// directory and, in the same run, reads the same file line by line with a
// plain JSON decode of each line: the reference the migration rate is
// compared with (records/s of each, and their ratio).
func BenchmarkNeo4jExportMigrate(b *testing.B) {
	path, counts := neo4jtest.WriteFile(b, 40_000)
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
	b.Run("migrate", func(b *testing.B) {
		m := migratetest.Compile(b, src, "", "neo4j")
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			e := migratetest.OpenEngine(b, b.TempDir())
			b.StartTimer()
			sum, err := migrate.Run(context.Background(), migrate.Options{Source: src, SourceName: "bench", Mapping: m, Sink: &migrate.EngineSink{E: e}, MaxRejects: 0})
			if err != nil || sum.Records != int64(records) {
				b.Fatalf("%+v %v", sum, err)
			}
			b.StopTimer()
			e.Close()
			b.StartTimer()
		}
		rate := records * float64(b.N) / b.Elapsed().Seconds()
		b.ReportMetric(rate, "records/s")
		if readRate > 0 {
			b.ReportMetric(rate/readRate, "ratio-to-read")
		}
	})
}
