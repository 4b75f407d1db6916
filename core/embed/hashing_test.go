package embed

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
)

// embedder mirrors core.Embedder; core imports this package, so the test
// cannot import core to assert it.
type embedder interface {
	Embed(ctx context.Context, texts []string) ([][]float32, error)
	Dimension() int
	Fingerprint() string
}

var _ embedder = (*Hashing)(nil)

func mustHashing(t testing.TB, dim int) *Hashing {
	t.Helper()
	h, err := NewHashing(dim)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func cosine(a, b []float32) float64 {
	var ab, aa, bb float64
	for i := range a {
		ab += float64(a[i]) * float64(b[i])
		aa += float64(a[i]) * float64(a[i])
		bb += float64(b[i]) * float64(b[i])
	}
	if aa == 0 || bb == 0 {
		return 0
	}
	return ab / math.Sqrt(aa*bb)
}

func norm(v []float32) float64 {
	var s float64
	for _, f := range v {
		s += float64(f) * float64(f)
	}
	return math.Sqrt(s)
}

func TestNewHashingBounds(t *testing.T) {
	for _, dim := range []int{-1, 0, 7, 4097, 1 << 20} {
		if _, err := NewHashing(dim); err == nil {
			t.Errorf("NewHashing(%d): want error", dim)
		}
	}
	for _, dim := range []int{8, 768, 4096} {
		h := mustHashing(t, dim)
		if h.Dimension() != dim {
			t.Errorf("Dimension() = %d, want %d", h.Dimension(), dim)
		}
		if want := "hash-v1/" + itoa(dim); h.Fingerprint() != want {
			t.Errorf("Fingerprint() = %q, want %q", h.Fingerprint(), want)
		}
		if got := len(h.EmbedOne("hello world")); got != dim {
			t.Errorf("len = %d, want %d", got, dim)
		}
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// TestGolden pins hash-v1. If it fails, the algorithm changed: every stored
// "hash-v1" space would silently degrade. Revert the change, or introduce a
// new fingerprint version and re-pin.
func TestGolden(t *testing.T) {
	const tol = 1e-6
	// Small dimension: every entry is pinned.
	h := mustHashing(t, 16)
	got := h.EmbedOne("The mitochondria is the powerhouse of the cell")
	want16 := []float32{
		0.10223146, -0.079901576, -0.19335862, -0.37962639, 0.13072564, 0.19508797, -0.026818756, 0.45855927,
		-0.26247191, 0.11301976, -0.042294536, -0.1395458, 0.19904548, 0.60865468, 0.1302249, 0.074507445,
	}
	for i, w := range want16 {
		if math.Abs(float64(got[i]-w)) > tol {
			t.Fatalf("dim 16: v[%d] = %.8g, want %.8g (full %v)", i, got[i], w, got)
		}
	}

	// Default dimension: the first non-zero entries, with Unicode, case,
	// digits, a stop word and a repeated word.
	h = mustHashing(t, 768)
	got = h.EmbedOne("Grüße aus KÖLN: 42 Äpfel, the apples and apples")
	type entry struct {
		i int
		v float32
	}
	want := []entry{
		{2, 0.06747634}, {7, -0.06747634}, {18, 0.06747634}, {26, 0.06747634}, {44, -0.076510973},
		{55, 0.06747634}, {61, -0.22849475}, {73, -0.10334064}, {74, 0.11687244}, {75, 0.13495268},
	}
	var nz []entry
	for i, f := range got {
		if f != 0 && len(nz) < len(want) {
			nz = append(nz, entry{i, f})
		}
	}
	if len(nz) != len(want) {
		t.Fatalf("dim 768: %d non-zero entries, want at least %d", len(nz), len(want))
	}
	for k, w := range want {
		if nz[k].i != w.i || math.Abs(float64(nz[k].v-w.v)) > tol {
			t.Fatalf("dim 768: non-zero entry %d = {%d, %.8g}, want {%d, %.8g} (all %v)", k, nz[k].i, nz[k].v, w.i, w.v, nz)
		}
	}
}

func TestEmptyIsZero(t *testing.T) {
	h := mustHashing(t, 64)
	for _, s := range []string{"", " ", "\t\n  ", "!!! ... ---", "\xff\xfe", "\u00a0\u2003"} {
		if n := norm(h.EmbedOne(s)); n != 0 {
			t.Errorf("EmbedOne(%q) norm = %v, want zero vector", s, n)
		}
	}
}

func TestIdenticalAndCase(t *testing.T) {
	h := mustHashing(t, 768)
	a := h.EmbedOne("Remember to water the plants on Tuesday")
	b := h.EmbedOne("Remember to water the plants on Tuesday")
	if c := cosine(a, b); math.Abs(c-1) > 1e-5 {
		t.Fatalf("identical cosine = %v", c)
	}
	if n := norm(a); math.Abs(n-1) > 1e-5 {
		t.Fatalf("norm = %v", n)
	}
	// Case and punctuation do not matter.
	c := h.EmbedOne("REMEMBER to water, the plants... on TUESDAY!")
	if cs := cosine(a, c); math.Abs(cs-1) > 1e-5 {
		t.Fatalf("case/punctuation variant cosine = %v", cs)
	}
}

// corpus is a set of unrelated facts; each cue shares two or three words
// (or word forms) with its fact only.
var corpus = []struct{ fact, cue string }{
	{"The mitochondria is the powerhouse of the cell", "powerhouse cell"},
	{"Paris is the capital and most populous city of France", "capital of France"},
	{"Water boils at 100 degrees Celsius at sea level", "boiling point of water in celsius"},
	{"Alice's favourite colour is teal, she painted her kitchen with it", "Alice favourite colour"},
	{"The deploy pipeline runs integration tests against a staging environment", "staging integration tests"},
	{"Bob is allergic to peanuts and carries an epinephrine injector", "peanut allergy"},
	{"The quarterly budget review meeting moved to Thursday afternoon", "budget meeting Thursday"},
	{"Photosynthesis converts sunlight, water and carbon dioxide into glucose", "sunlight into glucose"},
	{"The production Kubernetes cluster is hosted in the eu-west-1 region", "kubernetes cluster region"},
	{"Our customer support hotline is open weekdays from nine to five", "support hotline hours"},
	{"Mount Everest is the highest mountain on Earth, on the border of Nepal and Tibet", "highest mountain on earth"},
	{"The user prefers dark mode and a large monospace font in the editor", "editor dark mode"},
	{"Shakespeare wrote Hamlet, a tragedy about a Danish prince", "who wrote hamlet"},
	{"The API rate limit is one thousand requests per minute per token", "api rate limit"},
	{"Carol's birthday party is on the twelfth of March at the lake house", "Carol birthday"},
	{"Vaccines train the immune system to recognise specific pathogens", "immune system vaccines"},
	{"The invoice for the office lease is paid by wire transfer every month", "office lease invoice"},
	{"Jupiter is the largest planet in the solar system and has a great red spot", "largest planet solar system"},
	{"Backups of the Postgres database are encrypted and stored for ninety days", "encrypted postgres backups"},
	{"The violin has four strings tuned in perfect fifths", "violin strings"},
}

func TestPartialCuesRankRightFactFirst(t *testing.T) {
	h := mustHashing(t, 768)
	facts := make([][]float32, len(corpus))
	for i, c := range corpus {
		facts[i] = h.EmbedOne(c.fact)
	}
	for i, c := range corpus {
		q := h.EmbedOne(c.cue)
		best, bestScore := -1, -2.0
		for j, f := range facts {
			if s := cosine(q, f); s > bestScore {
				best, bestScore = j, s
			}
		}
		if best != i {
			t.Errorf("cue %q: best match %q (%.3f), want %q (%.3f)", c.cue, corpus[best].fact, bestScore, c.fact, cosine(q, facts[i]))
			continue
		}
		// Core's default text-recall threshold is 0.2; a good cue must clear it.
		if bestScore < 0.25 {
			t.Errorf("cue %q: score %.3f is too low", c.cue, bestScore)
		}
	}
}

func TestUnrelatedScoresLow(t *testing.T) {
	h := mustHashing(t, 768)
	vs := make([][]float32, len(corpus))
	for i, c := range corpus {
		vs[i] = h.EmbedOne(c.fact)
	}
	for i := range vs {
		for j := i + 1; j < len(vs); j++ {
			if s := cosine(vs[i], vs[j]); math.Abs(s) >= 0.2 {
				t.Errorf("unrelated facts score %.3f:\n  %q\n  %q", s, corpus[i].fact, corpus[j].fact)
			}
		}
	}
	q := h.EmbedOne("a recipe for sourdough bread with rye flour")
	for i, v := range vs {
		if s := cosine(q, v); math.Abs(s) >= 0.2 {
			t.Errorf("unrelated cue scores %.3f against %q", s, corpus[i].fact)
		}
	}
}

func TestTyposStillMatch(t *testing.T) {
	h := mustHashing(t, 768)
	facts := make([][]float32, len(corpus))
	for i, c := range corpus {
		facts[i] = h.EmbedOne(c.fact)
	}
	for _, tc := range []struct {
		cue  string
		want int
	}{
		{"mitochondira", 0},
		{"epinephrin", 5},
		{"quartrly", 6},
		{"photosynthesys", 7},
		{"Kubernets", 8},
		{"hotlines", 9},
		{"monospce", 11},
		{"Shakespear", 12},
		{"birthdya", 14},
		{"vaccine", 15},
		{"invoices", 16},
		{"Jupitr", 17},
		{"Postgress", 18},
		{"violins", 19},
		{"integraton", 4},
	} {
		q := h.EmbedOne(tc.cue)
		right := cosine(q, facts[tc.want])
		for j, f := range facts {
			if j != tc.want && cosine(q, f) >= right {
				t.Errorf("cue %q: %q scores %.3f >= right fact %.3f", tc.cue, corpus[j].fact, cosine(q, f), right)
			}
		}
	}
}

func TestEmbedBatch(t *testing.T) {
	h := mustHashing(t, 128)
	texts := make([]string, 600)
	for i := range texts {
		texts[i] = corpus[i%len(corpus)].fact
	}
	vs, err := h.Embed(context.Background(), texts)
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != len(texts) {
		t.Fatalf("got %d vectors", len(vs))
	}
	for i, v := range vs {
		if !equal(v, h.EmbedOne(texts[i])) {
			t.Fatalf("Embed[%d] differs from EmbedOne", i)
		}
	}
	if vs, err := h.Embed(context.Background(), nil); err != nil || len(vs) != 0 {
		t.Fatalf("empty batch: %v, %v", vs, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := h.Embed(ctx, texts); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled context: err = %v", err)
	}
}

func equal(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

func TestDeterministicAcrossGoroutines(t *testing.T) {
	h := mustHashing(t, 768)
	texts := []string{strings.Repeat("long text with many words ", 500), "short", ""}
	for _, c := range corpus {
		texts = append(texts, c.fact, c.cue)
	}
	ref := make([][]float32, len(texts))
	for i, s := range texts {
		ref[i] = h.EmbedOne(s)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for round := 0; round < 20; round++ {
				for k := range texts {
					i := (k + g + round) % len(texts) // vary order so scratch is reused across texts
					if !equal(h.EmbedOne(texts[i]), ref[i]) {
						errs <- texts[i]
						return
					}
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for s := range errs {
		t.Errorf("non-deterministic embedding for %.40q", s)
	}
	// A fresh embedder of the same dimension agrees bit for bit.
	if !equal(mustHashing(t, 768).EmbedOne(texts[3]), ref[3]) {
		t.Error("a second embedder disagrees")
	}
}

func TestEmbedOneAllocatesOnlyOutput(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector")
	}
	h := mustHashing(t, 768)
	h.EmbedOne(benchText) // warm the pool
	if n := testing.AllocsPerRun(100, func() { h.EmbedOne(benchText) }); n > 1 {
		t.Fatalf("EmbedOne allocates %v times per call, want 1", n)
	}
}

// benchText is a 200-byte sentence.
var benchText = func() string {
	s := "The deployment checklist says to rotate the database credentials, verify backups restored cleanly last night, and notify the on-call engineer before migrating the payments service to the new cluster today."
	return s[:200]
}()

func BenchmarkHashing768(b *testing.B) {
	h := mustHashing(b, 768)
	b.SetBytes(int64(len(benchText)))
	b.ReportAllocs()
	for b.Loop() {
		h.EmbedOne(benchText)
	}
}

func FuzzHashing(f *testing.F) {
	for _, s := range []string{"", " ", "hello world", "The mitochondria is the powerhouse of the cell",
		"\xff\xfe\xfd", "a\x00b", "Grüße aus KÖLN", "日本語のテキスト", "e\u0301\u0301\u0301", strings.Repeat("x", 5000)} {
		f.Add(s, uint16(768))
	}
	f.Add("a b", uint16(0))
	f.Fuzz(func(t *testing.T, s string, d uint16) {
		dim := MinDimension + int(d)%(MaxDimension-MinDimension+1)
		h := mustHashing(t, dim)
		v := h.EmbedOne(s)
		if len(v) != dim {
			t.Fatalf("len = %d, want %d", len(v), dim)
		}
		for i, x := range v {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				t.Fatalf("v[%d] = %v", i, x)
			}
		}
		n := norm(v)
		if n != 0 && math.Abs(n-1) > 1e-4 {
			t.Fatalf("norm = %v, want 1 or 0", n)
		}
		if !equal(v, h.EmbedOne(s)) {
			t.Fatal("not deterministic")
		}
	})
}

func TestTokenize(t *testing.T) {
	s := getScratch()
	defer putScratch(s)
	s.tokenize("The CELL's\xffe\u0301t\u00e9 日本, 42")
	var words []string
	for _, tk := range s.toks {
		w := s.runes[tk.start:tk.end]
		if s.runes[tk.start-1] != runeBOW || s.runes[tk.end] != runeEOW {
			t.Fatalf("token %q lacks boundary markers", string(w))
		}
		if tk.hash != hashRunes(seedWord, w) {
			t.Fatalf("token %q: incremental hash differs from hashRunes", string(w))
		}
		if tk.stop != (string(w) == "the" || string(w) == "s") {
			t.Fatalf("token %q: stop = %v", string(w), tk.stop)
		}
		words = append(words, string(w))
	}
	want := []string{"the", "cell", "s", "e\u0301t\u00e9", "日本", "42"}
	if strings.Join(words, "|") != strings.Join(want, "|") {
		t.Fatalf("tokens %q, want %q", words, want)
	}
}

// TestEmbedIntoOverwrites: EmbedInto gives EmbedOne's vector bit for bit
// whatever the buffer held (the engine hands it fresh slab memory, but a
// stale buffer must not leak into the sum).
func TestEmbedIntoOverwrites(t *testing.T) {
	h, err := NewHashing(96)
	if err != nil {
		t.Fatal(err)
	}
	text := "the harbour lighthouse in the winter storm"
	want := h.EmbedOne(text)
	dst := make([]float32, 96)
	for i := range dst {
		dst[i] = float32(i) + 0.5
	}
	h.EmbedInto(dst, text)
	for i := range want {
		if math.Float32bits(dst[i]) != math.Float32bits(want[i]) {
			t.Fatalf("component %d: %v, want %v", i, dst[i], want[i])
		}
	}
	defer func() {
		if recover() == nil {
			t.Fatal("EmbedInto accepted a buffer of the wrong length")
		}
	}()
	h.EmbedInto(make([]float32, 95), text)
}
