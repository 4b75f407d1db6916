package vector

import (
	"math"
	"math/rand/v2"
)

// clusteredData returns n normalised vectors drawn around clusters random
// centres: centre + spread·N(0, 1/dim) per component, so spread is the noise
// norm relative to the unit centre. Text embeddings look like this far more
// than uniform noise does.
func clusteredData(seed uint64, n, dim, clusters int, spread float64) [][]float32 {
	rng := rand.New(rand.NewPCG(seed, 7))
	centres := make([][]float32, clusters)
	for i := range centres {
		centres[i] = gaussian(rng, dim, 1)
	}
	out := make([][]float32, n)
	sigma := spread / math.Sqrt(float64(dim))
	for i := range out {
		c := centres[rng.IntN(clusters)]
		v := make([]float32, dim)
		for j := range v {
			v[j] = c[j] + float32(rng.NormFloat64()*sigma)
		}
		out[i] = Normalize(v)
	}
	return out
}

// uniformData returns n vectors uniformly distributed on the unit sphere.
func uniformData(seed uint64, n, dim int) [][]float32 {
	rng := rand.New(rand.NewPCG(seed, 11))
	out := make([][]float32, n)
	for i := range out {
		out[i] = gaussian(rng, dim, 1)
	}
	return out
}

func gaussian(rng *rand.Rand, dim int, norm float64) []float32 {
	v := make([]float32, dim)
	for j := range v {
		v[j] = float32(rng.NormFloat64())
	}
	v = Normalize(v)
	for j := range v {
		v[j] *= float32(norm)
	}
	return v
}

// recallAt returns the fraction of the exact top-k that approx found.
func recallAt(exact, approx []Hit) float64 {
	if len(exact) == 0 {
		return 1
	}
	want := make(map[uint32]bool, len(exact))
	for _, h := range exact {
		want[h.ID] = true
	}
	found := 0
	for _, h := range approx {
		if want[h.ID] {
			found++
		}
	}
	return float64(found) / float64(len(exact))
}

func sequentialIDs(n int) []uint32 {
	ids := make([]uint32, n)
	for i := range ids {
		ids[i] = uint32(i)
	}
	return ids
}
