package client_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/engram-ops/engram-ops/ops/api"
	"github.com/engram-ops/engram-ops/ops/api/apijson"
	"github.com/engram-ops/engram-ops/ops/client"
)

// recallAnswer is a recall response as the server writes it: n direct
// matches m-0… and two associated memories, with contents of 20 words.
func recallAnswer(n int) []byte {
	var r api.RecallResponse
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
	mem := func(id string) api.RecalledMemory {
		return api.RecalledMemory{ID: id, Content: strings.Repeat("pseudo words ", 10), Confidence: api.Confidence{Value: 0.8},
			ActivationLevel: 0.7, SimilarityScore: 0.61, Retrievability: 0.9, StoredConfidence: 0.8, RetrievalPath: "direct",
			ObservedAt: t0, LastAccess: t0, Tags: []string{}, MemoryType: "semantic", Tier: "hot", RelevanceExplanation: "similar"}
	}
	for i := range n {
		r.Memories.Vivid = append(r.Memories.Vivid, mem("m-"+strconv.Itoa(i)))
	}
	r.Memories.Associated = []api.RecalledMemory{mem("a-1"), mem("a-2")}
	r.Memories.Reconstructed = []api.RecalledMemory{}
	var buf bytes.Buffer
	if err := apijson.Encode(&buf, &r); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

func vector768() []float32 {
	v := make([]float32, 768)
	for i := range v {
		v[i] = float32(i%97)/97 - 0.5 + 1e-7*float32(i)
	}
	return v
}

// TestRecallIDsSendsRecallsBytes: a body from EncodeRecall is the bytes
// Recall sends for the same request (text and vector cues), and RecallIDs
// returns the answers' ids in rank order, vivid then associated.
func TestRecallIDsSendsRecallsBytes(t *testing.T) {
	answer := recallAnswer(10)
	var got []byte
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.URL.Path != api.PathRecall || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s %s (Content-Type %q)", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(answer)
	}))
	defer ts.Close()
	c, err := client.New(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	want := []string{"m-0", "m-1", "m-2", "m-3", "m-4", "m-5", "m-6", "m-7", "m-8", "m-9", "a-1", "a-2"}
	for _, req := range []api.RecallRequest{
		{Query: "red <apples> & \u2028 pears", MaxResults: 10},
		{Embedding: vector768(), MaxResults: 10, Threshold: -1, Mode: "similarity"},
	} {
		if _, err := c.Recall(ctx, req); err != nil {
			t.Fatal(err)
		}
		sent := got
		body, err := client.EncodeRecall(req)
		if err != nil {
			t.Fatal(err)
		}
		for range 2 { // a body is sent as often as asked, unchanged
			ids, err := c.RecallIDs(ctx, body)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, sent) {
				t.Fatalf("RecallIDs sent\n%s\nRecall sent\n%s", got, sent)
			}
			if !slices.Equal(ids, want) {
				t.Fatalf("RecallIDs = %v, want %v", ids, want)
			}
		}
	}
	if _, err := c.RecallIDs(ctx, client.RecallBody{}); err == nil {
		t.Error("RecallIDs sent an empty body")
	}
}

// TestRecallIDsErrors: a response that is not JSON is an error although
// only the ids are decoded, and an error status is an *APIError.
func TestRecallIDsErrors(t *testing.T) {
	status, answer := http.StatusOK, `{"memories":{"vivid":[{"id":"a","content":"x"}]},"metadata":{"took_ms":1,}}`
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", "2")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, answer)
	}))
	defer ts.Close()
	c, err := client.New(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, err := client.EncodeRecall(api.RecallRequest{Query: "q"})
	if err != nil {
		t.Fatal(err)
	}
	if ids, err := c.RecallIDs(context.Background(), body); err == nil {
		t.Fatalf("invalid JSON decoded as %v", ids)
	}
	status, answer = http.StatusServiceUnavailable, `{"error":{"code":"INDEX_BACKLOG","message":"busy"}}`
	_, err = c.RecallIDs(context.Background(), body)
	if client.StatusOf(err) != http.StatusServiceUnavailable || client.CodeOf(err) != "INDEX_BACKLOG" {
		t.Fatalf("503 answered %v", err)
	}
}

// BenchmarkRecallVectorCue: a recall by a 768-dimension vector against a
// server that writes a canned answer of 12 memories, through Recall
// (encode the request, decode the whole answer) and through RecallIDs (a
// body encoded before, only the ids decoded), in one run.
func BenchmarkRecallVectorCue(b *testing.B) {
	answer := recallAnswer(10)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(answer)
	}))
	defer ts.Close()
	c, err := client.New(ts.URL)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	req := api.RecallRequest{Embedding: vector768(), MaxResults: 10, Threshold: -1, Mode: "similarity"}
	body, err := client.EncodeRecall(req)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("Recall", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Recall(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("RecallIDs", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.RecallIDs(ctx, body); err != nil {
				b.Fatal(err)
			}
		}
	})
}
