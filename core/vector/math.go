package vector

import (
	"math"
	"slices"
)

// Dot returns the dot product of a and b over their common length. For
// L2-normalised vectors it is the cosine similarity. On amd64 with AVX2 and
// FMA it runs an assembly kernel whose results can differ from the pure-Go
// one in the last bits; within a process a score is bit-identical whether
// computed by Dot or in a batch.
func Dot(a, b []float32) float32 {
	return dotKernel(a, b)
}

// dotGeneric is Dot in pure Go: the fallback without AVX2 and the reference
// in tests.
func dotGeneric(a, b []float32) float32 {
	// Pairs of products go into two accumulators, which hides the add
	// latency. Testing both lengths in the loop conditions lets the compiler
	// drop every bounds check. The summation order is exactly dot4Generic's,
	// so a score does not depend on whether it was computed alone or in a
	// batch.
	var s0, s1 float32
	for len(a) >= 16 && len(b) >= 16 {
		x := (*[16]float32)(a)
		y := (*[16]float32)(b)
		s0 += x[0]*y[0] + x[2]*y[2]
		s1 += x[1]*y[1] + x[3]*y[3]
		s0 += x[4]*y[4] + x[6]*y[6]
		s1 += x[5]*y[5] + x[7]*y[7]
		s0 += x[8]*y[8] + x[10]*y[10]
		s1 += x[9]*y[9] + x[11]*y[11]
		s0 += x[12]*y[12] + x[14]*y[14]
		s1 += x[13]*y[13] + x[15]*y[15]
		a, b = a[16:], b[16:]
	}
	for len(a) >= 4 && len(b) >= 4 {
		x := (*[4]float32)(a)
		y := (*[4]float32)(b)
		s0 += x[0]*y[0] + x[2]*y[2]
		s1 += x[1]*y[1] + x[3]*y[3]
		a, b = a[4:], b[4:]
	}
	for len(a) > 0 && len(b) > 0 {
		s0 += a[0] * b[0]
		a, b = a[1:], b[1:]
	}
	return s0 + s1
}

// Normalize returns a new L2-normalised copy of v. A zero vector stays zero.
func Normalize(v []float32) []float32 {
	return normalizeInto(make([]float32, len(v)), v)
}

// NormalizeInPlace is Normalize writing over v, for a vector nothing else
// holds; it returns v.
func NormalizeInPlace(v []float32) []float32 {
	return normalizeInto(v, v)
}

// normalizeInto writes v scaled to unit length (zero stays zero) into out,
// which has len(v) components and may be v itself.
func normalizeInto(out, v []float32) []float32 {
	var sum float64 // float64 so long vectors of small values keep precision
	for _, f := range v {
		sum += float64(f) * float64(f)
	}
	if sum == 0 {
		clear(out) // -0 components become +0, as in a fresh copy
		return out
	}
	inv := 1 / math.Sqrt(sum)
	for i, f := range v {
		out[i] = float32(float64(f) * inv)
	}
	return out
}

// Exact returns the k ids whose vectors score highest against q, best first,
// by scoring every id. vec may return nil for an id that has no vector; ids
// whose vector length differs from len(q) are skipped. Scores and tie order
// match Search, so the two can be merged.
func Exact(q []float32, ids []uint32, vec func(uint32) []float32, k int) []Hit {
	if k <= 0 || len(ids) == 0 {
		return nil
	}
	worst := make(minHeap, 0, min(k, len(ids)))
	offer := func(score float32, id uint32) {
		if len(worst) < k {
			worst.push(scored{score, id})
		} else if e := (scored{score, id}); better(e, worst[0]) {
			worst[0] = e
			worst.fix0()
		}
	}
	// Vectors are scored four at a time (see dotBatch), which keeps several
	// memory streams in flight when ids come in no particular order
	// (docs/benchmarks.md, "Vector kernels").
	var pendingIDs [4]uint32
	var pendingVecs [4][]float32
	pending := 0
	for _, id := range ids {
		v := vec(id)
		if len(v) != len(q) || len(v) == 0 {
			continue
		}
		pendingIDs[pending], pendingVecs[pending] = id, v
		if pending++; pending == 4 {
			a, b, c, d := dot4(q, pendingVecs[0], pendingVecs[1], pendingVecs[2], pendingVecs[3])
			offer(a, pendingIDs[0])
			offer(b, pendingIDs[1])
			offer(c, pendingIDs[2])
			offer(d, pendingIDs[3])
			pending = 0
		}
	}
	for i := range pending {
		offer(Dot(q, pendingVecs[i]), pendingIDs[i])
	}
	return worst.drainBestFirst(k)
}

// Quantize maps v to int8 with one symmetric scale: v[i] ≈ q[i]*scale. The
// largest finite magnitude maps to ±127; a zero vector gets scale 0.
func Quantize(v []float32) (q []int8, scale float32) {
	var maxAbs float32
	for _, f := range v {
		a := float32(math.Abs(float64(f)))
		if a > maxAbs && !math.IsInf(float64(a), 0) {
			maxAbs = a
		}
	}
	q = make([]int8, len(v))
	if maxAbs == 0 {
		return q, 0
	}
	scale = maxAbs / 127
	inv := 1 / float64(scale)
	for i, f := range v {
		r := math.Round(float64(f) * inv)
		switch {
		case r > 127:
			r = 127
		case r < -127:
			r = -127
		case r != r: // NaN
			r = 0
		}
		q[i] = int8(r)
	}
	return q, scale
}

