package vector

import (
	"errors"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
)

// scaled returns n, or a quarter of it under the race detector.
func scaled(n int) int {
	if raceEnabled {
		return n / 4
	}
	return n
}

func buildIndex(t testing.TB, data [][]float32, cfg Config) *Index {
	t.Helper()
	x := New(len(data[0]), cfg)
	for i, v := range data {
		if err := x.Add(uint32(i), v); err != nil {
			t.Fatalf("Add(%d): %v", i, err)
		}
	}
	return x
}

// meanRecall compares Search against Exact over the ids accepted by keep.
func meanRecall(x *Index, data, queries [][]float32, k, ef int, keep func(uint32) bool) float64 {
	var ids []uint32
	for i := range data {
		if x.Contains(uint32(i)) && (keep == nil || keep(uint32(i))) {
			ids = append(ids, uint32(i))
		}
	}
	vec := func(id uint32) []float32 { return data[id] }
	var sum float64
	for _, q := range queries {
		sum += recallAt(Exact(q, ids, vec, k), x.Search(q, k, ef, keep))
	}
	return sum / float64(len(queries))
}

func TestRecallClustered(t *testing.T) {
	n, dim := scaled(4000), 96
	data := clusteredData(1, n+200, dim, 40, 1)
	base, queries := data[:n], data[n:]
	x := buildIndex(t, base, Config{})
	if r := meanRecall(x, base, queries, 10, 0, nil); r < 0.95 {
		t.Fatalf("recall@10 = %.3f at default ef, want ≥ 0.95", r)
	} else {
		t.Logf("recall@10 = %.4f", r)
	}
	if x.Len() != n || x.Tombstones() != 0 {
		t.Fatalf("Len=%d Tombstones=%d", x.Len(), x.Tombstones())
	}
}

func TestSearchResultsAreSortedAndExactScores(t *testing.T) {
	forEachKernel(t, testSearchResultsAreSortedAndExactScores)
}

func testSearchResultsAreSortedAndExactScores(t *testing.T) {
	data := clusteredData(2, 600, 32, 10, 1)
	x := buildIndex(t, data, Config{})
	hits := x.Search(data[5], 20, 50, nil)
	if len(hits) != 20 || hits[0].ID != 5 {
		t.Fatalf("self query: %v", hits)
	}
	for i, h := range hits {
		if h.Score != Dot(data[5], data[h.ID]) {
			t.Fatalf("hit %d score %v, want exact dot %v", i, h.Score, Dot(data[5], data[h.ID]))
		}
		if i > 0 && h.Score > hits[i-1].Score {
			t.Fatalf("hits not best first: %v", hits)
		}
	}
}

func TestEmptyIndex(t *testing.T) {
	x := New(8, Config{})
	if x.Len() != 0 || x.Dim() != 8 || x.Contains(0) || x.Delete(0) {
		t.Fatal("fresh index not empty")
	}
	if hits := x.Search(make([]float32, 8), 5, 0, nil); len(hits) != 0 {
		t.Fatalf("empty index returned %v", hits)
	}
	if _, ok := x.Vector(3); ok {
		t.Fatal("Vector on empty index")
	}
	if got := x.Config(); got != (Config{M: 16, EfConstruction: 128, EfSearch: 96, Seed: 1}) {
		t.Fatalf("defaults: %+v", got)
	}
}

func TestAddRejectsBadInput(t *testing.T) {
	x := New(4, Config{})
	if err := x.Add(1, []float32{1, 0, 0}); !errors.Is(err, ErrDimMismatch) {
		t.Fatalf("short vector: %v", err)
	}
	if err := x.Add(MaxID+1, []float32{1, 0, 0, 0}); !errors.Is(err, ErrIDOutOfRange) {
		t.Fatalf("id too large: %v", err)
	}
	if err := x.Add(1, []float32{1, float32(math.NaN()), 0, 0}); !errors.Is(err, ErrNonFinite) {
		t.Fatalf("NaN: %v", err)
	}
	if x.Len() != 0 || x.Contains(1) {
		t.Fatal("rejected Add changed the index")
	}
	if err := x.Add(MaxID, []float32{1, 0, 0, 0}); err != nil {
		t.Fatalf("MaxID: %v", err)
	}
	if hits := x.Search([]float32{1, 0, 0}, 1, 0, nil); hits != nil {
		t.Fatalf("wrong-length query returned %v", hits)
	}
	if hits := x.Search([]float32{1, 0, 0, 0}, 1, 0, nil); len(hits) != 1 || hits[0].ID != MaxID {
		t.Fatalf("search: %v", hits)
	}
}

func TestNewPanicsOnBadDim(t *testing.T) {
	for _, dim := range []int{0, -1, MaxDim + 1} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("New(%d) did not panic", dim)
				}
			}()
			New(dim, Config{})
		}()
	}
}

