// The CLI end to end, in-process: every command's flags, output and exit
// codes, and serve's behaviour over HTTP through the real composition root.
// What needs a separate process (SIGKILL, a full disk, the lock between
// processes, loopback benchmarks) is in e2e/, through internal/testsupport.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/engram-ops/engram-ops/internal/testsupport"
	"github.com/engram-ops/engram-ops/ops/api"
	"github.com/engram-ops/engram-ops/ops/client"
)

// inProcess is `engram-ops serve` running in this test process through the
// real composition root (app.run), on 127.0.0.1:0.
type inProcess struct {
	t      testing.TB
	base   string
	cancel context.CancelFunc
	exit   chan int
	stderr *syncBuffer
	c      *client.Client
}

// startServe runs `serve --listen 127.0.0.1:0 --grpc-listen 127.0.0.1:0
// --data-dir dir` in-process and waits until it serves.
func startServe(t testing.TB, dir string, extra ...string) *inProcess {
	t.Helper()
	return startServeEnv(t, dir, nil, extra...)
}

// startServeEnv is startServe with an environment.
func startServeEnv(t testing.TB, dir string, env map[string]string, extra ...string) *inProcess {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stderr := &syncBuffer{}
	a := newApp(strings.NewReader(""), &syncBuffer{}, stderr, func(k string) string { return env[k] })
	addrs := make(chan net.Addr, 1)
	a.onServing = func(addr net.Addr) { addrs <- addr }
	p := &inProcess{t: t, cancel: cancel, exit: make(chan int, 1), stderr: stderr}
	args := append([]string{"serve", "--listen", "127.0.0.1:0", "--grpc-listen", "127.0.0.1:0", "--data-dir", dir, "--log-format", "json"}, extra...)
	go func() { p.exit <- a.run(ctx, args) }()
	select {
	case addr := <-addrs:
		p.base = "http://" + addr.String()
	case code := <-p.exit:
		cancel()
		t.Fatalf("serve exited with %d before serving:\n%s", code, stderr.String())
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatalf("serve did not start:\n%s", stderr.String())
	}
	c, err := client.New(p.base)
	if err != nil {
		t.Fatal(err)
	}
	p.c = c
	t.Cleanup(func() { p.stop() })
	if slices.Contains(extra, "--backup-to") {
		// Writes wait for the shipper to confirm the archive
		// (backup.start_hold); readiness says when they are taken.
		if err := testsupport.WaitReady(http.DefaultClient, p.base, 30*time.Second, nil); err != nil {
			t.Fatalf("%v:\n%s", err, stderr.String())
		}
	}
	return p
}

// stop cancels the context (what the first SIGINT does) and returns the
// exit code once the server drained and closed the engine.
func (p *inProcess) stop() int {
	p.cancel()
	select {
	case code, ok := <-p.exit:
		if !ok {
			return 0
		}
		close(p.exit)
		return code
	case <-time.After(2 * time.Minute):
		p.t.Fatalf("serve did not stop:\n%s", p.stderr.String())
		return -1
	}
}

