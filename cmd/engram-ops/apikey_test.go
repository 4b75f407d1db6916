package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/engram-ops/engram-ops/core/apikey"
	"github.com/engram-ops/engram-ops/ops/api"
)

func authedGet(t *testing.T, u, token string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// serve refuses to listen beyond loopback without keys (a configuration
// error, exit 2) unless told to, and then warns.
func TestServeRefusesOpenNonLoopback(t *testing.T) {
	code, _, errOut := runCLI(t, nil, "serve", "--listen", "0.0.0.0:0", "--data-dir", t.TempDir())
	if code != exitUsage || !strings.Contains(errOut, "auth.mode") || !strings.Contains(errOut, "apikey create") {
		t.Fatalf("serve on 0.0.0.0 without auth: exit %d\n%s", code, errOut)
	}
}

// Keys made on a stopped data directory work against the server started
// on it; keys are then managed through the running server with an admin
// key: create, list (never secrets), rotate, revoke.
func TestAPIKeyLifecycle(t *testing.T) {
	dir := t.TempDir()
	if code, _, errOut := runCLI(t, nil, "serve", "--data-dir", dir, "--listen", "127.0.0.1:0", "--set", "auth.mode=bogus"); code != exitUsage {
		t.Fatalf("bad auth.mode: exit %d %s", code, errOut)
	}
	code, out, errOut := runCLI(t, nil, "apikey", "create", "--data-dir", dir, "--name", "admin", "--permissions", "admin")
	admin := strings.TrimSpace(out)
	if code != exitOK || !apikey.Valid(admin) || !strings.Contains(errOut, "shown only now") {
		t.Fatalf("create: exit %d %q %s", code, out, errOut)
	}
	p := startServe(t, dir, "--set", "auth.mode=api_key")
	if got := authedGet(t, p.base+api.PathSpaces, ""); got != http.StatusUnauthorized {
		t.Fatalf("no key: %d", got)
	}
	if got := authedGet(t, p.base+api.PathHealthReady, ""); got != http.StatusOK {
		t.Fatalf("readiness must stay public: %d", got)
	}
	if got := authedGet(t, p.base+api.PathSpaces, admin); got != http.StatusOK {
		t.Fatalf("admin key: %d", got)
	}
	env := map[string]string{"ENGRAM_API_KEY": admin}
	code, out, errOut = runCLI(t, env, "apikey", "create", "--target", p.base, "--name", "tenant", "--permissions", "read,write",
		"--spaces", "tenant-a", "--expires", "90d", "--rate", "100/s", "--output", "json")
	var created api.APIKeyCreated
	if code != exitOK || json.Unmarshal([]byte(out), &created) != nil || !apikey.Valid(created.Token) || created.Key.Rate != "100/s" {
		t.Fatalf("remote create: exit %d %s %s", code, out, errOut)
	}
	if got := authedGet(t, p.base+"/api/v1/memories?space=tenant-a", created.Token); got != http.StatusOK {
		t.Fatalf("tenant key in its space: %d", got)
	}
	if got := authedGet(t, p.base+"/api/v1/memories?space=default", created.Token); got != http.StatusForbidden {
		t.Fatalf("tenant key in another space: %d", got)
	}
	code, out, _ = runCLI(t, env, "apikey", "list", "--target", p.base, "--output", "json")
	if code != exitOK || !strings.Contains(out, created.Key.ID) || strings.Contains(out, created.Token[len(apikey.Prefix)+13:]) ||
		strings.Contains(out, admin[len(apikey.Prefix)+13:]) {
		t.Fatalf("list: exit %d %s", code, out)
	}
	code, out, _ = runCLI(t, env, "apikey", "rotate", created.Key.ID, "--target", p.base, "--overlap", "1h")
	rotated := strings.TrimSpace(out)
	if code != exitOK || !apikey.Valid(rotated) {
		t.Fatalf("rotate: exit %d %s", code, out)
	}
	for _, tok := range []string{created.Token, rotated} {
		if got := authedGet(t, p.base+"/api/v1/memories?space=tenant-a", tok); got != http.StatusOK {
			t.Fatalf("inside the overlap: %d", got)
		}
	}
	if code, _, errOut = runCLI(t, env, "apikey", "revoke", created.Key.ID, "--target", p.base); code != exitOK {
		t.Fatalf("revoke: exit %d %s", code, errOut)
	}
	if got := authedGet(t, p.base+"/api/v1/memories?space=tenant-a", created.Token); got != http.StatusUnauthorized {
		t.Fatalf("revoked key: %d", got)
	}
	if code, _, _ = runCLI(t, map[string]string{"ENGRAM_API_KEY": rotated}, "apikey", "list", "--target", p.base); code != exitFailed {
		t.Fatalf("a non-admin key listed keys: exit %d", code)
	}
	// The data directory is locked by the running server.
	if code, _, errOut = runCLI(t, nil, "apikey", "list", "--data-dir", dir); code != exitFailed || !strings.Contains(errOut, "DATA_DIR_IN_USE") && !strings.Contains(errOut, "lock") {
		t.Fatalf("list on a served data directory: exit %d %s", code, errOut)
	}
}
