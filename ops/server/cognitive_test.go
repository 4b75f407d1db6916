package server

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/engram-ops/engram-ops/ops/api"
)

// cognitiveServer is a server over a real engine holding facts, with
// their ids.
func cognitiveServer(t *testing.T, facts ...string) (http.Handler, []string) {
	t.Helper()
	cfg := testConfig()
	h := newTestServer(t, cfg, openEngine(t, cfg)).Handler()
	ids := make([]string, len(facts))
	for i, f := range facts {
		w := do(t, h, request{method: "POST", path: api.PathRemember, body: `{"content":` + strconv.Quote(f) + `,"confidence":0.9}`})
		if w.Code != http.StatusCreated {
			t.Fatalf("remember: %d %s", w.Code, w.Body)
		}
		ids[i] = decodeJSONBody[api.RememberResponse](t, w).MemoryID
	}
	return h, ids
}

func TestRecognizeJudgesTheStore(t *testing.T) {
	h, ids := cognitiveServer(t, "The mitochondria is the powerhouse of the cell", "Paris is the capital of France")
	recognize := func(body string) api.RecognizeResponse {
		t.Helper()
		w := do(t, h, request{method: "POST", path: api.PathRecognize, body: body})
		if w.Code != http.StatusOK {
			t.Fatalf("recognize %s: %d %s", body, w.Code, w.Body)
		}
		return decodeJSONBody[api.RecognizeResponse](t, w)
	}
	known := recognize(`{"input":"The mitochondria is the powerhouse of the cell"}`)
	if !known.Recognized || known.SimilarPatterns[0].ID != ids[0] || known.RecognitionConfidence.Value < 0.99 {
		t.Fatalf("a stored memory was not recognized: %+v", known)
	}
	// Engram recognizes any input longer than 10 bytes; this one is long
	// and unrelated to the store.
	unknown := recognize(`{"input":"qwxz vbnm plok jhgf tyur"}`)
	if unknown.Recognized || unknown.RecognitionConfidence.Value >= api.DefaultRecognizeThreshold {
		t.Fatalf("a random input was recognized: %+v", unknown)
	}
	if len(unknown.SimilarPatterns) == 0 || unknown.SimilarPatterns[0].AboveThreshold {
		t.Fatalf("closest memories not reported: %+v", unknown)
	}
	// The threshold decides: the exact content passes any threshold up to 1.
	if strict := recognize(`{"input":"Paris is the capital of France","threshold":0.999}`); !strict.Recognized || strict.SimilarPatterns[0].ID != ids[1] {
		t.Fatalf("threshold 0.999: %+v", strict)
	}
	if env := decodeEnvelope(t, do(t, h, request{method: "POST", path: api.PathRecognize, body: `{"input":"x","threshold":2}`})); env.Code != "INVALID_THRESHOLD" {
		t.Fatalf("threshold 2: %+v", env)
	}
	if env := decodeEnvelope(t, do(t, h, request{method: "POST", path: api.PathRecognize, body: `{"input":"  "}`})); env.Code != "MISSING_CUE" {
		t.Fatalf("blank input: %+v", env)
	}
	// A recognition reads: it does not reinforce what it compares with.
	m := decodeJSONBody[api.Memory](t, do(t, h, request{method: "GET", path: "/api/v1/memories/" + ids[0]}))
	if m.AccessCount != 0 {
		t.Fatalf("recognize reinforced the memory: access count %d", m.AccessCount)
	}
}
