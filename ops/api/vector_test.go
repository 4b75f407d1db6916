package api

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"math/rand"
	"slices"
	"strings"
	"testing"
)

// The wire bytes and decoded values match encoding/json's for []float32.
func TestVectorMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	cases := [][]float32{nil, {}, {0}, {1, -1, 0.5}, {1e-7, -3e-9, 1e21, 2.5e30, 1e-45, math.MaxFloat32, -0.0}}
	for range 50 {
		v := make([]float32, r.Intn(40))
		for i := range v {
			v[i] = float32(r.NormFloat64() * math.Pow(10, float64(r.Intn(20)-10)))
		}
		cases = append(cases, v)
	}
	for _, v := range cases {
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		got, err := json.Marshal(Vector(v))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("marshal %v:\n got %s\nwant %s", v, got, want)
		}
		var std []float32
		var ours Vector
		if err := json.Unmarshal(want, &std); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(want, &ours); err != nil {
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

func TestVectorRefusesWhatIsNotAFloat32(t *testing.T) {
	type body struct {
		Embedding Vector `json:"embedding"`
	}
	for in, want := range map[string]string{
		`{"embedding":[1,"2"]}`:        "string",
		`{"embedding":[1,null]}`:       "null",
		`{"embedding":[[1]]}`:          "array",
		`{"embedding":[true]}`:         "bool",
		`{"embedding":[1e39]}`:         "number 1e39",
		`{"embedding":[-1e999]}`:       "number -1e999",
		`{"embedding":"1,2"}`:          "string (not standard base64 of little-endian float32s: illegal base64 data at input byte 1)",
		`{"embedding":"AAAA AAAA"}`:    "string (not standard base64 of little-endian float32s: illegal base64 data at input byte 4)",
		`{"embedding":"AACAPw"}`:       "string (not standard base64 of little-endian float32s: illegal base64 data at input byte 4)",
		`{"embedding":"AACAPwAA"}`:     "string (base64 of 6 bytes, not a whole number of 4-byte float32s)",
		`{"embedding":"AACAPwAAwH8="}`: "string (component 1 is not finite)",
		`{"embedding":{"a":1}}`:        "object",
		`{"embedding":[ 1 , 2 ,{}]}`:   "object",
	} {
		var b body
		err := json.Unmarshal([]byte(in), &b)
		var te *json.UnmarshalTypeError
		if !errors.As(err, &te) || te.Value != want || te.Field != "embedding" {
			t.Errorf("%s: %v (%#v), want a type error about %q in field embedding", in, err, te, want)
		}
	}
	var b body
	if err := json.Unmarshal([]byte(" {\"embedding\" : [ 1 ,\n2\t, -3.5e-2 ] } "), &b); err != nil || len(b.Embedding) != 3 || b.Embedding[2] != -0.035 {
		t.Errorf("whitespace: %v %v", err, b.Embedding)
	}
}

func TestVectorBase64(t *testing.T) {
	type body struct {
		Embedding Vector `json:"embedding"`
	}
	want := []float32{1, -0.5, 3.25e-7, float32(math.SmallestNonzeroFloat32), -math.MaxFloat32}
	enc := EncodeVectorBase64(want)
	for _, in := range []string{`{"embedding":"` + enc + `"}`, `{"embedding":"` + strings.ReplaceAll(enc, "/", `\/`) + `"}`} {
		var b body
		if err := json.Unmarshal([]byte(in), &b); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if !slices.Equal([]float32(b.Embedding), want) {
			t.Fatalf("%s: %v, want %v", in, b.Embedding, want)
		}
	}
	// 1.0 as little-endian float32 is 00 00 80 3f.
	var b body
	if err := json.Unmarshal([]byte(`{"embedding":"AACAPw=="}`), &b); err != nil || len(b.Embedding) != 1 || b.Embedding[0] != 1 {
		t.Fatalf("AACAPw==: %v %v", b.Embedding, err)
	}
	// Written back as an array.
	out, _ := json.Marshal(b)
	if string(out) != `{"embedding":[1]}` {
		t.Fatalf("marshalled %s", out)
	}
}

func TestVectorRefusesNonFiniteOnMarshal(t *testing.T) {
	for _, f := range []float32{float32(math.NaN()), float32(math.Inf(1))} {
		if _, err := json.Marshal(Vector{1, f}); err == nil {
			t.Errorf("%v marshalled", f)
		}
	}
}

func FuzzVectorUnmarshal(f *testing.F) {
	for _, s := range []string{`[1,2,3]`, `[]`, `null`, `[1e39]`, `[-0.0, 1e-45]`, `[1,"x"]`, `[ 1 , 2 ]`} {
		f.Add([]byte(s))
	}
	for _, s := range []string{`"AACAPw=="`, `""`, `"AACAPwAA"`, `"AACAPwAAwH8="`, `"AAC\u0041Pw=="`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var ours Vector
		err := json.Unmarshal(data, &ours)
		var str string
		if json.Unmarshal(data, &str) == nil {
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
				t.Fatalf("%q: reference ok %v, Vector error %v", data, ok, err)
			}
			if ok && !slices.EqualFunc(want, []float32(ours), func(a, b float32) bool { return math.Float32bits(a) == math.Float32bits(b) }) {
				t.Fatalf("%q: %v, want %v", data, ours, want)
			}
			return
		}
		var std []float32
		stdErr := json.Unmarshal(data, &std)
		if stdErr != nil {
			if err == nil && !bytes.Contains(data, []byte("null")) {
				t.Fatalf("%q: encoding/json refused (%v), Vector accepted %v", data, stdErr, ours)
			}
			return
		}
		if err != nil {
			if bytes.Contains(data, []byte("null")) {
				return // null elements are refused on purpose
			}
			t.Fatalf("%q: encoding/json accepted %v, Vector refused: %v", data, std, err)
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
