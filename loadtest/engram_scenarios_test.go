package loadtest

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/engram-ops/engram-ops/ops/api"
	"github.com/engram-ops/engram-ops/ops/client"
)

// engramScenarios are Engram's twelve scenario files, unchanged
// (testdata/engram: its tools/loadtest/scenarios, scenarios/competitive
// and scenarios/m17_baseline.toml).
func engramScenarios(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("testdata/engram/*.toml")
	if err != nil || len(files) != 12 {
		t.Fatalf("testdata/engram: %d files (%v), want Engram's 12 scenario files", len(files), err)
	}
	return files
}

// spacesOnlyServer answers POST /api/v1/spaces and counts every other
// request by method and path: what a setup sent before the measured phase.
func spacesOnlyServer(t *testing.T) (*client.Client, func() map[string]int) {
	t.Helper()
	var mu sync.Mutex
	other := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == api.PathSpaces {
			var req api.CreateSpaceRequest
			_ = json.NewDecoder(r.Body).Decode(&req)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusCreated)
			_ = json.NewEncoder(w).Encode(api.Space{ID: req.ID, Dimension: req.Dimension})
			return
		}
		mu.Lock()
		other[r.Method+" "+r.URL.Path]++
		mu.Unlock()
		http.Error(w, "unexpected", http.StatusTeapot)
	}))
	t.Cleanup(srv.Close)
	c, err := client.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return c, func() map[string]int { mu.Lock(); defer mu.Unlock(); return other }
}

// num_nodes has Engram's meaning: it sizes the id pool, and nothing is
// preloaded because of it. Each of Engram's files (100,000 to 10,000,000
// nodes) parses unchanged, plans no preload, and its setup (what runs
// before the measured phase) creates its spaces and prepares its cues
// without writing a memory, in well under the minute the issue allows.
func TestEngramScenariosPlanNoPreload(t *testing.T) {
	for _, file := range engramScenarios(t) {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".toml"), func(t *testing.T) {
			sc, _, err := Load(file)
			if err != nil {
				t.Fatal(err)
			}
			if sc.Data.NumNodes < 1000 || sc.PoolSize() != sc.Data.NumNodes {
				t.Errorf("num_nodes %d, pool %d: want the file's num_nodes as the id pool", sc.Data.NumNodes, sc.PoolSize())
			}
			if n := sc.PreloadPerSpace(); n != 0 {
				t.Fatalf("plans to preload %d memories per space, want none", n)
			}
			c, other := spacesOnlyServer(t)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			start := time.Now()
			w, info, err := setupWorkload(ctx, sc, c, TargetEngramOps, sc.Generator.Seed, nil)
			took := time.Since(start)
			if err != nil {
				t.Fatalf("setup: %v (after %v)", err, took)
			}
			if info.Preloaded != 0 || len(other()) != 0 {
				t.Errorf("setup preloaded %d memories, sent %v; want only space creations", info.Preloaded, other())
			}
			if took > 10*time.Second {
				t.Errorf("setup took %v: the measured phase would start late", took)
			}
			// Reads have cues drawn from the pool, not checked (nothing
			// known was stored).
			for _, tn := range w.tenants {
				if sc.Operations.Recall > 0 && len(tn.textCues) == 0 {
					t.Errorf("space %s: no text cues", tn.textName)
				}
				if sc.Operations.EmbeddingSearch > 0 && (len(tn.vecCues) == 0 || tn.vecCues[0].truth != nil) {
					t.Errorf("space %s: %d vector cues (truth %v), want unchecked cues", tn.textName, len(tn.vecCues), tn.vecCues != nil && tn.vecCues[0].truth != nil)
				}
			}
			if w.truth {
				t.Error("ground truth enabled without a preload")
			}
		})
	}
}

// An explicit [preload] section preloads from the start of the id pool,
// within its bounds.
func TestPreloadSection(t *testing.T) {
	base := `name = "x"
[duration]
total_seconds = 1
[arrival]
pattern = "constant"
rate = 10.0
[operations]
recall_weight = 1.0
[data]
num_nodes = 1000
memory_spaces = 4
`
	sc, err := ParseScenario([]byte(base + "[preload]\nmemories = 400\n"))
	if err != nil {
		t.Fatal(err)
	}
	if sc.PreloadPerSpace() != 100 || sc.PoolSize() != 1000 {
		t.Errorf("preload per space %d, pool %d; want 100 of 1000", sc.PreloadPerSpace(), sc.PoolSize())
	}
	for src, want := range map[string]string{
		base + "[preload]\nmemories = 2000\n":                         "more than the id pool",
		base + "[preload]\nmemories = -1\n":                           "memories = -1",
		base + "[preload]\nmemories = 10\ndisabled = true\n":          "disabled = true with memories = 10",
		base + "[validation]\nmin_recall_at_k = 0.5\n":                "min_recall_at_k needs [preload] memories",
		strings.Replace(base, "num_nodes = 1000", "num_nodes = 0", 1): "id pool of at least one memory per space",
	} {
		if _, err := ParseScenario([]byte(src)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want one mentioning %q", err, want)
		}
	}
}

// DetectTargetKind tells the two servers apart by GET /health's shape:
// Engram's has no implementation field; a server of neither shape is
// refused rather than guessed.
func TestDetectTargetKind(t *testing.T) {
	for body, want := range map[string]string{
		`{"status":"healthy","service":"engram","version":"0.1.0","timestamp":"2025-01-02T15:04:05Z"}`:                                TargetEngram,
		`{"status":"healthy","service":"engram","version":"v1.2.3","timestamp":"2025-01-02T15:04:05Z","implementation":"engram-ops"}`: TargetEngramOps,
		`{"status":"ok","service":"qdrant"}`: "",
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != api.PathHealth {
				http.NotFound(w, r)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(body))
		}))
		c, err := client.New(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DetectTargetKind(context.Background(), c)
		srv.Close()
		if got != want || (want == "") != (err != nil) {
			t.Errorf("%s: kind %q, err %v; want %q", body, got, err, want)
		}
		if want == "" && (err == nil || !strings.Contains(err.Error(), "--target-kind")) {
			t.Errorf("%s: error %v should point to --target-kind", body, err)
		}
	}
}

// A preload larger than the server's index backlog bound is refused with
// 503 INDEX_BACKLOG until the indexer catches up: the preload waits the
// Retry-After and sends the write again instead of failing the run.
func TestPreloadRetriesBacklogRefusals(t *testing.T) {
	var mu sync.Mutex
	batches, refusals := 0, 2
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == http.MethodPost && r.URL.Path == api.PathSpaces:
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte(`{"id":"lt-0"}`))
		case r.Method == http.MethodPost && r.URL.Path == api.PathBatch:
			mu.Lock()
			defer mu.Unlock()
			batches++
			if refusals > 0 {
				refusals--
				w.Header().Set("Retry-After", "0")
				w.WriteHeader(http.StatusServiceUnavailable)
				_, _ = w.Write([]byte(`{"error":{"code":"INDEX_BACKLOG","message":"backlog"}}`))
				return
			}
			_, _ = w.Write([]byte(`{}`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	c, err := client.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := ParseScenario([]byte(`name = "x"
[duration]
total_seconds = 1
[arrival]
pattern = "constant"
rate = 10.0
[operations]
recall_weight = 1.0
[preload]
memories = 20
`))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, info, err := setupWorkload(ctx, sc, c, TargetEngramOps, 1, nil)
	if err != nil || info.Preloaded != 20 || batches != 3 {
		t.Errorf("preloaded %d in %d batch requests, err %v; want 20 after two refusals", info.Preloaded, batches, err)
	}
}
