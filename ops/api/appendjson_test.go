package api

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand"
	"reflect"
	"testing"
	"time"
)

// encodingJSON is what the server wrote before AppendJSON: the reference.
func encodingJSON(t testing.TB, v any) ([]byte, bool) {
	t.Helper()
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		return nil, false
	}
	return buf.Bytes(), true
}

// awkward strings: everything encoding/json escapes or replaces.
var awkward = []string{"", "plain", `quote " and \ backslash`, "<script>&amp;</script>", "tab\tnew\nline\rcr\bbs\fff",
	"\x00\x01\x1f\x7f", "héllo wörld ✓ 🦀", "bad \xff utf8 \xc3", "line\u2028sep\u2029para", "\xed\xa0\x80 surrogate"}

// fill sets every field reflect can reach to a random value, so a field
// added to a response type later is covered without touching this test.
func fill(r *rand.Rand, v reflect.Value, depth int) {
	switch v.Kind() {
	case reflect.String:
		s := awkward[r.Intn(len(awkward))]
		if r.Intn(2) == 0 {
			s += string(rune(r.Intn(0x3000)))
		}
		v.SetString(s)
	case reflect.Float64:
		choices := []float64{0, 1, -1, 0.5, 1e-7, -3.25e-9, 1e21, 123456789.125, 1e20, math.SmallestNonzeroFloat64, math.MaxFloat64, r.Float64(), -r.NormFloat64() * 1e6, math.Copysign(0, -1)}
		v.SetFloat(choices[r.Intn(len(choices))])
	case reflect.Int:
		v.SetInt(r.Int63n(1<<40) - 1<<39)
	case reflect.Uint64:
		v.SetUint(r.Uint64() >> r.Intn(64))
	case reflect.Bool:
		v.SetBool(r.Intn(2) == 0)
	case reflect.Slice:
		if r.Intn(4) == 0 {
			v.Set(reflect.Zero(v.Type())) // nil
			return
		}
		n := r.Intn(3)
		if depth > 3 {
			n = 0
		}
		s := reflect.MakeSlice(v.Type(), n, n)
		for i := 0; i < n; i++ {
			fill(r, s.Index(i), depth+1)
		}
		v.Set(s)
	case reflect.Map:
		if r.Intn(3) == 0 {
			v.Set(reflect.Zero(v.Type()))
			return
		}
		m := reflect.MakeMap(v.Type())
		for i := r.Intn(4); i > 0; i-- {
			k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
			fill(r, k, depth+1)
			fill(r, e, depth+1)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			zones := []*time.Location{time.UTC, time.FixedZone("", 5*3600+30*60), time.FixedZone("", -8*3600)}
			t := time.Unix(r.Int63n(4e9)-1e9, r.Int63n(1e9)).In(zones[r.Intn(len(zones))])
			if r.Intn(5) == 0 {
				t = time.Time{}
			}
			v.Set(reflect.ValueOf(t))
			return
		}
		for i := 0; i < v.NumField(); i++ {
			fill(r, v.Field(i), depth+1)
		}
	default:
		panic("fill: unhandled kind " + v.Kind().String())
	}
}

// appendsJSON is a response type with its own AppendJSON.
type appendsJSON interface {
	AppendJSON(b []byte) ([]byte, bool)
}

// matchesEncodingJSON checks T's AppendJSON against encoding/json over 3,000
// random values in every field: the same bytes, appended after what b held.
func matchesEncodingJSON[T appendsJSON](t *testing.T, seed int64) {
	t.Helper()
	r := rand.New(rand.NewSource(seed))
	for i := 0; i < 3000; i++ {
		var v T
		fill(r, reflect.ValueOf(&v).Elem(), 0)
		want, wantOK := encodingJSON(t, v)
		got, ok := v.AppendJSON([]byte("kept:"))
		if ok != wantOK || (ok && !bytes.Equal(got[len("kept:"):], want)) || (!ok && string(got) != "kept:") {
			t.Fatalf("case %d:\n got %v %s\nwant %v %s", i, ok, got, wantOK, want)
		}
	}
}

func TestRecallResponseAppendJSONMatchesEncodingJSON(t *testing.T) {
	matchesEncodingJSON[RecallResponse](t, 1)
}

func TestRememberResponseAppendJSONMatchesEncodingJSON(t *testing.T) {
	matchesEncodingJSON[RememberResponse](t, 2)
	resp := RememberResponse{AutoLinks: []AutoLink{{SimilarityScore: math.NaN()}}}
	if _, ok := resp.AppendJSON(nil); ok {
		t.Fatal("a NaN similarity was written")
	}
}

