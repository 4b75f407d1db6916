// Package embed owns Engram's built-in embedder: a deterministic, offline
// signed feature-hashing embedder ("hash"). It needs no model and no network,
// so every engine can remember and recall text out of the box.
//
// It imports the standard library only. Package core imports it to provide
// the default "hash" embedder, so it must never import core (that would be an
// import cycle), net/http, or anything outside the standard library. The
// *Hashing type satisfies core.Embedder structurally.
//
// The algorithm is frozen under the fingerprint "hash-v1/<dim>": spaces store
// vectors made by it, so any change to tokenisation, hashing, weights or the
// stop-word list must come with a new fingerprint version. A golden test pins
// exact output values to catch accidental changes. Tokenisation relies on
// the standard library's Unicode tables; a Go upgrade only adds newly
// assigned characters, so only text using those could embed differently.
package embed

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"sync"
	"unicode"
	"unicode/utf8"
)

// Dimension bounds accepted by NewHashing.
const (
	MinDimension = 8
	MaxDimension = 4096
)

// Fingerprint prefix; bump the version whenever the algorithm changes.
const fingerprintPrefix = "hash-v1/"

// Frozen algorithm parameters (part of hash-v1).
const (
	// Per-feature-type seeds keep a word, a bigram and an n-gram with equal
	// rune content from landing on the same feature.
	seedWord   uint64 = 0x8f1bbcdcca62c1d6
	seedBigram uint64 = 0x5a827999ed9eba14
	seedGram3  uint64 = 0x6ed9eba18f1bbcdc
	seedGram4  uint64 = 0xca62c1d65a827999

	weightWord   = 1.0 // content-word unigram
	weightStop   = 0.1 // stop-word unigram: kept, but barely counts
	weightBigram = 0.5 // adjacent content words (stop words skipped)
	weightGrams  = 1.5 // L2 mass of one word's character n-grams (typo tolerance)

	// Word boundary markers around every token for character n-grams, so
	// prefixes and suffixes are features of their own. Control characters
	// never occur inside a token.
	runeBOW = 0x02
	runeEOW = 0x03

	fnvOffset uint64 = 14695981039346656037
	fnvPrime  uint64 = 1099511628211
)

// stopWords is a small English list; these words carry little meaning for
// recall, so they get weightStop and no bigrams or n-grams.
var stopWords = [...]string{
	"a", "about", "after", "all", "also", "am", "an", "and", "any", "are",
	"as", "at", "be", "been", "before", "being", "both", "but", "by", "can",
	"could", "did", "do", "does", "each", "for", "from", "had", "has", "have",
	"he", "her", "here", "him", "his", "how", "i", "if", "in", "into", "is",
	"it", "its", "just", "me", "more", "most", "my", "no", "nor", "not", "of",
	"on", "only", "or", "other", "our", "out", "over", "own", "s", "same",
	"she", "should", "so", "some", "such", "t", "than", "that", "the",
	"their", "them", "then", "there", "these", "they", "this", "those", "to",
	"too", "up", "very", "was", "we", "were", "what", "when", "where",
	"which", "while", "who", "whom", "why", "will", "with", "would", "you",
	"your",
}

// stopSet holds the word hashes of stopWords in a small open-addressing
// table (faster than a map on this hot path; no string is needed).
var (
	stopSet    [256]uint64
	stopMaxLen int
)

func init() {
	for _, w := range stopWords {
		rs := []rune(w)
		h := hashRunes(seedWord, rs)
		i := h & (uint64(len(stopSet)) - 1)
		for stopSet[i] != 0 {
			i = (i + 1) & (uint64(len(stopSet)) - 1)
		}
		stopSet[i] = h
		stopMaxLen = max(stopMaxLen, len(rs))
	}
}

func isStop(h uint64) bool {
	for i := h & (uint64(len(stopSet)) - 1); stopSet[i] != 0; i = (i + 1) & (uint64(len(stopSet)) - 1) {
		if stopSet[i] == h {
			return true
		}
	}
	return false
}

// Hashing is the built-in embedder; make one with NewHashing. It is safe for
// concurrent use.
//
// A text is split into tokens, maximal runs of Unicode letters, digits and
// combining marks, lower-cased rune by rune. The features are each token
// (stop words down-weighted), each pair of adjacent non-stop tokens, and the
// character 3- and 4-grams of each non-stop token padded with boundary
// markers (so partial words and typos still overlap); the n-grams outweigh
// the whole word, which keeps typo tolerance and spreads the signal over
// many small features, so hash collisions add little noise. Repeated
// features count 1+ln(tf). Each feature is added with a hash-chosen sign to
// two hash-chosen buckets, and the result is L2-normalised.
//
// A text with no letters or digits (empty, whitespace, punctuation only)
// embeds to the zero vector, as can, vanishingly rarely, a text of a few
// words whose features cancel exactly.
type Hashing struct {
	dim int
	fp  string
}

