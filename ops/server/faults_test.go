package server

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestFaultInjectionRefusedWhenDisabled(t *testing.T) {
	cfg := testConfig()
	s := newTestServer(t, cfg, openEngine(t, cfg))
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
		w := do(t, s.Handler(), request{method: m, path: PathAdminFaults, body: `{"operations":["recall"],"error_ratio":1}`})
		if w.Code != http.StatusForbidden {
			t.Fatalf("%s with the switch off: status %d, want 403", m, w.Code)
		}
		if e := decodeEnvelope(t, w); e.Code != "FAULT_INJECTION_DISABLED" || !strings.Contains(e.Message, "testing.fault_injection") {
			t.Fatalf("%s: envelope %+v does not say how to enable the switch", m, e)
		}
	}
	// And nothing was injected.
	if w := do(t, s.Handler(), request{method: http.MethodGet, path: "/api/v1/memories/recall?query=x"}); w.Code != http.StatusOK {
		t.Fatalf("recall with the switch off: %d %s", w.Code, w.Body)
	}
}

func TestFaultInjectionLatencyAndErrors(t *testing.T) {
	cfg := testConfig()
	cfg.Testing.FaultInjection = true
	s := newTestServer(t, cfg, openEngine(t, cfg))
	h := s.Handler()
	recall := request{method: http.MethodGet, path: "/api/v1/memories/recall?query=x"}

	if w := do(t, h, request{method: http.MethodPost, path: PathAdminFaults, body: `{"operations":["recall"],"error_ratio":1}`}); w.Code != http.StatusOK {
		t.Fatalf("set fault: %d %s", w.Code, w.Body)
	}
	w := do(t, h, recall)
	if w.Code != http.StatusServiceUnavailable || decodeEnvelope(t, w).Code != "INJECTED_FAULT" {
		t.Fatalf("recall under an error fault: %d %s", w.Code, w.Body)
	}
	// Other operations are untouched.
	if w := do(t, h, request{method: http.MethodPost, path: "/api/v1/memories/remember", body: `{"content":"hello"}`}); w.Code != http.StatusCreated {
		t.Fatalf("remember is not targeted but got %d %s", w.Code, w.Body)
	}
	if w := do(t, h, request{method: http.MethodPost, path: PathAdminFaults, body: `{"operations":["recall"],"latency":"30ms"}`}); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"30ms"`) {
		t.Fatalf("set latency: %d %s", w.Code, w.Body)
	}
	start := time.Now()
	if w := do(t, h, recall); w.Code != http.StatusOK {
		t.Fatalf("recall under a latency fault: %d %s", w.Code, w.Body)
	}
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Fatalf("recall took %s, want at least the injected 30ms", d)
	}
	if w := do(t, h, request{method: http.MethodDelete, path: PathAdminFaults}); w.Code != http.StatusOK {
		t.Fatalf("clear: %d %s", w.Code, w.Body)
	}
	if w := do(t, h, recall); w.Code != http.StatusOK {
		t.Fatalf("recall after clearing: %d", w.Code)
	}
	for _, bad := range []string{`{"operations":["nope"]}`, `{"error_ratio":2}`, `{"latency":"soon"}`} {
		if w := do(t, h, request{method: http.MethodPost, path: PathAdminFaults, body: bad}); w.Code != http.StatusBadRequest {
			t.Fatalf("%s: %d, want 400", bad, w.Code)
		}
	}
}