// TestRecallResponseAppendJSONRefusesWhatEncodingJSONRefuses: the values
// encoding/json fails on make AppendJSON report false and leave b alone.
func TestRecallResponseAppendJSONRefusesWhatEncodingJSONRefuses(t *testing.T) {
	good := RecallResponse{Memories: RecallGroups{Vivid: []RecalledMemory{{ID: "a"}}}}
	bad := map[string]func(*RecallResponse){
		"NaN":              func(r *RecallResponse) { r.RecallConfidence.Value = math.NaN() },
		"+Inf in a memory": func(r *RecallResponse) { r.Memories.Vivid[0].SimilarityScore = math.Inf(1) },
		"year 10000":       func(r *RecallResponse) { r.Memories.Vivid[0].ObservedAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) },
		"year -1":          func(r *RecallResponse) { r.Memories.Vivid[0].LastAccess = time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC) },
		"offset of a day": func(r *RecallResponse) {
			r.Memories.Vivid[0].LastAccess = time.Date(2000, 1, 1, 0, 0, 0, 0, time.FixedZone("", 24*3600))
		},
		"-Inf took_ms":      func(r *RecallResponse) { r.Metadata.TookMS = math.Inf(-1) },
		"NaN in associated": func(r *RecallResponse) { r.Memories.Associated = []RecalledMemory{{Retrievability: math.NaN()}} },
	}
	for name, spoil := range bad {
		resp := good
		resp.Memories.Vivid = []RecalledMemory{good.Memories.Vivid[0]}
		spoil(&resp)
		if _, ok := encodingJSON(t, resp); ok {
			t.Fatalf("%s: encoding/json accepts it; the case tests nothing", name)
		}
		in := []byte("kept")
		out, ok := resp.AppendJSON(in)
		if ok || string(out) != "kept" {
			t.Fatalf("%s: AppendJSON = %q, %v; want it refused with b unchanged", name, out, ok)
		}
	}
	// Just inside the limits encoding/json accepts, so must AppendJSON.
	resp := good
	resp.Memories.Vivid = []RecalledMemory{{ObservedAt: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.FixedZone("", 24*3600-60)), LastAccess: time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)}}
	want, ok := encodingJSON(t, resp)
	got, gotOK := resp.AppendJSON(nil)
	if !ok || !gotOK || !bytes.Equal(got, want) {
		t.Fatalf("edge times: encoding/json %v %s, AppendJSON %v %s", ok, want, gotOK, got)
	}
}

// FuzzRecallResponseAppendJSON: any string in the free-text fields encodes
// as encoding/json encodes it.
func FuzzRecallResponseAppendJSON(f *testing.F) {
	for _, s := range awkward {
		f.Add(s, 0.5)
	}
	f.Fuzz(func(t *testing.T, s string, x float64) {
		resp := RecallResponse{
			Memories:         RecallGroups{Vivid: []RecalledMemory{{ID: s, Content: s, Tags: []string{s}, Metadata: map[string]string{s: s, "k": s}, SimilarityScore: x}}},
			RecallConfidence: Confidence{Value: x, Reasoning: s},
			SystemMessage:    s,
		}
		want, ok := encodingJSON(t, resp)
		got, gotOK := resp.AppendJSON(nil)
		if ok != gotOK || !bytes.Equal(got, want) {
			t.Fatalf("encoding/json %v %q, AppendJSON %v %q", ok, want, gotOK, got)
		}
	})
}

func BenchmarkRecallResponseEncode(b *testing.B) {
	now := time.Now().UTC()
	var resp RecallResponse
	for i := 0; i < 10; i++ {
		resp.Memories.Vivid = append(resp.Memories.Vivid, RecalledMemory{ID: "mem_0123456789abcdef", Content: "the harbour lighthouse in the winter storm",
			Confidence:      Confidence{Value: 0.61, Category: "Medium", Reasoning: "score = similarity × stored confidence × retrievability"},
			ActivationLevel: 1, SimilarityScore: 0.8734, Retrievability: 0.99999, StoredConfidence: 0.7, RetrievalPath: "direct match",
			ObservedAt: now, LastAccess: now, Tags: []string{}, MemoryType: "semantic", Tier: "hot",
			RelevanceExplanation: "Direct match: similarity 0.87 × confidence 0.70 × retrievability 1.00 = 0.61"})
	}
	resp.Memories.Associated, resp.Memories.Reconstructed, resp.QueryAnalysis.Suggestions = []RecalledMemory{}, []RecalledMemory{}, []string{}
	b.Run("encoding_json", func(b *testing.B) {
		var buf bytes.Buffer
		for b.Loop() {
			buf.Reset()
			_ = json.NewEncoder(&buf).Encode(resp)
		}
	})
	b.Run("AppendJSON", func(b *testing.B) {
		var buf []byte
		for b.Loop() {
			buf, _ = resp.AppendJSON(buf[:0])
		}
	})
}