// NewHashing returns a hashing embedder producing dim-dimensional vectors;
// dim must be within [MinDimension, MaxDimension].
func NewHashing(dim int) (*Hashing, error) {
	if dim < MinDimension || dim > MaxDimension {
		return nil, fmt.Errorf("hashing embedder: dimension %d is out of range [%d, %d]", dim, MinDimension, MaxDimension)
	}
	return &Hashing{dim: dim, fp: fingerprintPrefix + strconv.Itoa(dim)}, nil
}

// Dimension returns the length of every vector.
func (h *Hashing) Dimension() int { return h.dim }

// Fingerprint returns "hash-v1/<dim>".
func (h *Hashing) Fingerprint() string { return h.fp }

// Deterministic reports that the same text always gives the same vector for
// a fingerprint, so the engine may recompute vectors instead of logging them.
func (h *Hashing) Deterministic() bool { return true }

// Embed embeds each text; see EmbedOne. Each vector has its own backing
// array so keeping one does not pin the whole batch.
func (h *Hashing) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([][]float32, len(texts))
	s := getScratch()
	defer putScratch(s)
	for i, t := range texts {
		// Embedding is CPU-only and fast; checking now and then is enough.
		if i > 0 && i%256 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		v := make([]float32, h.dim)
		s.embed(v, t)
		out[i] = v
	}
	return out, nil
}

// EmbedOne embeds one text. It allocates only the returned vector.
func (h *Hashing) EmbedOne(text string) []float32 {
	v := make([]float32, h.dim)
	h.EmbedInto(v, text)
	return v
}

// EmbedInto writes text's vector into dst, which must have Dimension
// components, and allocates nothing: the engine embeds straight into the
// memory it keeps the vector in.
func (h *Hashing) EmbedInto(dst []float32, text string) {
	if len(dst) != h.dim {
		panic("embed: EmbedInto into a vector of length " + strconv.Itoa(len(dst)) + ", want " + strconv.Itoa(h.dim))
	}
	clear(dst)
	s := getScratch()
	s.embed(dst, text)
	putScratch(s)
}

// token is one word: its lower-cased runes are scratch.runes[start:end],
// with runeBOW at start-1 and runeEOW at end.
type token struct {
	start, end int
	hash       uint64
	stop       bool
}

// slot is one entry of the open-addressing feature table.
type slot struct {
	key   uint64
	wsum  float32 // sum of the weights of every occurrence
	count uint32  // 0: empty
}

