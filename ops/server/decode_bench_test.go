package server

import (
	"bytes"
	"encoding/json"
	"math/rand"
	"testing"

	"github.com/engram-ops/engram-ops/ops/api"
	"github.com/engram-ops/engram-ops/ops/client"
)

// BenchmarkDecodeRecallVector768: decoding a recall request carrying a
// 768-dimension vector cue, the body of every embedding search.
func BenchmarkDecodeRecallVector768(b *testing.B) {
	r := rand.New(rand.NewSource(1))
	v := make([]float32, 768)
	for i := range v {
		v[i] = float32(r.NormFloat64() * 0.036)
	}
	body, _ := json.Marshal(api.RecallRequest{Embedding: v, MaxResults: 10, Mode: "similarity"})
	b.Run("api.Vector", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			var req api.RecallRequest
			if err := decodeBody(bytes.NewReader(body), &req); err != nil {
				b.Fatal(err)
			}
		}
	})
	// The same cue as a base64 string (what api.Vector also accepts).
	b64, _ := json.Marshal(map[string]any{"embedding": client.EncodeVectorBase64(v), "max_results": 10, "mode": "similarity"})
	b.Run("api.Vector/base64", func(b *testing.B) {
		b.SetBytes(int64(len(b64)))
		b.ReportAllocs()
		for b.Loop() {
			var req api.RecallRequest
			if err := decodeBody(bytes.NewReader(b64), &req); err != nil || len(req.Embedding) != 768 {
				b.Fatal(err)
			}
		}
	})
	// The same body into []float32 through encoding/json's reflection:
	// what api.Vector replaced.
	type plain struct {
		Embedding  []float32 `json:"embedding"`
		MaxResults int       `json:"max_results"`
		Mode       string    `json:"mode"`
	}
	b.Run("reflection", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			var req plain
			if err := decodeBody(bytes.NewReader(body), &req); err != nil {
				b.Fatal(err)
			}
		}
	})
}
