package server

import (
	"strings"
	"testing"

	"github.com/engram-ops/engram-ops/ops/api"
	"github.com/engram-ops/engram-ops/ops/config"
)

const appOrigin = "https://app.example.com"

func preflight(origin, method, headers string) request {
	h := map[string]string{"Origin": origin, "Access-Control-Request-Method": method}
	if headers != "" {
		h["Access-Control-Request-Headers"] = headers
	}
	return request{method: "OPTIONS", path: api.PathRecall, headers: h}
}

// TestCORSOffByDefault: with no origins configured nothing changes: no
// CORS headers, and OPTIONS is not a route.
func TestCORSOffByDefault(t *testing.T) {
	cfg := testConfig()
	h := newTestServer(t, cfg, openEngine(t, cfg)).Handler()
	w := do(t, h, preflight(appOrigin, "GET", ""))
	if w.Code != 405 || w.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight with CORS off: %d %v", w.Code, w.Header())
	}
	w = do(t, h, request{method: "GET", path: api.PathHealth, headers: map[string]string{"Origin": appOrigin}})
	if w.Header().Get("Access-Control-Allow-Origin") != "" || w.Header().Get("Vary") != "" {
		t.Errorf("CORS headers with CORS off: %v", w.Header())
	}
}

// TestCORS: preflights from allowed origins asking for allowed methods
// and headers get 204 with the CORS headers, in front of authentication;
// anything else is a 403 envelope; actual requests get
// Access-Control-Allow-Origin only for allowed origins; every answer
// varies on Origin.
func TestCORS(t *testing.T) {
	k := newKeyedServer(t, func(c *config.Config) { c.CORS.AllowedOrigins = []string{appOrigin} })
	h := k.s.Handler()

	w := do(t, h, preflight(appOrigin, "GET", "authorization, x-memory-space"))
	hd := w.Header()
	if w.Code != 204 || hd.Get("Access-Control-Allow-Origin") != appOrigin || !strings.Contains(hd.Get("Access-Control-Allow-Methods"), "POST") ||
		!strings.Contains(hd.Get("Access-Control-Allow-Headers"), "Authorization") || hd.Get("Access-Control-Max-Age") != "600" ||
		!strings.Contains(strings.Join(hd.Values("Vary"), ","), "Origin") || w.Body.Len() != 0 {
		t.Errorf("allowed preflight (no key): %d %v %s", w.Code, hd, w.Body)
	}
	for name, rq := range map[string]request{
		"other origin":      preflight("https://evil.example", "GET", ""),
		"method not listed": preflight(appOrigin, "PUT", ""),
		"header not listed": preflight(appOrigin, "POST", "content-type, x-secret"),
	} {
		w := do(t, h, rq)
		if w.Code != 403 || w.Header().Get("Access-Control-Allow-Origin") != "" || decodeEnvelope(t, w).Code != "CORS_ORIGIN_NOT_ALLOWED" {
			t.Errorf("%s: %d %v %s", name, w.Code, w.Header(), w.Body)
		}
	}

	hdr := bearer(k.read)
	hdr["Origin"] = appOrigin
	w = do(t, h, request{method: "GET", path: api.PathRecall + "?query=x", headers: hdr})
	if w.Code != 200 || w.Header().Get("Access-Control-Allow-Origin") != appOrigin || w.Header().Get("Vary") != "Origin" {
		t.Errorf("request from an allowed origin: %d %v", w.Code, w.Header())
	}
	// A refused request still says its origin may read the answer.
	w = do(t, h, request{method: "GET", path: api.PathRecall + "?query=x", headers: map[string]string{"Origin": appOrigin}})
	if w.Code != 401 || w.Header().Get("Access-Control-Allow-Origin") != appOrigin {
		t.Errorf("keyless request from an allowed origin: %d %v", w.Code, w.Header())
	}
	hdr["Origin"] = "https://evil.example"
	w = do(t, h, request{method: "GET", path: api.PathRecall + "?query=x", headers: hdr})
	if w.Header().Get("Access-Control-Allow-Origin") != "" || w.Header().Get("Vary") != "Origin" {
		t.Errorf("request from another origin: %d %v", w.Code, w.Header())
	}
}

// TestCORSAnyOriginNeedsAuthOrLoopback: "*" is refused by Validate where
// any web page could reach an unauthenticated server.
func TestCORSAnyOriginNeedsAuthOrLoopback(t *testing.T) {
	for _, tc := range []struct {
		listen, mode string
		ok           bool
	}{
		{"127.0.0.1:7432", config.AuthNone, true},
		{"0.0.0.0:7432", config.AuthAPIKey, true},
		{"0.0.0.0:7432", config.AuthNone, false},
	} {
		c := config.Default()
		c.Listen, c.Auth.Mode, c.Auth.InsecureAllowNoAuth = tc.listen, tc.mode, true
		c.CORS.AllowedOrigins = []string{"*"}
		err := c.Validate()
		if (err == nil) != tc.ok || (err != nil && !strings.Contains(err.Error(), "cors.allowed_origins")) {
			t.Errorf("%s %s: %v", tc.listen, tc.mode, err)
		}
	}
	c := config.Default()
	c.CORS.AllowedOrigins = []string{"https://app.example.com/path", "App.example.com"}
	if err := c.Validate(); err == nil || strings.Count(err.Error(), "cors.allowed_origins") != 2 {
		t.Errorf("bad origins accepted: %v", err)
	}
}
