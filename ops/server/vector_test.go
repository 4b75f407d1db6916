package server

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	stdjson "encoding/json"
	"errors"
	"math"
	"math/rand"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/go-json-experiment/json"

	"github.com/engram-ops/engram-ops/ops/api"
	"github.com/engram-ops/engram-ops/ops/api/apijson"
	"github.com/engram-ops/engram-ops/ops/client"
)

// The vector codec's wire bytes and decoded values are encoding/json's
// for []float32.
func TestVectorMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	cases := [][]float32{nil, {}, {0}, {1, -1, 0.5}, {1e-7, -3e-9, 1e21, 2.5e30, 1e-45, math.MaxFloat32, float32(math.Copysign(0, -1))}}
	for range 50 {
		v := make([]float32, r.Intn(40))
		for i := range v {
			v[i] = float32(r.NormFloat64() * math.Pow(10, float64(r.Intn(20)-10)))
		}
		cases = append(cases, v)
	}
	for _, v := range cases {
		want, err := stdjson.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		got, err := json.Marshal(v, apijson.EncodeOptions)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("marshal %v:\n got %s\nwant %s", v, got, want)
		}
		var std, ours []float32
		if err := stdjson.Unmarshal(want, &std); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(want, &ours, decodeOptions); err != nil {
			t.Fatalf("unmarshal %s: %v", want, err)
		}
		if (std == nil) != (ours == nil) || len(std) != len(ours) {
			t.Fatalf("unmarshal %s: %v vs %v", want, ours, std)
		}
		for i := range std {
			if math.Float32bits(std[i]) != math.Float32bits(ours[i]) {
				t.Fatalf("unmarshal %s: [%d] %v vs %v", want, i, ours[i], std[i])
			}
		}
	}
}

// TestVectorRefusesWhatIsNotAFloat32: a request whose embedding is not
// finite float32s is a 400 naming the field and what was wrong.
func TestVectorRefusesWhatIsNotAFloat32(t *testing.T) {
	for in, want := range map[string]string{
		`{"content":"x","embedding":[1,"2"]}`:        "INVALID_FIELD_TYPE: field \"embedding\" must be a number, got a string",
		`{"content":"x","embedding":[1,null]}`:       "INVALID_FIELD_TYPE: field \"embedding\" must be a number, got null",
		`{"content":"x","embedding":[[1]]}`:          "INVALID_FIELD_TYPE: field \"embedding\" must be a number, got an array",
		`{"content":"x","embedding":[true]}`:         "INVALID_FIELD_TYPE: field \"embedding\" must be a number, got a boolean",
		`{"content":"x","embedding":[1e39]}`:         "INVALID_NUMBER: field \"embedding\": 1e39 does not fit float32",
		`{"content":"x","embedding":[-1e999]}`:       "INVALID_NUMBER: field \"embedding\": -1e999 does not fit float32",
		`{"content":"x","embedding":"1,2"}`:          "INVALID_FIELD_TYPE: field \"embedding\" must be an array of numbers or a base64 string of little-endian float32s; the string is not standard base64 of little-endian float32s: illegal base64 data at input byte 1",
		`{"content":"x","embedding":"AAAA AAAA"}`:    "illegal base64 data at input byte 4",
		`{"content":"x","embedding":"AACAPw"}`:       "illegal base64 data at input byte 4",
		`{"content":"x","embedding":"AACAPwAA"}`:     "base64 of 6 bytes, not a whole number of 4-byte float32s",
		`{"content":"x","embedding":"AACAPwAAwH8="}`: "component 1 is not finite",
		`{"content":"x","embedding":{"a":1}}`:        "INVALID_FIELD_TYPE: field \"embedding\" must be an array, got an object",
		`{"content":"x","embedding":[ 1 , 2 ,{}]}`:   "INVALID_FIELD_TYPE: field \"embedding\" must be a number, got an object",
		`{"memories":[{},{"embedding":[1e39]}]}`:     "INVALID_NUMBER: field \"memories[1].embedding\": 1e39 does not fit float32",
	} {
		var err error
		if strings.HasPrefix(in, `{"memories"`) {
			var b api.BatchRequest
			err = decodeBody(strings.NewReader(in), &b)
		} else {
			var b api.RememberRequest
			err = decodeBody(strings.NewReader(in), &b)
		}
		var he *httpError
		if !errors.As(err, &he) || he.status != 400 || !strings.Contains(he.code+": "+he.message, want) {
			t.Errorf("%s: %v, want a 400 containing %q", in, err, want)
		}
	}
	var b api.RememberRequest
	if err := decodeBody(strings.NewReader(" {\"embedding\" : [ 1 ,\n2\t, -3.5e-2 ] } "), &b); err != nil || len(b.Embedding) != 3 || b.Embedding[2] != -0.035 {
		t.Errorf("whitespace: %v %v", err, b.Embedding)
	}
}