func TestDeleteExcludesIDs(t *testing.T) {
	n := scaled(1600) // even, so deleting every other id leaves n/2
	data := clusteredData(3, n+50, 48, 15, 1)
	base, queries := data[:n], data[n:]
	x := buildIndex(t, base, Config{})
	for i := 0; i < n; i += 2 {
		if !x.Delete(uint32(i)) {
			t.Fatalf("Delete(%d) = false", i)
		}
	}
	if x.Delete(0) {
		t.Fatal("second Delete reported true")
	}
	if x.Len() != n/2 || x.Tombstones() != n/2 || x.Contains(0) || !x.Contains(1) {
		t.Fatalf("Len=%d Tombstones=%d", x.Len(), x.Tombstones())
	}
	if _, ok := x.Vector(0); ok {
		t.Fatal("Vector returned a deleted id")
	}
	for _, q := range queries {
		for _, h := range x.Search(q, 10, 0, nil) {
			if h.ID%2 == 0 {
				t.Fatalf("deleted id %d returned", h.ID)
			}
		}
	}
	if r := meanRecall(x, base, queries, 10, 0, nil); r < 0.9 {
		t.Fatalf("recall among live ids after deleting half: %.3f", r)
	}
	for i := range n {
		x.Delete(uint32(i))
	}
	if hits := x.Search(queries[0], 10, 0, nil); len(hits) != 0 {
		t.Fatalf("all deleted, got %v", hits)
	}
	if err := x.Add(3, base[3]); err != nil || x.Len() != 1 {
		t.Fatalf("re-add after deleting all: %v, Len=%d", err, x.Len())
	}
	if hits := x.Search(base[3], 10, 0, nil); len(hits) != 1 || hits[0].ID != 3 {
		t.Fatalf("after re-add: %v", hits)
	}
}

func TestAcceptFilter(t *testing.T) {
	n := scaled(1500)
	data := clusteredData(4, n+50, 48, 15, 1)
	base, queries := data[:n], data[n:]
	x := buildIndex(t, base, Config{})
	divisibleBy7 := func(id uint32) bool { return id%7 == 0 }
	for _, q := range queries {
		for _, h := range x.Search(q, 10, 0, divisibleBy7) {
			if h.ID%7 != 0 {
				t.Fatalf("filtered-out id %d returned", h.ID)
			}
		}
	}
	if r := meanRecall(x, base, queries, 10, 0, divisibleBy7); r < 0.9 {
		t.Fatalf("recall with a 1-in-7 filter: %.3f", r)
	}
	if hits := x.Search(queries[0], 10, 0, func(uint32) bool { return false }); len(hits) != 0 {
		t.Fatalf("reject-all filter returned %v", hits)
	}
	only := func(id uint32) bool { return id == 234 }
	if hits := x.Search(queries[0], 10, 0, only); len(hits) != 1 || hits[0].ID != 234 {
		t.Fatalf("single-id filter: %v", hits)
	}
}

func TestKLargerThanLen(t *testing.T) {
	data := clusteredData(5, 60, 16, 3, 1)
	x := buildIndex(t, data, Config{})
	x.Delete(10)
	hits := x.Search(data[0], 1000, 0, nil)
	if len(hits) != 59 {
		t.Fatalf("got %d hits, want all 59 live", len(hits))
	}
	seen := map[uint32]bool{}
	for i, h := range hits {
		if seen[h.ID] || h.ID == 10 {
			t.Fatalf("duplicate or deleted id %d", h.ID)
		}
		seen[h.ID] = true
		if i > 0 && h.Score > hits[i-1].Score {
			t.Fatal("not sorted")
		}
	}
	if hits := x.Search(data[0], 0, 0, nil); hits != nil {
		t.Fatalf("k=0 returned %v", hits)
	}
}

func TestReAddReplacesVector(t *testing.T) {
	data := clusteredData(6, 800, 32, 8, 1)
	x := buildIndex(t, data, Config{})
	fresh := clusteredData(99, 1, 32, 1, 1)[0]
	if err := x.Add(17, fresh); err != nil {
		t.Fatal(err)
	}
	if x.Len() != 800 {
		t.Fatalf("replacing a live id changed Len to %d", x.Len())
	}
	if v, _ := x.Vector(17); &v[0] != &fresh[0] {
		t.Fatal("Vector does not return the replacement")
	}
	if hits := x.Search(fresh, 1, 0, nil); len(hits) != 1 || hits[0].ID != 17 {
		t.Fatalf("replacement not found: %v", hits)
	}
	x.Delete(17)
	if err := x.Add(17, data[17]); err != nil || x.Len() != 800 || x.Tombstones() != 0 {
		t.Fatalf("re-add after delete: %v Len=%d Tombstones=%d", err, x.Len(), x.Tombstones())
	}
	if hits := x.Search(data[17], 1, 0, nil); len(hits) != 1 || hits[0].ID != 17 {
		t.Fatalf("restored id not found: %v", hits)
	}
}

func TestSparseIDs(t *testing.T) {
	data := clusteredData(7, 300, 16, 5, 1)
	x := New(16, Config{})
	id := func(i int) uint32 { return uint32(i) * 100_003 }
	for i, v := range data {
		if err := x.Add(id(i), v); err != nil {
			t.Fatal(err)
		}
	}
	for i, v := range data[:20] {
		if hits := x.Search(v, 1, 0, nil); len(hits) != 1 || hits[0].ID != id(i) {
			t.Fatalf("sparse id %d: %v", id(i), hits)
		}
	}
}