// dotInt8 returns the dot product of two quantised vectors over their common
// length: for Quantize's outputs (qa, sa) and (qb, sb) the float dot product
// is about dotInt8(qa, qb)·sa·sb. The sum is exact up to 131071 components
// (|q| ≤ 128), far above MaxDim, and wraps beyond. On amd64 with AVX2 it
// runs in assembly with the same result. Unused so far: the cold tier
// (package core) scores a float32 query against int8 components.
func dotInt8(a, b []int8) int32 {
	return dotInt8Kernel(a, b)
}

// dotInt8Generic is dotInt8 in pure Go: the fallback and the reference in
// tests.
func dotInt8Generic(a, b []int8) int32 {
	n := min(len(a), len(b))
	a, b = a[:n], b[:n]
	var s int32
	for i := range a {
		s += int32(a[i]) * int32(b[i])
	}
	return s
}

// Dequantize reverses Quantize.
func Dequantize(q []int8, scale float32) []float32 {
	out := make([]float32, len(q))
	for i, b := range q {
		out[i] = float32(b) * scale
	}
	return out
}

// sortBestFirst orders hits by descending score, ties by ascending id so
// results are deterministic.
func sortBestFirst(s []scored) {
	slices.SortFunc(s, func(a, b scored) int {
		switch {
		case better(a, b):
			return -1
		case better(b, a):
			return 1
		}
		return 0
	})
}

// dotBatch sets out[i] = Dot(q, vecs[i]); every vector must have len(q)
// components (the index guarantees it). Graph search mostly waits for
// scattered vectors to arrive from DRAM; scoring four per pass keeps four
// memory streams in flight and loads each query element once for four
// products, which a graph search needs more than single or pairwise
// scoring. In cache the AVX2 dot4 is cheaper per vector than Dot, which
// waits on its sums' latency; the generic dot4 is dearer per vector than
// Dot (docs/benchmarks.md, "Vector kernels").
func dotBatch(q []float32, vecs [][]float32, out []float32) {
	out = out[:len(vecs)]
	i := 0
	for ; i+4 <= len(vecs); i += 4 {
		out[i], out[i+1], out[i+2], out[i+3] = dot4(q, vecs[i], vecs[i+1], vecs[i+2], vecs[i+3])
	}
	// A remainder of two or three still goes through dot4, repeating a
	// vector: the repeat costs cached arithmetic, the overlap saves a miss.
	switch len(vecs) - i {
	case 3:
		out[i], out[i+1], out[i+2], _ = dot4(q, vecs[i], vecs[i+1], vecs[i+2], vecs[i+2])
	case 2:
		out[i], out[i+1], _, _ = dot4(q, vecs[i], vecs[i+1], vecs[i], vecs[i+1])
	case 1:
		out[i] = Dot(q, vecs[i])
	}
}

// dot4Generic is dot4 (see dot_amd64.go) in pure Go: the fallback and the
// reference in tests.
func dot4Generic(q, a, b, c, d []float32) (float32, float32, float32, float32) {
	n := len(q)
	a, b, c, d = a[:n], b[:n], c[:n], d[:n]
	// Two accumulators per vector, in dotGeneric's order, so a batched score
	// is bit-identical to dotGeneric's.
	var a0, a1, b0, b1, c0, c1, d0, d1 float32
	i := 0
	for ; i+8 <= n; i += 8 {
		x := (*[8]float32)(q[i:])
		va := (*[8]float32)(a[i:])
		vb := (*[8]float32)(b[i:])
		vc := (*[8]float32)(c[i:])
		vd := (*[8]float32)(d[i:])
		a0 += x[0]*va[0] + x[2]*va[2]
		a1 += x[1]*va[1] + x[3]*va[3]
		b0 += x[0]*vb[0] + x[2]*vb[2]
		b1 += x[1]*vb[1] + x[3]*vb[3]
		c0 += x[0]*vc[0] + x[2]*vc[2]
		c1 += x[1]*vc[1] + x[3]*vc[3]
		d0 += x[0]*vd[0] + x[2]*vd[2]
		d1 += x[1]*vd[1] + x[3]*vd[3]
		a0 += x[4]*va[4] + x[6]*va[6]
		a1 += x[5]*va[5] + x[7]*va[7]
		b0 += x[4]*vb[4] + x[6]*vb[6]
		b1 += x[5]*vb[5] + x[7]*vb[7]
		c0 += x[4]*vc[4] + x[6]*vc[6]
		c1 += x[5]*vc[5] + x[7]*vc[7]
		d0 += x[4]*vd[4] + x[6]*vd[6]
		d1 += x[5]*vd[5] + x[7]*vd[7]
	}
	for ; i+4 <= n; i += 4 {
		x := (*[4]float32)(q[i:])
		va := (*[4]float32)(a[i:])
		vb := (*[4]float32)(b[i:])
		vc := (*[4]float32)(c[i:])
		vd := (*[4]float32)(d[i:])
		a0 += x[0]*va[0] + x[2]*va[2]
		a1 += x[1]*va[1] + x[3]*va[3]
		b0 += x[0]*vb[0] + x[2]*vb[2]
		b1 += x[1]*vb[1] + x[3]*vb[3]
		c0 += x[0]*vc[0] + x[2]*vc[2]
		c1 += x[1]*vc[1] + x[3]*vc[3]
		d0 += x[0]*vd[0] + x[2]*vd[2]
		d1 += x[1]*vd[1] + x[3]*vd[3]
	}
	for ; i < n; i++ {
		a0 += q[i] * a[i]
		b0 += q[i] * b[i]
		c0 += q[i] * c[i]
		d0 += q[i] * d[i]
	}
	return a0 + a1, b0 + b1, c0 + c1, d0 + d1
}
