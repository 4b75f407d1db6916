package vector

import "golang.org/x/sys/cpu"

// hasAVX2 reports whether the CPU (and OS) can run the assembly kernels.
var hasAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// useAVX2 selects the assembly kernels, except under the race detector (see
// raceEnabled). It is fixed at start-up so every score in the process comes
// from the same kernel; tests switch it to exercise both.
var useAVX2 = hasAVX2 && !raceEnabled

// The float kernels keep three 8-lane accumulators per vector over 24-float
// blocks: dot4AVX2 holds 12 of the 16 YMM registers in them (four per vector
// would leave none for the query), and dotAVX2 must sum in exactly its
// order. Each vector's tail (8-float blocks, the fold to 4 lanes, one
// 4-float block, the fold to 1, single floats) is also shared instruction
// for instruction.

// dotAVX2 is Dot over the common length of a and b.
//
//go:noescape
func dotAVX2(a, b []float32) float32

// dot4AVX2 is dot4; a, b, c and d have len(q) components.
//
//go:noescape
func dot4AVX2(q, a, b, c, d []float32) (sa, sb, sc, sd float32)

// dotInt8AVX2 is dotInt8.
//
//go:noescape
func dotInt8AVX2(a, b []int8) int32

func dotKernel(a, b []float32) float32 {
	if useAVX2 {
		return dotAVX2(a, b)
	}
	return dotGeneric(a, b)
}

// dot4 returns the dot products of q with a, b, c and d, each of which has
// at least len(q) components; each is bit-identical to Dot's. It picks the
// kernel itself, which saves a call on the hottest path.
func dot4(q, a, b, c, d []float32) (float32, float32, float32, float32) {
	n := len(q)
	a, b, c, d = a[:n], b[:n], c[:n], d[:n] // bounds checks: the kernels read n of each
	if useAVX2 {
		return dot4AVX2(q, a, b, c, d)
	}
	return dot4Generic(q, a, b, c, d)
}

func dotInt8Kernel(a, b []int8) int32 {
	if useAVX2 {
		return dotInt8AVX2(a, b)
	}
	return dotInt8Generic(a, b)
}
