package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/ops/api"
)

// snapshot is what "nothing was written" compares.
type snapshot struct {
	seq    uint64
	spaces string
}

func snap(eng *core.Engine) snapshot {
	var b strings.Builder
	for _, st := range eng.Spaces() {
		fmt.Fprintf(&b, "%s:%d/%d;", st.Name, st.Total(), st.Associations)
	}
	return snapshot{seq: eng.LastSequence(), spaces: b.String()}
}

func vec(n int, v float32) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprint(v)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// TestBadInput drives the real engine with bad requests and checks the
// status, the error code, the envelope, and that nothing was written.
func TestBadInput(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.MaxBodyBytes = 4096
	cfg.Limits.MaxContentBytes = 1000
	eng := openEngine(t, cfg)
	srv := newTestServer(t, cfg, eng)
	h := srv.Handler()

	// A known memory and space, so 404s are about the right thing.
	if w := do(t, h, request{method: "POST", path: api.PathRemember, body: `{"id":"known","content":"a known memory"}`}); w.Code != 201 {
		t.Fatalf("seed: %d %s", w.Code, w.Body)
	}

	noAuto := testConfig()
	noAuto.Spaces.AutoCreate = false
	engNoAuto := openEngine(t, noAuto)
	hNoAuto := newTestServer(t, noAuto, engNoAuto).Handler()

	big := `{"content":"` + strings.Repeat("x", 5000) + `"}`
	tests := []struct {
		name     string
		h        string // "" real engine with auto-create, "noauto" without
		req      request
		status   int
		code     string
		contains string
	}{
		{"invalid JSON", "", request{method: "POST", path: api.PathRemember, body: `{"content":"x",}`}, 400, "INVALID_JSON", "offset 14"},
		{"duplicate field", "", request{method: "POST", path: api.PathRemember, body: `{"content":"x","content":"y"}`}, 400, "DUPLICATE_FIELD", `"content" appears twice`},
		{"invalid UTF-8", "", request{method: "POST", path: api.PathRemember, body: "{\"content\":\"\xff\"}"}, 400, "INVALID_JSON", "invalid UTF-8"},
		{"field names are case-sensitive", "", request{method: "POST", path: api.PathRemember, body: `{"Content":"x"}`}, 400, "UNKNOWN_FIELD", "accepted fields are: "},
		{"wrong element type names its path", "", request{method: "POST", path: api.PathRemember, body: `{"content":"x","tags":["a",7]}`}, 400, "INVALID_FIELD_TYPE", `"tags[1]" must be a string, got a number`},
		{"integer field given a fraction", "", request{method: "POST", path: api.PathRecall, body: `{"query":"x","max_results":2.5}`}, 400, "INVALID_NUMBER", "max_results"},
		{"truncated JSON", "", request{method: "POST", path: api.PathRemember, body: `{"content":"x"`}, 400, "INVALID_JSON", "ends unexpectedly"},
		{"trailing data", "", request{method: "POST", path: api.PathRemember, body: `{"content":"x"} {"content":"y"}`}, 400, "INVALID_JSON", "after the JSON value"},
		{"array body", "", request{method: "POST", path: api.PathRemember, body: `[1,2]`}, 400, "INVALID_JSON", "must be a JSON object"},
		{"empty body", "", request{method: "POST", path: api.PathRemember, body: "", ctype: "application/json"}, 400, "EMPTY_BODY", "empty"},
		{"unknown field", "", request{method: "POST", path: api.PathRemember, body: `{"content":"x","bogus":1}`}, 400, "UNKNOWN_FIELD", `"bogus"`},
		{"wrong field type", "", request{method: "POST", path: api.PathRemember, body: `{"content":5}`}, 400, "INVALID_FIELD_TYPE", `"content"`},
		{"wrong dimension", "", request{method: "POST", path: api.PathRemember, body: `{"content":"x","embedding":[0.1,0.2,0.3]}`}, 400, "INVALID_EMBEDDING_DIMENSION", "16"},
		{"non-finite number", "", request{method: "POST", path: api.PathRemember, body: `{"content":"x","embedding":[1e999]}`}, 400, "INVALID_NUMBER", "1e999"},
		{"float32 overflow", "", request{method: "POST", path: api.PathRemember, body: `{"content":"x","embedding":` + strings.Replace(vec(16, 0.1), "0.1", "1e39", 1) + `}`}, 400, "INVALID_NUMBER", "1e39"},
		{"infinite confidence", "", request{method: "POST", path: api.PathRemember, body: `{"content":"x","confidence":1e999}`}, 400, "INVALID_NUMBER", "confidence"},
		{"empty content", "", request{method: "POST", path: api.PathRemember, body: `{"content":"   "}`}, 400, "EMPTY_CONTENT", "empty"},
		{"content over limit", "", request{method: "POST", path: api.PathRemember, body: `{"content":"` + strings.Repeat("y", 1001) + `"}`}, 413, "CONTENT_TOO_LARGE", "1000"},
		{"oversize body", "", request{method: "POST", path: api.PathRemember, body: big}, 413, "BODY_TOO_LARGE", "4096 bytes"},
		{"bad memory type", "", request{method: "POST", path: api.PathRemember, body: `{"content":"x","memory_type":"dream"}`}, 400, "INVALID_MEMORY_TYPE", "dream"},
		{"bad id", "", request{method: "POST", path: api.PathRemember, body: `{"id":"a b","content":"x"}`}, 400, "INVALID_ID", "a b"},
		{"bad time", "", request{method: "POST", path: api.PathRemember, body: `{"content":"x","timestamp":"yesterday"}`}, 400, "INVALID_TIME", `"yesterday" is not RFC 3339`},
		{"wrong content type", "", request{method: "POST", path: api.PathRemember, body: `{"content":"x"}`, ctype: "text/plain"}, 415, "UNSUPPORTED_MEDIA_TYPE", "application/json"},
		{"no content type", "", request{method: "POST", path: api.PathRemember, body: `{"content":"x"}`, ctype: "-"}, 415, "UNSUPPORTED_MEDIA_TYPE", "Content-Type"},
		{"invalid space header", "", request{method: "POST", path: api.PathRemember, body: `{"content":"x"}`, headers: map[string]string{api.HeaderSpace: "No Way!"}}, 400, "INVALID_SPACE", "3-64"},
		{"invalid space body", "", request{method: "POST", path: api.PathRemember, body: `{"content":"x","memory_space_id":"x"}`}, 400, "INVALID_SPACE", "3-64"},
		{"unknown space, auto-create off", "noauto", request{method: "POST", path: api.PathRemember, body: `{"content":"x"}`, headers: map[string]string{api.HeaderSpace: "nosuch"}}, 404, "SPACE_NOT_FOUND", "nosuch"},
		{"recall unknown space, auto-create off", "noauto", request{method: "GET", path: api.PathRecall + "?query=x&space=nosuch"}, 404, "SPACE_NOT_FOUND", "nosuch"},
		{"unknown memory id", "", request{method: "GET", path: "/api/v1/memories/nope"}, 404, "MEMORY_NOT_FOUND", "nope"},
		{"forget unknown memory id", "", request{method: "DELETE", path: "/api/v1/memories/nope"}, 404, "MEMORY_NOT_FOUND", "nope"},
		{"episode without when", "", request{method: "POST", path: api.PathEpisodes, body: `{"what":"went to the market"}`}, 400, "INVALID_EPISODE", "when"},
		{"episode where and where_location differ", "", request{method: "POST", path: api.PathEpisodes, body: `{"what":"x","when":"2025-01-02T15:04:05Z","where":"a","where_location":"b"}`}, 400, "CONFLICTING_FIELDS", "where_location"},
		{"episode typo still refused", "", request{method: "POST", path: api.PathEpisodes, body: `{"what":"x","when":"2025-01-02T15:04:05Z","wher":"a"}`}, 400, "UNKNOWN_FIELD", `"wher"`},
		{"recall threshold and confidence_threshold differ", "", request{method: "GET", path: api.PathRecall + "?query=x&threshold=0.2&confidence_threshold=0.3"}, 400, "CONFLICTING_FIELDS", "confidence_threshold"},
		{"recall bad confidence_threshold", "", request{method: "GET", path: api.PathRecall + "?query=x&confidence_threshold=high"}, 400, "INVALID_PARAMETER", "confidence_threshold"},
		{"memory_space and memory_space_id differ", "", request{method: "POST", path: api.PathRemember, body: `{"content":"x","memory_space":"aaa","memory_space_id":"bbb"}`}, 400, "CONFLICTING_FIELDS", "memory_space_id"},
		{"batch with one bad memory", "", request{method: "POST", path: api.PathBatch, body: `{"memories":[{"id":"b1","content":"ok"},{"id":"b2","content":"bad","confidence":7}]}`}, 400, "INVALID_CONFIDENCE", "memories[1]"},
		{"batch association to unknown memory", "", request{method: "POST", path: api.PathBatch, body: `{"memories":[{"id":"b3","content":"ok"}],"associations":[{"from":"b3","to":"ghost","weight":0.5}]}`}, 404, "MEMORY_NOT_FOUND", "ghost"},
		{"batch per-memory space", "", request{method: "POST", path: api.PathBatch, body: `{"memories":[{"content":"ok","memory_space_id":"other"}]}`}, 400, "UNKNOWN_FIELD", `"memory_space_id" in memories[0]; accepted fields are: `},
		{"batch bad embedding names the memory", "", request{method: "POST", path: api.PathBatch, body: `{"memories":[{"content":"ok"},{"content":"x","embedding":[1e999]}]}`}, 400, "INVALID_NUMBER", `"memories[1].embedding"`},
		{"empty batch", "", request{method: "POST", path: api.PathBatch, body: `{"memories":[]}`}, 400, "EMPTY_BATCH", "no memories"},
		{"association weight 0", "", request{method: "POST", path: api.PathAssociations, body: `{"from":"known","to":"known","weight":0}`}, 400, "", ""},
		{"association to unknown", "", request{method: "POST", path: api.PathAssociations, body: `{"from":"known","to":"ghost","weight":0.5}`}, 404, "MEMORY_NOT_FOUND", "ghost"},
		{"recall without cue", "", request{method: "GET", path: api.PathRecall}, 400, "MISSING_CUE", "query"},
		{"recall bad mode", "", request{method: "GET", path: api.PathRecall + "?query=x&mode=telepathy"}, 400, "INVALID_MODE", "telepathy"},
		{"recall bad max_results", "", request{method: "GET", path: api.PathRecall + "?query=x&max_results=ten"}, 400, "INVALID_PARAMETER", "max_results"},
		{"recall max_results over cap", "", request{method: "GET", path: api.PathRecall + "?query=x&max_results=5000"}, 400, "INVALID_MAX_RESULTS", "1000"},
		{"recall unknown parameter", "", request{method: "GET", path: api.PathRecall + "?query=x&exclude_tags=a"}, 400, "UNKNOWN_PARAMETER", "exclude_tags"},
		{"recall bad embedding param", "", request{method: "GET", path: api.PathRecall + "?embedding=[1,2"}, 400, "INVALID_PARAMETER", "embedding"},
		{"recall bad time", "", request{method: "GET", path: api.PathRecall + "?query=x&from_time=monday"}, 400, "INVALID_PARAMETER", "from_time"},
		{"recall POST unknown field", "", request{method: "POST", path: api.PathRecall, body: `{"query":"x","limit":3}`}, 400, "UNKNOWN_FIELD", "limit"},
		{"recall wrong cue dimension", "", request{method: "POST", path: api.PathRecall, body: `{"embedding":[1,2]}`}, 400, "INVALID_EMBEDDING_DIMENSION", "16"},
		{"search without query", "", request{method: "GET", path: api.PathSearch}, 400, "MISSING_PARAMETER", "query"},
		{"list bad tier", "", request{method: "GET", path: api.PathMemories + "?tier=lukewarm"}, 400, "INVALID_TIER", "lukewarm"},
		{"list negative offset", "", request{method: "GET", path: api.PathMemories + "?offset=-1"}, 400, "INVALID_PARAMETER", "offset"},
		{"cursor without source", "", request{method: "GET", path: api.PathBatchCursor}, 400, "MISSING_PARAMETER", "source"},
		{"cursor unknown source", "", request{method: "GET", path: api.PathBatchCursor + "?source=nobody"}, 404, "CURSOR_NOT_FOUND", "nobody"},
		{"space bad name", "", request{method: "GET", path: "/api/v1/spaces/X"}, 400, "INVALID_SPACE", ""},
		{"space unknown", "", request{method: "GET", path: "/api/v1/spaces/nosuch"}, 404, "SPACE_NOT_FOUND", "nosuch"},
		{"create space bad dimension", "", request{method: "POST", path: api.PathSpaces, body: `{"id":"dims","dimension":100000}`}, 400, "INVALID_DIMENSION", "100000"},
		{"create space conflict", "", request{method: "POST", path: api.PathSpaces, body: `{"id":"default","dimension":8}`}, 409, "SPACE_EXISTS", "default"},
		{"unknown route", "", request{method: "GET", path: "/api/v2/nothing"}, 404, "NOT_FOUND", "/api/v2/nothing"},
		{"wrong method", "", request{method: "PATCH", path: api.PathSpaces}, 405, "METHOD_NOT_ALLOWED", "PATCH"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, e := h, eng
			if tc.h == "noauto" {
				h, e = hNoAuto, engNoAuto
			}
			before := snap(e)
			w := do(t, h, tc.req)
			if w.Code != tc.status {
				t.Fatalf("status = %d, want %d; body %s", w.Code, tc.status, w.Body)
			}
			body := decodeEnvelope(t, w)
			if tc.code != "" && body.Code != tc.code {
				t.Errorf("code = %s, want %s (message %q)", body.Code, tc.code, body.Message)
			}
			if !strings.Contains(body.Message, tc.contains) {
				t.Errorf("message %q does not mention %q", body.Message, tc.contains)
			}
			if after := snap(e); after != before {
				t.Errorf("something was written: before %+v, after %+v", before, after)
			}
		})
	}
}

