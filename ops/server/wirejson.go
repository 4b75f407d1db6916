package server

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"sync"
	"unsafe"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// The wire types of ops/api are encoded and decoded with one library,
// go-json-experiment/json. Embeddings ([]float32 in the wire types) have a
// codec of their own, registered here per call rather than as methods of
// the wire types: on decode they may also be a base64 string (as OpenAI's
// embeddings API offers with encoding_format=base64: the standard base64
// of the components as little-endian IEEE 754 float32s), null elements are
// refused instead of read as zero, and arrays of numbers are parsed with a
// fast path for the digits embeddings are written with. On encode the
// library writes them (as an array, as encoding/json does).

// decodeOptions: unknown fields are refused. encoding/json/v2 semantics
// also refuse duplicate names and invalid UTF-8 (v1 kept the last
// duplicate and replaced bad bytes), and match names case-sensitively, as
// the field names are documented.
var decodeOptions = json.JoinOptions(
	json.RejectUnknownMembers(true),
	json.WithUnmarshalers(json.UnmarshalFromFunc(unmarshalVector)),
)

var (
	vectorType  = reflect.TypeFor[[]float32]()
	float32Type = reflect.TypeFor[float32]()
)

// recycled holds the memory of vectors handed back by recycleVector, for
// later decodes: a recall's cue is dropped as soon as the recall returns.
var recycled sync.Pool // *[]float32

// newVector returns n floats, recycled when a vector of about that size was
// handed back. Its capacity is its length, as make's would be.
func newVector(n int) []float32 {
	if p, ok := recycled.Get().(*[]float32); ok && cap(*p) >= n && cap(*p) <= 2*n+16 {
		return (*p)[:n:n]
	}
	return make([]float32, n)
}

// recycleVector hands v's memory back for a later decode. Call it only
// when nothing refers to v any more (a recall's cue once the recall has
// returned) and do not use v after: the next decoded vector may be it.
func recycleVector(v []float32) {
	if cap(v) > 0 {
		s := v[:cap(v)]
		recycled.Put(&s)
	}
}

// unmarshalVector decodes an embedding: null, a JSON array of finite
// numbers that fit float32, or a base64 string of little-endian float32s.
// Anything else goes to the library, which reports the type mismatch.
func unmarshalVector(dec *jsontext.Decoder, v *[]float32) error {
	switch dec.PeekKind() {
	case 'n':
		_, err := dec.ReadToken()
		*v = nil
		return err
	case '"':
		raw, err := dec.ReadValue()
		if err != nil {
			return err
		}
		out, err := parseVectorBase64(raw)
		if err != nil {
			return err
		}
		*v = out
		return nil
	case '[':
		raw, err := dec.ReadValue()
		if err != nil {
			return err
		}
		out, err := parseVectorArray(raw)
		if err != nil {
			return err
		}
		*v = out
		return nil
	}
	return errors.ErrUnsupported
}

// parseVectorBase64 decodes raw, a valid JSON string, as the standard
// base64 of little-endian finite float32s.
func parseVectorBase64(raw jsontext.Value) ([]float32, error) {
	bad := func(why string) error {
		return &json.SemanticError{JSONKind: '"', GoType: vectorType, Err: errors.New(why)}
	}
	text := raw[1 : len(raw)-1]
	if bytes.IndexByte(text, '\\') >= 0 {
		var err error
		if text, err = jsontext.AppendUnquote(nil, raw); err != nil {
			return nil, err
		}
	}
	// Decode into the vector's own memory, then read each component's
	// four little-endian bytes in place: one allocation instead of two.
	out := newVector((base64.StdEncoding.DecodedLen(len(text)) + 3) / 4)
	var b []byte
	if len(out) > 0 {
		b = unsafe.Slice((*byte)(unsafe.Pointer(&out[0])), 4*len(out))
	}
	n, err := base64.StdEncoding.Decode(b, text)
	if err != nil {
		return nil, bad("not standard base64 of little-endian float32s: " + err.Error())
	}
	if n%4 != 0 {
		return nil, bad(fmt.Sprintf("base64 of %d bytes, not a whole number of 4-byte float32s", n))
	}
	out = out[: n/4 : n/4]
	for i := range out {
		f := math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		if f != f || math.IsInf(float64(f), 0) {
			return nil, bad(fmt.Sprintf("component %d is not finite", i))
		}
		out[i] = f
	}
	return out, nil
}

