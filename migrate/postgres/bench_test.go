package postgres_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"testing"

	"github.com/engram-ops/engram-ops/migrate"
	"github.com/engram-ops/engram-ops/migrate/migratetest"
	"github.com/engram-ops/engram-ops/migrate/postgres"
	"github.com/engram-ops/engram-ops/migrate/postgres/pgtest"
)

// BenchmarkPostgresMigrate migrates a generated schema (ENGRAM_BENCH_PG_ROWS
// rows over three tables, default 100,000) into a data directory as a bulk
// load and, in the same run, reads the same tables with COPY (SELECT …) TO
// STDOUT: the reference the migration rates (the load, and the load with
// the index build) are compared with. "read" is the source alone (every
// record read and converted, nothing mapped or written), so the load's
// rate can be told apart from the source's.
func BenchmarkPostgresMigrate(b *testing.B) {
	ctx := context.Background()
	dsn := pgtest.DSN(b)
	n := 100_000
	if s := os.Getenv("ENGRAM_BENCH_PG_ROWS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			b.Fatal(err)
		}
	}
	schema, c := pgtest.Create(b, dsn, n)
	rows := float64(c.Rows())
	src := &postgres.Source{DSN: dsn, Schema: schema}
	var readRate float64
	b.Run("copy", func(b *testing.B) {
		conn := pgtest.Connect(b, dsn)
		for i := 0; i < b.N; i++ {
			for _, t := range []string{"users", "posts", "likes"} {
				if _, err := conn.PgConn().CopyTo(ctx, io.Discard, "COPY (SELECT * FROM "+schema+"."+t+") TO STDOUT"); err != nil {
					b.Fatal(err)
				}
			}
		}
		readRate = rows * float64(b.N) / b.Elapsed().Seconds()
		b.ReportMetric(readRate, "rows/s")
	})
	b.Run("read", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			it, err := src.Open(ctx, "")
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			for ; ; n++ {
				if _, err := it.Next(); err == io.EOF {
					break
				} else if err != nil {
					b.Fatal(err)
				}
			}
			it.Close()
			if n != c.Rows()+c.Answers {
				b.Fatalf("%d records, want %d", n, c.Rows()+c.Answers)
			}
		}
		rate := rows * float64(b.N) / b.Elapsed().Seconds()
		b.ReportMetric(rate, "rows/s")
		if readRate > 0 {
			b.ReportMetric(rate/readRate, "ratio-to-read")
		}
	})
	m := migratetest.Compile(b, src, "", "pgsql")
	migratetest.BenchmarkBulkLoad(b, src, m, rows, readRate, "rows", func(sum *migrate.Summary) error {
		if sum.Memories != int64(c.Rows()) {
			return fmt.Errorf("%d memories, want %d", sum.Memories, c.Rows())
		}
		return nil
	})
}
