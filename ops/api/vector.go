package api

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"sync"
	"unsafe"
)

// Vector is an embedding on the wire: a JSON array of finite numbers that
// fit float32, or (as OpenAI's embeddings API offers with
// encoding_format=base64) a JSON string holding the standard base64 of the
// components as little-endian IEEE 754 float32s, which decodes in a
// hundredth of the time of 768 decimal numbers. It has its own JSON methods
// because encoding/json's reflection over []float32 cost ~345 µs to decode
// one 768-dimension cue, more than the ANN search it feeds
// (BenchmarkDecodeRecallVector768). It is stricter too: null elements are
// refused instead of read as zero. A Vector is assignable to and from
// []float32; it is always written as an array.
type Vector []float32

// recycled holds the memory of vectors handed back by Recycle, for later
// decodes: a recall's cue is dropped as soon as the recall returns, and at
// 1,000 recalls/s of 768 dimensions its 3 KB was an eighth of what the
// server allocated, so of how often the collector ran.
var recycled sync.Pool // *[]float32

// newVector returns n floats, recycled when a vector of about that size was
// handed back. Its capacity is its length, as make's would be.
func newVector(n int) Vector {
	if p, ok := recycled.Get().(*[]float32); ok && cap(*p) >= n && cap(*p) <= 2*n+16 {
		return Vector((*p)[:n:n])
	}
	return make(Vector, n)
}

// Recycle hands v's memory back for a later decode. Call it only when
// nothing refers to v any more (a recall's cue once the recall has
// returned) and do not use v after: the next decoded vector may be it.
func (v Vector) Recycle() {
	if cap(v) > 0 {
		s := []float32(v[:cap(v)])
		recycled.Put(&s)
	}
}

// EncodeVectorBase64 is the string form of v that Vector accepts: the
// standard base64 of its components as little-endian float32s.
func EncodeVectorBase64(v []float32) string {
	raw := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(f))
	}
	return base64.StdEncoding.EncodeToString(raw)
}

// unmarshalBase64 decodes the string form; b is a JSON string.
func (v *Vector) unmarshalBase64(b []byte) error {
	bad := func(why string) error {
		return &json.UnmarshalTypeError{Value: "string (" + why + ")", Type: reflect.TypeFor[Vector]()}
	}
	text := b[1 : len(b)-1]
	if bytes.IndexByte(text, '\\') >= 0 { // escapes: let encoding/json unquote
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		text = []byte(s)
	}
	// Decode into the vector's own memory, then read each component's
	// four little-endian bytes in place: one allocation instead of two.
	out := newVector((base64.StdEncoding.DecodedLen(len(text)) + 3) / 4)
	var raw []byte
	if len(out) > 0 {
		raw = unsafe.Slice((*byte)(unsafe.Pointer(&out[0])), 4*len(out))
	}
	n, err := base64.StdEncoding.Decode(raw, text)
	if err != nil {
		return bad("not standard base64 of little-endian float32s: " + err.Error())
	}
	if n%4 != 0 {
		return bad(fmt.Sprintf("base64 of %d bytes, not a whole number of 4-byte float32s", n))
	}
	out = out[: n/4 : n/4]
	for i := range out {
		f := math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		if f != f || math.IsInf(float64(f), 0) {
			return bad(fmt.Sprintf("component %d is not finite", i))
		}
		out[i] = f
	}
	*v = out
	return nil
}

var float32Type = reflect.TypeFor[float32]()

// UnmarshalJSON parses b, which the JSON decoder has already checked is one
// well-formed JSON value. Errors are *json.UnmarshalTypeError, so the
// decoder names the field they occurred in.
func (v *Vector) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*v = nil
		return nil
	}
	if len(b) >= 2 && b[0] == '"' {
		return v.unmarshalBase64(b)
	}
	if len(b) == 0 || b[0] != '[' {
		return &json.UnmarshalTypeError{Value: jsonKind(b), Type: reflect.TypeFor[Vector]()}
	}
	n := 1
	for _, c := range b {
		if c == ',' {
			n++
		}
	}
	out := newVector(n)[:0]
	i := skipSpace(b, 1)
	for i < len(b) && b[i] != ']' {
		start := i
		for i < len(b) && isNumberByte(b[i]) {
			i++
		}
		if i == start {
			return &json.UnmarshalTypeError{Value: jsonKind(b[start:]), Type: float32Type}
		}
		// The string shares b's bytes only for the call: neither parser
		// keeps anything of it, and the error path copies.
		f, err := parseFloat32(unsafe.String(&b[start], i-start))
		if err != nil {
			return &json.UnmarshalTypeError{Value: "number " + string(b[start:i]), Type: float32Type}
		}
		out = append(out, f)
		if i = skipSpace(b, i); i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
		}
	}
	*v = out
	return nil
}

// parseFloat32 is strconv.ParseFloat(s, 32), bit for bit, with a fast path
// for the numbers embeddings are written with: up to 15 or so significant
// digits and a small exponent. Parsing was most of a 768-number cue's
// decoding, and strconv's general scanner most of the parsing.
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

// MarshalJSON writes v as encoding/json writes a []float32 (the same bytes),
// without reflection. NaN and ±Inf have no JSON form and are an error.
func (v Vector) MarshalJSON() ([]byte, error) {
	if v == nil {
		return []byte("null"), nil
	}
	b := make([]byte, 0, 2+len(v)*12)
	b = append(b, '[')
	for i, f := range v {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = appendFloat32(b, f); err != nil {
			return nil, err
		}
	}
	return append(b, ']'), nil
}

// appendFloat32 formats f like encoding/json: the shortest representation,
// in exponent form only for very small or large magnitudes, with a
// two-digit exponent written without its leading zero (1e-07 → 1e-7).
func appendFloat32(b []byte, f float32) ([]byte, error) {
	x := float64(f)
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return b, &json.UnsupportedValueError{Value: reflect.ValueOf(f), Str: strconv.FormatFloat(x, 'g', -1, 32)}
	}
	format := byte('f')
	if a := math.Abs(x); a != 0 && (float32(a) < 1e-6 || float32(a) >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, x, format, -1, 32)
	if format == 'e' {
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, nil
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

// jsonKind names the kind of the JSON value starting b, as encoding/json
// does in its type errors.
func jsonKind(b []byte) string {
	if len(b) == 0 {
		return "value"
	}
	switch b[0] {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "bool"
	case 'n':
		return "null"
	}
	return "value"
}