// TestNewSpaceNotCreatedByInvalidWrite: a rejected write to a new space
// must not leave the space behind.
func TestNewSpaceNotCreatedByInvalidWrite(t *testing.T) {
	cfg := testConfig()
	eng := openEngine(t, cfg)
	h := newTestServer(t, cfg, eng).Handler()
	before := snap(eng)
	w := do(t, h, request{method: "POST", path: api.PathRemember, body: `{"content":"x","memory_type":"dream"}`,
		headers: map[string]string{api.HeaderSpace: "fresh-space"}})
	if w.Code != 400 {
		t.Fatalf("status %d", w.Code)
	}
	if after := snap(eng); after != before {
		t.Fatalf("an invalid write to a new space created the space: before %+v after %+v", before, after)
	}
}

func TestEngineErrorMapping(t *testing.T) {
	cases := []struct {
		err    error
		status int
		code   string
	}{
		{core.Errorf(core.KindInvalid, "INVALID_X", "bad x"), 400, "INVALID_X"},
		{core.Errorf(core.KindNotFound, "MEMORY_NOT_FOUND", "gone"), 404, "MEMORY_NOT_FOUND"},
		{core.Errorf(core.KindConflict, "SPACE_EXISTS", "exists"), 409, "SPACE_EXISTS"},
		{core.Errorf(core.KindTooLarge, "BATCH_TOO_LARGE", "too many"), 413, "BATCH_TOO_LARGE"},
		{core.ErrClosed, 503, "ENGINE_CLOSED"},
		{&core.Error{Kind: core.KindInternal, Code: "STORAGE_ERROR", Message: "commit", Err: errors.New("disk on fire at /secret/path")}, 500, "STORAGE_ERROR"},
		{errors.New("some foreign failure /secret/path"), 500, "INTERNAL"},
	}
	for _, tc := range cases {
		t.Run(tc.code, func(t *testing.T) {
			f := newFake()
			f.err = tc.err
			h := newTestServer(t, testConfig(), f).Handler()
			w := do(t, h, request{method: "POST", path: api.PathRemember, body: `{"content":"x"}`})
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d", w.Code, tc.status)
			}
			body := decodeEnvelope(t, w)
			if body.Code != tc.code {
				t.Errorf("code %s, want %s", body.Code, tc.code)
			}
			if strings.Contains(w.Body.String(), "/secret/path") {
				t.Errorf("internal cause leaked to the client: %s", w.Body)
			}
			if ra := w.Header().Get("Retry-After"); (tc.status == 503) != (ra != "") {
				t.Errorf("Retry-After = %q for status %d", ra, tc.status)
			}
			if f.writes != 0 {
				t.Errorf("fake recorded %d writes", f.writes)
			}
		})
	}
}

