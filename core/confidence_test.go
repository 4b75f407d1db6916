package core

import (
	"math/rand/v2"
	"sort"
	"testing"
)

// recallConfidence is the mean of the best three scores over both lists.
func TestRecallConfidenceIsMeanOfBestThree(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 500 {
		mk := func(n int) []Recalled {
			out := make([]Recalled, n)
			for i := range out {
				out[i].Score = float64(rng.IntN(20)) / 10 // ties happen
			}
			return out
		}
		vivid, assoc := mk(rng.IntN(6)), mk(rng.IntN(6))
		var all []float64
		for _, r := range append(append([]Recalled(nil), vivid...), assoc...) {
			all = append(all, r.Score)
		}
		sort.Sort(sort.Reverse(sort.Float64Slice(all)))
		want := 0.0
		if n := min(3, len(all)); n > 0 {
			for _, s := range all[:n] {
				want += s
			}
			want /= float64(n)
		}
		if got := recallConfidence(vivid, assoc); got != want {
			t.Fatalf("trial %d: %v + %v: got %v, want %v", trial, vivid, assoc, got, want)
		}
	}
}