// logLines parses the JSON log lines written so far.
func (p *inProcess) logLines() []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(p.stderr.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

func ids(ms []api.RecalledMemory) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

func TestE2ERememberRecallForget(t *testing.T) {
	dir := t.TempDir()
	p := startServe(t, dir)
	ctx := context.Background()
	c := p.c

	// The startup line names the address, the data directory and the disk
	// reserve.
	var started map[string]any
	for _, l := range p.logLines() {
		if l["msg"] == "engram-ops serving" {
			started = l
		}
	}
	if started == nil || started["url"] != p.base || started["data_dir"] != dir || started["min_free_space"] != "256MiB" {
		t.Errorf("startup log line: %v\n%s", started, p.stderr.String())
	}

	facts := map[string]string{
		"mito":  "The mitochondria is the powerhouse of the cell",
		"paris": "Paris is the capital of France",
		"water": "Water boils at 100 degrees Celsius at sea level",
	}
	for id, content := range facts {
		if _, err := c.Remember(ctx, api.RememberRequest{ID: id, Content: content}); err != nil {
			t.Fatal(err)
		}
	}
	rec, err := c.RecallGet(ctx, api.RecallRequest{Query: "powerhouse cell", MaxResults: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Memories.Vivid) != 1 || rec.Memories.Vivid[0].ID != "mito" || rec.Memories.Vivid[0].Content != facts["mito"] {
		t.Fatalf("partial cue recalled %v", ids(rec.Memories.Vivid))
	}
	if v := rec.Memories.Vivid[0]; v.SimilarityScore <= 0 || v.Confidence.Value <= 0 || v.RetrievalPath != "direct match" {
		t.Errorf("recall figures %+v", v)
	}

	f, err := c.Forget(ctx, "mito")
	if err != nil || f.Status != "forgotten" {
		t.Fatalf("forget %+v %v", f, err)
	}
	if _, err := c.Get(ctx, "mito", false); client.CodeOf(err) != "MEMORY_NOT_FOUND" {
		t.Errorf("forgotten memory readable: %v", err)
	}
	rec, err = c.Recall(ctx, api.RecallRequest{Query: "powerhouse cell"})
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(ids(rec.Memories.Vivid), "mito") || slices.Contains(ids(rec.Memories.Associated), "mito") {
		t.Errorf("forgotten memory still recalled")
	}
	if _, err := c.Forget(ctx, "mito"); !client.IsNotFound(err) {
		t.Errorf("second forget: %v", err)
	}

	if code := p.stop(); code != 0 {
		t.Errorf("exit %d:\n%s", code, p.stderr.String())
	}
	// Access lines are written in batches (log.flush_interval); shutdown
	// writes the last batch before the shutdown line, so the log holds
	// every request, the second forget's 404 last among them.
	stopped, lastAccess, accesses := -1, -1, 0
	for i, l := range p.logLines() {
		if strings.HasPrefix(fmt.Sprint(l["msg"]), "engram-ops stopped") {
			stopped = i
		}
		if l["msg"] == "http request" {
			lastAccess, accesses = i, accesses+1
		}
	}
	if stopped < 0 {
		t.Errorf("no shutdown log line:\n%s", p.stderr.String())
	}
	if lastAccess < 0 || lastAccess > stopped || accesses < 8 {
		t.Fatalf("%d access lines, the last at line %d, shutdown at %d:\n%s", accesses, lastAccess, stopped, p.stderr.String())
	}
	if l := p.logLines()[lastAccess]; l["status"] != float64(404) {
		t.Errorf("last access line %v, want the second forget's 404", l)
	}
}

func TestE2ESpacesIsolation(t *testing.T) {
	p := startServe(t, t.TempDir())
	ctx := context.Background()
	a, b := p.c.WithSpace("tenant-a"), p.c.WithSpace("tenant-b")
	if _, err := a.Remember(ctx, api.RememberRequest{ID: "secret", Content: "only tenant-a knows the launch code"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Get(ctx, "secret", false); err != nil {
		t.Fatalf("tenant-a cannot read its own memory: %v", err)
	}
	for _, other := range []*client.Client{b, p.c} {
		if _, err := other.Get(ctx, "secret", false); !client.IsNotFound(err) {
			t.Errorf("space %q reads tenant-a's memory: %v", other.CurrentSpace(), err)
		}
		rec, err := other.Recall(ctx, api.RecallRequest{Query: "launch code"})
		if err != nil {
			t.Fatal(err)
		}
		if n := len(rec.Memories.Vivid) + len(rec.Memories.Associated); n != 0 {
			t.Errorf("space %q recalls %d of tenant-a's memories", other.CurrentSpace(), n)
		}
	}
	rec, err := a.Recall(ctx, api.RecallRequest{Query: "launch code"})
	if err != nil || !slices.Contains(ids(rec.Memories.Vivid), "secret") {
		t.Errorf("tenant-a recall: %v %v", err, rec)
	}
	spaces, err := p.c.Spaces(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range spaces {
		names = append(names, s.ID)
	}
	if !slices.Contains(names, "tenant-a") || slices.Contains(names, "tenant-b") {
		t.Errorf("spaces %v (reads must not create spaces)", names)
	}
	if sp, err := p.c.Space(ctx, "tenant-a"); err != nil || sp.Memories.Total != 1 || sp.Dimension != 768 {
		t.Errorf("tenant-a: %+v %v", sp, err)
	}
}

func TestE2EBatchWithCursor(t *testing.T) {
	p := startServe(t, t.TempDir())
	ctx := context.Background()
	c := p.c.WithSpace("import")
	res, err := c.Batch(ctx, api.BatchRequest{
		Memories: []api.BatchMemory{
			{ID: "row-1", Content: "first imported row"},
			{ID: "row-2", Content: "second imported row", Tags: []string{"pg"}},
			{Content: "third imported row, id generated"},
		},
		Associations: []api.BatchAssociation{{From: "row-1", To: "row-2", Weight: 0.7, Kind: "next"}},
		Cursor:       &api.Cursor{Source: "postgres:public.notes", Value: "3"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.MemoryIDs) != 3 || res.MemoryIDs[0] != "row-1" || res.MemoryIDs[2] == "" || res.Associations != 1 || res.Sequence == 0 {
		t.Errorf("batch %+v", res)
	}
	if v, ok, err := c.Cursor(ctx, "postgres:public.notes"); err != nil || !ok || v != "3" {
		t.Errorf("cursor %q %v %v", v, ok, err)
	}
	for _, id := range res.MemoryIDs {
		if _, err := c.Get(ctx, id, false); err != nil {
			t.Errorf("batched %s: %v", id, err)
		}
	}
	// A failing batch writes nothing: neither memories nor the cursor.
	conf := 3.0
	_, err = c.Batch(ctx, api.BatchRequest{
		Memories: []api.BatchMemory{{ID: "row-4", Content: "fine"}, {ID: "row-5", Content: "bad", Confidence: &conf}},
		Cursor:   &api.Cursor{Source: "postgres:public.notes", Value: "5"},
	})
	if client.CodeOf(err) != "INVALID_CONFIDENCE" {
		t.Fatalf("bad batch: %v", err)
	}
	if v, _, _ := c.Cursor(ctx, "postgres:public.notes"); v != "3" {
		t.Errorf("cursor moved to %q by a failed batch", v)
	}
	if _, err := c.Get(ctx, "row-4", false); !client.IsNotFound(err) {
		t.Errorf("row-4 of a failed batch exists: %v", err)
	}
}

func TestE2EEpisode(t *testing.T) {
	p := startServe(t, t.TempDir())
	ctx := context.Background()
	when := time.Date(2025, 3, 14, 9, 26, 0, 0, time.UTC)
	imp, val := 0.9, -0.3
	res, err := p.c.RememberEpisode(ctx, api.EpisodeRequest{
		When: &when, What: "Met Ada at the bakery to plan the launch", WhereLocation: "bakery on Main St",
		Who: []string{"Ada", "me"}, Why: "launch planning", How: "in person", Importance: &imp, EmotionalValence: &val,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(res.MemoryID, "ep_") || res.StorageConfidence.Value != 0.9 || !res.ObservedAt.Equal(when) {
		t.Errorf("episode response %+v", res)
	}
	m, err := p.c.Get(ctx, res.MemoryID, false)
	if err != nil {
		t.Fatal(err)
	}
	if m.MemoryType != "episodic" || m.Content != "Met Ada at the bakery to plan the launch" || m.Episode == nil ||
		m.Episode.WhereLocation != "bakery on Main St" || len(m.Episode.Who) != 2 || m.Episode.Why != "launch planning" ||
		m.Episode.How != "in person" || m.Episode.EmotionalValence == nil || *m.Episode.EmotionalValence != -0.3 {
		t.Errorf("stored episode %+v %+v", m, m.Episode)
	}
	rec, err := p.c.Recall(ctx, api.RecallRequest{Query: "bakery launch"})
	if err != nil || !slices.Contains(ids(rec.Memories.Vivid), res.MemoryID) {
		t.Errorf("episode not recalled: %v", err)
	}
}

func TestE2EAssociationsSpread(t *testing.T) {
	p := startServe(t, t.TempDir())
	ctx := context.Background()
	c := p.c
	for id, content := range map[string]string{
		"coffee":  "Morning coffee with oat milk",
		"cafe":    "The corner cafe opens at seven",
		"barista": "Sam the barista remembers every order",
	} {
		if _, err := c.Remember(ctx, api.RememberRequest{ID: id, Content: content}); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range [][2]string{{"coffee", "cafe"}, {"cafe", "barista"}} {
		if _, err := c.Associate(ctx, api.AssociationRequest{From: a[0], To: a[1], Weight: 0.9, Kind: "related"}); err != nil {
			t.Fatal(err)
		}
	}
	rec, err := c.Recall(ctx, api.RecallRequest{Query: "coffee oat milk", Threshold: 0.5, TraceActivation: true})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(ids(rec.Memories.Vivid), "coffee") {
		t.Fatalf("vivid %v", ids(rec.Memories.Vivid))
	}
	byID := map[string]api.RecalledMemory{}
	for _, m := range rec.Memories.Associated {
		byID[m.ID] = m
	}
	cafe, ok := byID["cafe"]
	if !ok {
		t.Fatalf("cafe not reached by spreading: associated %v", ids(rec.Memories.Associated))
	}
	if cafe.RetrievalPath != "spreading: coffee → cafe" || cafe.ActivationLevel <= 0 || cafe.SimilarityScore != 0 {
		t.Errorf("cafe %+v", cafe)
	}
	if b, ok := byID["barista"]; ok && b.RetrievalPath != "spreading: coffee → cafe → barista" {
		t.Errorf("barista path %q", b.RetrievalPath)
	}
	if rec.Metadata.Activated == 0 {
		t.Errorf("metadata.activated = 0")
	}
	sim, err := c.Recall(ctx, api.RecallRequest{Query: "coffee oat milk", Threshold: 0.5, Mode: "similarity"})
	if err != nil || len(sim.Memories.Associated) != 0 {
		t.Errorf("similarity mode spread: %v %v", err, sim.Memories.Associated)
	}
}

func TestE2EShutdownAndReopen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	p := startServe(t, dir)
	ctx := context.Background()
	for i := 0; i < 20; i++ {
		if _, err := p.c.Remember(ctx, api.RememberRequest{ID: fmt.Sprintf("n%02d", i), Content: fmt.Sprintf("note number %d about durability", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.c.Associate(ctx, api.AssociationRequest{From: "n00", To: "n01", Weight: 0.5}); err != nil {
		t.Fatal(err)
	}
	before, err := p.c.SystemHealth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if code := p.stop(); code != 0 {
		t.Fatalf("exit %d:\n%s", code, p.stderr.String())
	}
	if _, err := p.c.Health(ctx); err == nil {
		t.Errorf("server still answers after shutdown")
	}

	q := startServe(t, dir)
	after, err := q.c.SystemHealth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after.Changelog.Sequence != before.Changelog.Sequence {
		t.Errorf("changelog sequence %d after reopen, %d before", after.Changelog.Sequence, before.Changelog.Sequence)
	}
	if len(after.Spaces) != 1 || after.Spaces[0].Memories != 20 || after.Spaces[0].Associations != 1 {
		t.Errorf("after reopen: %+v", after.Spaces)
	}
	m, err := q.c.Get(ctx, "n07", false)
	if err != nil || m.Content != "note number 7 about durability" {
		t.Errorf("n07 after reopen: %+v %v", m, err)
	}
	rec, err := q.c.Recall(ctx, api.RecallRequest{Query: "note number 13 durability", MaxResults: 3})
	if err != nil || len(rec.Memories.Vivid) == 0 {
		t.Errorf("recall after reopen: %v %+v", err, rec)
	}
}

func TestE2ERelaxedDurabilityWarns(t *testing.T) {
	p := startServe(t, t.TempDir(), "--durability", "relaxed")
	var warned bool
	for _, l := range p.logLines() {
		if l["level"] == "WARN" && strings.Contains(fmt.Sprint(l["msg"]), "RELAXED") {
			warned = true
		}
	}
	if !warned {
		t.Errorf("no loud warning for relaxed durability:\n%s", p.stderr.String())
	}
}

func TestE2ENoAutoCreate(t *testing.T) {
	p := startServe(t, t.TempDir(), "--no-auto-create-spaces")
	ctx := context.Background()
	_, err := p.c.WithSpace("tenant-z").Remember(ctx, api.RememberRequest{Content: "x"})
	if client.StatusOf(err) != 404 || client.CodeOf(err) != "SPACE_NOT_FOUND" {
		t.Fatalf("write to unknown space: %v", err)
	}
	if _, created, err := p.c.CreateSpace(ctx, api.CreateSpaceRequest{ID: "tenant-z"}); err != nil || !created {
		t.Fatalf("create: %v", err)
	}
	if _, err := p.c.WithSpace("tenant-z").Remember(ctx, api.RememberRequest{Content: "x"}); err != nil {
		t.Errorf("write after create: %v", err)
	}
}

// TestE2EOpenAIEmbedderWiring: a space created with embedder "openai" embeds
// through the configured OpenAI-compatible API with the key from the
// configured environment variable.
func TestE2EOpenAIEmbedderWiring(t *testing.T) {
	var mu sync.Mutex
	var auth []string
	embedAPI := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Model string   `json:"model"`
			Input []string `json:"input"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || r.URL.Path != "/v1/embeddings" {
			http.Error(w, "bad request", 400)
			return
		}
		mu.Lock()
		auth = append(auth, r.Header.Get("Authorization")+" "+req.Model)
		mu.Unlock()
		type item struct {
			Index     int       `json:"index"`
			Embedding []float32 `json:"embedding"`
		}
		var data []item
		for i, text := range req.Input {
			v := make([]float32, 8)
			for j, ch := range text {
				v[(j+int(ch))%8] += 1
			}
			data = append(data, item{Index: i, Embedding: v})
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"data": data})
	}))
	defer embedAPI.Close()
	env := map[string]string{
		"ENGRAM_EMBEDDER_OPENAI_BASE_URL":    embedAPI.URL + "/v1",
		"ENGRAM_EMBEDDER_OPENAI_MODEL":       "test-model",
		"ENGRAM_EMBEDDER_OPENAI_DIMENSION":   "8",
		"ENGRAM_EMBEDDER_OPENAI_API_KEY_ENV": "TEST_EMBED_KEY",
		"TEST_EMBED_KEY":                     "sk-test-123",
	}
	p := startServeEnv(t, t.TempDir(), env)
	ctx := context.Background()
	sp, created, err := p.c.CreateSpace(ctx, api.CreateSpaceRequest{ID: "semantic", Dimension: 8, Embedder: "openai"})
	if err != nil || !created || sp.Fingerprint == "" || !strings.Contains(sp.Fingerprint, "openai") {
		t.Fatalf("create openai space: %+v %v", sp, err)
	}
	c := p.c.WithSpace("semantic")
	if _, err := c.Remember(ctx, api.RememberRequest{ID: "x", Content: "hello embeddings"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Recall(ctx, api.RecallRequest{Query: "hello"}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(auth) < 2 || auth[0] != "Bearer sk-test-123 test-model" {
		t.Errorf("embedding calls %v", auth)
	}
	if strings.Contains(p.stderr.String(), "sk-test-123") {
		t.Errorf("the API key was logged")
	}
}