func TestSpacePrecedence(t *testing.T) {
	f := newFake()
	h := newTestServer(t, testConfig(), f).Handler()
	cases := []struct {
		name string
		req  request
		want string
	}{
		{"default", request{method: "POST", path: api.PathRemember, body: `{"content":"x"}`}, "default"},
		{"body memory_space_id", request{method: "POST", path: api.PathRemember, body: `{"content":"x","memory_space_id":"from-body"}`}, "from-body"},
		{"body space", request{method: "POST", path: api.PathRemember, body: `{"content":"x","space":"from-space"}`}, "from-space"},
		{"memory_space_id over space", request{method: "POST", path: api.PathRemember, body: `{"content":"x","space":"loser","memory_space_id":"winner"}`}, "winner"},
		{"header over body", request{method: "POST", path: api.PathRemember, body: `{"content":"x","memory_space_id":"loser"}`, headers: map[string]string{api.HeaderSpace: "header-wins"}}, "header-wins"},
		{"body over query on writes", request{method: "POST", path: api.PathRemember + "?space=loser", body: `{"content":"x","memory_space_id":"body-wins"}`}, "body-wins"},
		{"query on writes", request{method: "POST", path: api.PathMemories + "?space=from-query", body: `{"content":"x"}`}, "from-query"},
		{"alias takes the body space", request{method: "POST", path: api.PathMemories, body: `{"content":"x","memory_space_id":"alias-body"}`}, "alias-body"},
		{"episode body", request{method: "POST", path: api.PathEpisodes, body: `{"what":"x","when":"2025-01-01T00:00:00Z","memory_space_id":"ep-space"}`}, "ep-space"},
		{"read query", request{method: "GET", path: api.PathRecall + "?query=x&space=read-q"}, "read-q"},
		{"read header over query", request{method: "GET", path: api.PathRecall + "?query=x&space=loser", headers: map[string]string{api.HeaderSpace: "read-h"}}, "read-h"},
		{"header trimmed", request{method: "GET", path: api.PathRecall + "?query=x", headers: map[string]string{api.HeaderSpace: "  trimmed  "}}, "trimmed"},
		{"delete query", request{method: "DELETE", path: "/api/v1/memories/x?space=del-q"}, "del-q"},
		{"list query", request{method: "GET", path: api.PathMemories + "?space=list-q"}, "list-q"},
		{"get header", request{method: "GET", path: "/api/v1/memories/x", headers: map[string]string{api.HeaderSpace: "get-h"}}, "get-h"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := do(t, h, tc.req)
			if w.Code >= 500 || w.Code == 400 {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			if got := f.lastSpace(); got != tc.want {
				t.Errorf("space = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestHealthProbes(t *testing.T) {
	f := newFake()
	h := newTestServer(t, testConfig(), f).Handler()
	if w := do(t, h, request{method: "GET", path: api.PathHealth}); w.Code != 200 {
		t.Fatalf("health %d", w.Code)
	} else if hb := decodeJSONBody[api.Health](t, w); hb.Status != "healthy" || hb.Service != "engram" || hb.Version == "" || hb.Timestamp.IsZero() {
		t.Errorf("health body %+v", hb)
	}
	if w := do(t, h, request{method: "GET", path: api.PathHealthReady}); w.Code != 200 {
		t.Errorf("ready %d", w.Code)
	}
	f.readyErr = core.ErrClosed
	for _, p := range []string{api.PathHealth, api.PathHealthReady, api.PathSystemHealth} {
		w := do(t, h, request{method: "GET", path: p})
		if w.Code != 503 || w.Header().Get("Retry-After") == "" {
			t.Errorf("%s: status %d Retry-After %q, want 503 with Retry-After", p, w.Code, w.Header().Get("Retry-After"))
		}
		if body := decodeJSONBody[map[string]any](t, w); body["error"] == nil {
			t.Errorf("%s: 503 without an error object: %s", p, w.Body)
		}
	}
	if w := do(t, h, request{method: "GET", path: api.PathHealthAlive}); w.Code != 200 {
		t.Errorf("alive must not depend on the engine: %d", w.Code)
	}
}

func TestSystemHealthRealFigures(t *testing.T) {
	cfg := testConfig()
	eng := openEngine(t, cfg)
	h := newTestServer(t, cfg, eng).Handler()
	for i := 0; i < 3; i++ {
		do(t, h, request{method: "POST", path: api.PathRemember, body: fmt.Sprintf(`{"content":"fact %d"}`, i),
			headers: map[string]string{api.HeaderSpace: "tenant-a"}})
	}
	w := do(t, h, request{method: "GET", path: api.PathSystemHealth})
	if w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	sh := decodeJSONBody[api.SystemHealth](t, w)
	if sh.Status != "healthy" {
		t.Errorf("status %s", sh.Status)
	}
	if sh.Changelog.Sequence != eng.LastSequence() || sh.Changelog.Sequence == 0 {
		t.Errorf("changelog sequence %d, engine %d", sh.Changelog.Sequence, eng.LastSequence())
	}
	if len(sh.Spaces) != 1 || sh.Spaces[0].Space != "tenant-a" || sh.Spaces[0].Memories != 3 {
		t.Errorf("spaces %+v", sh.Spaces)
	}
	if sh.Backup.ShippedSequence != nil || sh.Backup.LagSeconds != nil {
		t.Errorf("backup figures invented: %+v", sh.Backup)
	}
	names := map[string]bool{}
	for _, c := range sh.Checks {
		names[c.Name] = true
	}
	for _, n := range []string{"engine", "storage", "index", "error_rate", "memory", "background"} {
		if !names[n] {
			t.Errorf("check %s missing", n)
		}
	}
	if w := do(t, h, request{method: "GET", path: api.PathSystemHealth + "?space=nosuch"}); w.Code != 404 {
		t.Errorf("unknown space filter: %d", w.Code)
	}
}

// TestRoundTrip exercises the success shapes against the real engine.
func TestRoundTrip(t *testing.T) {
	cfg := testConfig()
	eng := openEngine(t, cfg)
	h := newTestServer(t, cfg, eng).Handler()

	w := do(t, h, request{method: "POST", path: api.PathRemember,
		body: `{"id":"m1","content":"the cat sat on the mat","confidence":0.9,"tags":["pets"],"memory_type":"episodic","metadata":{"k":"v"},"confidence_reasoning":"seen it"}`})
	if w.Code != 201 {
		t.Fatalf("remember %d %s", w.Code, w.Body)
	}
	rr := decodeJSONBody[api.RememberResponse](t, w)
	if rr.MemoryID != "m1" || rr.StorageConfidence.Value != 0.9 || rr.StorageConfidence.Category != "High" ||
		rr.StorageConfidence.Reasoning != "seen it" || !rr.Created || rr.Sequence == 0 || rr.AutoLinks == nil {
		t.Errorf("remember response %+v", rr)
	}
	do(t, h, request{method: "POST", path: api.PathRemember, body: `{"id":"m2","content":"dogs chase cats around the yard"}`})
	if w := do(t, h, request{method: "POST", path: api.PathAssociations, body: `{"from":"m1","to":"m2","weight":0.9,"kind":"related"}`}); w.Code != 201 {
		t.Fatalf("associate %d %s", w.Code, w.Body)
	}

	w = do(t, h, request{method: "GET", path: api.PathRecall + "?query=cat+mat&trace_activation=true&include_metadata=true&threshold=0.3"})
	if w.Code != 200 {
		t.Fatalf("recall %d %s", w.Code, w.Body)
	}
	rec := decodeJSONBody[api.RecallResponse](t, w)
	if len(rec.Memories.Vivid) == 0 || rec.Memories.Vivid[0].ID != "m1" {
		t.Fatalf("vivid %+v", rec.Memories.Vivid)
	}
	v := rec.Memories.Vivid[0]
	if v.MemoryType != "episodic" || len(v.Tags) != 1 || v.Tags[0] != "pets" || v.RetrievalPath != "direct match" ||
		v.SimilarityScore <= 0 || v.Metadata["k"] != "v" || v.Confidence.Value <= 0 {
		t.Errorf("vivid[0] %+v", v)
	}
	var spread *api.RecalledMemory
	for i := range rec.Memories.Associated {
		if rec.Memories.Associated[i].ID == "m2" {
			spread = &rec.Memories.Associated[i]
		}
	}
	if spread == nil {
		t.Fatalf("m2 not reached by spreading: %s", w.Body)
	}
	if spread.RetrievalPath != "spreading: m1 → m2" || spread.ActivationLevel <= 0 || len(spread.Path) != 2 {
		t.Errorf("associated %+v", spread)
	}
	if rec.Memories.Reconstructed == nil || rec.Metadata.Mode != "hybrid" || rec.Metadata.Activated == 0 {
		t.Errorf("recall envelope %+v", rec)
	}

	w = do(t, h, request{method: "GET", path: "/api/v1/memories/m1"})
	m := decodeJSONBody[api.Memory](t, w)
	if m.ID != "m1" || m.Content != "the cat sat on the mat" || m.Tier == "" || m.AccessCount == 0 {
		t.Errorf("get %+v", m)
	}
	w = do(t, h, request{method: "GET", path: "/api/v1/memories/m1?include_embedding=true"})
	if m := decodeJSONBody[api.Memory](t, w); len(m.Embedding) != 16 {
		t.Errorf("embedding len %d", len(m.Embedding))
	}

	w = do(t, h, request{method: "GET", path: api.PathMemories + "?limit=1"})
	lr := decodeJSONBody[api.ListResponse](t, w)
	if lr.Count != 2 || len(lr.Memories) != 1 || !lr.Pagination.HasMore || lr.TierCounts.Total != 2 {
		t.Errorf("list %+v", lr)
	}

	w = do(t, h, request{method: "GET", path: api.PathSearch + "?query=dogs+yard&limit=5"})
	sr := decodeJSONBody[api.SearchResponse](t, w)
	if sr.Total == 0 || sr.Memories[0].ID != "m2" {
		t.Errorf("search %+v", sr)
	}

	w = do(t, h, request{method: "POST", path: api.PathSpaces, body: `{"id":"tenant-b","dimension":8}`})
	if w.Code != 201 {
		t.Fatalf("create space %d %s", w.Code, w.Body)
	}
	if w := do(t, h, request{method: "POST", path: api.PathSpaces, body: `{"id":"tenant-b","dimension":8}`}); w.Code != 200 {
		t.Errorf("existing space %d", w.Code)
	}
	w = do(t, h, request{method: "GET", path: "/api/v1/spaces/default"})
	sp := decodeJSONBody[api.Space](t, w)
	if sp.Memories.Total != 2 || sp.Associations != 1 || sp.Dimension != 16 || sp.Fingerprint == "" {
		t.Errorf("space %+v", sp)
	}

	w = do(t, h, request{method: "DELETE", path: "/api/v1/memories/m1"})
	fr := decodeJSONBody[api.ForgetResponse](t, w)
	if w.Code != 200 || fr.Status != "forgotten" || fr.MemoryID != "m1" || fr.Sequence == 0 {
		t.Errorf("forget %d %+v", w.Code, fr)
	}
	if w := do(t, h, request{method: "GET", path: "/api/v1/memories/m1"}); w.Code != 404 {
		t.Errorf("forgotten memory still readable: %d", w.Code)
	}
}

func TestShutdownDrainsInFlight(t *testing.T) {
	cfg := testConfig()
	f := &slowEngine{fakeEngine: newFake(), delay: 300 * time.Millisecond}
	srv := newTestServer(t, cfg, f)
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := contextWithCancel()
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	url := "http://" + srv.Addr().String() + api.PathRecall + "?query=x"
	res := make(chan int, 1)
	go func() {
		resp, err := http.Get(url)
		if err != nil {
			res <- -1
			return
		}
		resp.Body.Close()
		res <- resp.StatusCode
	}()
	time.Sleep(100 * time.Millisecond) // the request is in flight
	cancel()
	if code := <-res; code != 200 {
		t.Errorf("in-flight request got %d, want 200 (drained)", code)
	}
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	if _, err := http.Get(url); err == nil {
		t.Errorf("server still accepts connections after shutdown")
	}
}

// panicEngine panics in Recall, like a bug would.
type panicEngine struct{ *fakeEngine }

func (p panicEngine) Recall(ctx context.Context, space string, q core.RecallQuery) (core.RecallResult, error) {
	panic("boom")
}

func TestPanicBecomesEnvelope(t *testing.T) {
	h := newTestServer(t, testConfig(), panicEngine{newFake()}).Handler()
	w := do(t, h, request{method: "GET", path: api.PathRecall + "?query=x"})
	if w.Code != 500 || decodeEnvelope(t, w).Code != "INTERNAL" {
		t.Errorf("panic: %d %s", w.Code, w.Body)
	}
	if w := do(t, h, request{method: "GET", path: api.PathHealth}); w.Code != 200 {
		t.Errorf("server broken after a panic: %d", w.Code)
	}
}

// TestMetricLabelsBounded: unknown routes are "unmatched" and requests
// naming nonexistent spaces are labelled "unknown", so clients cannot
// create unbounded label sets.
func TestMetricLabelsBounded(t *testing.T) {
	cfg := testConfig()
	cfg.Spaces.AutoCreate = false
	eng := openEngine(t, cfg)
	reg := prometheus.NewRegistry()
	s, err := New(cfg, eng, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	for i := 0; i < 3; i++ {
		do(t, h, request{method: "GET", path: fmt.Sprintf("/random/path/%d", i)})
		do(t, h, request{method: "POST", path: api.PathRemember, body: `{"content":"x"}`,
			headers: map[string]string{api.HeaderSpace: fmt.Sprintf("ghost-%d", i)}})
		do(t, h, request{method: "GET", path: api.PathRecall + fmt.Sprintf("?query=x&space=ghost-%d", i)})
	}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if strings.Contains(l.GetValue(), "ghost") || strings.Contains(l.GetValue(), "random") {
					t.Errorf("%s has an unbounded label %s=%q", f.GetName(), l.GetName(), l.GetValue())
				}
				if l.GetName() == "route" && strings.HasPrefix(l.GetValue(), "/random") {
					t.Errorf("unmatched route labelled by path")
				}
			}
		}
	}
	var unmatched bool
	for _, f := range fams {
		if f.GetName() != "engram_http_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "route" && l.GetValue() == "unmatched" && m.GetCounter().GetValue() == 3 {
					unmatched = true
				}
			}
		}
	}
	if !unmatched {
		t.Errorf("no route=\"unmatched\" counter of 3")
	}
}
