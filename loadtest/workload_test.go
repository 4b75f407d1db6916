package loadtest

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"

	"github.com/engram-ops/engram-ops/ops/api"
	"github.com/engram-ops/engram-ops/ops/client"
)

// A cue's recall request is encoded on its first send and kept: every
// send of it carries the bytes client.Recall writes for the same request,
// and its answer's ids come back in rank order, vivid then associated.
func TestCueRecallEncodedOnce(t *testing.T) {
	var mu sync.Mutex
	var bodies [][]byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, b)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"memories":{"vivid":[{"id":"m-3","content":"c"},{"id":"m-1"}],"associated":[{"id":"m-7"}],"reconstructed":[]},"metadata":{"took_ms":1}}`)
	}))
	defer srv.Close()
	c, err := client.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	w := &workload{k: 10}
	vec := vectors(DataCfg{EmbeddingDim: 768}, 1, 0, 1)[0]
	for _, r := range []api.RecallRequest{w.textRecall("pseudo <words> & more"), w.vectorRecall(vec)} {
		if _, err := c.Recall(ctx, r); err != nil {
			t.Fatal(err)
		}
		var cue encodedRecall
		for range 3 {
			ids, err := w.recall(ctx, c, r, &cue)
			if err != nil {
				t.Fatal(err)
			}
			if want := []string{"m-3", "m-1", "m-7"}; !slices.Equal(ids, want) {
				t.Fatalf("ids %v, want %v", ids, want)
			}
		}
		if cue.p.Load() == nil {
			t.Fatal("the cue's encoding was not kept")
		}
		mu.Lock()
		for i, b := range bodies[1:] {
			if !bytes.Equal(b, bodies[0]) {
				t.Errorf("send %d of the cue:\n%s\nclient.Recall sent:\n%s", i+1, b, bodies[0])
			}
		}
		bodies = nil
		mu.Unlock()
	}
}
