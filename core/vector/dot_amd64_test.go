package vector

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/engram-ops/engram-ops/internal/cputime"
)

type kernel struct {
	name string
	avx2 bool
}

// kernels lists the kernel sets this machine can run.
func kernels() []kernel {
	ks := []kernel{{"generic", false}}
	if hasAVX2 {
		ks = append(ks, kernel{"asm", true})
	}
	return ks
}

// useKernel switches the package to k until tb ends. Tests in this package
// do not run in parallel, so flipping the variable is safe.
func useKernel(tb testing.TB, k kernel) {
	old := useAVX2
	useAVX2 = k.avx2
	tb.Cleanup(func() { useAVX2 = old })
}

func needAVX2(tb testing.TB) {
	if !hasAVX2 {
		tb.Skip("CPU lacks AVX2 or FMA")
	}
}

// dotTolerance bounds how far two float32 dot products of x and y over
// their common length may differ when only the summation order and the
// rounding of products differ: relative to Σ|x_i·y_i| (1e-4, more for
// lengths whose worst-case rounding bound exceeds it), plus room for
// products that underflow.
func dotTolerance(x, y []float32) float64 {
	n := min(len(x), len(y))
	rel := max(1e-4, float64(n/2+16)*0x1p-24)
	return rel*absDot(x, y) + float64(n+1)*0x1p-140
}

// absDot returns Σ|x_i·y_i| over the common length, in float64.
func absDot(x, y []float32) float64 {
	var s float64
	for i := range min(len(x), len(y)) {
		s += math.Abs(float64(x[i]) * float64(y[i]))
	}
	return s
}

func reversed(v []float32) []float32 {
	r := make([]float32, len(v))
	for i := range r {
		r[i] = v[len(v)-1-i]
	}
	return r
}

func sameBits(a, b float32) bool { return math.Float32bits(a) == math.Float32bits(b) }

var kernelLengths = []int{0, 1, 2, 3, 4, 5, 7, 8, 9, 12, 15, 16, 17, 20, 23, 24, 25, 28, 31, 32, 33, 39, 40, 47, 48, 49, 55, 56, 63, 64, 65, 100, 383, 384, 767, 768, 769, 1000, 1024, 1536, 4096}

// checkKernels compares the assembly kernels with the generic ones on a, b
// (equal lengths) and with each other bit for bit.
func checkKernels(t *testing.T, a, b []float32) {
	t.Helper()
	n := len(a)
	got, want := dotAVX2(a, b), dotGeneric(a, b)
	if d := math.Abs(float64(got) - float64(want)); !(d <= dotTolerance(a, b)) {
		t.Fatalf("n=%d: dotAVX2=%v dotGeneric=%v (diff %g, tolerance %g)", n, got, want, d, dotTolerance(a, b))
	}
	if !sameBits(dotAVX2(b, a), got) {
		t.Fatalf("n=%d: dotAVX2 not symmetric", n)
	}
	// Four different vectors so a mix-up between accumulators shows.
	vs := [4][]float32{b, reversed(b), a, make([]float32, n)}
	copy(vs[3], b)
	for i := 0; i < n; i += 3 {
		vs[3][i] = -vs[3][i]
	}
	var out [4]float32
	out[0], out[1], out[2], out[3] = dot4AVX2(a, vs[0], vs[1], vs[2], vs[3])
	var gen [4]float32
	gen[0], gen[1], gen[2], gen[3] = dot4Generic(a, vs[0], vs[1], vs[2], vs[3])
	for i, v := range vs {
		if single := dotAVX2(a, v); !sameBits(out[i], single) {
			t.Fatalf("n=%d vector %d: dot4AVX2=%v dotAVX2=%v, want bit-identical", n, i, out[i], single)
		}
		if single := dotGeneric(a, v); !sameBits(gen[i], single) {
			t.Fatalf("n=%d vector %d: dot4Generic=%v dotGeneric=%v, want bit-identical", n, i, gen[i], single)
		}
		if d := math.Abs(float64(out[i]) - float64(gen[i])); !(d <= dotTolerance(a, v)) {
			t.Fatalf("n=%d vector %d: dot4AVX2=%v dot4Generic=%v", n, i, out[i], gen[i])
		}
	}
}

func TestDotKernelsAgree(t *testing.T) {
	needAVX2(t)
	rng := rand.New(rand.NewPCG(11, 12))
	lengths := append([]int(nil), kernelLengths...)
	for range 200 {
		lengths = append(lengths, rng.IntN(4097))
	}
	for _, n := range lengths {
		checkKernels(t, randVec(rng, n), randVec(rng, n))
	}
}

