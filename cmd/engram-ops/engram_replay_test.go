package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestEngramDocumentedCallsReplay replays, against `engram-ops serve`, the
// calls Engram's README, quickstart, getting-started guide, memory API doc
// and novelty demo make on the routes served here, and checks each answer's
// status and the fields Engram documents (engram-rest-reference.md §2).
// docs/engram-compatibility.md lists the same calls and what differs.
func TestEngramDocumentedCallsReplay(t *testing.T) {
	p := startServe(t, t.TempDir(), "--no-access-log")
	type answer struct {
		status int
		body   map[string]any
		raw    string
	}
	call := func(method, path, body string, headers ...string) answer {
		t.Helper()
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, err := http.NewRequest(method, p.base+path, rd)
		if err != nil {
			t.Fatal(err)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		a := answer{status: resp.StatusCode, raw: string(b)}
		if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			if err := json.Unmarshal(b, &a.body); err != nil {
				t.Fatalf("%s %s: %v: %s", method, path, err, b)
			}
		}
		return a
	}
	// expect checks the status and that every dotted field path is present
	// (a[0] is the first element of an array).
	expect := func(name string, a answer, status int, fields ...string) {
		t.Helper()
		if a.status != status {
			t.Errorf("%s: status %d, want %d: %s", name, a.status, status, a.raw)
			return
		}
		for _, f := range fields {
			if _, ok := lookup(a.body, f); !ok {
				t.Errorf("%s: no field %s in %s", name, f, a.raw)
			}
		}
	}
	str := func(a answer, path string) string {
		v, _ := lookup(a.body, path)
		s, _ := v.(string)
		return s
	}
	num := func(a answer, path string) float64 {
		v, _ := lookup(a.body, path)
		f, _ := v.(float64)
		return f
	}
	writeFields := []string{"memory_id", "storage_confidence.value", "storage_confidence.category", "storage_confidence.reasoning",
		"consolidation_state", "observed_at", "stored_at", "auto_links", "system_message"}
	recallFields := []string{"memories.vivid", "memories.associated", "memories.reconstructed", "recall_confidence.value",
		"recall_confidence.category", "recall_confidence.reasoning", "query_analysis.understood_intent", "query_analysis.search_strategy",
		"query_analysis.cognitive_load", "query_analysis.suggestions", "system_message"}
	resultFields := []string{"id", "content", "confidence.value", "confidence.category", "confidence.reasoning", "activation_level",
		"similarity_score", "retrieval_path", "observed_at", "last_access", "tags", "memory_type", "relevance_explanation"}

	// getting-started, README: the server answers its health probes.
	a := call("GET", "/health", "")
	expect("GET /health", a, 200, "status", "service", "version", "timestamp")
	if str(a, "service") != "engram" || str(a, "status") != "healthy" {
		t.Errorf("/health: %s", a.raw)
	}
	expect("GET /health/alive", call("GET", "/health/alive", ""), 200)

	// quickstart: store the first memory.
	a = call("POST", "/api/v1/memories/remember", `{"content": "The mitochondria is the powerhouse of the cell", "confidence": 0.95}`)
	expect("quickstart remember", a, 201, writeFields...)
	mito := str(a, "memory_id")
	if num(a, "storage_confidence.value") != 0.95 || str(a, "storage_confidence.category") != "High" || str(a, "consolidation_state") != "Recent" {
		t.Errorf("quickstart remember: %s", a.raw)
	}
	// README: with a timestamp, which becomes observed_at.
	a = call("POST", "/api/v1/memories/remember", `{"content": "The mitochondria is the powerhouse of the cell", "confidence": 0.95, "timestamp": "2024-01-04T08:15:00Z"}`)
	expect("README remember", a, 201, writeFields...)
	if str(a, "observed_at") != "2024-01-04T08:15:00Z" {
		t.Errorf("README remember: observed_at %q", str(a, "observed_at"))
	}
	// quickstart, README: recall it by a partial cue.
	a = call("GET", "/api/v1/memories/recall?query=mitochondria", "")
	expect("quickstart recall", a, 200, recallFields...)
	for _, f := range resultFields {
		expect("quickstart recall result", a, 200, "memories.vivid[0]."+f)
	}
	if str(a, "memories.vivid[0].id") != mito {
		t.Errorf("quickstart recall: the fresh memory is not first: %s", a.raw)
	}
	// memory API doc: confidence_threshold and max_results.
	call("POST", "/api/v1/memories/remember", `{"content": "The capital of France is Paris", "confidence": 0.9}`)
	a = call("GET", "/api/v1/memories/recall?query=capital+France&confidence_threshold=0.3&max_results=5", "")
	expect("memory API doc recall", a, 200, append(recallFields, "memories.vivid[0].content")...)
	// quickstart: episodic memory (where and confidence are Engram's doc names).
	a = call("POST", "/api/v1/episodes/remember", `{"what": "Learned about cellular biology", "when": "2024-01-15T10:30:00Z",
		"where": "Biology 101 lecture hall", "who": ["Professor Smith"], "why": "Preparing for exam", "how": "Taking detailed notes", "confidence": 0.85}`)
	expect("quickstart episode", a, 201, writeFields...)
	if num(a, "storage_confidence.value") != 0.85 || str(a, "observed_at") != "2024-01-15T10:30:00Z" {
		t.Errorf("quickstart episode: %s", a.raw)
	}
	ep := call("GET", "/api/v1/memories/"+str(a, "memory_id"), "")
	expect("get episode", ep, 200, "id", "content", "confidence", "timestamp", "memory_type")
	if str(ep, "episode.where_location") != "Biology 101 lecture hall" {
		t.Errorf("the episode's where was not kept: %s", ep.raw)
	}

	// demo act 2: three memories of different ages; recall shows the decay.
	now := time.Now().UTC()
	ages := []struct {
		content string
		days    int
	}{{"Paris is the capital of France", 1}, {"Tokyo is the capital of Japan", 7}, {"Berlin is the capital of Germany", 30}}
	ids := map[string]int{}
	for _, m := range ages {
		ts := now.AddDate(0, 0, -m.days).Format("2006-01-02T15:04:05Z")
		a = call("POST", "/api/v1/memories/remember", fmt.Sprintf(`{"content": %q, "confidence": 0.95, "timestamp": %q}`, m.content, ts),
			"X-Memory-Space", "demo")
		expect("demo remember", a, 201, writeFields...)
		ids[str(a, "memory_id")] = m.days
	}
	a = call("GET", "/api/v1/memories/recall?query=capital&max_results=10", "", "X-Memory-Space", "demo")
	expect("demo recall", a, 200, recallFields...)
	conf := map[int]float64{}
	vivid, _ := lookup(a.body, "memories.vivid")
	for _, v := range vivid.([]any) {
		m := v.(map[string]any)
		if d, ok := ids[m["id"].(string)]; ok {
			conf[d] = m["confidence"].(map[string]any)["value"].(float64)
		}
	}
	if !(conf[1] > conf[7] && conf[7] > conf[30]) || conf[1] > 0.95 {
		t.Errorf("demo recall: confidence by age in days %v, want decaying with age", conf)
	}
	// demo act 4: twenty episodes (what, when, why, confidence).
	for i := 1; i <= 20; i++ {
		body := fmt.Sprintf(`{"what": "Practiced borrowing and lifetimes in Rust %d", "when": %q, "why": "Learning Rust programming language", "confidence": 0.8}`,
			i, now.AddDate(0, 0, -(i+1)).Format("2006-01-02T15:04:05Z"))
		a = call("POST", "/api/v1/episodes/remember", body, "X-Memory-Space", "demo")
		expect(fmt.Sprintf("demo episode %d", i), a, 201, writeFields...)
	}

	// Spaces: memory_space_id and memory_space in the body, the header.
	a = call("POST", "/api/v1/memories/remember", `{"content": "tenant fact", "memory_space_id": "tenant-a"}`)
	expect("remember memory_space_id", a, 201, writeFields...)
	a = call("POST", "/api/v1/memories/remember", `{"content": "tenant fact", "memory_space": "tenant-b"}`)
	expect("remember memory_space", a, 201, writeFields...)
	a = call("POST", "/api/v1/memories", `{"content": "ATP synthase generates energy"}`, "X-Memory-Space", "tenant-c")
	expect("CLI memory create", a, 201, writeFields...)
	a = call("GET", "/api/v1/spaces", "")
	expect("list spaces", a, 200, "spaces[0].id", "spaces[0].created_at")
	for _, s := range []string{"tenant-a", "tenant-b", "tenant-c", "demo"} {
		if !strings.Contains(a.raw, `"id":"`+s+`"`) {
			t.Errorf("space %s not listed: %s", s, a.raw)
		}
	}
	expect("create space", call("POST", "/api/v1/spaces", `{"id": "tenant-d"}`), 201, "id", "created_at")

	// List, get, search.
	a = call("GET", "/api/v1/memories?limit=2&offset=0", "")
	expect("list", a, 200, "memories[0].id", "memories[0].content", "memories[0].confidence", "memories[0].timestamp", "count",
		"pagination.offset", "pagination.limit", "pagination.returned", "tier_counts.hot", "tier_counts.warm", "tier_counts.cold", "tier_counts.total")
	expect("get", call("GET", "/api/v1/memories/"+mito, ""), 200, "id", "content", "confidence", "timestamp", "memory_type")
	expect("search", call("GET", "/api/v1/memories/search?query=mitochondria&limit=10", ""), 200,
		"memories[0].id", "memories[0].content", "memories[0].confidence", "memories[0].memory_type", "memories[0].timestamp", "total")

	// System health, metrics.
	expect("system health", call("GET", "/api/v1/system/health", ""), 200, "status", "timestamp", "checks[0].name", "checks[0].status",
		"checks[0].message", "checks[0].latency_seconds", "spaces[0].space", "spaces[0].memories")
	for _, path := range []string{"/metrics", "/metrics/prometheus"} {
		if a := call("GET", path, ""); a.status != 200 || !strings.Contains(a.raw, "engram_memories") {
			t.Errorf("%s: %d", path, a.status)
		}
	}

	// Errors come in Engram's envelope.
	a = call("GET", "/api/v1/memories/nope", "")
	expect("get unknown", a, 404, "error.code", "error.message", "error.educational_context", "error.cognitive_guidance",
		"documentation.api_guide", "documentation.memory_concepts", "documentation.examples")
	if str(a, "error.code") != "MEMORY_NOT_FOUND" {
		t.Errorf("get unknown: %s", a.raw)
	}
	a = call("POST", "/api/v1/memories/remember", `{"content": "x", "embedding": [0.1, 0.2, 0.3]}`)
	expect("wrong dimension", a, 400, "error.code", "error.educational_context", "error.cognitive_guidance", "documentation.api_guide")
	if str(a, "error.engram_code") != "INVALID_MEMORY_INPUT" {
		t.Errorf("wrong dimension: %s", a.raw)
	}

	// Forget (Engram answers 200 not_supported; here it forgets).
	a = call("DELETE", "/api/v1/memories/"+mito, "")
	expect("forget", a, 200, "status")
	expect("get forgotten", call("GET", "/api/v1/memories/"+mito, ""), 404, "error.code")
}

// lookup finds a dotted path such as memories.vivid[0].id in decoded JSON.
func lookup(v any, path string) (any, bool) {
	for _, part := range strings.Split(path, ".") {
		name, idx, hasIdx := strings.Cut(part, "[")
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[name]; !ok {
			return nil, false
		}
		if hasIdx {
			var i int
			if _, err := fmt.Sscanf(idx, "%d]", &i); err != nil {
				return nil, false
			}
			a, ok := v.([]any)
			if !ok || i >= len(a) {
				return nil, false
			}
			v = a[i]
		}
	}
	return v, true
}
