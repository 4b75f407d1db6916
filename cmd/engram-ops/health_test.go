package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// health exits 0 on a ready server, 3 when it answers 503, 1 when nothing
// answers, and without --target probes serve's address from ENGRAM_LISTEN.
func TestHealthCommand(t *testing.T) {
	p := startServe(t, t.TempDir())
	if code, out, errOut := runCLI(t, nil, "health", "--target", p.base); code != exitOK || !strings.Contains(out, "/health/ready: ok") {
		t.Fatalf("ready server: exit %d, %q %q", code, out, errOut)
	}
	if code, _, errOut := runCLI(t, nil, "health", "--target", p.base, "--probe", "alive"); code != exitOK {
		t.Fatalf("alive: exit %d, %s", code, errOut)
	}
	listen := strings.TrimPrefix(p.base, "http://")
	port := listen[strings.LastIndex(listen, ":")+1:]
	if code, out, errOut := runCLI(t, map[string]string{"ENGRAM_LISTEN": "0.0.0.0:" + port}, "health"); code != exitOK ||
		!strings.Contains(out, "http://127.0.0.1:"+port+"/health/ready") {
		t.Fatalf("target from ENGRAM_LISTEN=0.0.0.0:%s: exit %d, %q %q", port, code, out, errOut)
	}

	notReady := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"status":"not_ready"}`))
	}))
	defer notReady.Close()
	if code, _, errOut := runCLI(t, nil, "health", "--target", notReady.URL); code != exitNotPassed {
		t.Fatalf("503: exit %d, want %d; %s", code, exitNotPassed, errOut)
	}
	down := notReady.URL
	notReady.Close()
	if code, _, errOut := runCLI(t, nil, "health", "--target", down, "--timeout", "2s"); code != exitFailed || !strings.Contains(errOut, "Try:") {
		t.Fatalf("nothing listening: exit %d, want %d; %s", code, exitFailed, errOut)
	}
	if code, _, _ := runCLI(t, nil, "health", "--probe", "sideways"); code != exitUsage {
		t.Fatalf("bad --probe: exit %d, want %d", code, exitUsage)
	}
}
