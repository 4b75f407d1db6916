package vector

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/engram-ops/engram-ops/internal/cputime"
)

// The 100k benchmarks share one index per data shape, built once per test
// process by two writer goroutines (Add is safe for distinct ids).
const (
	benchN       = 100_000
	benchDim     = 768
	benchQueries = 200
	benchReserve = 20_000 // extra vectors BenchmarkInsert adds
	benchK       = 10
)

type benchSet struct {
	base, queries, extra [][]float32
	index                *Index
	truth                [][]Hit // exact top-k per query
	nextExtra            int     // BenchmarkInsert's position in extra
	buildCPU             time.Duration
}

var (
	clusteredOnce, uniformOnce sync.Once
	clusteredSet, uniformSet   *benchSet
)

func clusteredBench(b *testing.B) *benchSet {
	clusteredOnce.Do(func() {
		data := clusteredData(100, benchN+benchQueries+benchReserve, benchDim, 100, 1)
		clusteredSet = buildBenchSet(b, "clustered", data)
	})
	return clusteredSet
}

func uniformBench(b *testing.B) *benchSet {
	uniformOnce.Do(func() {
		data := uniformData(200, benchN+benchQueries+benchReserve, benchDim)
		uniformSet = buildBenchSet(b, "uniform", data)
	})
	return uniformSet
}

func percentile(d []time.Duration, p int) float64 {
	slices.Sort(d)
	return float64(d[(len(d)-1)*p/100].Microseconds())
}

func buildBenchSet(b *testing.B, name string, data [][]float32) *benchSet {
	s := &benchSet{
		base:    data[:benchN],
		queries: data[benchN : benchN+benchQueries],
		extra:   data[benchN+benchQueries:],
		index:   New(benchDim, Config{}),
	}
	const writers = 2
	start, cpuStart := time.Now(), cputime.Process().Total()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := w; i < benchN; i += writers {
				if err := s.index.Add(uint32(i), s.base[i]); err != nil {
					panic(err)
				}
			}
		})
	}
	wg.Wait()
	wall, cpu := time.Since(start), cputime.Process().Total()-cpuStart
	s.buildCPU = cpu
	b.Logf("built %s %d×%d with %d writers in %v (%.0f inserts/s wall, %.0f µs CPU per insert)",
		name, benchN, benchDim, writers, wall.Round(time.Millisecond), benchN/wall.Seconds(), float64(cpu.Microseconds())/benchN)

	ids := sequentialIDs(benchN)
	vec := func(id uint32) []float32 { return s.base[id] }
	s.truth = make([][]Hit, benchQueries)
	var next atomic.Int64
	for range writers {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < benchQueries; i = int(next.Add(1) - 1) {
				s.truth[i] = Exact(s.queries[i], ids, vec, benchK)
			}
		})
	}
	wg.Wait()
	return s
}

// searchBench runs one query per iteration and reports recall@10 against
// exact search, wall-clock latency percentiles and CPU-time percentiles.
func searchBench(b *testing.B, s *benchSet, ef int) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var recall float64
	wall := make([]time.Duration, 0, 1024)
	cpu := make([]time.Duration, 0, 1024)
	i := 0
	b.ResetTimer()
	for b.Loop() {
		q := i % benchQueries
		start, startCPU := time.Now(), cputime.Thread()
		hits := s.index.Search(s.queries[q], benchK, ef, nil)
		cpu = append(cpu, cputime.Thread()-startCPU)
		wall = append(wall, time.Since(start))
		recall += recallAt(s.truth[q], hits)
		i++
	}
	b.ReportMetric(recall/float64(i), "recall@10")
	b.ReportMetric(percentile(wall, 50), "p50-µs")
	b.ReportMetric(percentile(wall, 99), "p99-µs")
	b.ReportMetric(percentile(cpu, 50), "cpu-p50-µs")
	b.ReportMetric(percentile(cpu, 99), "cpu-p99-µs")
}

// BenchmarkSearch100k: clustered data, default EfSearch.
func BenchmarkSearch100k(b *testing.B) {
	searchBench(b, clusteredBench(b), 0)
}

// BenchmarkSearch100kEf: clustered data, recall against ef.
func BenchmarkSearch100kEf(b *testing.B) {
	s := clusteredBench(b)
	for _, ef := range []int{16, 32, 64, 96, 128, 256} {
		b.Run(fmt.Sprintf("ef=%d", ef), func(b *testing.B) { searchBench(b, s, ef) })
	}
}