func TestVectorBase64(t *testing.T) {
	type body struct {
		Embedding []float32 `json:"embedding"`
	}
	want := []float32{1, -0.5, 3.25e-7, float32(math.SmallestNonzeroFloat32), -math.MaxFloat32}
	enc := client.EncodeVectorBase64(want)
	for _, in := range []string{`{"embedding":"` + enc + `"}`, `{"embedding":"` + strings.ReplaceAll(enc, "/", `\/`) + `"}`} {
		var b body
		if err := decodeBody(strings.NewReader(in), &b); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if !slices.Equal(b.Embedding, want) {
			t.Fatalf("%s: %v, want %v", in, b.Embedding, want)
		}
	}
	// 1.0 as little-endian float32 is 00 00 80 3f.
	var b body
	if err := decodeBody(strings.NewReader(`{"embedding":"AACAPw=="}`), &b); err != nil || len(b.Embedding) != 1 || b.Embedding[0] != 1 {
		t.Fatalf("AACAPw==: %v %v", b.Embedding, err)
	}
	// Written back as an array.
	var out bytes.Buffer
	if err := apijson.Encode(&out, b); err != nil || out.String() != `{"embedding":[1]}`+"\n" {
		t.Fatalf("marshalled %s (%v)", out.Bytes(), err)
	}
}

func TestVectorRefusesNonFiniteOnMarshal(t *testing.T) {
	for _, f := range []float32{float32(math.NaN()), float32(math.Inf(1))} {
		var out bytes.Buffer
		if err := apijson.Encode(&out, api.ListedMemory{Embedding: []float32{1, f}}); err == nil {
			t.Errorf("%v marshalled: %s", f, out.Bytes())
		}
	}
}

// TestParseFloats: the GET recall embedding parameter, as the client
// writes it.
func TestParseFloats(t *testing.T) {
	v := []float32{0, 1, -0.5, 1e-7, 3.4028235e38, float32(math.Pi)}
	got, err := parseFloats(client.FormatFloats(v))
	if err != nil || !slices.Equal(got, v) {
		t.Fatalf("%v, %v; want %v", got, err, v)
	}
	if _, err := parseFloats("[1e999]"); err == nil {
		t.Errorf("out-of-range accepted")
	}
}

// FuzzVectorUnmarshal: the vector codec decodes what encoding/json decodes
// into a []float32 (refusing only null elements, on purpose), and a string
// as the base64 of finite little-endian float32s.
func FuzzVectorUnmarshal(f *testing.F) {
	for _, s := range []string{`[1,2,3]`, `[]`, `null`, `[1e39]`, `[-0.0, 1e-45]`, `[1,"x"]`, `[ 1 , 2 ]`} {
		f.Add([]byte(s))
	}
	for _, s := range []string{`"AACAPw=="`, `""`, `"AACAPwAA"`, `"AACAPwAAwH8="`, `"AAC\u0041Pw=="`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var ours []float32
		err := json.Unmarshal(data, &ours, decodeOptions)
		var str string
		if stdjson.Unmarshal(data, &str) == nil && json.Unmarshal(data, &str) == nil {
			// The string form: base64 of little-endian finite float32s.
			raw, berr := base64.StdEncoding.DecodeString(str)
			ok := berr == nil && len(raw)%4 == 0
			var want []float32
			for i := 0; ok && i < len(raw); i += 4 {
				f := math.Float32frombits(binary.LittleEndian.Uint32(raw[i:]))
				ok = !math.IsNaN(float64(f)) && !math.IsInf(float64(f), 0)
				want = append(want, f)
			}
			if ok != (err == nil) {
				t.Fatalf("%q: reference ok %v, codec error %v", data, ok, err)
			}
			if ok && !slices.EqualFunc(want, ours, func(a, b float32) bool { return math.Float32bits(a) == math.Float32bits(b) }) {
				t.Fatalf("%q: %v, want %v", data, ours, want)
			}
			return
		}
		var std []float32
		stdErr := stdjson.Unmarshal(data, &std)
		if stdErr != nil {
			if err == nil && !bytes.Contains(data, []byte("null")) && utf8.Valid(data) {
				t.Fatalf("%q: encoding/json refused (%v), codec accepted %v", data, stdErr, ours)
			}
			return
		}
		if err != nil {
			if bytes.Contains(data, []byte("null")) || !utf8.Valid(data) {
				return // null elements and invalid UTF-8 are refused on purpose
			}
			t.Fatalf("%q: encoding/json accepted %v, codec refused: %v", data, std, err)
		}
		if len(std) != len(ours) {
			t.Fatalf("%q: %v vs %v", data, ours, std)
		}
		for i := range std {
			if math.Float32bits(std[i]) != math.Float32bits(ours[i]) {
				t.Fatalf("%q: [%d] %v vs %v", data, i, ours[i], std[i])
			}
		}
	})
}

