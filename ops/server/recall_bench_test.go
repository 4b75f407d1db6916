package server

import (
	"encoding/json"
	"math"
	"math/rand"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/engram-ops/engram-ops/ops/client"
)

// BenchmarkRecallHandler768: the whole recall request in process (decode,
// search over 20,000 memories of dimension 768, reinforcement, response)
// without the network, so -benchmem shows what one recall allocates: the
// allocation rate decides how often the collector runs under load.
func BenchmarkRecallHandler768(b *testing.B) {
	const n, dim = 20_000, 768
	cfg := testConfig()
	cfg.Limits.MaxBodyBytes = 32 << 20
	cfg.Index.MaxPending = 0 // the load is set-up, not what is measured
	eng := openEngine(b, cfg)
	h := newTestServer(b, cfg, eng).Handler()
	if w := do(b, h, request{method: "POST", path: "/api/v1/spaces", body: `{"id":"bench","dimension":768}`}); w.Code != 201 {
		b.Fatal(w.Code, w.Body.String())
	}
	r := rand.New(rand.NewSource(1))
	unit := func() []float32 {
		v := make([]float32, dim)
		var s float64
		for i := range v {
			v[i] = float32(r.NormFloat64())
			s += float64(v[i]) * float64(v[i])
		}
		for i := range v {
			v[i] /= float32(math.Sqrt(s))
		}
		return v
	}
	hdr := map[string]string{"X-Memory-Space": "bench"}
	for off := 0; off < n; off += 500 {
		mems := make([]map[string]any, 0, 500)
		for i := off; i < off+500; i++ {
			mems = append(mems, map[string]any{"id": "v" + strconv.Itoa(i), "content": "vector memory " + strconv.Itoa(i), "embedding": unit()})
		}
		body, _ := json.Marshal(map[string]any{"memories": mems})
		if w := do(b, h, request{method: "POST", path: "/api/v1/memories/batch", body: string(body), headers: hdr}); w.Code != 201 {
			b.Fatal(w.Code, w.Body.String())
		}
	}
	if err := eng.WaitIndexed(b.Context()); err != nil {
		b.Fatal(err)
	}
	cues := make([]string, 64)
	for i := range cues {
		v := unit()
		body, _ := json.Marshal(map[string]any{"embedding": v, "max_results": 10, "threshold": -1, "mode": "similarity"})
		cues[i] = string(body)
	}
	b64 := make([]string, len(cues))
	for i := range b64 {
		body, _ := json.Marshal(map[string]any{"embedding": client.EncodeVectorBase64(unit()), "max_results": 10, "threshold": -1, "mode": "similarity"})
		b64[i] = string(body)
	}
	run := func(b *testing.B, bodies []string) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			rq := httptest.NewRequest("POST", "/api/v1/memories/recall", strings.NewReader(bodies[i%len(bodies)]))
			rq.Host = "localhost"
			rq.Header.Set("Content-Type", "application/json")
			rq.Header.Set("X-Memory-Space", "bench")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, rq)
			if w.Code != 200 {
				b.Fatal(w.Code, w.Body.String())
			}
			i++
		}
	}
	b.Run("json", func(b *testing.B) { run(b, cues) })
	b.Run("base64", func(b *testing.B) { run(b, b64) })
}
