package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/ops/api"
)

// A held space answers writes with 503 SPACE_HELD and Retry-After (in any
// way the write names the space), serves reads, leaves other spaces alone,
// and takes writes again once released.
func TestSpaceHoldRefusesWritesOnly(t *testing.T) {
	cfg := testConfig()
	s := newTestServer(t, cfg, openEngine(t, cfg))
	h := s.Handler()
	hdr := map[string]string{api.HeaderSpace: "moving"}
	if w := do(t, h, request{method: "POST", path: api.PathRemember, body: `{"id":"a","content":"before"}`, headers: hdr}); w.Code != http.StatusCreated {
		t.Fatalf("remember: %d %s", w.Code, w.Body)
	}
	w := do(t, h, request{method: "POST", path: "/api/v1/admin/spaces/moving/hold"})
	hold := decodeJSONBody[api.SpaceHold](t, w)
	if w.Code != http.StatusOK || !hold.Held || hold.Sequence == 0 || hold.Since == nil {
		t.Fatalf("hold: %d %+v", w.Code, hold)
	}
	writes := []request{
		{method: "POST", path: api.PathRemember, body: `{"id":"b","content":"held"}`, headers: hdr},
		{method: "POST", path: api.PathRemember + "?space=moving", body: `{"id":"b","content":"held"}`},
		{method: "POST", path: api.PathRemember, body: `{"id":"b","content":"held","memory_space_id":"moving"}`},
		{method: "POST", path: api.PathBatch, body: `{"memories":[{"id":"b","content":"held"}]}`, headers: hdr},
		{method: "DELETE", path: "/api/v1/memories/a", headers: hdr},
		{method: "POST", path: api.PathAssociations, body: `{"from":"a","to":"a","weight":0.5}`, headers: hdr},
	}
	for _, rq := range writes {
		w := do(t, h, rq)
		if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "1" {
			t.Fatalf("%s %s while held: %d Retry-After %q %s", rq.method, rq.path, w.Code, w.Header().Get("Retry-After"), w.Body)
		}
		if e := decodeEnvelope(t, w); e.Code != "SPACE_HELD" {
			t.Fatalf("code %s", e.Code)
		}
	}
	if w := do(t, h, request{method: "GET", path: "/api/v1/memories/a", headers: hdr}); w.Code != http.StatusOK {
		t.Fatalf("read while held: %d %s", w.Code, w.Body)
	}
	if w := do(t, h, request{method: "POST", path: api.PathRecall, body: `{"query":"before"}`, headers: hdr}); w.Code != http.StatusOK {
		t.Fatalf("recall (a POST read) while held: %d %s", w.Code, w.Body)
	}
	if w := do(t, h, request{method: "POST", path: api.PathRemember, body: `{"content":"x"}`, headers: map[string]string{api.HeaderSpace: "other"}}); w.Code != http.StatusCreated {
		t.Fatalf("another space while held: %d %s", w.Code, w.Body)
	}
	if w := do(t, h, request{method: "DELETE", path: "/api/v1/admin/spaces/moving/hold"}); w.Code != http.StatusOK || decodeJSONBody[api.SpaceHold](t, w).Held {
		t.Fatalf("release: %d %s", w.Code, w.Body)
	}
	if w := do(t, h, writes[0]); w.Code != http.StatusCreated {
		t.Fatalf("write after release: %d %s", w.Code, w.Body)
	}
}

