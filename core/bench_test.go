package core_test

import (
	"math/rand"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/internal/cputime"
)

// BenchmarkRememberParallel: durable (sync) remembers of text from many
// goroutines; group commit shares fsyncs between them.
func BenchmarkRememberParallel(b *testing.B) {
	e, err := core.Open(b.TempDir(), core.Options{Tiers: core.TierOptions{SweepInterval: -1}})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	var n atomic.Int64
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		r := rand.New(rand.NewSource(n.Add(1)))
		for pb.Next() {
			if _, err := e.Remember(ctx, "default", core.RememberInput{Content: "note " + strconv.Itoa(r.Int()) + " about the harbour lighthouse and the winter storm"}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkRecallText10k: text recall over 10,000 memories (768 dimensions).
func BenchmarkRecallText10k(b *testing.B) {
	e, err := core.Open(b.TempDir(), core.Options{Durability: core.DurabilityRelaxed, Tiers: core.TierOptions{SweepInterval: -1}})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	fillText(b, e, 10_000, 10)
	if err := e.WaitIndexed(ctx); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := e.Recall(ctx, "default", core.RecallQuery{Text: vocabulary[i%len(vocabulary)] + " " + vocabulary[(i+3)%len(vocabulary)], NoReinforce: true}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReopenText100k: opening a data directory of 100,000 text
// memories whose vectors the built-in embedder derived (not stored, so
// recomputed on open) with the persisted index graph.
func BenchmarkReopenText100k(b *testing.B) {
	dir := b.TempDir()
	opts := core.Options{Durability: core.DurabilityRelaxed, Tiers: core.TierOptions{SweepInterval: -1}}
	e, err := core.Open(dir, opts)
	if err != nil {
		b.Fatal(err)
	}
	fillText(b, e, 100_000, 12)
	if err := e.WaitIndexed(ctx); err != nil {
		b.Fatal(err)
	}
	if err := e.Close(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		e, err := core.Open(dir, opts)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if st, _ := e.Space("default"); st.Total() != 100_000 || st.IndexPending != 0 {
			b.Fatalf("after open: %+v", st)
		}
		if err := e.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// BenchmarkIndexCatchUp: how long the background indexer takes to index
// 20,000 text memories written in batches while nothing else runs (a bulk
// load or a restore), reported as vectors indexed per second.
func BenchmarkIndexCatchUp(b *testing.B) {
	for range b.N {
		b.StopTimer()
		e, err := core.Open(b.TempDir(), core.Options{Durability: core.DurabilityRelaxed, Tiers: core.TierOptions{SweepInterval: -1}})
		if err != nil {
			b.Fatal(err)
		}
		const n = 20_000
		fillText(b, e, n, 12)
		b.StartTimer()
		start := time.Now()
		if err := e.WaitIndexed(ctx); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(n/time.Since(start).Seconds(), "indexed/s")
		b.StopTimer()
		e.Close()
		b.StartTimer()
	}
}

var vocabulary = []string{"river", "mountain", "ocean", "forest", "city", "engine", "signal", "memory", "protein", "galaxy", "harbor", "lantern"}

// fillText writes n text memories of the given number of random vocabulary words (and
// their index) to the default space, in batches of 1,000.
func fillText(b *testing.B, e *core.Engine, n, words int) {
	b.Helper()
	r := rand.New(rand.NewSource(1))
	var batch []core.RememberInput
	for i := 0; i < n; i++ {
		s := ""
		for j := 0; j < words; j++ {
			s += vocabulary[r.Intn(len(vocabulary))] + " "
		}
		batch = append(batch, core.RememberInput{Content: s + strconv.Itoa(i)})
		if len(batch) == 1000 {
			if _, err := e.Batch(ctx, "default", core.BatchInput{Memories: batch}); err != nil {
				b.Fatal(err)
			}
			batch = nil
		}
	}
}

// BenchmarkGCEngine100k times a full collection of a server-shaped heap:
// 100,000 memories of dimension 768 with client vectors, indexed, and (in
// "hot") all of them in the hot tier, as after a bulk load. Every object
// the engine keeps per memory is work for each collection a busy server
// runs; "cold-cache" (a hot tier too small to hold any) shows the hot
// tier's share.
func BenchmarkGCEngine100k(b *testing.B) {
	for _, c := range []struct {
		name string
		hot  int64
	}{{"hot", 0}, {"cold-cache", 1}} {
		b.Run(c.name, func(b *testing.B) {
			e, err := core.Open(b.TempDir(), core.Options{Durability: core.DurabilityRelaxed,
				Tiers: core.TierOptions{SweepInterval: -1, HotCapacityBytes: c.hot}})
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			if _, _, err := e.CreateSpace(ctx, core.SpaceConfig{Name: "vectors", Dimension: 768}); err != nil {
				b.Fatal(err)
			}
			r := rand.New(rand.NewSource(1))
			const n, dim = 100_000, 768
			for off := 0; off < n; off += 1000 {
				batch := make([]core.RememberInput, 0, 1000)
				for i := off; i < off+1000; i++ {
					v := make([]float32, dim)
					for j := range v {
						v[j] = float32(r.NormFloat64())
					}
					batch = append(batch, core.RememberInput{ID: "v" + strconv.Itoa(i), Content: "vector memory " + strconv.Itoa(i), Embedding: v})
				}
				if _, err := e.Batch(ctx, "vectors", core.BatchInput{Memories: batch}); err != nil {
					b.Fatal(err)
				}
			}
			if err := e.WaitIndexed(ctx); err != nil {
				b.Fatal(err)
			}
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			start := cputime.Process().Total()
			b.ResetTimer()
			for b.Loop() {
				runtime.GC()
			}
			b.StopTimer()
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64((cputime.Process().Total()-start).Microseconds())/float64(b.N), "cpu-µs/op")
			b.ReportMetric(float64(after.HeapObjects), "heap-objects")
			b.ReportMetric(float64(after.HeapAlloc)/(1<<20), "heap-MiB")
		})
	}
}