// scratch is per-call working memory, pooled so EmbedOne allocates nothing
// but its result.
type scratch struct {
	runes []rune
	toks  []token
	table []slot
	used  []int32 // occupied table slots in insertion order (deterministic sums)
	mask  int
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// maxPooledRunes bounds what a pooled scratch keeps, so one huge text does
// not pin its working memory for the life of the process.
const maxPooledRunes = 1 << 16

func getScratch() *scratch { return scratchPool.Get().(*scratch) }

func putScratch(s *scratch) {
	if cap(s.runes) > maxPooledRunes {
		return
	}
	scratchPool.Put(s)
}

// embed writes the normalised embedding of text into out (zeroed, len dim).
func (s *scratch) embed(out []float32, text string) {
	if len(out) == 0 { // a zero Hashing; NewHashing never allows it
		return
	}
	s.tokenize(text)
	if len(s.toks) == 0 {
		return
	}
	s.reset()
	var prev uint64
	havePrev := false
	for i := range s.toks {
		t := &s.toks[i]
		if t.stop {
			s.add(t.hash, weightStop)
			continue
		}
		s.add(t.hash, weightWord)
		if havePrev {
			s.add(mix(seedBigram^(prev*fnvPrime+t.hash)), weightBigram)
		}
		prev, havePrev = t.hash, true

		// Character n-grams over the padded word; their total L2 mass per
		// word is weightGrams whatever the word's length.
		n := t.end - t.start
		grams := n + max(n-1, 0)
		w := float32(weightGrams / math.Sqrt(float64(grams)))
		// Three 21-bit runes pack losslessly into 63 bits, so a 3-gram's
		// key is exact; a 4-gram extends its 3-gram's hash by one rune.
		p := s.runes[t.start-1 : t.end+1]
		for j := 0; j+3 <= len(p); j++ {
			h3 := mix(seedGram3 ^ (uint64(p[j]) | uint64(p[j+1])<<21 | uint64(p[j+2])<<42))
			s.add(h3, w)
			if j+4 <= len(p) {
				s.add(mix(h3^seedGram4+uint64(p[j+3])*fnvPrime), w)
			}
		}
	}

	dim := uint64(len(out))
	for _, i := range s.used {
		e := &s.table[i]
		w := e.wsum
		if e.count > 1 {
			w = float32(float64(e.wsum) * tfScale(e.count))
		}
		// Each feature goes to two buckets at weight/sqrt(2): the expected
		// collision noise is the same, but one collision with a heavy word
		// feature no longer moves a score by a lot on its own. The mixed key
		// has independent bits to spare: bits 44-63 and 24-43 pick the
		// buckets (multiply-shift; the bias is at most dim/2^20), bits 0 and
		// 1 flip the signs. Sign flips are done on the bits: a branch here
		// would be mispredicted half the time.
		wb := math.Float32bits(w * (math.Sqrt2 / 2))
		out[((e.key>>44)*dim)>>20] += math.Float32frombits(wb ^ uint32(e.key&1)<<31)
		out[((e.key>>24&(1<<20-1))*dim)>>20] += math.Float32frombits(wb ^ uint32(e.key&2)<<30)
		*e = slot{}
	}
	s.used = s.used[:0]

	// Four partial sums break the add dependency chain.
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(out); i += 4 {
		f0, f1, f2, f3 := float64(out[i]), float64(out[i+1]), float64(out[i+2]), float64(out[i+3])
		s0 += f0 * f0
		s1 += f1 * f1
		s2 += f2 * f2
		s3 += f3 * f3
	}
	for ; i < len(out); i++ {
		f := float64(out[i])
		s0 += f * f
	}
	sum := (s0 + s1) + (s2 + s3)
	if sum == 0 {
		return
	}
	inv := float32(1 / math.Sqrt(sum))
	for i := range out {
		out[i] *= inv
	}
}

// tfScales caches tfScale for small counts, the common case.
var tfScales = func() (t [64]float64) {
	for c := 1; c < len(t); c++ {
		t[c] = (1 + math.Log(float64(c))) / float64(c)
	}
	return t
}()

// tfScale turns the summed weight of a feature seen c times into its
// sub-linear weight: the mean weight times 1+ln(c).
func tfScale(c uint32) float64 {
	if c < uint32(len(tfScales)) {
		return tfScales[c]
	}
	return (1 + math.Log(float64(c))) / float64(c)
}

// asciiFold maps an ASCII byte to its lower-case form if it is a letter or
// digit, else to 0.
var asciiFold = func() (t [utf8.RuneSelf]byte) {
	for c := '0'; c <= '9'; c++ {
		t[c] = byte(c)
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = byte(c)
		t[c-'a'+'A'] = byte(c)
	}
	return t
}()

// foldRune returns r lower-cased if it belongs to a word (letter, number or
// combining mark), else 0.
func foldRune(r rune) rune {
	if r < utf8.RuneSelf {
		return rune(asciiFold[r])
	}
	if unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.IsMark(r) {
		return unicode.ToLower(r)
	}
	return 0
}

// tokenize fills s.runes and s.toks from text, hashing each word as it goes.
// Invalid UTF-8 decodes to U+FFFD, which is not a word rune, so it separates
// tokens.
func (s *scratch) tokenize(text string) {
	rs, toks := s.runes[:0], s.toks[:0]
	start := -1
	var h uint64
	for _, r := range text {
		var lr rune
		if r < utf8.RuneSelf {
			lr = rune(asciiFold[r])
		} else {
			lr = foldRune(r)
		}
		if lr == 0 {
			if start >= 0 {
				toks = appendToken(toks, start, len(rs), h)
				rs = append(rs, runeEOW)
				start = -1
			}
			continue
		}
		if start < 0 {
			rs = append(rs, runeBOW)
			start = len(rs)
			h = fnvOffset ^ seedWord
		}
		rs = append(rs, lr)
		h ^= uint64(lr)
		h *= fnvPrime
	}
	if start >= 0 {
		toks = appendToken(toks, start, len(rs), h)
		rs = append(rs, runeEOW)
	}
	s.runes, s.toks = rs, toks
}

// appendToken finishes a word whose unmixed FNV state is h; the result
// equals hashRunes(seedWord, word).
func appendToken(toks []token, start, end int, h uint64) []token {
	h = mix(h)
	stop := end-start <= stopMaxLen && isStop(h)
	return append(toks, token{start: start, end: end, hash: h, stop: stop})
}

// reset sizes the feature table for the current tokens, at most half full.
// With T tokens of L_i runes each there are at most T unigrams, T-1 bigrams
// and sum(2*L_i - 1) n-grams; s.runes holds sum(L_i) + 2T runes.
func (s *scratch) reset() {
	bound := 2*len(s.runes) - 3*len(s.toks)
	size := 64
	for size < 2*bound {
		size <<= 1
	}
	if len(s.table) < size {
		// Slots are zeroed on use, so a smaller table is always clean.
		s.table = make([]slot, size)
	}
	s.mask = size - 1
}

// add counts one occurrence of feature h with weight w.
func (s *scratch) add(h uint64, w float32) {
	i := int(h) & s.mask
	for {
		e := &s.table[i]
		if e.count == 0 {
			*e = slot{key: h, wsum: w, count: 1}
			s.used = append(s.used, int32(i))
			return
		}
		if e.key == h {
			e.wsum += w
			e.count++
			return
		}
		i = (i + 1) & s.mask
	}
}

// hashRunes is FNV-1a over whole runes from a seeded basis, finished with
// the splitmix64 mixer so every output bit depends on every input rune.
func hashRunes(seed uint64, rs []rune) uint64 {
	h := fnvOffset ^ seed
	for _, r := range rs {
		h ^= uint64(r)
		h *= fnvPrime
	}
	return mix(h)
}

// mix is the splitmix64 finaliser.
func mix(h uint64) uint64 {
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}