// BenchmarkSearch100kUniform: uniform random unit vectors, the hard case for
// any graph index (the 10th neighbour is barely closer than a random point),
// recall against ef. At the top of the range a search costs about as much as
// BenchmarkExact100k.
func BenchmarkSearch100kUniform(b *testing.B) {
	s := uniformBench(b)
	for _, ef := range []int{96, 400, 1600, 3200} {
		b.Run(fmt.Sprintf("ef=%d", ef), func(b *testing.B) { searchBench(b, s, ef) })
	}
}

// BenchmarkSearch100kParallel: searches from all procs at once.
func BenchmarkSearch100kParallel(b *testing.B) {
	s := clusteredBench(b)
	var next atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.index.Search(s.queries[next.Add(1)%benchQueries], benchK, 0, nil)
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "searches/s")
}

// BenchmarkExact100k: brute force over every vector, for comparison.
func BenchmarkExact100k(b *testing.B) {
	exactBench(b, clusteredBench(b))
}

func exactBench(b *testing.B, s *benchSet) {
	ids := sequentialIDs(benchN)
	vec := func(id uint32) []float32 { return s.base[id] }
	i := 0
	start := cputime.Process().Total()
	b.ResetTimer()
	for b.Loop() {
		Exact(s.queries[i%benchQueries], ids, vec, benchK)
		i++
	}
	b.ReportMetric(float64((cputime.Process().Total()-start).Microseconds())/float64(b.N), "cpu-µs/op")
}

// BenchmarkInsert: single-goroutine inserts into the 100k clustered index.
// The inserted ids are deleted afterwards, so later benchmarks see the same
// live set (plus tombstones, which do not change results).
func BenchmarkInsert(b *testing.B) {
	insertBench(b, clusteredBench(b))
}

func insertBench(b *testing.B, s *benchSet) {
	var added []uint32
	start := cputime.Process().Total()
	b.ResetTimer()
	for b.Loop() {
		j := s.nextExtra % len(s.extra)
		s.nextExtra++
		id := uint32(benchN + j)
		if err := s.index.Add(id, s.extra[j]); err != nil {
			b.Fatal(err)
		}
		added = append(added, id)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "inserts/s")
	b.ReportMetric(float64((cputime.Process().Total()-start).Microseconds())/float64(b.N), "cpu-µs/op")
	for _, id := range added {
		s.index.Delete(id)
	}
}

func benchVectors() ([]float32, []float32) {
	rng := rand.New(rand.NewPCG(1, 1))
	return Normalize(randVec(rng, benchDim)), Normalize(randVec(rng, benchDim))
}

var sinkScore float32

func BenchmarkDot768(b *testing.B) {
	x, y := benchVectors()
	for b.Loop() {
		sinkScore += Dot(x, y)
	}
}

// BenchmarkDotNaive768 is the plain loop Dot is measured against.
func BenchmarkDotNaive768(b *testing.B) {
	x, y := benchVectors()
	naive := func(a, b []float32) float32 {
		var s float32
		for i := range a {
			s += a[i] * b[i]
		}
		return s
	}
	for b.Loop() {
		sinkScore += naive(x, y)
	}
}

// BenchmarkDotBatch768 scores four vectors per op, as graph search does.
func BenchmarkDotBatch768(b *testing.B) {
	x, y := benchVectors()
	vecs := [][]float32{y, y, y, y}
	out := make([]float32, 4)
	for b.Loop() {
		dotBatch(x, vecs, out)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(4*b.N), "ns/vector")
}

// BenchmarkGCWithIndex100k times a full collection while the 100k index
// (and the benchmark's own copies of its vectors) is live: every object
// the index holds is work for each collection the server runs.
func BenchmarkGCWithIndex100k(b *testing.B) {
	s := clusteredBench(b)
	runtime.GC()
	start := cputime.Process().Total()
	b.ResetTimer()
	for b.Loop() {
		runtime.GC()
	}
	b.StopTimer()
	b.ReportMetric(float64((cputime.Process().Total()-start).Microseconds())/float64(b.N), "cpu-µs/op")
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.HeapObjects), "heap-objects")
	runtime.KeepAlive(s)
}