// The change log of one space carries its memories with embeddings, its
// forgets and its associations, in order, and pages with after=next; purge
// is refused unless held and then empties the space.
func TestSpaceChangesAndPurge(t *testing.T) {
	cfg := testConfig()
	s := newTestServer(t, cfg, openEngine(t, cfg))
	h := s.Handler()
	hdr := map[string]string{api.HeaderSpace: "src"}
	other := map[string]string{api.HeaderSpace: "noise"}
	for i := range 5 {
		do(t, h, request{method: "POST", path: api.PathRemember, body: fmt.Sprintf(`{"id":"m%d","content":"memory %d"}`, i, i), headers: hdr})
		do(t, h, request{method: "POST", path: api.PathRemember, body: fmt.Sprintf(`{"content":"noise %d"}`, i), headers: other})
	}
	do(t, h, request{method: "POST", path: api.PathAssociations, body: `{"from":"m0","to":"m1","weight":0.5,"kind":"causes"}`, headers: hdr})
	do(t, h, request{method: "DELETE", path: "/api/v1/memories/m2", headers: hdr})

	var got []api.SpaceChange
	var after uint64
	for pages := 0; ; pages++ {
		w := do(t, h, request{method: "GET", path: fmt.Sprintf("/api/v1/admin/spaces/src/changes?after=%d&limit=2", after)})
		if w.Code != http.StatusOK {
			t.Fatalf("changes: %d %s", w.Code, w.Body)
		}
		page := decodeJSONBody[api.SpaceChanges](t, w)
		got = append(got, page.Changes...)
		after = page.Next
		if page.Next >= page.Head || pages > 20 {
			break
		}
	}
	var ops []string
	for _, c := range got {
		ops = append(ops, c.Op)
		if c.Op == api.ChangePutMemory && len(c.Memory.Embedding) != 0 && len(c.Memory.Embedding) != cfg.Spaces.DefaultDimension {
			t.Fatalf("embedding of %s has %d dimensions", c.Memory.ID, len(c.Memory.Embedding))
		}
	}
	want := "[put_memory put_memory put_memory put_memory put_memory put_association delete_memory]"
	if fmt.Sprint(ops) != want {
		t.Fatalf("ops %v, want %s", ops, want)
	}
	if a := got[5].Association; a.From != "m0" || a.To != "m1" || a.Weight != 0.5 || a.Kind != "causes" {
		t.Fatalf("association %+v", a)
	}
	if got[6].ID != "m2" {
		t.Fatalf("forget of %q", got[6].ID)
	}

	if w := do(t, h, request{method: "POST", path: "/api/v1/admin/spaces/src/purge"}); w.Code != http.StatusConflict || decodeEnvelope(t, w).Code != "SPACE_NOT_HELD" {
		t.Fatalf("purge of a space not held: %d %s", w.Code, w.Body)
	}
	do(t, h, request{method: "POST", path: "/api/v1/admin/spaces/src/hold"})
	w := do(t, h, request{method: "POST", path: "/api/v1/admin/spaces/src/purge"})
	if p := decodeJSONBody[api.SpacePurge](t, w); w.Code != http.StatusOK || p.Forgotten != 4 {
		t.Fatalf("purge: %d %s", w.Code, w.Body)
	}
	if st, _ := s.eng.Space("src"); st.Total() != 0 || st.Associations != 0 {
		t.Fatalf("after purge: %d memories, %d associations", st.Total(), st.Associations)
	}
	if st, _ := s.eng.Space("noise"); st.Total() != 5 {
		t.Fatalf("another space lost memories: %d", st.Total())
	}
}

// A hold waits for the writes in flight: its sequence bounds a write that
// was running when it was asked for, and a held write gets no sequence.
func TestSpaceHoldWaitsForWritesInFlight(t *testing.T) {
	cfg := testConfig()
	cfg.Testing.FaultInjection = true
	s := newTestServer(t, cfg, openEngine(t, cfg))
	h := s.Handler()
	hdr := map[string]string{api.HeaderSpace: "moving"}
	do(t, h, request{method: "POST", path: api.PathRemember, body: `{"id":"a","content":"x"}`, headers: hdr})
	if w := do(t, h, request{method: "POST", path: PathAdminFaults, body: `{"operations":["remember"],"latency":"300ms"}`}); w.Code != http.StatusOK {
		t.Fatalf("fault: %d %s", w.Code, w.Body)
	}
	written := make(chan api.RememberResponse, 1)
	go func() {
		w := do(t, h, request{method: "POST", path: api.PathRemember, body: `{"id":"slow","content":"x"}`, headers: hdr})
		written <- decodeJSONBody[api.RememberResponse](t, w)
	}()
	// Wait until the slow write holds the gate (it is in flight).
	for start := time.Now(); s.holds.gate.TryLock(); {
		s.holds.gate.Unlock()
		if time.Since(start) > 2*time.Second {
			t.Fatal("the slow write never entered the hold gate")
		}
		time.Sleep(time.Millisecond)
	}
	w := do(t, h, request{method: "POST", path: "/api/v1/admin/spaces/moving/hold"})
	hold := decodeJSONBody[api.SpaceHold](t, w)
	if r := <-written; r.Sequence == 0 || r.Sequence > hold.Sequence {
		t.Fatalf("the write in flight got sequence %d, after the hold's %d: the hold did not wait for it", r.Sequence, hold.Sequence)
	}
}

// gRPC's writes (the RPC calls) are held as REST's are; its reads are not.
func TestSpaceHoldCoversRPCWrites(t *testing.T) {
	cfg := testConfig()
	s := newTestServer(t, cfg, openEngine(t, cfg))
	ctx := t.Context()
	rpc := s.RPC()
	if _, err := rpc.Remember(ctx, "moving", &api.RememberRequest{ID: "a", Content: "x"}); err != nil {
		t.Fatal(err)
	}
	do(t, s.Handler(), request{method: "POST", path: "/api/v1/admin/spaces/moving/hold"})
	_, err := rpc.Remember(ctx, "moving", &api.RememberRequest{ID: "b", Content: "x"})
	if status, code, _, _ := ErrorOf(err); status != http.StatusServiceUnavailable || code != "SPACE_HELD" {
		t.Fatalf("an RPC write to a held space: %v", err)
	}
	if _, err := rpc.Forget(ctx, "moving", "a"); err == nil {
		t.Fatal("an RPC forget in a held space was let through")
	}
	if _, err := rpc.Remember(ctx, "other", &api.RememberRequest{Content: "x"}); err != nil {
		t.Fatalf("an RPC write to another space: %v", err)
	}
}

