package server

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/engram-ops/engram-ops/ops/api"
)

// A scheduled pass (consolidation.interval) consolidates every space
// without a request, and stops with its context.
func TestScheduledConsolidation(t *testing.T) {
	cfg := testConfig()
	s := newTestServer(t, cfg, openEngine(t, cfg))
	h := s.Handler()
	for i, space := range []string{"default", "other"} {
		for j := range 2 {
			w := do(t, h, request{method: "POST", path: api.PathEpisodes, headers: map[string]string{api.HeaderSpace: space},
				body: `{"what":"standup ` + string(rune('a'+j)) + `","when":"2024-01-05T10:00:00Z","embedding":` + vec16(10+i+j, 0, 1, 2) + `}`})
			if w.Code != http.StatusCreated {
				t.Fatal(w.Body)
			}
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); s.consolidateEvery(ctx, 20*time.Millisecond) }()
	beliefs := func(space string) int {
		w := do(t, h, request{method: "GET", path: api.PathConsolidations, headers: map[string]string{api.HeaderSpace: space}})
		if w.Code != http.StatusOK {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
		return len(decodeJSONBody[api.ConsolidationsResponse](t, w).Beliefs)
	}
	deadline := time.Now().Add(20 * time.Second)
	for beliefs("default") == 0 || beliefs("other") == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no scheduled pass consolidated both spaces: default %d, other %d beliefs", beliefs("default"), beliefs("other"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the scheduled passes did not stop with their context")
	}
	if st := s.cons.stats(); st.TotalReplays == 0 {
		t.Fatalf("scheduled passes not counted: %+v", st)
	}
}
