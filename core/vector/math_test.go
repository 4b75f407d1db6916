package vector

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func naiveDot(a, b []float32) float64 {
	var s float64
	for i := range min(len(a), len(b)) {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

func randVec(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return v
}

// forEachKernel runs f once per Dot kernel this machine can run, so the
// generic code is tested on amd64 too.
func forEachKernel(t *testing.T, f func(t *testing.T)) {
	for _, k := range kernels() {
		t.Run(k.name, func(t *testing.T) {
			useKernel(t, k)
			f(t)
		})
	}
}

func TestDotMatchesNaive(t *testing.T) { forEachKernel(t, testDotMatchesNaive) }

func testDotMatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range append(sequentialInts(70), 768, 1000, 4096) {
		a, b := randVec(rng, n), randVec(rng, n)
		if got, want := float64(Dot(a, b)), naiveDot(a, b); math.Abs(got-want) > 1e-4*math.Sqrt(float64(n)+1) {
			t.Fatalf("n=%d: Dot=%v want %v", n, got, want)
		}
	}
	// Different lengths use the common prefix rather than panicking.
	a, b := randVec(rng, 37), randVec(rng, 20)
	if got, want := float64(Dot(a, b)), naiveDot(a, b); math.Abs(got-want) > 1e-4 {
		t.Fatalf("prefix: Dot=%v want %v", got, want)
	}
	if Dot(b, a) != Dot(a, b) || Dot(nil, a) != 0 {
		t.Fatal("Dot must be symmetric and zero for an empty operand")
	}
}

func sequentialInts(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

func TestDotBatchMatchesDot(t *testing.T) { forEachKernel(t, testDotBatchMatchesDot) }

func testDotBatchMatchesDot(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, dim := range []int{1, 3, 4, 5, 7, 8, 9, 17, 23, 24, 31, 32, 33, 47, 48, 52, 768, 1000} {
		q := randVec(rng, dim)
		for count := range 10 {
			vecs := make([][]float32, count)
			for i := range vecs {
				vecs[i] = randVec(rng, dim)
			}
			out := make([]float32, count)
			dotBatch(q, vecs, out)
			for i, v := range vecs {
				if out[i] != Dot(q, v) { // bit-identical, so batching never reorders hits
					t.Fatalf("dim=%d count=%d i=%d: %v want %v", dim, count, i, out[i], Dot(q, v))
				}
			}
		}
	}
}

func TestNormalize(t *testing.T) {
	in := []float32{3, 4}
	out := Normalize(in)
	if in[0] != 3 || in[1] != 4 {
		t.Fatal("Normalize modified its input")
	}
	if math.Abs(float64(out[0])-0.6) > 1e-7 || math.Abs(float64(out[1])-0.8) > 1e-7 {
		t.Fatalf("Normalize = %v", out)
	}
	zero := Normalize(make([]float32, 5))
	if len(zero) != 5 || slices.ContainsFunc(zero, func(f float32) bool { return f != 0 }) {
		t.Fatalf("zero vector became %v", zero)
	}
	v := Normalize(randVec(rand.New(rand.NewPCG(5, 6)), 768))
	if n := naiveDot(v, v); math.Abs(n-1) > 1e-5 {
		t.Fatalf("norm² = %v", n)
	}
}

func TestQuantizeRoundTrip(t *testing.T) {
	v := Normalize(randVec(rand.New(rand.NewPCG(7, 8)), 768))
	q, scale := Quantize(v)
	back := Dequantize(q, scale)
	var maxAbs float32
	for _, f := range v {
		maxAbs = max(maxAbs, float32(math.Abs(float64(f))))
	}
	if math.Abs(float64(scale*127-maxAbs)) > 1e-6 {
		t.Fatalf("scale %v does not map max %v to 127", scale, maxAbs)
	}
	for i := range v {
		if math.Abs(float64(back[i]-v[i])) > float64(scale)/2+1e-7 {
			t.Fatalf("component %d: %v → %v (scale %v)", i, v[i], back[i], scale)
		}
	}
	if d := naiveDot(v, back); d < 0.999 {
		t.Fatalf("cosine after round trip %v", d)
	}
	q, scale = Quantize([]float32{0, 0, 0})
	if scale != 0 || slices.ContainsFunc(q, func(b int8) bool { return b != 0 }) {
		t.Fatalf("zero vector quantised to %v × %v", q, scale)
	}
	q, scale = Quantize([]float32{1, float32(math.NaN()), float32(math.Inf(-1)), -0.5})
	if scale != 1.0/127 || q[0] != 127 || q[1] != 0 || q[2] != -127 || q[3] != -64 {
		t.Fatalf("non-finite handling: %v × %v", q, scale)
	}
}

func TestExact(t *testing.T) { forEachKernel(t, testExact) }

func testExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	vecs := make([][]float32, 200)
	for i := range vecs {
		vecs[i] = Normalize(randVec(rng, 16))
	}
	vecs[7] = nil                // no vector: skipped
	vecs[8] = make([]float32, 3) // wrong length: skipped
	q := Normalize(randVec(rng, 16))
	got := Exact(q, sequentialIDs(len(vecs)), func(id uint32) []float32 { return vecs[id] }, 10)

	var all []scored
	for i, v := range vecs {
		if len(v) == len(q) {
			all = append(all, scored{Dot(q, v), uint32(i)})
		}
	}
	sortBestFirst(all)
	if len(got) != 10 {
		t.Fatalf("got %d hits", len(got))
	}
	for i, h := range got {
		if h.ID != all[i].id || h.Score != all[i].score {
			t.Fatalf("rank %d: %+v want %+v", i, h, all[i])
		}
	}
	if n := len(Exact(q, sequentialIDs(len(vecs)), func(id uint32) []float32 { return vecs[id] }, 1000)); n != len(all) {
		t.Fatalf("k > candidates: %d hits, want %d", n, len(all))
	}
	if Exact(q, nil, nil, 5) != nil || Exact(q, []uint32{1}, func(uint32) []float32 { return q }, 0) != nil {
		t.Fatal("empty input or k=0 must return nil")
	}
}

func randInt8s(rng *rand.Rand, n int) []int8 {
	v := make([]int8, n)
	for i := range v {
		v[i] = int8(rng.IntN(256) - 128)
	}
	return v
}

func TestDotInt8(t *testing.T) { forEachKernel(t, testDotInt8) }

func testDotInt8(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	for _, n := range append(sequentialInts(70), 768, 1000, 4096) {
		a, b := randInt8s(rng, n), randInt8s(rng, n)
		var want int64
		for i := range a {
			want += int64(a[i]) * int64(b[i])
		}
		if got := dotInt8(a, b); int64(got) != want {
			t.Fatalf("n=%d: dotInt8=%d want %d", n, got, want)
		}
		if n > 3 && dotInt8(a, b[:n-3]) != dotInt8(a[:n-3], b) {
			t.Fatalf("n=%d: not over the common length", n)
		}
	}
	// Quantised vectors score like the floats they came from.
	x, y := Normalize(randVec(rng, 768)), Normalize(randVec(rng, 768))
	qx, sx := Quantize(x)
	qy, sy := Quantize(y)
	if got, want := float64(dotInt8(qx, qy))*float64(sx)*float64(sy), naiveDot(x, y); math.Abs(got-want) > 0.01 {
		t.Fatalf("quantised dot %v, float dot %v", got, want)
	}
}

func TestNormalizeInPlaceMatchesNormalize(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	cases := [][]float32{{0, float32(math.Copysign(0, -1)), 0}, {3, 4}, {1e-30, -1e-30}}
	for range 50 {
		cases = append(cases, randVec(rng, 1+rng.IntN(800)))
	}
	for _, v := range cases {
		want := Normalize(v)
		got := NormalizeInPlace(slices.Clone(v))
		for i := range want {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("len %d component %d: in place %v, copy %v", len(v), i, got[i], want[i])
			}
		}
	}
}
