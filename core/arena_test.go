package core

import (
	"context"
	"math"
	"testing"
	"unsafe"
)

func TestVecArenaCarvesNormalizedDisjointVectors(t *testing.T) {
	var a vecArena
	src := make([]float32, 768)
	var got [][]float32
	for i := range 200 { // more than two slabs
		for j := range src {
			src[j] = float32(i + j%7)
		}
		v := a.normalized(src)
		if len(v) != 768 || cap(v) != 768 {
			t.Fatalf("vector %d: len %d cap %d, want 768 both (an append must not spill into a neighbour)", i, len(v), cap(v))
		}
		var norm float64
		for _, f := range v {
			norm += float64(f) * float64(f)
		}
		if math.Abs(norm-1) > 1e-5 {
			t.Fatalf("vector %d: squared norm %v", i, norm)
		}
		got = append(got, v)
	}
	for i, v := range got { // later carving must not overwrite earlier vectors
		want := float32(i) / float32(i+6)
		if r := v[0] / v[6]; math.Abs(float64(r-want)) > 1e-5 {
			t.Fatalf("vector %d changed after later ones were carved: ratio %v, want %v", i, r, want)
		}
	}
	if unsafe.SliceData(got[0]) == unsafe.SliceData(got[1]) {
		t.Fatal("two vectors share memory")
	}
	big := a.normalized(make([]float32, slabFloats))
	if len(big) != slabFloats || cap(big) != slabFloats {
		t.Fatalf("a vector larger than a slab: len %d cap %d", len(big), cap(big))
	}
	zero := a.normalized(make([]float32, 4))
	for _, f := range zero {
		if f != 0 {
			t.Fatalf("a zero vector normalised to %v", zero)
		}
	}
}

// TestFailedWritesTakeNoSlabSpace: a write that fails after its vector was
// computed (a batch refused for a dangling association, a cancelled
// request) carves nothing from the slabs; only committed vectors do.
func TestFailedWritesTakeNoSlabSpace(t *testing.T) {
	e, err := Open(t.TempDir(), Options{DefaultDimension: 64, Tiers: TierOptions{SweepInterval: -1}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if _, err := e.Remember(t.Context(), "default", RememberInput{Content: "the first memory opens a slab"}); err != nil {
		t.Fatal(err)
	}
	free := func() int {
		e.vecs.mu.Lock()
		defer e.vecs.mu.Unlock()
		return len(e.vecs.free)
	}
	before := free()
	var mems []RememberInput
	for i := range 50 {
		mems = append(mems, RememberInput{Content: "batched memory " + string(rune('a'+i%26))})
	}
	_, err = e.Batch(t.Context(), "default", BatchInput{Memories: mems, Associations: []Association{{From: "nobody", To: "nothing", Weight: 0.5}}})
	if KindOf(err) != KindNotFound {
		t.Fatalf("batch with a dangling association: %v", err)
	}
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := e.Remember(cancelled, "default", RememberInput{Content: "never written"}); err == nil {
		t.Fatal("a cancelled remember succeeded")
	}
	if got := free(); got != before {
		t.Fatalf("failed writes took %d floats of slab space", before-got)
	}
	if _, err := e.Remember(t.Context(), "default", RememberInput{Content: "a committed memory"}); err != nil {
		t.Fatal(err)
	}
	if got := free(); got != before-64 {
		t.Fatalf("a committed write took %d floats, want 64", before-got)
	}
}
