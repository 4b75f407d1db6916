package server

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/engram-ops/engram-ops/ops/api"
)

// TestConcurrentRecallsDoNotShareRecycledMemory: recalls running at once
// (cue vectors, result slices and the engine's working slices are all
// recycled between requests) each get an answer that is theirs: every
// result's content is the content stored under its id, and the cue's own
// memory comes first. Run with -race to also catch a buffer handed out while
// still in use.
func TestConcurrentRecallsDoNotShareRecycledMemory(t *testing.T) {
	cfg := testConfig()
	h := newTestServer(t, cfg, openEngine(t, cfg)).Handler()
	const n = 40
	vec := func(i int) []float32 {
		v := make([]float32, 16)
		v[i%16] = 1
		v[(i/16+3)%16] = 0.5 + float32(i)/100
		return v
	}
	var mems []map[string]any
	for i := range n {
		mems = append(mems, map[string]any{"id": fmt.Sprintf("m%02d", i), "content": fmt.Sprintf("content of m%02d", i), "embedding": vec(i)})
	}
	body, _ := json.Marshal(map[string]any{"memories": mems})
	if w := do(t, h, request{method: "POST", path: "/api/v1/memories/batch", body: string(body)}); w.Code != 201 {
		t.Fatal(w.Code, w.Body.String())
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 30 {
				i := (g*30 + k) % n
				cue, _ := json.Marshal(map[string]any{"embedding": vec(i), "max_results": 5, "threshold": -1, "mode": "similarity"})
				w := do(t, h, request{method: "POST", path: "/api/v1/memories/recall", body: string(cue)})
				if w.Code != 200 {
					t.Errorf("recall: %d %s", w.Code, w.Body.String())
					return
				}
				var resp api.RecallResponse
				if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
					t.Error(err)
					return
				}
				if len(resp.Memories.Vivid) == 0 || resp.Memories.Vivid[0].ID != fmt.Sprintf("m%02d", i) {
					t.Errorf("cue of m%02d: first result %+v", i, resp.Memories.Vivid)
					return
				}
				for _, m := range resp.Memories.Vivid {
					if m.Content != "content of "+m.ID || !strings.HasPrefix(m.RelevanceExplanation, "Direct match") {
						t.Errorf("cue of m%02d: result %s carries %q", i, m.ID, m.Content)
					}
				}
			}
		}()
	}
	wg.Wait()
}