// The export streams a head, every memory with its embedding in id
// order, and an end line counting them.
func TestSpaceExport(t *testing.T) {
	cfg := testConfig()
	s := newTestServer(t, cfg, openEngine(t, cfg))
	h := s.Handler()
	hdr := map[string]string{api.HeaderSpace: "src"}
	for _, id := range []string{"b", "a", "c"} {
		do(t, h, request{method: "POST", path: api.PathRemember, body: fmt.Sprintf(`{"id":%q,"content":"memory %s","tags":["t"]}`, id, id), headers: hdr})
	}
	w := do(t, h, request{method: "GET", path: "/api/v1/admin/spaces/src/export"})
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("export: %d %s", w.Code, w.Body)
	}
	lines := strings.Split(strings.TrimSuffix(w.Body.String(), "\n"), "\n")
	if len(lines) != 5 {
		t.Fatalf("%d lines: %q", len(lines), lines)
	}
	var head api.SpaceExportHead
	var end api.SpaceExportEnd
	if err := json.Unmarshal([]byte(lines[0]), &head); err != nil || head.Space != "src" || head.Memories != 3 || head.Sequence == 0 {
		t.Fatalf("head %q: %+v %v", lines[0], head, err)
	}
	for i, id := range []string{"a", "b", "c"} {
		var m api.BatchMemory
		if err := json.Unmarshal([]byte(lines[1+i]), &m); err != nil || m.ID != id || m.Content != "memory "+id || len(m.Embedding) != cfg.Spaces.DefaultDimension || len(m.Tags) != 1 {
			t.Fatalf("line %d %q: %v", 1+i, lines[1+i], err)
		}
	}
	if err := json.Unmarshal([]byte(lines[4]), &end); err != nil || !end.End || end.Exported != 3 {
		t.Fatalf("end %q: %+v %v", lines[4], end, err)
	}
}

// With relaxed durability the hold's sequence still covers every
// acknowledged write (it waits for the sync that makes them durable).
func TestSpaceHoldCoversRelaxedWrites(t *testing.T) {
	cfg := testConfig()
	cfg.Durability = "relaxed"
	s := newTestServer(t, cfg, openEngine(t, cfg))
	h := s.Handler()
	var last uint64
	for i := range 20 {
		w := do(t, h, request{method: "POST", path: api.PathRemember, body: fmt.Sprintf(`{"content":"m%d"}`, i), headers: map[string]string{api.HeaderSpace: "moving"}})
		last = decodeJSONBody[api.RememberResponse](t, w).Sequence
	}
	hold := decodeJSONBody[api.SpaceHold](t, do(t, h, request{method: "POST", path: "/api/v1/admin/spaces/moving/hold"}))
	if hold.Sequence < last {
		t.Fatalf("hold sequence %d is before the last acknowledged write's %d", hold.Sequence, last)
	}
}

// A hold outlives a restart (the engine reopened on its data directory):
// the source of an interrupted move keeps refusing writes to the space
// until the hold is released, and a released hold stays released.
func TestSpaceHoldOutlivesRestart(t *testing.T) {
	cfg := testConfig()
	dir := t.TempDir()
	start := func() (*core.Engine, http.Handler) {
		t.Helper()
		eng, err := core.Open(dir, cfg.EngineOptions(nil, nil))
		if err != nil {
			t.Fatal(err)
		}
		return eng, newTestServer(t, cfg, eng).Handler()
	}
	hdr := map[string]string{api.HeaderSpace: "moving"}
	write := func(h http.Handler, id string) int {
		return do(t, h, request{method: "POST", path: api.PathRemember, body: `{"id":"` + id + `","content":"x"}`, headers: hdr}).Code
	}
	eng, h := start()
	if code := write(h, "a"); code != http.StatusCreated {
		t.Fatalf("remember: %d", code)
	}
	held := decodeJSONBody[api.SpaceHold](t, do(t, h, request{method: "POST", path: "/api/v1/admin/spaces/moving/hold"}))
	if !held.Held || held.Since == nil {
		t.Fatalf("hold: %+v", held)
	}
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}

	eng, h = start()
	if code := write(h, "b"); code != http.StatusServiceUnavailable {
		t.Fatalf("write to a held space after a restart: %d, want 503", code)
	}
	again := decodeJSONBody[api.SpaceHold](t, do(t, h, request{method: "GET", path: "/api/v1/admin/spaces/moving/hold"}))
	if !again.Held || again.Since == nil || !again.Since.Equal(*held.Since) {
		t.Fatalf("hold after a restart: %+v, want held since %v", again, held.Since)
	}
	if w := do(t, h, request{method: "DELETE", path: "/api/v1/admin/spaces/moving/hold"}); w.Code != http.StatusOK {
		t.Fatalf("release: %d %s", w.Code, w.Body)
	}
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}

	eng, h = start()
	defer eng.Close()
	if code := write(h, "c"); code != http.StatusCreated {
		t.Fatalf("write after release and restart: %d", code)
	}
}
