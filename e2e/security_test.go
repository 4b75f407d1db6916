package e2e

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/engram-ops/engram-ops/core/apikey"
	"github.com/engram-ops/engram-ops/internal/testsupport"
	"github.com/engram-ops/engram-ops/ops/api"
	"github.com/engram-ops/engram-ops/ops/client"
)

// TestKeyedTLSEndToEnd is the security runbook's end state on the real
// binary: an admin key made on the stopped data directory, the server
// with keys required over TLS (a CA made in the test), a tenant key made
// through the server, and each refusal the keys promise, over TLS: no key
// 401, the tenant's space 200, another space 403, an admin route 403 to
// the tenant, the public probe 200. The audit file names the key, never
// its secret.
func TestKeyedTLSEndToEnd(t *testing.T) {
	dataDir, dir := t.TempDir(), t.TempDir()
	code, out := runBin(t, "apikey", "create", "--data-dir", dataDir, "--name", "admin", "--permissions", "admin")
	admin := ""
	for _, l := range strings.Split(out, "\n") {
		if apikey.Valid(strings.TrimSpace(l)) {
			admin = strings.TrimSpace(l)
		}
	}
	if code != 0 || admin == "" {
		t.Fatalf("apikey create on the data directory: exit %d\n%s", code, out)
	}
	ca := testsupport.NewCA(t, dir, "ca")
	cert := ca.Issue(t, dir, "server", testsupport.CertOptions{})
	audit := filepath.Join(dir, "audit.jsonl")
	s, err := testsupport.TryStartServe(t, dataDir, testsupport.ServeOptions{CAFile: ca.File},
		"--tls-cert", cert.CertFile, "--tls-key", cert.KeyFile, "--set", "auth.mode=api_key", "--set", "audit.path="+audit)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := client.TLSOptions{CAFile: ca.File}.Transport()
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	ac, err := client.New(s.URL, client.WithHTTPClient(hc), client.WithToken(admin))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tenant, err := ac.CreateAPIKey(ctx, api.APIKeyCreateRequest{Name: "tenant-a", Permissions: []string{"read", "write"}, Spaces: []string{"tenant-a"}, Expires: "90d"})
	if err != nil {
		t.Fatalf("create a tenant key over TLS: %v", err)
	}
	status := func(method, path, token string) int {
		t.Helper()
		req, _ := http.NewRequest(method, s.URL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	tc, err := client.New(s.URL, client.WithHTTPClient(hc), client.WithToken(tenant.Token), client.WithSpace("tenant-a"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tc.Remember(ctx, api.RememberRequest{ID: "fact-1", Content: "the tenant's own memory"}); err != nil {
		t.Fatalf("tenant remember in its space: %v", err)
	}
	for _, c := range []struct {
		name, method, path, token string
		want                      int
	}{
		{"no key", "GET", api.PathSpaces, "", http.StatusUnauthorized},
		{"a malformed key", "GET", api.PathSpaces, "engk_not-a-key", http.StatusUnauthorized},
		{"the tenant in its space", "GET", "/api/v1/memories?space=tenant-a", tenant.Token, http.StatusOK},
		{"the tenant in another space", "GET", "/api/v1/memories?space=default", tenant.Token, http.StatusForbidden},
		{"the tenant on an admin route", "GET", "/api/v1/admin/apikeys", tenant.Token, http.StatusForbidden},
		{"the admin on an admin route", "GET", "/api/v1/admin/apikeys", admin, http.StatusOK},
		{"the public readiness probe", "GET", api.PathHealthReady, "", http.StatusOK},
	} {
		if got := status(c.method, c.path, c.token); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
	b, err := os.ReadFile(audit)
	if err != nil {
		t.Fatal(err)
	}
	secret := tenant.Token[strings.LastIndexByte(tenant.Token, '_')+1:]
	if !strings.Contains(string(b), tenant.Key.ID) || strings.Contains(string(b), secret) || strings.Contains(string(b), admin[strings.LastIndexByte(admin, '_')+1:]) {
		t.Errorf("the audit log must name the tenant key %s and never a secret:\n%s", tenant.Key.ID, b)
	}
}
