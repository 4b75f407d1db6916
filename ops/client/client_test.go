package client_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/ops/api"
	"github.com/engram-ops/engram-ops/ops/client"
	"github.com/engram-ops/engram-ops/ops/config"
	"github.com/engram-ops/engram-ops/ops/server"
)

// newServer serves a real engine through httptest and counts connections.
func newServer(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	cfg := config.Default()
	cfg.Log.Access = false
	cfg.Spaces.DefaultDimension = 8
	eng, err := core.Open(t.TempDir(), cfg.EngineOptions(nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(cfg, eng, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var conns atomic.Int64
	ts := httptest.NewUnstartedServer(srv.Handler())
	ts.Config.ConnState = func(c net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	ts.Start()
	t.Cleanup(func() {
		ts.Close()
		eng.Close()
	})
	return ts, &conns
}

func TestClientAgainstServer(t *testing.T) {
	ts, conns := newServer(t)
	ctx := context.Background()
	c, err := client.New(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	conf := 0.8
	r, err := c.Remember(ctx, api.RememberRequest{ID: "a", Content: "apples are red", Confidence: &conf, Tags: []string{"fruit"}})
	if err != nil {
		t.Fatal(err)
	}
	if r.MemoryID != "a" || r.StorageConfidence.Value != 0.8 {
		t.Errorf("remember %+v", r)
	}
	if id, err := c.RememberID(ctx, api.RememberRequest{ID: "b", Content: "bananas are yellow"}); err != nil || id != "b" {
		t.Fatalf("RememberID = %q, %v", id, err)
	}
	if _, err := c.Associate(ctx, api.AssociationRequest{From: "a", To: "b", Weight: 0.9}); err != nil {
		t.Fatal(err)
	}
	for _, recall := range []func(context.Context, api.RecallRequest) (*api.RecallResponse, error){c.Recall, c.RecallGet} {
		rec, err := recall(ctx, api.RecallRequest{Query: "red apples", RequiredTags: []string{"fruit"}, TraceActivation: true, Threshold: 0.2})
		if err != nil {
			t.Fatal(err)
		}
		if len(rec.Memories.Vivid) != 1 || rec.Memories.Vivid[0].ID != "a" {
			t.Errorf("recall vivid %+v", rec.Memories.Vivid)
		}
	}
	body, err := client.EncodeRecall(api.RecallRequest{Query: "red apples", RequiredTags: []string{"fruit"}, TraceActivation: true, Threshold: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	if ids, err := c.RecallIDs(ctx, body); err != nil || len(ids) != 1 || ids[0] != "a" {
		t.Errorf("RecallIDs = %v, %v", ids, err)
	}
	m, err := c.Get(ctx, "a", true)
	if err != nil || len(m.Embedding) != 8 {
		t.Fatalf("get %+v %v", m, err)
	}
	l, err := c.List(ctx, api.ListOptions{Limit: 1})
	if err != nil || l.Count != 2 || len(l.Memories) != 1 {
		t.Errorf("list %+v %v", l, err)
	}
	s, err := c.Search(ctx, "bananas", 5)
	if err != nil || s.Total == 0 {
		t.Errorf("search %+v %v", s, err)
	}
	b, err := c.Batch(ctx, api.BatchRequest{Memories: []api.BatchMemory{{ID: "c", Content: "cherries"}}, Cursor: &api.Cursor{Source: "src", Value: "42"}})
	if err != nil || len(b.MemoryIDs) != 1 {
		t.Fatalf("batch %+v %v", b, err)
	}
	if v, ok, err := c.Cursor(ctx, "src"); err != nil || !ok || v != "42" {
		t.Errorf("cursor %q %v %v", v, ok, err)
	}
	if _, ok, err := c.Cursor(ctx, "nobody"); err != nil || ok {
		t.Errorf("missing cursor: ok=%v err=%v", ok, err)
	}
	ep, err := c.RememberEpisode(ctx, api.EpisodeRequest{When: ptr(time.Now()), What: "ate a cherry", Who: []string{"me"}})
	if err != nil || ep.MemoryID == "" {
		t.Fatalf("episode %+v %v", ep, err)
	}
	sp, created, err := c.CreateSpace(ctx, api.CreateSpaceRequest{ID: "other", Dimension: 8})
	if err != nil || !created || sp.Dimension != 8 {
		t.Errorf("create space %+v %v %v", sp, created, err)
	}
	if _, created, err := c.CreateSpace(ctx, api.CreateSpaceRequest{ID: "other", Dimension: 8}); err != nil || created {
		t.Errorf("existing space: created=%v err=%v", created, err)
	}
	spaces, err := c.Spaces(ctx)
	if err != nil || len(spaces) != 2 {
		t.Errorf("spaces %+v %v", spaces, err)
	}
	if d, err := c.Space(ctx, "default"); err != nil || d.Memories.Total != 4 {
		t.Errorf("space %+v %v", d, err)
	}
	if h, err := c.Health(ctx); err != nil || h.Status != "healthy" {
		t.Errorf("health %+v %v", h, err)
	}
	if err := c.Ready(ctx); err != nil {
		t.Error(err)
	}
	if sh, err := c.SystemHealth(ctx); err != nil || sh.Status != "healthy" || sh.Changelog.Sequence == 0 {
		t.Errorf("system health %+v %v", sh, err)
	}
	if txt, err := c.Metrics(ctx); err != nil || !strings.Contains(string(txt), "engram_memories") {
		t.Errorf("metrics: %v", err)
	}
	f, err := c.Forget(ctx, "a")
	if err != nil || f.Status != "forgotten" {
		t.Errorf("forget %+v %v", f, err)
	}

	// Errors decode into *APIError.
	_, err = c.Get(ctx, "a", false)
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Status != 404 || ae.Code != "MEMORY_NOT_FOUND" || ae.Details["id"] != "a" || !client.IsNotFound(err) {
		t.Errorf("not found error: %#v", err)
	}
	_, err = c.Remember(ctx, api.RememberRequest{Content: "x", MemoryType: "dream"})
	if client.StatusOf(err) != 400 || client.CodeOf(err) != "INVALID_MEMORY_TYPE" || client.Retryable(err) {
		t.Errorf("invalid memory type: %v", err)
	}
	if !strings.Contains(err.Error(), "INVALID_MEMORY_TYPE") {
		t.Errorf("Error() = %q", err.Error())
	}

	// Space isolation through WithSpace.
	other := c.WithSpace("other")
	if _, err := other.Get(ctx, "b", false); !client.IsNotFound(err) {
		t.Errorf("memory of default visible in other: %v", err)
	}
	if other.CurrentSpace() != "other" || c.CurrentSpace() != "" {
		t.Errorf("WithSpace changed the original")
	}

	// Everything above ran over one keep-alive connection.
	if n := conns.Load(); n != 1 {
		t.Errorf("client opened %d connections for sequential calls, want 1 (keep-alive)", n)
	}
}

func TestClientHeadersAndForeignErrors(t *testing.T) {
	var mu sync.Mutex
	var got http.Header
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = r.Header.Clone()
		mu.Unlock()
		io.Copy(io.Discard, r.Body)
		switch r.URL.Path {
		case "/api/v1/memories/remember":
			w.Header().Set("Retry-After", "7")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(503)
			io.WriteString(w, `{"error":{"code":"ENGINE_CLOSED","message":"engine is closed"}}`)
		case "/health":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(503)
			io.WriteString(w, `{"status":"unhealthy","service":"engram","version":"x","timestamp":"2025-01-01T00:00:00Z","error":{"code":"ENGINE_CLOSED","message":"engine is closed"}}`)
		default:
			w.WriteHeader(502)
			io.WriteString(w, "bad gateway from a proxy")
		}
	}))
	defer ts.Close()
	c, err := client.New(ts.URL+"/", client.WithSpace("tenant-a"), client.WithToken("engram_key_abc_def"), client.WithUserAgent("test-agent"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, err = c.Remember(ctx, api.RememberRequest{Content: "x"})
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Status != 503 || ae.Code != "ENGINE_CLOSED" || ae.RetryAfter != 7*time.Second || !client.Retryable(err) {
		t.Errorf("503: %#v", err)
	}
	mu.Lock()
	h := got
	mu.Unlock()
	if h.Get(api.HeaderSpace) != "tenant-a" || h.Get("Authorization") != "Bearer engram_key_abc_def" ||
		h.Get("User-Agent") != "test-agent" || h.Get("Content-Type") != "application/json" {
		t.Errorf("headers %v", h)
	}
	_, err = c.Get(ctx, "x", false)
	if !errors.As(err, &ae) || ae.Status != 502 || ae.Code != "HTTP_502" || ae.Message != "bad gateway from a proxy" {
		t.Errorf("foreign error: %#v", err)
	}
	hb, err := c.Health(ctx)
	if client.StatusOf(err) != 503 || hb.Status != "unhealthy" || hb.Error == nil || hb.Error.Code != "ENGINE_CLOSED" {
		t.Errorf("unhealthy: %+v %v", hb, err)
	}
	if _, err := client.New("localhost:7432"); err == nil {
		t.Errorf("a base URL without scheme was accepted")
	}
}

func ptr[T any](v T) *T { return &v }

// WithReadStale marks every request as allowing a follower's answer (the
// router's X-Engram-Read-Stale: allow); a client without it never does.
func TestWithReadStaleHeader(t *testing.T) {
	var mu sync.Mutex
	var got []string
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Get(api.HeaderReadStale))
		mu.Unlock()
		w.WriteHeader(404)
		io.WriteString(w, `{"error":{"code":"NOT_FOUND","message":"no such memory"}}`)
	}))
	defer ts.Close()
	ctx := context.Background()
	for _, opts := range [][]client.Option{{client.WithReadStale()}, nil} {
		c, err := client.New(ts.URL, opts...)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Get(ctx, "x", false); client.StatusOf(err) != 404 {
			t.Fatalf("get: %v", err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || got[0] != api.ReadStaleAllow || got[1] != "" {
		t.Errorf("%s per request = %q, want [%q \"\"]", api.HeaderReadStale, got, api.ReadStaleAllow)
	}
}

func TestRetryableTransportErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: connection refused
	c, _ := client.New("http://" + addr)
	_, err = c.Get(context.Background(), "x", false)
	if err == nil || !client.Retryable(err) || client.StatusOf(err) != 0 {
		t.Errorf("refused connection: %v retryable=%v", err, client.Retryable(err))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Get(ctx, "x", false); client.Retryable(err) {
		t.Errorf("cancelled request marked retryable: %v", err)
	}
}

// MetricsAs sends the caller's Accept header, returns the Content-Type
// the server chose and refuses a body above the limit.
func TestMetricsAsAcceptAndLimit(t *testing.T) {
	var accept atomic.Value
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		accept.Store(r.Header.Get("Accept"))
		w.Header().Set("Content-Type", "application/x-test")
		io.WriteString(w, strings.Repeat("m", 100))
	}))
	defer ts.Close()
	c, err := client.New(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	body, ct, err := c.MetricsAs(ctx, "application/x-test;q=0.9,text/plain;q=0.1", 100)
	if err != nil || len(body) != 100 || ct != "application/x-test" || accept.Load() != "application/x-test;q=0.9,text/plain;q=0.1" {
		t.Fatalf("got %d bytes, %q, %v; server saw Accept %q", len(body), ct, err, accept.Load())
	}
	if _, _, err := c.MetricsAs(ctx, "text/plain", 99); err == nil || !strings.Contains(err.Error(), "larger than 99 bytes") {
		t.Fatalf("over the limit: %v", err)
	}
}
