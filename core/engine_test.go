package core_test

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/internal/testsupport"
)

var ctx = context.Background()

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// open opens an engine with small test vectors and no background tier
// sweep, changed by mod; it is closed when the test ends at the latest.
func open(t testing.TB, dir string, mod ...func(*core.Options)) *core.Engine {
	t.Helper()
	base := func(o *core.Options) {
		o.DefaultDimension = 64
		o.Tiers.SweepInterval = -1
	}
	return testsupport.OpenEngine(t, dir, append([]func(*core.Options){base}, mod...)...)
}

func remember(t testing.TB, e *core.Engine, space, content string, mod ...func(*core.RememberInput)) core.RememberResult {
	t.Helper()
	in := core.RememberInput{Content: content}
	for _, m := range mod {
		m(&in)
	}
	r, err := e.Remember(ctx, space, in)
	if err != nil {
		t.Fatalf("remember %q: %v", content, err)
	}
	return r
}

var facts = []string{
	"The mitochondria is the powerhouse of the cell",
	"Paris is the capital of France",
	"Water boils at 100 degrees Celsius at sea level",
	"The Great Wall of China is visible from low orbit only under ideal conditions",
	"Photosynthesis converts light energy into chemical energy in plants",
}

func TestRememberRecallForget(t *testing.T) {
	e := open(t, t.TempDir())
	defer e.Close()
	ids := map[string]string{}
	for _, f := range facts {
		ids[f] = remember(t, e, "default", f).ID
	}
	res, err := e.Recall(ctx, "default", core.RecallQuery{Text: "powerhouse cell"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Vivid) == 0 || res.Vivid[0].Memory.Content != facts[0] {
		t.Fatalf("partial cue did not find the fact first: %+v", res.Vivid)
	}
	if res.Vivid[0].Similarity <= 0 || res.Vivid[0].Score <= 0 || res.Confidence <= 0 {
		t.Fatalf("scores not filled: %+v", res.Vivid[0])
	}
	if _, err := e.Forget(ctx, "default", ids[facts[0]]); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Get(ctx, "default", ids[facts[0]], false); core.KindOf(err) != core.KindNotFound {
		t.Fatalf("get after forget: %v", err)
	}
	res, _ = e.Recall(ctx, "default", core.RecallQuery{Text: "powerhouse cell"})
	for _, r := range res.Vivid {
		if r.Memory.ID == ids[facts[0]] {
			t.Fatal("forgotten memory recalled")
		}
	}
	if _, err := e.Forget(ctx, "default", ids[facts[0]]); core.KindOf(err) != core.KindNotFound {
		t.Fatalf("second forget: %v", err)
	}
}

func TestValidationWritesNothing(t *testing.T) {
	e := open(t, t.TempDir(), func(o *core.Options) { o.NoAutoCreateSpaces = true })
	defer e.Close()
	if _, _, err := e.CreateSpace(ctx, core.SpaceConfig{Name: "default"}); err != nil {
		t.Fatal(err)
	}
	bad := 1.5
	nan := math.NaN()
	cases := []struct {
		name  string
		space string
		in    core.RememberInput
		kind  core.ErrorKind
		code  string
	}{
		{"confidence", "default", core.RememberInput{Content: "x", Confidence: &bad}, core.KindInvalid, "INVALID_CONFIDENCE"},
		{"nan confidence", "default", core.RememberInput{Content: "x", Confidence: &nan}, core.KindInvalid, "INVALID_CONFIDENCE"},
		{"dimension", "default", core.RememberInput{Content: "x", Embedding: make([]float32, 3)}, core.KindInvalid, "INVALID_EMBEDDING_DIMENSION"},
		{"nan vector", "default", core.RememberInput{Content: "x", Embedding: withNaN(64)}, core.KindInvalid, "INVALID_EMBEDDING_VALUE"},
		{"empty", "default", core.RememberInput{Content: "  \n"}, core.KindInvalid, "EMPTY_CONTENT"},
		{"too large", "default", core.RememberInput{Content: string(make([]byte, 100_001))}, core.KindTooLarge, "CONTENT_TOO_LARGE"},
		{"bad id", "default", core.RememberInput{Content: "x", ID: "a/b"}, core.KindInvalid, "INVALID_ID"},
		{"bad type", "default", core.RememberInput{Content: "x", Type: "dream"}, core.KindInvalid, "INVALID_MEMORY_TYPE"},
		{"unknown space", "nowhere", core.RememberInput{Content: "x"}, core.KindNotFound, "SPACE_NOT_FOUND"},
		{"bad space", "A!", core.RememberInput{Content: "x"}, core.KindInvalid, "INVALID_SPACE"},
	}
	for _, c := range cases {
		_, err := e.Remember(ctx, c.space, c.in)
		if core.KindOf(err) != c.kind || core.CodeOf(err) != c.code {
			t.Errorf("%s: got %v (%s), want kind %v code %s", c.name, err, core.CodeOf(err), c.kind, c.code)
		}
	}
	if seq := e.LastSequence(); seq != 1 { // only the space creation
		t.Fatalf("invalid input wrote changes: sequence %d", seq)
	}
	st, _ := e.Space("default")
	if st.Total() != 0 {
		t.Fatalf("invalid input stored memories: %+v", st)
	}
}

func withNaN(n int) []float32 {
	v := make([]float32, n)
	v[3] = float32(math.NaN())
	return v
}

func TestBatchIsAtomicAndStoresCursor(t *testing.T) {
	e := open(t, t.TempDir())
	defer e.Close()
	_, err := e.Batch(ctx, "imports", core.BatchInput{
		Memories:     []core.RememberInput{{ID: "a", Content: "alpha"}, {ID: "b", Content: ""}},
		Associations: []core.Association{{From: "a", To: "b", Weight: 0.5}},
		Cursor:       &core.Cursor{Source: "pg", Value: "10"},
	})
	if core.CodeOf(err) != "EMPTY_CONTENT" {
		t.Fatalf("want EMPTY_CONTENT, got %v", err)
	}
	if _, ok, _ := e.Cursor("pg"); ok {
		t.Fatal("cursor stored by a failed batch")
	}
	res, err := e.Batch(ctx, "imports", core.BatchInput{
		Memories:     []core.RememberInput{{ID: "a", Content: "alpha"}, {ID: "b", Content: "beta"}},
		Associations: []core.Association{{From: "a", To: "b", Weight: 0.5}},
		Cursor:       &core.Cursor{Source: "pg", Value: "10"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.IDs) != 2 || res.IDs[0] != "a" {
		t.Fatalf("ids: %v", res.IDs)
	}
	if v, ok, _ := e.Cursor("pg"); !ok || v != "10" {
		t.Fatalf("cursor: %q %v", v, ok)
	}
	st, _ := e.Space("imports")
	if st.Total() != 2 || st.Associations != 1 {
		t.Fatalf("stats: %+v", st)
	}
	// An association to a missing memory fails the whole batch.
	_, err = e.Batch(ctx, "imports", core.BatchInput{
		Memories:     []core.RememberInput{{ID: "c", Content: "gamma"}},
		Associations: []core.Association{{From: "c", To: "zzz", Weight: 0.5}},
	})
	if core.KindOf(err) != core.KindNotFound {
		t.Fatalf("want not found, got %v", err)
	}
	if _, err := e.Get(ctx, "imports", "c", false); core.KindOf(err) != core.KindNotFound {
		t.Fatal("memory of a failed batch was stored")
	}
}

func TestSpreadingActivation(t *testing.T) {
	e := open(t, t.TempDir())
	defer e.Close()
	a := remember(t, e, "default", "the red fox jumps over the fence").ID
	b := remember(t, e, "default", "quarterly revenue grew by eight percent").ID
	c := remember(t, e, "default", "the bakery opens at seven").ID
	for _, as := range []core.Association{{From: a, To: b, Weight: 0.9}, {From: b, To: c, Weight: 0.9}} {
		if _, err := e.Associate(ctx, "default", as); err != nil {
			t.Fatal(err)
		}
	}
	res, err := e.Recall(ctx, "default", core.RecallQuery{Text: "red fox fence", Trace: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Vivid) == 0 || res.Vivid[0].Memory.ID != a {
		t.Fatalf("vivid: %+v", res.Vivid)
	}
	got := map[string]core.Recalled{}
	for _, r := range res.Associated {
		got[r.Memory.ID] = r
	}
	if _, ok := got[b]; !ok {
		t.Fatalf("one hop not reached: %+v", res.Associated)
	}
	if r, ok := got[c]; !ok || len(r.Path) != 3 || r.Path[0] != a || r.Activation >= got[b].Activation {
		t.Fatalf("two hops wrong: %+v", res.Associated)
	}
	sim, _ := e.Recall(ctx, "default", core.RecallQuery{Text: "red fox fence", Mode: core.ModeSimilarity})
	if len(sim.Associated) != 0 {
		t.Fatal("similarity mode spread")
	}
	// Forgetting b removes its edges: c is no longer reachable.
	if _, err := e.Forget(ctx, "default", b); err != nil {
		t.Fatal(err)
	}
	res, _ = e.Recall(ctx, "default", core.RecallQuery{Text: "red fox fence"})
	if len(res.Associated) != 0 {
		t.Fatalf("edges survived forget: %+v", res.Associated)
	}
	if st, _ := e.Space("default"); st.Associations != 0 {
		t.Fatalf("association count %d", st.Associations)
	}
	if _, err := e.Associate(ctx, "default", core.Association{From: a, To: "missing", Weight: 0.5}); core.KindOf(err) != core.KindNotFound {
		t.Fatalf("associate to missing: %v", err)
	}
}

func TestAutoLink(t *testing.T) {
	e := open(t, t.TempDir())
	defer e.Close()
	first := remember(t, e, "default", "coffee beans are roasted at high temperature").ID
	r := remember(t, e, "default", "coffee beans are roasted at high temperature for flavour", func(in *core.RememberInput) {
		in.AutoLink = true
		in.LinkThreshold = 0.5
	})
	if len(r.AutoLinks) != 1 || r.AutoLinks[0].TargetID != first {
		t.Fatalf("auto links: %+v", r.AutoLinks)
	}
	if st, _ := e.Space("default"); st.Associations != 2 {
		t.Fatalf("want 2 directed edges, got %d", st.Associations)
	}
}

func TestReopenKeepsDataAndIndex(t *testing.T) {
	dir := t.TempDir()
	e := open(t, dir, func(o *core.Options) { o.Index.ExactThreshold = 10 })
	const n = 80 // enough for the graph to be saved rather than rebuilt
	var ids []string
	for i := 0; i < n; i++ {
		ids = append(ids, remember(t, e, "default", facts[i%len(facts)]+" number "+string(rune('a'+i%26))+string(rune('a'+i/26))).ID)
	}
	if err := e.WaitIndexed(ctx); err != nil {
		t.Fatal(err)
	}
	seq := e.LastSequence()
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "index", "default.graph")); err != nil {
		t.Fatalf("index not persisted: %v", err)
	}
	e = open(t, dir, func(o *core.Options) { o.Index.ExactThreshold = 10 })
	defer e.Close()
	if e.LastSequence() != seq {
		t.Fatalf("sequence %d after reopen, want %d", e.LastSequence(), seq)
	}
	st, _ := e.Space("default")
	if st.Total() != n || st.IndexPending != 0 {
		t.Fatalf("after reopen: %+v (index should load from its graph file)", st)
	}
	res, err := e.Recall(ctx, "default", core.RecallQuery{Text: "capital of France", MaxResults: 3})
	if err != nil || len(res.Vivid) == 0 {
		t.Fatalf("recall after reopen: %v %+v", err, res)
	}
	if _, err := e.Get(ctx, "default", ids[7], true); err != nil {
		t.Fatal(err)
	}
}

func TestChangeLogReplayReproducesData(t *testing.T) {
	src := open(t, t.TempDir())
	defer src.Close()
	a := remember(t, src, "default", "alpha memory about rivers").ID
	b := remember(t, src, "tenant-b", "beta memory about mountains", func(in *core.RememberInput) {
		in.Tags = []string{"geo"}
		in.Metadata = map[string]string{"k": "v"}
	}).ID
	c := remember(t, src, "default", "gamma memory about oceans").ID
	if _, err := src.Associate(ctx, "default", core.Association{From: a, To: c, Weight: 0.4, Kind: "near"}); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Forget(ctx, "default", a); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Batch(ctx, "default", core.BatchInput{Cursor: &core.Cursor{Source: "s", Value: "7"}}); err != nil {
		t.Fatal(err)
	}
	changes, err := src.ChangesSince(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, ch := range changes {
		if ch.Seq != uint64(i+1) || ch.Time.IsZero() {
			t.Fatalf("change %d: seq %d time %v", i, ch.Seq, ch.Time)
		}
	}
	if uint64(len(changes)) != src.LastSequence() {
		t.Fatalf("%d changes, last sequence %d", len(changes), src.LastSequence())
	}
	dst := open(t, t.TempDir())
	defer dst.Close()
	if err := dst.ApplyChanges(ctx, changes[:3]); err != nil {
		t.Fatal(err)
	}
	if err := dst.ApplyChanges(ctx, changes[2:]); core.CodeOf(err) != "SEQUENCE_GAP" {
		t.Fatalf("repeat must be refused, got %v", err)
	}
	if err := dst.ApplyChanges(ctx, changes[4:]); core.CodeOf(err) != "SEQUENCE_GAP" {
		t.Fatalf("gap must be refused, got %v", err)
	}
	if err := dst.ApplyChanges(ctx, changes[3:]); err != nil {
		t.Fatal(err)
	}
	if dst.LastSequence() != src.LastSequence() {
		t.Fatalf("sequence %d vs %d", dst.LastSequence(), src.LastSequence())
	}
	for _, sp := range []string{"default", "tenant-b"} {
		want, _ := src.List(ctx, sp, core.ListOptions{AllTiers: true, IncludeEmbeddings: true})
		got, _ := dst.List(ctx, sp, core.ListOptions{AllTiers: true, IncludeEmbeddings: true})
		if len(want.Memories) != len(got.Memories) {
			t.Fatalf("%s: %d vs %d memories", sp, len(want.Memories), len(got.Memories))
		}
		for i := range want.Memories {
			w, g := want.Memories[i], got.Memories[i]
			w.Tier, g.Tier = 0, 0
			if w.ID != g.ID || w.Content != g.Content || w.Seq != g.Seq || !w.StoredAt.Equal(g.StoredAt) || len(w.Embedding) != len(g.Embedding) || w.Metadata["k"] != g.Metadata["k"] {
				t.Fatalf("%s: memory %d differs:\n%+v\n%+v", sp, i, w, g)
			}
		}
	}
	if _, err := dst.Get(ctx, "default", b, false); core.KindOf(err) != core.KindNotFound {
		t.Fatal("space isolation broken in replay")
	}
	if v, ok, _ := dst.Cursor("s"); !ok || v != "7" {
		t.Fatal("cursor not replayed")
	}
}

func TestDecayTiersAndReinforcement(t *testing.T) {
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	e := open(t, t.TempDir(), func(o *core.Options) {
		o.Now = clk.Now
		o.Tiers.InitialStability = time.Hour
		o.TouchFlushInterval = time.Hour // flushed explicitly via Sweep/Close paths below
	})
	defer e.Close()
	old := remember(t, e, "default", "an old memory about lighthouses").ID
	clk.Advance(10 * time.Hour) // R = exp(-10/1.2) ≈ 0.0002
	fresh := remember(t, e, "default", "a fresh memory about lighthouses and harbours").ID
	if err := e.WaitIndexed(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.Sweep(); err != nil {
		t.Fatal(err)
	}
	if err := e.WaitIndexed(ctx); err != nil {
		t.Fatal(err)
	}
	st, _ := e.Space("default")
	if st.Memories[core.TierCold] != 1 {
		t.Fatalf("tiers after sweep: %+v", st.Memories)
	}
	m, err := e.Get(ctx, "default", old, true)
	if err != nil || m.Tier != core.TierCold || len(m.Embedding) != 64 {
		t.Fatalf("cold memory readable by id: %v %+v", err, m)
	}
	res, _ := e.Recall(ctx, "default", core.RecallQuery{Text: "lighthouses", NoReinforce: true})
	for _, r := range res.Vivid {
		if r.Memory.ID == old {
			t.Fatal("cold memory found by normal recall")
		}
	}
	res, _ = e.Recall(ctx, "default", core.RecallQuery{Text: "lighthouses", Deep: true})
	found := false
	for _, r := range res.Vivid {
		if r.Memory.ID == old {
			found = true
			if r.Retrievability > 0.01 {
				t.Fatalf("retrievability %v should be tiny", r.Retrievability)
			}
		}
	}
	if !found {
		t.Fatalf("deep recall missed the cold memory: %+v", res.Vivid)
	}
	m, _ = e.Get(ctx, "default", old, false)
	if m.AccessCount != 1 || !m.LastAccess.Equal(clk.Now()) || m.Stability <= time.Duration(float64(time.Hour)*1.2) {
		t.Fatalf("reinforcement not applied: %+v", m)
	}
	// Spacing effect: a gap before recall grows stability more than none.
	f0, _ := e.Get(ctx, "default", fresh, false)
	e.Recall(ctx, "default", core.RecallQuery{Text: "harbours lighthouses"})
	f1, _ := e.Get(ctx, "default", fresh, false)
	gainNoGap := float64(f1.Stability) / float64(f0.Stability)
	if gainNoGap > 1.2 {
		t.Fatalf("immediate re-recall gained too much: %v", gainNoGap)
	}
	met := e.Metrics()
	var w2c uint64
	for _, mg := range met.Migrations {
		if mg.From == core.TierWarm && mg.To == core.TierCold {
			w2c = mg.Count
		}
	}
	if w2c != 1 {
		t.Fatalf("migrations: %+v", met.Migrations)
	}
}

func TestConcurrentWritesAndRecalls(t *testing.T) {
	e := open(t, t.TempDir(), func(o *core.Options) { o.Index.ExactThreshold = 50 })
	defer e.Close()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var ids []string
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 40; i++ {
				r, err := e.Remember(ctx, "default", core.RememberInput{Content: facts[(w+i)%len(facts)] + " variant " + string(rune('a'+w)) + string(rune('a'+i%26))})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				ids = append(ids, r.ID)
				mu.Unlock()
				if i%5 == 0 {
					if _, err := e.Recall(ctx, "default", core.RecallQuery{Text: "capital"}); err != nil {
						t.Error(err)
					}
				}
				if i%7 == 0 {
					if _, err := e.Forget(ctx, "default", r.ID); err != nil {
						t.Error(err)
					}
				}
			}
		}(w)
	}
	wg.Wait()
	changes, err := e.ChangesSince(0, 100000)
	if err != nil {
		t.Fatal(err)
	}
	seqs := make([]uint64, len(changes))
	for i, c := range changes {
		seqs[i] = c.Seq
	}
	if !sort.SliceIsSorted(seqs, func(i, j int) bool { return seqs[i] < seqs[j] }) || seqs[len(seqs)-1] != uint64(len(seqs)) {
		t.Fatal("change log not contiguous")
	}
	st, _ := e.Space("default")
	if want := int64(8 * (40 - 6)); st.Total() != want {
		t.Fatalf("total %d, want %d", st.Total(), want)
	}
}

func TestScanMemoriesStreamsEverySpaceMemory(t *testing.T) {
	e := open(t, t.TempDir())
	defer e.Close()
	for _, f := range facts {
		remember(t, e, "default", f)
	}
	remember(t, e, "other", "elsewhere")
	var n int
	err := e.ScanMemories(ctx, "default", true, func(m core.Memory) error {
		if len(m.Embedding) != 64 || m.Content == "" {
			t.Fatalf("memory %+v", m)
		}
		n++
		return nil
	})
	if err != nil || n != len(facts) {
		t.Fatalf("scanned %d (%v), want %d", n, err, len(facts))
	}
	if err := e.ScanMemories(ctx, "missing", false, func(core.Memory) error { return nil }); core.KindOf(err) != core.KindNotFound {
		t.Fatalf("missing space: %v", err)
	}
}

// TestDerivedVectorsAreNotLoggedButReplayExactly: a vector the space's
// deterministic embedder computed is left out of the change log (replay
// recomputes it bit for bit); a client's vector is logged. Either way the
// replayed engine searches the same normalised vectors: recalls score
// bit for bit as in the source.
func TestDerivedVectorsAreNotLoggedButReplayExactly(t *testing.T) {
	src := open(t, t.TempDir())
	defer src.Close()
	text := remember(t, src, "default", "the lighthouse keeper logs every passing ship").ID
	vec := make([]float32, 64)
	vec[5], vec[9], vec[20] = 3, 4, 0.5 // not unit length: replay must normalise it
	client := remember(t, src, "default", "a memory with its own vector", func(in *core.RememberInput) { in.Embedding = vec }).ID
	changes, err := src.ChangesSince(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range changes {
		if c.Op != core.OpPutMemory {
			continue
		}
		switch c.Memory.ID {
		case text:
			if c.Memory.Embedding != nil {
				t.Fatal("derived vector logged")
			}
		case client:
			if len(c.Memory.Embedding) != 64 {
				t.Fatal("client vector not logged")
			}
		}
	}
	dst := open(t, t.TempDir())
	defer dst.Close()
	if err := dst.ApplyChanges(ctx, changes); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{text, client} {
		want, _ := src.Get(ctx, "default", id, true)
		got, err := dst.Get(ctx, "default", id, true)
		if err != nil {
			t.Fatal(err)
		}
		for i := range want.Embedding {
			if want.Embedding[i] != got.Embedding[i] {
				t.Fatalf("%s: replayed vector differs at %d", id, i)
			}
		}
	}
	cue := make([]float32, 64)
	cue[5], cue[9], cue[33] = 1, 1, 1
	for _, q := range []core.RecallQuery{
		{Text: "lighthouse keeper ships", Threshold: -1, NoReinforce: true},
		{Embedding: cue, Threshold: -1, NoReinforce: true},
	} {
		scores := func(e *core.Engine) map[string]float64 {
			res, err := e.Recall(ctx, "default", q)
			if err != nil {
				t.Fatal(err)
			}
			m := map[string]float64{}
			for _, r := range res.Vivid {
				m[r.Memory.ID] = r.Similarity
			}
			return m
		}
		want, got := scores(src), scores(dst)
		if len(want) != 2 {
			t.Fatalf("source recall found %d of 2 memories: %v", len(want), want)
		}
		for id, w := range want {
			if g, ok := got[id]; !ok || g != w {
				t.Fatalf("recall %q: %s scores %v after replay, %v in the source", q.Text, id, g, w)
			}
		}
	}
}

// vectorKeys lists the ids with a stored vector in space, reading the closed
// engine's Pebble store directly ('V' family: V<space>\x00<id>).
func vectorKeys(t *testing.T, dir, space string) map[string]bool {
	t.Helper()
	db, err := pebble.Open(filepath.Join(dir, "db"), &pebble.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	prefix := append([]byte{'V'}, append([]byte(space), 0)...)
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: append([]byte{'V'}, append([]byte(space), 1)...)})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	ids := map[string]bool{}
	for ok := it.First(); ok; ok = it.Next() {
		ids[string(it.Key()[len(prefix):])] = true
	}
	return ids
}

func TestDerivedVectorsAreNotStoredAndRecomputedOnLoad(t *testing.T) {
	dir := t.TempDir()
	small := func(o *core.Options) { o.Index.ExactThreshold = 10 }
	e := open(t, dir, small)
	var ids []string
	for i := 0; i < 40; i++ {
		ids = append(ids, remember(t, e, "default", facts[i%len(facts)]+" variant "+strconv.Itoa(i)).ID)
	}
	own := make([]float32, 64)
	own[3] = 1
	client := remember(t, e, "default", "a memory with its own vector", func(in *core.RememberInput) { in.Embedding = own }).ID
	// Replacing a client vector by a derived one drops the stored vector.
	replaced := remember(t, e, "default", "first version", func(in *core.RememberInput) { in.ID = "mem_replaced"; in.Embedding = own }).ID
	remember(t, e, "default", "the capital of Portugal is Lisbon", func(in *core.RememberInput) { in.ID = replaced })
	want := map[string][]float32{}
	for _, id := range append(ids[:5], client, replaced) {
		m, err := e.Get(ctx, "default", id, true)
		if err != nil {
			t.Fatal(err)
		}
		want[id] = m.Embedding
	}
	// What the index searches: the vectors the write path embedded must be
	// bit for bit the ones recomputed on open, or scores would shift.
	if err := e.WaitIndexed(ctx); err != nil {
		t.Fatal(err)
	}
	similarities := func(e *core.Engine) map[string]float64 {
		t.Helper()
		res, err := e.Recall(ctx, "default", core.RecallQuery{Text: "variant lighthouse harbour", MaxResults: 20, Threshold: -1})
		if err != nil || len(res.Vivid) == 0 {
			t.Fatalf("recall: %v %+v", err, res)
		}
		out := map[string]float64{}
		for _, r := range res.Vivid {
			out[r.Memory.ID] = r.Similarity
		}
		return out
	}
	before := similarities(e)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	stored := vectorKeys(t, dir, "default")
	if len(stored) != 1 || !stored[client] {
		t.Fatalf("stored vectors: %v, want only the client's %s", stored, client)
	}
	// Without the graph file the index is rebuilt from recomputed vectors.
	if err := os.RemoveAll(filepath.Join(dir, "index")); err != nil {
		t.Fatal(err)
	}
	e = open(t, dir, small)
	defer e.Close()
	if err := e.WaitIndexed(ctx); err != nil {
		t.Fatal(err)
	}
	for id, w := range want {
		m, err := e.Get(ctx, "default", id, true)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(m.Embedding, w) {
			t.Fatalf("%s: vector after reopen differs", id)
		}
	}
	res, err := e.Recall(ctx, "default", core.RecallQuery{Text: "capital of Portugal Lisbon", MaxResults: 1})
	if err != nil || len(res.Vivid) == 0 || res.Vivid[0].Memory.ID != replaced {
		t.Fatalf("recall after reopen: %v %+v", err, res.Vivid)
	}
	// The index is approximate and rebuilt on open, so the two result sets
	// may differ at the margin; every memory in both must score the same,
	// bit for bit.
	after := similarities(e)
	common := 0
	for id, b := range before {
		if a, ok := after[id]; ok {
			common++
			if a != b {
				t.Fatalf("%s: similarity %v before the reopen, %v after", id, b, a)
			}
		}
	}
	if common < 15 {
		t.Fatalf("only %d memories in both result sets:\nbefore %v\nafter  %v", common, before, after)
	}
}

// TestPacedReinforcementFlushWritesEveryChunk: the periodic flush writes a
// large set of recalled memories in paced chunks; every one of them is
// reinforced on disk, and so is a set still pending at Close.
func TestPacedReinforcementFlushWritesEveryChunk(t *testing.T) {
	dir := t.TempDir()
	e := open(t, dir, func(o *core.Options) { o.TouchFlushInterval = 20 * time.Millisecond })
	const n = 3*128 + 5 // several chunks and a partial one
	var batch []core.RememberInput
	for i := range n {
		batch = append(batch, core.RememberInput{ID: "m" + strconv.Itoa(i), Content: "lighthouse keeper log entry " + strconv.Itoa(i)})
	}
	if _, err := e.Batch(ctx, "default", core.BatchInput{Memories: batch}); err != nil {
		t.Fatal(err)
	}
	if err := e.WaitIndexed(ctx); err != nil {
		t.Fatal(err)
	}
	recallAll := func() {
		res, err := e.Recall(ctx, "default", core.RecallQuery{Text: "lighthouse keeper log entry", MaxResults: n, Threshold: -1, Mode: core.ModeSimilarity})
		if err != nil || len(res.Vivid) != n {
			t.Fatalf("recall: %v, %d results, want %d", err, len(res.Vivid), n)
		}
	}
	recallAll()
	time.Sleep(500 * time.Millisecond) // the periodic flush runs meanwhile
	recallAll()                        // pending at Close
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e = open(t, dir)
	defer e.Close()
	for i := range n {
		m, err := e.Get(ctx, "default", "m"+strconv.Itoa(i), false)
		if err != nil || m.AccessCount != 2 {
			t.Fatalf("m%d after reopen: access count %d (want 2), err %v", i, m.AccessCount, err)
		}
	}
}

// TestAssociationCountStaysExact: the space's association count, kept in
// memory as edges are written, equals the stored edges through a replayed
// batch (a resumed import), a forget, a re-created endpoint, and a reopen.
func TestAssociationCountStaysExact(t *testing.T) {
	dir := t.TempDir()
	e := open(t, dir)
	count := func(e *core.Engine, want int64, when string) {
		t.Helper()
		if st, _ := e.Space("graph"); st.Associations != want {
			t.Fatalf("%s: %d associations, want %d", when, st.Associations, want)
		}
	}
	batch := core.BatchInput{
		Memories:     []core.RememberInput{{ID: "a", Content: "alpha"}, {ID: "b", Content: "beta"}, {ID: "c", Content: "gamma"}},
		Associations: []core.Association{{From: "a", To: "b", Weight: 0.5}, {From: "b", To: "c", Weight: 0.5}, {From: "a", To: "b", Weight: 0.7}},
	}
	for i := range 2 { // the second time, a resumed import replaying its batch
		if _, err := e.Batch(ctx, "graph", batch); err != nil {
			t.Fatal(err)
		}
		count(e, 2, "batch "+strconv.Itoa(i+1))
	}
	if _, err := e.Batch(ctx, "graph", core.BatchInput{Associations: []core.Association{{From: "c", To: "a", Weight: 0.5}, {From: "a", To: "b", Weight: 0.9}}}); err != nil {
		t.Fatal(err)
	}
	count(e, 3, "edges between stored memories")
	if _, err := e.Forget(ctx, "graph", "b"); err != nil {
		t.Fatal(err)
	}
	count(e, 1, "after forgetting b")
	if _, err := e.Batch(ctx, "graph", core.BatchInput{
		Memories:     []core.RememberInput{{ID: "b", Content: "beta again"}},
		Associations: []core.Association{{From: "a", To: "b", Weight: 0.5}, {From: "b", To: "c", Weight: 0.5}},
	}); err != nil {
		t.Fatal(err)
	}
	count(e, 3, "b re-created with its edges")
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e = open(t, dir)
	defer e.Close()
	count(e, 3, "after reopening")
}
