package server

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/engram-ops/engram-ops/core"
)

// TestExplanationMatchesSprintf: a result's relevance explanation reads as
// fmt.Sprintf wrote it before, for ordinary figures and odd ones alike.
func TestExplanationMatchesSprintf(t *testing.T) {
	odd := []float64{0, math.Copysign(0, -1), 0.005, 0.015, 0.125, 0.995, 1, -1, 1e-9, 12345.678, math.Inf(1), math.Inf(-1), math.NaN(), math.MaxFloat64}
	rng := rand.New(rand.NewPCG(7, 7))
	figure := func() float64 {
		if rng.IntN(4) == 0 {
			return odd[rng.IntN(len(odd))]
		}
		return rng.Float64()
	}
	for i := range 20000 {
		rc := core.Recalled{Similarity: figure(), Activation: figure(), Retrievability: figure(), Score: figure(), Direct: i%2 == 0}
		rc.Memory.Confidence = figure()
		for range rng.IntN(4) {
			rc.Path = append(rc.Path, "m")
		}
		var want string
		if rc.Direct {
			want = fmt.Sprintf("Direct match: similarity %.2f × confidence %.2f × retrievability %.2f = %.2f",
				rc.Similarity, rc.Memory.Confidence, rc.Retrievability, rc.Score)
		} else {
			want = fmt.Sprintf("Reached through %d association hop(s): activation %.2f × confidence %.2f × retrievability %.2f = %.2f",
				max(len(rc.Path)-1, 1), rc.Activation, rc.Memory.Confidence, rc.Retrievability, rc.Score)
		}
		if got := recalledOut(&rc, false, false).RelevanceExplanation; got != want {
			t.Fatalf("explanation %q, want %q", got, want)
		}
	}
}

func BenchmarkRecalledOut(b *testing.B) {
	rc := core.Recalled{Similarity: 0.8123, Activation: 1, Retrievability: 0.97, Score: 0.71, Direct: true}
	rc.Memory.Confidence = 0.9
	for b.Loop() {
		_ = recalledOut(&rc, false, false)
	}
}
