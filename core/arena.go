package core

import (
	"sync"

	"github.com/engram-ops/engram-ops/core/vector"
)

// vecArena carves the vectors the index keeps out of shared slabs, so the
// collector marks a few large objects rather than one per memory, whose
// marking would grow with the index (docs/benchmarks.md, "Collector
// load"). The cost is that a slab is freed only
// when none of its vectors is referenced any more, so forgetting memories
// frees their vectors' memory slab by slab rather than one by one.
type vecArena struct {
	mu   sync.Mutex
	free []float32
}

// slabFloats is a slab's size: 256 KiB, 85 vectors of 768 dimensions.
const slabFloats = 64 << 10

// normalized returns an L2-normalised copy of v (zero stays zero) carved
// from a slab; its capacity is its length, so an append cannot spill into a
// neighbour.
func (a *vecArena) normalized(v []float32) []float32 {
	return vector.NormalizeInPlace(a.copyOf(v))
}

// copyOf returns a copy of v carved from a slab.
func (a *vecArena) copyOf(v []float32) []float32 {
	out := a.carve(len(v))
	copy(out, v)
	return out
}

// carve returns n zeroed floats from a slab (their own allocation when n is
// large), with capacity n.
func (a *vecArena) carve(n int) []float32 {
	if n > slabFloats/8 {
		return make([]float32, n)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.free) < n {
		a.free = make([]float32, slabFloats)
	}
	out := a.free[:n:n]
	a.free = a.free[n:]
	return out
}

// scratchVecs recycles vectors needed only while a request runs: a write's
// normalised vector until its committed transaction copies it into a slab
// (carving earlier would strand slab space whenever a write failed after
// embedding, a cancelled request or a batch refused for a dangling
// association), and a recall's normalised cue.
var scratchVecs sync.Pool // *[]float32

// getScratchVec returns a recycled buffer of dim floats (contents
// undefined); give it back with scratchVecs.Put once nothing refers to it.
func getScratchVec(dim int) *[]float32 {
	if p, ok := scratchVecs.Get().(*[]float32); ok && cap(*p) >= dim {
		*p = (*p)[:dim]
		return p
	}
	v := make([]float32, dim)
	return &v
}
