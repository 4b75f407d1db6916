package client_test

import (
	"bytes"
	"context"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/engram-ops/engram-ops/ops/api"
	"github.com/engram-ops/engram-ops/ops/client"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestRequestWireGolden: the client writes each request body byte for byte
// as the golden files hold it (escaping, omitempty, map order, float32
// form), and decodes a response it is sent.
func TestRequestWireGolden(t *testing.T) {
	var body []byte
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ = io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"memory_id":"m1","memory_ids":["a"],"embedding":[0.5,1e-7],"created":true}`+"\n")
	}))
	defer ts.Close()
	c, err := client.New(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	t0 := time.Date(2025, 1, 2, 15, 4, 5, 6, time.FixedZone("", -3600))
	f := func(v float64) *float64 { return &v }
	vec := []float32{1e-7, -2.5e21, 0, 1.0 / 3, 0.036}
	calls := map[string]func() error{
		"remember": func() error {
			r, err := c.Remember(ctx, api.RememberRequest{ID: "m1", Content: "a <b> & \u2028 \xff", Embedding: vec, Confidence: f(0.8),
				Tags: []string{"x"}, Timestamp: &t0, Metadata: map[string]string{"z": "1", "a": "2"}, AutoLink: false, SpaceFields: api.SpaceFields{Space: "s"}})
			if err == nil && (r.MemoryID != "m1" || !r.Created) {
				t.Errorf("remember response decoded as %+v", r)
			}
			return err
		},
		"remember_min": func() error {
			_, err := c.Remember(ctx, api.RememberRequest{Content: "c", AutoLink: true, LinkThreshold: f(0)})
			return err
		},
		"episode": func() error {
			_, err := c.RememberEpisode(ctx, api.EpisodeRequest{When: &t0, What: "w", Who: []string{}, Importance: f(1)})
			return err
		},
		"batch": func() error {
			r, err := c.Batch(ctx, api.BatchRequest{Memories: []api.BatchMemory{{Content: "c", Embedding: vec}, {ID: "b"}},
				Associations: []api.BatchAssociation{{From: "a", To: "b", Weight: 0.5}}, Cursor: &api.Cursor{Source: "s", Value: "v"}})
			if err == nil && len(r.MemoryIDs) != 1 {
				t.Errorf("batch response decoded as %+v", r)
			}
			return err
		},
		"recall": func() error {
			_, err := c.Recall(ctx, api.RecallRequest{Embedding: vec, MaxResults: 10, Threshold: -1, Mode: "similarity", FromTime: &t0})
			return err
		},
		"associate": func() error {
			_, err := c.Associate(ctx, api.AssociationRequest{From: "a", To: "b", Weight: 0})
			return err
		},
		"create_space": func() error {
			_, _, err := c.CreateSpace(ctx, api.CreateSpaceRequest{ID: "s"})
			return err
		},
	}
	for name, call := range calls {
		body = nil
		if err := call(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		path := filepath.Join("testdata", "wire", name+".json")
		if *update {
			if err := os.WriteFile(path, body, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%s: %v (run with -update to create)", name, err)
		}
		if !bytes.Equal(body, want) {
			t.Errorf("%s: bytes differ\ngot  %s\nwant %s", name, body, want)
		}
	}
	m, err := c.Get(ctx, "m1", true)
	if err != nil || len(m.Embedding) != 2 || m.Embedding[1] != 1e-7 {
		t.Fatalf("Get decoded %+v, %v", m, err)
	}
}
