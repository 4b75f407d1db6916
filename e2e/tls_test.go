package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/engram-ops/engram-ops/internal/testsupport"
	"github.com/engram-ops/engram-ops/ops/api"
	"github.com/engram-ops/engram-ops/ops/client"
)

// TestTLSEndToEnd serves over TLS with a CA made in the test, then reads
// it with every client that takes --ca-file: the status board, the load
// tester and ops/client; without the CA each fails with an x509 error. A
// replaced certificate is served after SIGHUP.
func TestTLSEndToEnd(t *testing.T) {
	dir := t.TempDir()
	ca := testsupport.NewCA(t, dir, "ca")
	cert := ca.Issue(t, dir, "server", testsupport.CertOptions{})
	s, err := testsupport.TryStartServe(t, t.TempDir(), testsupport.ServeOptions{CAFile: ca.File},
		"--tls-cert", cert.CertFile, "--tls-key", cert.KeyFile, "--no-access-log", "--set", "tls.reload_interval=0s")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s.URL, "https://") {
		t.Fatalf("URL %s", s.URL)
	}

	code, out := runBin(t, "tui", "--once", "--refresh", "200ms", "--target", s.URL, "--ca-file", ca.File, "--output", "json")
	var snap struct {
		Health struct{ Status string } `json:"health"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &snap) != nil || snap.Health.Status != "ready" {
		t.Errorf("tui --once over TLS: exit %d, health %q:\n%s", code, snap.Health.Status, out)
	}
	if code, out := runBin(t, "tui", "--once", "--refresh", "200ms", "--target", s.URL); code != 1 || !strings.Contains(out, "x509: certificate signed by unknown authority") {
		t.Errorf("tui without --ca-file: exit %d, want 1 with an x509 error:\n%s", code, out)
	}
	if code, out := runBin(t, "tui", "--once", "--target", s.URL, "--insecure-skip-verify"); code != 0 || !strings.Contains(out, "--insecure-skip-verify: the server's certificate is not checked") {
		t.Errorf("tui --insecure-skip-verify: exit %d, want 0 with a warning:\n%s", code, out)
	}

	lt := []string{"loadtest", "run", "smoke", "--target", s.URL, "--duration", "1s", "--warmup", "0s", "--quiet"}
	if code, out := runBin(t, append(lt, "--ca-file", ca.File)...); code != 0 {
		t.Errorf("loadtest over TLS: exit %d:\n%s", code, out)
	}
	if code, out := runBin(t, lt...); code != 1 || !strings.Contains(out, "x509: certificate signed by unknown authority") {
		t.Errorf("loadtest without --ca-file: exit %d, want 1 with an x509 error:\n%s", code, out)
	}

	tr, err := client.TLSOptions{CAFile: ca.File}.Transport()
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	c, err := client.New(s.URL, client.WithHTTPClient(hc))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.Remember(ctx, api.RememberRequest{ID: "over-tls", Content: "remembered over TLS"}); err != nil {
		t.Fatalf("remember over TLS: %v", err)
	}

	// SIGHUP reloads a replaced certificate; the next handshake sees it.
	ca.Issue(t, dir, "server", testsupport.CertOptions{CommonName: "renewed"})
	if err := s.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		conn, err := tls.Dial("tcp", strings.TrimPrefix(s.URL, "https://"), tr.TLSClientConfig)
		if err != nil {
			t.Fatal(err)
		}
		cn := conn.ConnectionState().PeerCertificates[0].Subject.CommonName
		conn.Close()
		if cn == "renewed" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after SIGHUP the server still presents %q:\n%s", cn, s.Logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := c.Get(ctx, "over-tls", false); err != nil {
		t.Errorf("after the reload: %v", err)
	}
	if !strings.Contains(s.Logs.String(), "TLS certificate reloaded") {
		t.Errorf("no reload in the log:\n%s", s.Logs.String())
	}
}

// TestTLSBadCertificateRefusesToStart: serve with a certificate that is
// not PEM, or a key of another certificate, exits with the configuration
// error code (2) naming the file and the reason, before it opens the data
// directory.
func TestTLSBadCertificateRefusesToStart(t *testing.T) {
	dir := t.TempDir()
	ca := testsupport.NewCA(t, dir, "ca")
	a := ca.Issue(t, dir, "a", testsupport.CertOptions{})
	b := ca.Issue(t, dir, "b", testsupport.CertOptions{})
	junk := filepath.Join(dir, "junk.crt")
	if err := os.WriteFile(junk, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ cert, key, want string }{
		{junk, a.KeyFile, "failed to find any PEM data in certificate input"},
		{a.CertFile, b.KeyFile, "private key does not match public key"},
		{filepath.Join(dir, "missing.crt"), a.KeyFile, "tls.cert_file: open " + filepath.Join(dir, "missing.crt")},
	} {
		data := filepath.Join(t.TempDir(), "data")
		code, out := runBin(t, "serve", "--listen", "127.0.0.1:0", "--data-dir", data, "--tls-cert", tc.cert, "--tls-key", tc.key)
		if code != 2 || !strings.Contains(out, tc.want) {
			t.Errorf("serve --tls-cert %s --tls-key %s: exit %d, want 2 mentioning %q:\n%s", tc.cert, tc.key, code, tc.want, out)
		}
		if _, err := os.Stat(data); !os.IsNotExist(err) {
			t.Errorf("the data directory was created before the certificate was checked")
		}
	}
}

// TestSecretsNeverLeak: the embedding API key (echoed back by a hostile
// embeddings API in its error bodies) and the TLS private key never appear
// in the server's log, its error bodies, /api/v1/system/health or
// /metrics, also after a failed certificate reload.
func TestSecretsNeverLeak(t *testing.T) {
	const apiKey = "sk-planted-9f8e7d6c5b4a"
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error":{"message":"bad key `+r.Header.Get("Authorization")+`"}}`, http.StatusUnauthorized)
	}))
	defer echo.Close()
	dir := t.TempDir()
	ca := testsupport.NewCA(t, dir, "ca")
	cert := ca.Issue(t, dir, "server", testsupport.CertOptions{})
	keyPEM, err := os.ReadFile(cert.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	keyBody := strings.Split(string(keyPEM), "\n")[1] // a line of the key's base64
	s, err := testsupport.TryStartServe(t, t.TempDir(), testsupport.ServeOptions{CAFile: ca.File, Env: []string{
		"ENGRAM_EMBEDDER_OPENAI_BASE_URL=" + echo.URL + "/v1", "ENGRAM_EMBEDDER_OPENAI_DIMENSION=8",
		"ENGRAM_EMBEDDER_OPENAI_API_KEY_ENV=PLANTED_KEY", "PLANTED_KEY=" + apiKey}},
		"--tls-cert", cert.CertFile, "--tls-key", cert.KeyFile, "--set", "tls.reload_interval=0s", "--log-level", "debug")
	if err != nil {
		t.Fatal(err)
	}
	tr, err := client.TLSOptions{CAFile: ca.File}.Transport()
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	var seen strings.Builder
	call := func(method, path, body string) {
		req, _ := http.NewRequest(method, s.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Memory-Space", "semantic")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		seen.WriteString(path + " " + resp.Status + " " + string(b) + "\n")
	}
	call("POST", "/api/v1/spaces", `{"id":"semantic","dimension":8,"embedder":"openai"}`)
	call("POST", "/api/v1/memories/remember", `{"content":"needs an embedding"}`)
	call("GET", "/api/v1/memories/recall?query=needs", "")
	if err := os.WriteFile(cert.CertFile, keyPEM, 0o600); err != nil { // the key where the certificate belongs
		t.Fatal(err)
	}
	if err := s.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(s.Logs.String(), "TLS certificate reload failed") {
		if time.Now().After(deadline) {
			t.Fatalf("no failed reload logged:\n%s", s.Logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	call("GET", "/api/v1/system/health", "")
	call("GET", "/metrics", "")
	if !strings.Contains(seen.String(), "EMBEDDER_FAILED") || !strings.Contains(s.Logs.String(), "401") {
		t.Errorf("the embedder's failure did not reach the responses and the log:\n%s\n%s", seen.String(), s.Logs.String())
	}
	for _, out := range []struct{ name, text string }{{"responses", seen.String()}, {"log", s.Logs.String()}} {
		for _, secret := range []string{apiKey, keyBody} {
			if strings.Contains(out.text, secret) {
				t.Errorf("the %s contain a planted secret %q:\n%s", out.name, secret, out.text)
			}
		}
	}
}