func TestDotUnequalLengths(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	forEachKernel(t, func(t *testing.T) {
		for _, n := range kernelLengths {
			a := randVec(rng, n)
			long := append(randVec(rng, n), randVec(rng, 1+rng.IntN(40))...)
			want := Dot(a, long[:n])
			if got := Dot(a, long); !sameBits(got, want) {
				t.Fatalf("n=%d: Dot(a, longer)=%v want %v", n, got, want)
			}
			if got := Dot(long, a); !sameBits(got, want) {
				t.Fatalf("n=%d: Dot(longer, a)=%v want %v", n, got, want)
			}
			// dot4 accepts longer vectors and reads only len(q) of them.
			x, y, z, w := dot4(a, long, long, long, long)
			if !sameBits(x, want) || !sameBits(y, want) || !sameBits(z, want) || !sameBits(w, want) {
				t.Fatalf("n=%d: dot4 over longer vectors = %v %v %v %v, want %v", n, x, y, z, w, want)
			}
		}
	})
}

func TestDot4PanicsOnShortVector(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		q := make([]float32, 9)
		short := make([]float32, 8)
		defer func() {
			if recover() == nil {
				t.Fatal("dot4 with a short vector did not panic")
			}
		}()
		dot4(q, q, q, short, q)
	})
}

// FuzzDotKernels compares the assembly and generic kernels on arbitrary
// finite inputs: the first half of the floats is one vector, the second
// half the other; cut shortens the second for the common-length rule.
func FuzzDotKernels(f *testing.F) {
	rng := rand.New(rand.NewPCG(15, 16))
	for _, n := range []int{0, 1, 3, 7, 8, 23, 24, 33, 100} {
		f.Add(floatBytes(randVec(rng, 2*n)), uint16(n/2))
	}
	f.Add(floatBytes([]float32{1e30, 1e-30, -1e30, 1e-45, 3, 1e30, 1e-30, 1e30, -2e-45, 5}), uint16(2))
	f.Fuzz(func(t *testing.T, data []byte, cut uint16) {
		needAVX2(t)
		var x []float32
		for ; len(data) >= 4; data = data[4:] {
			v := math.Float32frombits(binary.LittleEndian.Uint32(data))
			if !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0) {
				x = append(x, v)
			}
		}
		n := len(x) / 2
		a, b := x[:n], x[n:2*n]
		// checkKernels also scores a against reversed(b) and itself; skip
		// inputs where a float32 partial sum could overflow.
		if max(absDot(a, b), absDot(a, reversed(b)), absDot(a, a)) > 1e37 {
			return
		}
		checkKernels(t, a, b)
		short := b[:min(int(cut), n)]
		for _, k := range []struct {
			name string
			dot  func(a, b []float32) float32
		}{{"dotAVX2", dotAVX2}, {"dotGeneric", dotGeneric}} {
			want := k.dot(a[:len(short)], short)
			if got := k.dot(a, short); !sameBits(got, want) {
				t.Fatalf("%s over common length %d: %v want %v", k.name, len(short), got, want)
			}
			if got := k.dot(short, a); !sameBits(got, want) {
				t.Fatalf("%s(short, long) over common length %d: %v want %v", k.name, len(short), got, want)
			}
		}
	})
}

func TestDotInt8Kernels(t *testing.T) {
	needAVX2(t)
	rng := rand.New(rand.NewPCG(17, 18))
	lengths := append(sequentialInts(100), 127, 128, 129, 767, 768, 1536, 4096)
	for range 100 {
		lengths = append(lengths, rng.IntN(4097))
	}
	for _, n := range lengths {
		a, b := randInt8s(rng, n), randInt8s(rng, n+rng.IntN(3))
		if got, want := dotInt8AVX2(a, b), dotInt8Generic(a, b); got != want {
			t.Fatalf("n=%d: dotInt8AVX2=%d dotInt8Generic=%d", n, got, want)
		}
	}
	// Past 131071 components of -128 the sum wraps; both kernels alike.
	big := make([]int8, 140_000)
	for i := range big {
		big[i] = -128
	}
	if got, want := dotInt8AVX2(big, big), dotInt8Generic(big, big); got != want || got >= 0 {
		t.Fatalf("wrapping sum: dotInt8AVX2=%d dotInt8Generic=%d", got, want)
	}
}