// TestParseFloat32MatchesStrconv: the fast path gives strconv's float32 bit
// for bit, on the forms clients write embeddings in and on edge cases.
func TestParseFloat32MatchesStrconv(t *testing.T) {
	check := func(s string) {
		t.Helper()
		want, werr := strconv.ParseFloat(s, 32)
		got, err := parseFloat32(s)
		if (err != nil) != (werr != nil) || math.Float32bits(got) != math.Float32bits(float32(want)) {
			t.Fatalf("%q: got %v (%x, err %v), strconv %v (%x, err %v)", s, got, math.Float32bits(got), err,
				float32(want), math.Float32bits(float32(want)), werr)
		}
	}
	for _, s := range []string{"0", "-0", "0.0", "-0.0", "1", "-1", "0.5", "1e-45", "1.4e-45", "1e-38", "1.1754943e-38",
		"3.4028235e38", "3.4028236e38", "1e39", "-1e39", "123456789012345678", "1234567890123456789012", "0.000001",
		"16777217", "16777216.5", "9007199254740993", "1e22", "1e23", "1e-22", "1e-23", "2.5e-3", "7E+2", "0.1e1",
		"100000000000000000000000000000", "0.30000001192092896", "33554431", "0.000000000000000000000000000000000001",
		// float64 rounding lands these on a float32 rounding midpoint; rounding
		// again to float32 would differ from strconv's single rounding.
		"-0.0007312830130103976", "73.24419784545898", "-0.0001435046797269024", "13.73503828048706"} {
		check(s)
	}
	r := rand.New(rand.NewSource(1))
	for range 200_000 {
		f := float32(r.NormFloat64() * math.Pow(10, float64(r.Intn(12)-8)))
		check(strconv.FormatFloat(float64(f), 'g', -1, 32))                      // Go's float32 shortest form
		check(strconv.FormatFloat(float64(f), 'g', -1, 64))                      // float32 widened, then shortest (JavaScript, Python)
		check(strconv.FormatFloat(float64(f), 'e', r.Intn(17), 64))              // fixed digits
		check(strconv.FormatFloat(float64(f)*(1+r.Float64()*1e-7), 'f', -1, 64)) // not a float32 at all
	}
}

// FuzzParseFloat32: wherever the fast path answers, it answers as strconv.
func FuzzParseFloat32(f *testing.F) {
	for _, s := range []string{"0", "-0.5", "1e10", "73.24419784545898", "1.5E-7", "123456789012345678", "0.1e+1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := fastFloat32(s)
		if !ok {
			return
		}
		want, err := strconv.ParseFloat(s, 32)
		if err != nil || math.Float32bits(got) != math.Float32bits(float32(want)) {
			t.Fatalf("%q: fast path %v (%x), strconv %v (%x, err %v)", s, got, math.Float32bits(got), float32(want), math.Float32bits(float32(want)), err)
		}
	})
}

// TestRecycledVectorsDecodeCleanly: a decode into recycled memory gives the
// same vector as a fresh one, whatever the recycled vector's length and
// contents, for both wire forms, and never hands the same memory to two
// live vectors.
func TestRecycledVectorsDecodeCleanly(t *testing.T) {
	want := []float32{0.5, -1.25, 3, 0, 1e-7, -2}
	arr, _ := stdjson.Marshal(want)
	b64, _ := stdjson.Marshal(client.EncodeVectorBase64(want))
	for _, wire := range [][]byte{arr, b64} {
		for _, prior := range []int{len(want), len(want) + 3, 1, 2*len(want) + 40} {
			old := make([]float32, prior)
			for i := range old {
				old[i] = 99
			}
			recycleVector(old)
			var a, b []float32
			if err := json.Unmarshal(wire, &a, decodeOptions); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(wire, &b, decodeOptions); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(a, want) || !slices.Equal(b, want) || len(a) != cap(a) {
				t.Fatalf("recycled %d: got %v / %v (cap %d), want %v", prior, a, b, cap(a), want)
			}
			if &a[0] == &b[0] {
				t.Fatal("two live vectors share memory")
			}
			recycleVector(a)
			recycleVector(b)
		}
	}
	recycleVector(nil) // a recall by text has no vector
}
