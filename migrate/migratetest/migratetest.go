// Package migratetest holds what the tests of every migration source
// share: opening a scratch engine, compiling a mapping for a source, and
// reading a source to the end.
package migratetest

import (
	"context"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
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

// OpenBulkEngine opens an engine on dir as `migrate --data-dir` does: sync
// durability, no tier sweep, index insertion deferred to BuildIndex.
func OpenBulkEngine(tb testing.TB, dir string) *core.Engine {
	tb.Helper()
	return testsupport.OpenEngine(tb, dir, func(o *core.Options) {
		o.Durability = core.DurabilitySync
		o.Tiers.SweepInterval = -1
		o.Index.Defer = true
	})
}

// BenchmarkBulkLoad migrates src into a fresh data directory per iteration
// as `migrate --data-dir` does, in two sub-benchmarks: "load" (records
// durable per second) and "load+index" (with the ANN index built after
// the load, as the command does before it exits). Each reports unit/s for
// records records a run and, when readRate > 0, its ratio to readRate, the
// raw read of the same source in the same run, the process's CPU time a
// record and its peak resident memory during it (Linux). check validates
// a run's summary.
func BenchmarkBulkLoad(b *testing.B, src migrate.Source, m *migrate.Mapping, records, readRate float64, unit string, check func(*migrate.Summary) error) {
	for _, index := range []bool{false, true} {
		name := "load"
		if index {
			name = "load+index"
		}
		b.Run(name, func(b *testing.B) {
			resetPeakRSS()
			var cpu float64
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				e := OpenBulkEngine(b, b.TempDir())
				b.StartTimer()
				cpu0 := cpuSeconds()
				sum, err := migrate.Run(context.Background(), migrate.Options{Source: src, SourceName: "bench", Mapping: m,
					Sink: &migrate.EngineSink{E: e}, BatchSize: migrate.BulkBatchSize, BatchBytes: migrate.BulkBatchBytes})
				if err == nil {
					err = check(sum)
				}
				if err != nil {
					b.Fatalf("%+v: %v", sum, err)
				}
				if index {
					if _, err := e.BuildIndex(context.Background()); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				cpu += cpuSeconds() - cpu0
				if err := e.Close(); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			rate := records * float64(b.N) / b.Elapsed().Seconds()
			b.ReportMetric(rate, unit+"/s")
			if readRate > 0 {
				b.ReportMetric(rate/readRate, "ratio-to-read")
			}
			if cpu > 0 {
				b.ReportMetric(cpu*1e6/(records*float64(b.N)), "cpu-us/"+strings.TrimSuffix(unit, "s"))
			}
			if kb := peakRSSKiB(); kb > 0 {
				b.ReportMetric(float64(kb)/1024, "peak-RSS-MiB")
			}
		})
	}
}

// cpuSeconds is the CPU time (user and system) the process has used, 0
// where /proc does not tell. The contention of a shared machine moves the
// rates; it moves the CPU a run costs much less.
func cpuSeconds() float64 {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces): utime and
	// stime are the 12th and 13th, in clock ticks of 1/100 s.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return float64(u+s) / 100
}

// resetPeakRSS returns the heap to the OS and restarts the kernel's
// high-water mark of the process's resident memory (Linux; nothing
// elsewhere), so peakRSSKiB measures what follows.
func resetPeakRSS() {
	debug.FreeOSMemory()
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// peakRSSKiB is the process's peak resident memory since resetPeakRSS
// (VmHWM), 0 where /proc does not tell.
func peakRSSKiB() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
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

// RunInterrupted runs o twice into the same sink: stopped after limit
// records, then resumed to the end without rejects. It fails tb unless the
// two runs read want records between them.
func RunInterrupted(tb testing.TB, o migrate.Options, limit, want int64) {
	tb.Helper()
	ctx := context.Background()
	o.Limit = limit
	first, err := migrate.Run(ctx, o)
	if err != nil || first.Complete {
		tb.Fatalf("first run, stopped after %d records: %+v %v", limit, first, err)
	}
	o.Limit = 0
	second, err := migrate.Run(ctx, o)
	if err != nil || !second.Resumed || !second.Complete || second.Rejects != 0 {
		tb.Fatalf("resumed run: %+v %v", second, err)
	}
	if got := first.Records + second.Records; got != want {
		tb.Fatalf("%d+%d records over two runs, want %d", first.Records, second.Records, want)
	}
}
