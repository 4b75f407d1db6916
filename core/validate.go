package core

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

func lower(s string) string { return strings.ToLower(strings.TrimSpace(s)) }
func itoa(n int) string     { return strconv.Itoa(n) }

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// ValidateSpaceName checks Engram's rule: 3–64 characters of [a-z0-9_-].
func ValidateSpaceName(name string) error {
	if len(name) < 3 || len(name) > 64 {
		return Errorf(KindInvalid, "INVALID_SPACE", "space name %q must be 3-64 characters of [a-z0-9_-]; it is %d bytes", truncate(name, 80), len(name))
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return Errorf(KindInvalid, "INVALID_SPACE", "space name %q must be 3-64 characters of [a-z0-9_-]; %s is not allowed", name, charAt(name, i))
		}
	}
	return nil
}

// charAt names the character of s at byte i for an error message: the
// quoted rune (a multi-byte one whole), or the position of a byte that is
// not UTF-8.
func charAt(s string, i int) string {
	r, n := utf8.DecodeRuneInString(s[i:])
	if r == utf8.RuneError && n <= 1 {
		return fmt.Sprintf("invalid UTF-8 at byte %d (0x%02x)", i, s[i])
	}
	return strconv.QuoteRune(r)
}

// validateID checks a client-given memory id: 1..limit bytes of
// [A-Za-z0-9._:@-], so it is safe in URLs and keys.
func validateID(id string, limit int) error {
	if id == "" {
		return Errorf(KindInvalid, "INVALID_ID", "memory id is empty")
	}
	if len(id) > limit {
		return Errorf(KindInvalid, "INVALID_ID", "memory id is %d bytes; the limit is %d", len(id), limit).WithDetails("limit", limit)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '@' || c == '-') {
			return Errorf(KindInvalid, "INVALID_ID", "memory id %q contains %s; allowed are letters, digits and . _ : @ -", truncate(id, 80), charAt(id, i))
		}
	}
	return nil
}

// truncate cuts s to at most n bytes, at a rune boundary, marking the cut
// with "…".
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for i := n; i > 0 && i > n-utf8.UTFMax; i-- {
		if utf8.RuneStart(s[i]) {
			return s[:i] + "…"
		}
	}
	return s[:n] + "…"
}

// validateVector checks dimension and finiteness.
func validateVector(v []float32, dim int, what string) error {
	if len(v) != dim {
		return Errorf(KindInvalid, "INVALID_EMBEDDING_DIMENSION", "%s has %d dimensions; this space requires exactly %d", what, len(v), dim).WithDetails("expected", dim, "actual", len(v))
	}
	for i, f := range v {
		if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
			return Errorf(KindInvalid, "INVALID_EMBEDDING_VALUE", "%s has a non-finite value at index %d", what, i).WithDetails("index", i)
		}
	}
	return nil
}

func validateFinite(f float64, code, what string) error {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return Errorf(KindInvalid, code, "%s must be a finite number", what)
	}
	return nil
}

// idGen makes sortable ids: "mem_" + 10 chars of millisecond time + 16 random
// chars, Crockford base32, so ids sort by creation time.
type idGen struct {
	mu   sync.Mutex
	last int64
	seq  uint64
}

const crockford = "0123456789abcdefghjkmnpqrstvwxyz"

func (g *idGen) next(prefix string, now time.Time) string {
	ms := now.UnixMilli()
	var rnd [10]byte
	_, _ = rand.Read(rnd[:])
	g.mu.Lock()
	// Within one millisecond, keep ids increasing by bumping a counter in the
	// random part's high bits.
	if ms <= g.last {
		ms = g.last
		g.seq++
	} else {
		g.last, g.seq = ms, 0
	}
	seq := g.seq
	g.mu.Unlock()
	binary.BigEndian.PutUint16(rnd[0:2], uint16(seq))
	var b strings.Builder
	b.Grow(len(prefix) + 26)
	b.WriteString(prefix)
	for i := 9; i >= 0; i-- {
		b.WriteByte(crockford[(ms>>(5*uint(i)))&31])
	}
	var acc uint64
	bits := 0
	for _, x := range rnd {
		acc = acc<<8 | uint64(x)
		bits += 8
		for bits >= 5 && b.Len() < len(prefix)+26 {
			bits -= 5
			b.WriteByte(crockford[(acc>>uint(bits))&31])
		}
	}
	return b.String()
}

// retrievability is R = exp(-Δt/S).
func retrievability(elapsed, stability time.Duration) float64 {
	if elapsed <= 0 {
		return 1
	}
	if stability <= 0 {
		return 0
	}
	return math.Exp(-float64(elapsed) / float64(stability))
}

// reinforce returns the stability after a successful recall at retrievability
// r: the lower r was (the longer the gap), the larger the gain — the spacing
// effect.
func reinforce(s time.Duration, r float64) time.Duration {
	gain := 1.1 + 2.0*(1-r)
	ns := float64(s) * gain
	const maxStability = float64(10 * 365 * 24 * time.Hour)
	if ns > maxStability {
		ns = maxStability
	}
	return time.Duration(ns)
}

// initialStability scales the configured base by confidence: a confident
// memory fades more slowly.
func initialStability(base time.Duration, confidence float64) time.Duration {
	return time.Duration(float64(base) * (0.5 + confidence))
}
