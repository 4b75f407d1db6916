package server

import (
	"bytes"
	stdjson "encoding/json"
	"errors"
	"math/rand"
	"testing"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/engram-ops/engram-ops/ops/api"
	"github.com/engram-ops/engram-ops/ops/api/apijson"
	"github.com/engram-ops/engram-ops/ops/client"
)

// libraryDecodeOptions are decodeOptions without the embedding fast path:
// arrays go to the library's []float32 decoding; base64 strings, which
// only the codec reads, still go to it.
var libraryDecodeOptions = json.JoinOptions(
	json.RejectUnknownMembers(true),
	json.WithUnmarshalers(json.UnmarshalFromFunc(func(dec *jsontext.Decoder, v *[]float32) error {
		if dec.PeekKind() == '"' {
			return unmarshalVector(dec, v)
		}
		return errors.ErrUnsupported
	})),
)

func benchVector(r *rand.Rand) []float32 {
	v := make([]float32, 768)
	for i := range v {
		v[i] = float32(r.NormFloat64() * 0.036)
	}
	return v
}

// BenchmarkDecodeRecallVector768: decoding a recall request carrying a
// 768-dimension vector cue, the body of every embedding search: with the
// server's embedding codec (fast), with the library's own []float32
// decoding (library), and with encoding/json as the reference.
func BenchmarkDecodeRecallVector768(b *testing.B) {
	v := benchVector(rand.New(rand.NewSource(1)))
	body, _ := stdjson.Marshal(api.RecallRequest{Embedding: v, MaxResults: 10, Mode: "similarity"})
	b64, _ := stdjson.Marshal(map[string]any{"embedding": client.EncodeVectorBase64(v), "max_results": 10, "mode": "similarity"})
	run := func(body []byte, opts json.Options) func(b *testing.B) {
		return func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				var req api.RecallRequest
				if err := json.Unmarshal(body, &req, opts); err != nil || len(req.Embedding) != 768 {
					b.Fatal(err)
				}
				recycleVector(req.Embedding)
			}
		}
	}
	b.Run("array/fast", run(body, decodeOptions))
	b.Run("array/library", run(body, libraryDecodeOptions))
	b.Run("base64/fast", run(b64, decodeOptions))
	b.Run("array/encoding-json", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			var req api.RecallRequest
			if err := stdjson.Unmarshal(body, &req); err != nil {
				b.Fatal(err)
			}
		}
	})
	// The whole server path: pooled body buffer, decode, error mapping.
	b.Run("array/decodeBody", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			var req api.RecallRequest
			if err := decodeBody(bytes.NewReader(body), &req); err != nil {
				b.Fatal(err)
			}
			recycleVector(req.Embedding)
		}
	})
}

// BenchmarkDecodeRememberVector768: a remember body with a 768-dimension
// embedding, the most frequent write.
func BenchmarkDecodeRememberVector768(b *testing.B) {
	v := benchVector(rand.New(rand.NewSource(2)))
	body, _ := stdjson.Marshal(api.RememberRequest{Content: "the user prefers dark roast coffee", Embedding: v, Tags: []string{"pref"}})
	b64, _ := stdjson.Marshal(map[string]any{"content": "the user prefers dark roast coffee", "embedding": client.EncodeVectorBase64(v), "tags": []string{"pref"}})
	run := func(body []byte, opts json.Options) func(b *testing.B) {
		return func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				var req api.RememberRequest
				if err := json.Unmarshal(body, &req, opts); err != nil || len(req.Embedding) != 768 {
					b.Fatal(err)
				}
			}
		}
	}
	b.Run("array/fast", run(body, decodeOptions))
	b.Run("array/library", run(body, libraryDecodeOptions))
	b.Run("base64/fast", run(b64, decodeOptions))
}

// BenchmarkEncodeRecall10: a recall response of ten memories (recall
// results carry no vectors), and a list page of ten memories with
// 768-dimension embeddings: with the library (v2) and with encoding/json
// as the reference.
func BenchmarkEncodeRecall10(b *testing.B) {
	samples := wireSamples()
	rec := samples["recall"].(api.RecallResponse)
	m := rec.Memories.Vivid[0]
	m.Content = "the user prefers dark roast coffee, brewed strong"
	m.Tags = []string{"pref", "coffee"}
	rec.Memories.Vivid = make([]api.RecalledMemory, 10)
	for i := range rec.Memories.Vivid {
		rec.Memories.Vivid[i] = m
	}
	r := rand.New(rand.NewSource(3))
	list := api.ListResponse{Count: 10, Pagination: api.Pagination{Limit: 10, Returned: 10}}
	for range 10 {
		list.Memories = append(list.Memories, api.ListedMemory{ID: "m", Content: m.Content, Timestamp: m.ObservedAt, Tags: m.Tags, Tier: "hot", Embedding: benchVector(r)})
	}
	run := func(v any, opts json.Options) func(b *testing.B) {
		return func(b *testing.B) {
			var buf bytes.Buffer
			b.ReportAllocs()
			for b.Loop() {
				buf.Reset()
				if err := json.MarshalWrite(&buf, v, opts); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(int64(buf.Len()))
		}
	}
	std := func(v any) func(b *testing.B) {
		return func(b *testing.B) {
			var buf bytes.Buffer
			b.ReportAllocs()
			for b.Loop() {
				buf.Reset()
				if err := stdjson.NewEncoder(&buf).Encode(v); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(int64(buf.Len()))
		}
	}
	b.Run("recall/v2", run(rec, apijson.EncodeOptions))
	b.Run("recall/encoding-json", std(rec))
	b.Run("list768/v2", run(list, apijson.EncodeOptions))
	b.Run("list768/encoding-json", std(list))
}
