package core_test

import (
	"math/rand"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/engram-ops/engram-ops/core"
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