// TestConcurrentAddSearchDelete is meant for -race: two writers, a deleter
// and searchers all run at once.
func TestConcurrentAddSearchDelete(t *testing.T) {
	n, dim := scaled(3000), 32
	data := clusteredData(8, n, dim, 20, 1)
	x := New(dim, Config{M: 8, EfConstruction: 64})
	var done atomic.Bool
	var writers, others sync.WaitGroup
	for w := range 2 {
		writers.Go(func() {
			for i := w; i < n; i += 2 {
				if err := x.Add(uint32(i), data[i]); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	others.Go(func() {
		for i := 0; !done.Load(); i = (i + 7) % n {
			if i%5 == 0 {
				x.Delete(uint32(i))
			}
		}
	})
	for g := range 4 {
		others.Go(func() {
			for i := g; !done.Load(); i++ {
				q := data[(i*31)%n]
				hits := x.Search(q, 5, 20, func(id uint32) bool { return id%3 != 0 })
				for _, h := range hits {
					if h.ID%3 == 0 {
						t.Errorf("filter violated: %d", h.ID)
					}
				}
				x.Contains(uint32(i % n))
				x.Vector(uint32(i % n))
			}
		})
	}
	writers.Wait()
	done.Store(true)
	others.Wait()

	for i := range n {
		if i%5 == 0 {
			x.Delete(uint32(i))
		}
	}
	if want := n - n/5; x.Len() != want {
		t.Fatalf("Len=%d want %d", x.Len(), want)
	}
	live := slices.DeleteFunc(sequentialIDs(n), func(id uint32) bool { return id%5 == 0 })
	vec := func(id uint32) []float32 { return data[id] }
	var sum float64
	for i := range 50 {
		q := data[(i*53+1)%n]
		sum += recallAt(Exact(q, live, vec, 10), x.Search(q, 10, 64, nil))
	}
	if r := sum / 50; r < 0.9 {
		t.Fatalf("recall after concurrent build: %.3f", r)
	}
}

// TestConcurrentInsertsLeaveEveryNodeReachable: small indexes built by four
// inserters at once must let a search reach every node. The hazard: an
// insert that overwrote its own neighbour list on a layer, after a
// concurrent insert that had reached it through a layer above had already
// linked it there, could leave the other node with no link in, so that no
// search returns it.
func TestConcurrentInsertsLeaveEveryNodeReachable(t *testing.T) {
	for seed := uint64(1); seed <= uint64(scaled(400)); seed++ {
		data := clusteredData(seed, 42, 64, 4, 1)
		x := New(64, Config{})
		next := make(chan int, len(data))
		for i := range data {
			next <- i
		}
		close(next)
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					if err := x.Add(uint32(i), data[i]); err != nil {
						t.Error(err)
					}
				}
			}()
		}
		wg.Wait()
		if hits := x.Search(data[0], 1000, 0, nil); len(hits) != len(data) {
			t.Fatalf("seed %d: a search reaches %d of %d nodes", seed, len(hits), len(data))
		}
	}
}

func TestPagesCoverIDsOnce(t *testing.T) {
	next := uint32(0)
	for pi := range smallPages + 3 {
		if pageStart(pi) != next {
			t.Fatalf("page %d starts at %d, want %d", pi, pageStart(pi), next)
		}
		for i := range pageLen(pi) {
			if gp, gi := pageOf(next + uint32(i)); gp != pi || gi != i {
				t.Fatalf("pageOf(%d) = %d,%d, want %d,%d", next+uint32(i), gp, gi, pi, i)
			}
		}
		next += uint32(pageLen(pi))
	}
	if pi, i := pageOf(MaxID); pi != maxPages-1 || i != pageLen(pi)-1 {
		t.Fatalf("pageOf(MaxID) = %d,%d; want the last id of page %d", pi, i, maxPages-1)
	}
}

// An index of one vector must cost memory in proportion to it: a store
// keeps one index per space, and most spaces of a many-tenant store are
// small.
func TestSmallIndexCostsLittle(t *testing.T) {
	const n, dim = 200, 768
	v := make([]float32, dim)
	v[0] = 1
	heap := func() int64 {
		runtime.GC()
		runtime.GC() // the second frees what sync.Pool let go at the first
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return int64(ms.HeapInuse)
	}
	before := heap()
	xs := make([]*Index, n)
	for i := range xs {
		xs[i] = New(dim, Config{})
		if err := xs[i].Add(0, v); err != nil {
			t.Fatal(err)
		}
	}
	per := (heap() - before) / n
	runtime.KeepAlive(xs)
	if per > 16<<10 {
		t.Fatalf("an index of one vector holds %d bytes of heap; want at most 16 KiB", per)
	}
	t.Logf("%d bytes of heap per index of one vector", per)
}