// parseVectorArray parses raw, a valid JSON array, as finite numbers that
// fit float32. Errors name the offending element's kind or number.
func parseVectorArray(raw jsontext.Value) ([]float32, error) {
	n := 1
	for _, c := range raw {
		if c == ',' {
			n++
		}
	}
	out := newVector(n)[:0]
	i := skipSpace(raw, 1)
	for i < len(raw) && raw[i] != ']' {
		start := i
		for i < len(raw) && isNumberByte(raw[i]) {
			i++
		}
		if i == start {
			k := jsontext.Kind(raw[start])
			if k == 't' || k == 'f' {
				k = 't'
			}
			return nil, &json.SemanticError{JSONKind: k, GoType: float32Type}
		}
		// The string shares raw's bytes only for the call: neither parser
		// keeps anything of it, and the error path copies.
		f, err := parseFloat32(unsafe.String(&raw[start], i-start))
		if err != nil {
			return nil, &json.SemanticError{JSONKind: '0', JSONValue: jsontext.Value(bytes.Clone(raw[start:i])), GoType: float32Type, Err: err}
		}
		out = append(out, f)
		if i = skipSpace(raw, i); i < len(raw) && raw[i] == ',' {
			i = skipSpace(raw, i+1)
		}
	}
	return out, nil
}

// parseFloats parses a JSON array of numbers (the GET recall embedding).
func parseFloats(s string) ([]float32, error) {
	var v []float32
	if err := json.Unmarshal([]byte(s), &v, decodeOptions); err != nil {
		return nil, err
	}
	return v, nil
}

// parseFloat32 is strconv.ParseFloat(s, 32), bit for bit, with a fast path
// for the numbers embeddings are written with: up to 15 or so significant
// digits and a small exponent.
func parseFloat32(s string) (float32, error) {
	if f, ok := fastFloat32(s); ok {
		return f, nil
	}
	f, err := strconv.ParseFloat(s, 32)
	return float32(f), err
}

// pow10 holds the powers of ten float64 represents exactly.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// fastFloat32 parses s, a JSON number -?d+(.d+)?([eE][+-]?d+)?, when that
// can be done exactly without strconv, and reports whether it did. With a
// decimal mantissa m ≤ 2^53 and a power of ten up to 10^22, both exact in
// float64, m×10^e or m/10^-e is one correctly rounded float64 operation
// (Clinger's fast path). Rounding that float64 to float32 again is then
// exact too, unless it lies on a float32 rounding midpoint (the exact value
// may have been on either side): those go to strconv.
func fastFloat32(s string) (float32, bool) {
	i := 0
	neg := i < len(s) && s[i] == '-'
	if neg {
		i++
	}
	exp := 0
	j, m, digits, ok := mantissaDigits(s, i, 0, 0)
	if !ok || j == i {
		return 0, false
	}
	i = j
	if i < len(s) && s[i] == '.' {
		j, m, _, ok = mantissaDigits(s, i+1, m, digits)
		if !ok || j == i+1 {
			return 0, false
		}
		exp -= j - (i + 1)
		i = j
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		eneg := false
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			eneg = s[i] == '-'
			i++
		}
		e, expStart := 0, i
		for ; i < len(s) && '0' <= s[i] && s[i] <= '9'; i++ {
			if e < 1000 {
				e = e*10 + int(s[i]-'0')
			}
		}
		if i == expStart {
			return 0, false
		}
		if eneg {
			e = -e
		}
		exp += e
	}
	if i != len(s) || m > 1<<53 {
		return 0, false
	}
	var f float64
	switch {
	case m == 0:
	case exp >= 0 && exp < len(pow10):
		f = float64(m) * pow10[exp]
	case exp < 0 && -exp < len(pow10):
		f = float64(m) / pow10[-exp]
	default:
		return 0, false
	}
	// With those bounds 1e-22 ≤ f < 2^53×10^22 ≈ 9e37, inside float32's
	// normal range: no overflow and no subnormal.
	if math.Float64bits(f)&(1<<29-1) == 1<<28 {
		return 0, false
	}
	r := float32(f)
	if neg {
		r = -r
	}
	return r, true
}

// mantissaDigits adds the run of digits in s from i to the mantissa m of
// so many significant digits (leading zeros of the number add nothing) and
// returns where the run ends; ok is false past 19 significant digits,
// which may overflow m.
func mantissaDigits(s string, i int, m uint64, digits int) (end int, _ uint64, _ int, ok bool) {
	for ; i < len(s) && '0' <= s[i] && s[i] <= '9'; i++ {
		if m == 0 && s[i] == '0' {
			continue
		}
		if digits == 19 {
			return i, m, digits, false
		}
		m = m*10 + uint64(s[i]-'0')
		digits++
	}
	return i, m, digits, true
}

func isNumberByte(c byte) bool {
	return c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}
