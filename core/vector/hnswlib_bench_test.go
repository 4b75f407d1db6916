package vector

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/engram-ops/engram-ops/internal/cputime"
)

// BenchmarkVersusHNSWLib measures this index beside hnswlib (Debian's
// python3-hnswlib, C++ behind a Python binding) on the same vectors
// (100,000 × 768 clustered, plus 20,000 to insert and 200 queries) with
// the same parameters (M 16, ef_construction 128, ef 96): CPU per insert
// while two writers build the index, CPU per insert from one writer into
// the built index (the inserted vectors deleted after), and CPU per search
// (p50, one thread) with recall@10 against the exact top 10. Needs python3
// with hnswlib and numpy (scripts/bench.sh hnswlib installs Debian's);
// skipped without.
func BenchmarkVersusHNSWLib(b *testing.B) {
	// Debian's python3, which its python3-hnswlib package is built for,
	// unless ENGRAM_BENCH_PYTHON names another.
	python := os.Getenv("ENGRAM_BENCH_PYTHON")
	if python == "" {
		python = "/usr/bin/python3"
	}
	if err := exec.Command(python, "-c", "import hnswlib, numpy").Run(); err != nil {
		b.Skipf("%s with hnswlib and numpy is needed (apt-get install python3-hnswlib python3-numpy; scripts/bench.sh hnswlib does): %v", python, err)
	}
	s := clusteredBench(b)
	cfg := s.index.cfg
	dir := b.TempDir()
	writeF32 := func(name string, vs ...[][]float32) {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			b.Fatal(err)
		}
		buf := make([]byte, 4*benchDim)
		for _, set := range vs {
			for _, v := range set {
				for i, x := range v {
					binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(x))
				}
				if _, err := f.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
	}
	writeF32("vectors.f32", s.base, s.queries, s.extra)
	truth := make([]byte, 0, 4*benchQueries*benchK)
	for _, hs := range s.truth {
		for _, h := range hs {
			truth = binary.LittleEndian.AppendUint32(truth, h.ID)
		}
	}
	meta, _ := json.Marshal(map[string]int{"n": benchN, "queries": benchQueries, "extra": len(s.extra), "dim": benchDim,
		"k": benchK, "m": cfg.M, "ef_construction": cfg.EfConstruction, "ef_search": 96})
	if err := os.WriteFile(filepath.Join(dir, "truth.u32"), truth, 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "meta.json"), meta, 0o644); err != nil {
		b.Fatal(err)
	}

	// Ours: the build (two writers) happened in clusteredBench.
	build := float64(s.buildCPU.Microseconds()) / benchN
	start := cputime.Process().Total()
	for j, v := range s.extra {
		if err := s.index.Add(uint32(benchN+j), v); err != nil {
			b.Fatal(err)
		}
	}
	insert := float64((cputime.Process().Total() - start).Microseconds()) / float64(len(s.extra))
	for j := range s.extra {
		s.index.Delete(uint32(benchN + j))
	}
	runtime.LockOSThread()
	cpu := make([]time.Duration, 0, benchQueries)
	var recall float64
	for q := range benchQueries {
		t := cputime.Thread()
		hits := s.index.Search(s.queries[q], benchK, 96, nil)
		cpu = append(cpu, cputime.Thread()-t)
		recall += recallAt(s.truth[q], hits)
	}
	runtime.UnlockOSThread()
	search := percentile(cpu, 50)
	recall /= benchQueries

	script, err := filepath.Abs(filepath.Join("..", "..", "scripts", "hnswlib_bench.py"))
	if err != nil {
		b.Fatal(err)
	}
	out, err := exec.Command(python, script, dir).Output()
	if err != nil {
		b.Fatalf("hnswlib: %v\n%s", err, out)
	}
	var ref struct {
		Build  float64 `json:"build_cpu_us"`
		Insert float64 `json:"insert_cpu_us"`
		Search float64 `json:"search_cpu_p50_us"`
		Recall float64 `json:"recall_at_10"`
	}
	if err := json.Unmarshal(out, &ref); err != nil {
		b.Fatalf("hnswlib output: %v\n%s", err, out)
	}
	fmt.Fprintf(os.Stderr, "%-44s %10s %10s %6s\n", "100,000 × 768 clustered, M 16, ef_construction 128", "engram", "hnswlib", "ratio")
	fmt.Fprintf(os.Stderr, "%-44s %10.0f %10.0f %6.2f\n", "build, two writers: CPU µs per insert", build, ref.Build, build/ref.Build)
	fmt.Fprintf(os.Stderr, "%-44s %10.0f %10.0f %6.2f\n", "insert, one writer: CPU µs per insert", insert, ref.Insert, insert/ref.Insert)
	fmt.Fprintf(os.Stderr, "%-44s %10.0f %10.0f %6.2f\n", "search at ef 96: CPU µs p50", search, ref.Search, search/ref.Search)
	fmt.Fprintf(os.Stderr, "%-44s %10.4f %10.4f %6.3f\n", "recall@10", recall, ref.Recall, recall/ref.Recall)
	b.ReportMetric(build/ref.Build, "build-cpu-ratio")
	b.ReportMetric(insert/ref.Insert, "insert-cpu-ratio")
	b.ReportMetric(search/ref.Search, "search-cpu-ratio")
	b.ReportMetric(recall-ref.Recall, "recall-diff")
}