// FuzzDotInt8 compares the int8 kernels: the first half of data is one
// vector, the second half the other, cut shortens the second.
func FuzzDotInt8(f *testing.F) {
	rng := rand.New(rand.NewPCG(19, 20))
	for _, n := range []int{0, 1, 7, 8, 15, 16, 31, 32, 33, 100} {
		f.Add(int8Bytes(randInt8s(rng, 2*n)), uint16(n))
	}
	f.Fuzz(func(t *testing.T, data []byte, cut uint16) {
		needAVX2(t)
		x := make([]int8, len(data))
		for i, c := range data {
			x[i] = int8(c)
		}
		n := len(x) / 2
		a, b := x[:n], x[n:]
		b = b[:min(int(cut), len(b))]
		if got, want := dotInt8AVX2(a, b), dotInt8Generic(a, b); got != want {
			t.Fatalf("len %d·%d: dotInt8AVX2=%d dotInt8Generic=%d", len(a), len(b), got, want)
		}
		if got, want := dotInt8AVX2(b, a), dotInt8Generic(a, b); got != want {
			t.Fatalf("len %d·%d swapped: dotInt8AVX2=%d want %d", len(b), len(a), got, want)
		}
	})
}

func int8Bytes(v []int8) []byte {
	out := make([]byte, len(v))
	for i, c := range v {
		out[i] = byte(c)
	}
	return out
}

func floatBytes(v []float32) []byte {
	out := make([]byte, 0, 4*len(v))
	for _, f := range v {
		out = binary.LittleEndian.AppendUint32(out, math.Float32bits(f))
	}
	return out
}

// BenchmarkDot runs both kernels side by side: asm/768, generic/768, ...
func BenchmarkDot(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, n := range []int{768, 1536} {
		x, y := Normalize(randVec(rng, n)), Normalize(randVec(rng, n))
		for _, k := range kernels() {
			b.Run(fmt.Sprintf("%s/%d", k.name, n), func(b *testing.B) {
				useKernel(b, k)
				defer reportCPU(b, 1)()
				for b.Loop() {
					sinkScore += Dot(x, y)
				}
			})
		}
	}
}

// BenchmarkDotBatch scores four different in-cache vectors per op.
func BenchmarkDotBatch(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, n := range []int{768, 1536} {
		q := Normalize(randVec(rng, n))
		vecs := make([][]float32, 4)
		for i := range vecs {
			vecs[i] = Normalize(randVec(rng, n))
		}
		out := make([]float32, 4)
		for _, k := range kernels() {
			b.Run(fmt.Sprintf("%s/%d", k.name, n), func(b *testing.B) {
				useKernel(b, k)
				defer reportCPU(b, 4)()
				for b.Loop() {
					dotBatch(q, vecs, out)
				}
			})
		}
	}
}

// reportCPU locks the goroutine to its thread and returns a func that
// reports the thread's CPU time per op and per vector (perOp vectors an op).
// On the shared build machine CPU time is steadier than wall time.
func reportCPU(b *testing.B, perOp int) func() {
	runtime.LockOSThread()
	start := cputime.Thread()
	return func() {
		cpu := float64((cputime.Thread() - start).Nanoseconds())
		runtime.UnlockOSThread()
		b.ReportMetric(cpu/float64(b.N), "cpu-ns/op")
		b.ReportMetric(cpu/float64(perOp*b.N), "cpu-ns/vector")
	}
}

// BenchmarkDotInt8 compares the int8 kernels at 768 components.
func BenchmarkDotInt8(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	x, y := randInt8s(rng, 768), randInt8s(rng, 768)
	var sink int32
	for _, k := range kernels() {
		b.Run(k.name+"/768", func(b *testing.B) {
			useKernel(b, k)
			defer reportCPU(b, 1)()
			for b.Loop() {
				sink += dotInt8(x, y)
			}
		})
	}
	sinkScore += float32(sink)
}

// BenchmarkSearch100kKernels runs BenchmarkSearch100k with each kernel over
// the same graph (built with the default kernel), so CPU per query and
// recall@10 compare side by side.
func BenchmarkSearch100kKernels(b *testing.B) {
	s := clusteredBench(b)
	for _, k := range kernels() {
		b.Run(k.name, func(b *testing.B) {
			useKernel(b, k)
			searchBench(b, s, 0)
		})
	}
}

// BenchmarkExact100kKernels runs BenchmarkExact100k with each kernel.
func BenchmarkExact100kKernels(b *testing.B) {
	s := clusteredBench(b)
	for _, k := range kernels() {
		b.Run(k.name, func(b *testing.B) {
			useKernel(b, k)
			exactBench(b, s)
		})
	}
}

// BenchmarkInsertKernels runs BenchmarkInsert with each kernel.
func BenchmarkInsertKernels(b *testing.B) {
	s := clusteredBench(b)
	for _, k := range kernels() {
		b.Run(k.name, func(b *testing.B) {
			useKernel(b, k)
			insertBench(b, s)
		})
	}
}
