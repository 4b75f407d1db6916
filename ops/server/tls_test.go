package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/engram-ops/engram-ops/internal/testsupport"
	"github.com/engram-ops/engram-ops/ops/api"
	"github.com/engram-ops/engram-ops/ops/client"
	"github.com/engram-ops/engram-ops/ops/config"
)

// tlsFixture is a CA, a server certificate and a client certificate in a
// temporary directory.
type tlsFixture struct {
	dir            string
	ca             *testsupport.CA
	server, client testsupport.KeyPair
}

func newTLSFixture(t *testing.T) *tlsFixture {
	dir := t.TempDir()
	ca := testsupport.NewCA(t, dir, "ca")
	return &tlsFixture{dir: dir, ca: ca,
		server: ca.Issue(t, dir, "server", testsupport.CertOptions{}),
		client: ca.Issue(t, dir, "client", testsupport.CertOptions{Client: true})}
}

func (f *tlsFixture) config(mtls bool) config.Config {
	c := testConfig()
	c.TLS = config.TLSConfig{CertFile: f.server.CertFile, KeyFile: f.server.KeyFile, ReloadInterval: config.Duration{Duration: 20 * time.Millisecond}}
	if mtls {
		c.TLS.ClientCAFile = f.ca.File
	}
	return c
}

// httpsClient trusts the fixture's CA and may present its client
// certificate; every call gets its own connection pool.
func (f *tlsFixture) httpsClient(t *testing.T, withCert bool, mod func(*tls.Config)) *http.Client {
	t.Helper()
	o := client.TLSOptions{CAFile: f.ca.File}
	if withCert {
		o.CertFile, o.KeyFile = f.client.CertFile, f.client.KeyFile
	}
	tr, err := o.Transport()
	if err != nil {
		t.Fatal(err)
	}
	if mod != nil {
		mod(tr.TLSClientConfig)
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}
}

// serverCN is the common name of the certificate the server presented.
func serverCN(t *testing.T, resp *http.Response) string {
	t.Helper()
	if resp.TLS == nil || len(resp.TLS.PeerCertificates) == 0 {
		t.Fatal("the response did not come over TLS")
	}
	return resp.TLS.PeerCertificates[0].Subject.CommonName
}

func get(hc *http.Client, url string) (*http.Response, error) {
	resp, err := hc.Get(url)
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp, nil
}

// metricValue is the value of the unlabelled metric name in reg.
func registryValue(t *testing.T, reg *prometheus.Registry, name string) (float64, bool) {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == name {
			m := f.GetMetric()[0]
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue(), true
			case m.Gauge != nil:
				return m.Gauge.GetValue(), true
			}
		}
	}
	return 0, false
}

// TestTLSServesTLS12AndLaterOnly: over TLS the API answers a client that
// trusts the CA, with Strict-Transport-Security; TLS 1.1 and plain HTTP
// are refused, as is a client that does not trust the CA (an x509 error).
func TestTLSServesTLS12AndLaterOnly(t *testing.T) {
	f := newTLSFixture(t)
	reg := prometheus.NewRegistry()
	srv, err := New(f.config(false), newFake(), slog.New(slog.DiscardHandler), reg)
	if err != nil {
		t.Fatal(err)
	}
	addr := runTestServer(t, srv)
	url := "https://" + addr + api.PathHealth

	resp, err := get(f.httpsClient(t, false, nil), url)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.TLS.Version < tls.VersionTLS12 || serverCN(t, resp) != "server" {
		t.Fatalf("status %d version %x", resp.StatusCode, resp.TLS.Version)
	}
	if h := resp.Header.Get("Strict-Transport-Security"); !strings.Contains(h, "max-age=") {
		t.Errorf("Strict-Transport-Security = %q over TLS", h)
	}
	if exp, ok := registryValue(t, reg, "engram_tls_cert_expiry_timestamp_seconds"); !ok || int64(exp) != f.server.Cert.NotAfter.Unix() {
		t.Errorf("engram_tls_cert_expiry_timestamp_seconds = %v (%v), want %d", exp, ok, f.server.Cert.NotAfter.Unix())
	}

	_, err = get(f.httpsClient(t, false, func(c *tls.Config) { c.MinVersion, c.MaxVersion = tls.VersionTLS10, tls.VersionTLS11 }), url)
	if err == nil || !strings.Contains(err.Error(), "protocol version") {
		t.Errorf("a TLS 1.1 client: %v, want a protocol version failure", err)
	}
	if resp, err := get(&http.Client{Timeout: 5 * time.Second}, "http://"+addr+api.PathHealth); err == nil && resp.StatusCode == 200 {
		t.Errorf("plain HTTP to the TLS address was served")
	}
	_, err = get(&http.Client{Timeout: 5 * time.Second}, url)
	var uerr x509.UnknownAuthorityError
	if !errors.As(err, &uerr) {
		t.Errorf("a client without the CA: %v, want x509.UnknownAuthorityError", err)
	}
	if n, _ := registryValue(t, reg, "engram_tls_handshake_failures_total"); n < 2 {
		t.Errorf("engram_tls_handshake_failures_total = %v after a TLS 1.1 and a plain HTTP client", n)
	}
}

// TestMutualTLSRequiresAClientCertificate: with a client CA, a client
// without a certificate, or with one from another CA, is refused in the
// handshake; one with a certificate from the CA is served.
func TestMutualTLSRequiresAClientCertificate(t *testing.T) {
	f := newTLSFixture(t)
	addr := runTestServer(t, newTestServer(t, f.config(true), newFake()))
	url := "https://" + addr + api.PathHealth

	if _, err := get(f.httpsClient(t, false, nil), url); err == nil || !strings.Contains(err.Error(), "certificate required") {
		t.Errorf("no client certificate: %v, want the server's certificate required alert", err)
	}
	other := testsupport.NewCA(t, t.TempDir(), "other")
	stranger := other.Issue(t, t.TempDir(), "stranger", testsupport.CertOptions{Client: true})
	hc := f.httpsClient(t, false, func(c *tls.Config) {
		cert, err := tls.LoadX509KeyPair(stranger.CertFile, stranger.KeyFile)
		if err != nil {
			t.Fatal(err)
		}
		// Present it even though the server asks for its own CA's.
		c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
	})
	if _, err := get(hc, url); err == nil || !strings.Contains(err.Error(), "unknown certificate authority") {
		t.Errorf("a client certificate of another CA: %v, want unknown certificate authority", err)
	}
	resp, err := get(f.httpsClient(t, true, nil), url)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("with the client certificate: %v", err)
	}
}

// TestTLSReloadKeepsConnections: after the certificate files are replaced,
// a new connection gets the new certificate (file change, no signal) while
// a keep-alive connection opened before keeps working on the old one; a
// reload of unusable files keeps the certificate in use and is counted.
func TestTLSReloadKeepsConnections(t *testing.T) {
	f := newTLSFixture(t)
	reg := prometheus.NewRegistry()
	srv, err := New(f.config(false), newFake(), slog.New(slog.DiscardHandler), reg)
	if err != nil {
		t.Fatal(err)
	}
	url := "https://" + runTestServer(t, srv) + api.PathHealth

	old := f.httpsClient(t, false, nil)
	resp, err := get(old, url)
	if err != nil || serverCN(t, resp) != "server" {
		t.Fatalf("before the reload: %v", err)
	}
	renewed := f.ca.Issue(t, f.dir, "server", testsupport.CertOptions{CommonName: "renewed", NotAfter: time.Now().Add(48 * time.Hour)})
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := get(f.httpsClient(t, false, nil), url)
		if err != nil {
			t.Fatal(err)
		}
		if serverCN(t, resp) == "renewed" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a new connection still gets the old certificate 5s after the files changed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	var reused bool
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused },
	}))
	resp, err = old.Do(req)
	if err != nil {
		t.Fatalf("the keep-alive connection opened before the reload: %v", err)
	}
	resp.Body.Close()
	if !reused || resp.StatusCode != 200 || serverCN(t, resp) != "server" {
		t.Errorf("old connection: reused=%v status=%d cn=%s, want the same connection on the old certificate", reused, resp.StatusCode, serverCN(t, resp))
	}
	if exp, _ := registryValue(t, reg, "engram_tls_cert_expiry_timestamp_seconds"); int64(exp) != renewed.Cert.NotAfter.Unix() {
		t.Errorf("expiry gauge = %v, want the renewed certificate's %d", exp, renewed.Cert.NotAfter.Unix())
	}

	if err := os.WriteFile(f.server.KeyFile, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := srv.ReloadTLS(); err == nil || !strings.Contains(err.Error(), "tls.key_file") {
		t.Errorf("reload of a broken key: %v, want an error naming tls.key_file", err)
	}
	if n, _ := registryValue(t, reg, "engram_tls_reload_failures_total"); n < 1 {
		t.Errorf("engram_tls_reload_failures_total = %v after a failed reload", n)
	}
	resp, err = get(f.httpsClient(t, false, nil), url)
	if err != nil || serverCN(t, resp) != "renewed" {
		t.Errorf("after a failed reload: %v, want the renewed certificate still served", err)
	}
}

// TestBadTLSFilesRefuseToStart: a missing file, a file without PEM, a key
// of another certificate and an empty client CA file each stop New with a
// *TLSError naming the file and the reason.
func TestBadTLSFilesRefuseToStart(t *testing.T) {
	f := newTLSFixture(t)
	junk := f.dir + "/junk.pem"
	if err := os.WriteFile(junk, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		tls  config.TLSConfig
		want string
	}{
		{"missing certificate", config.TLSConfig{CertFile: f.dir + "/nope.crt", KeyFile: f.server.KeyFile}, "tls.cert_file: open " + f.dir + "/nope.crt: no such file"},
		{"not PEM", config.TLSConfig{CertFile: junk, KeyFile: f.server.KeyFile}, "failed to find any PEM data in certificate input"},
		{"key of another certificate", config.TLSConfig{CertFile: f.server.CertFile, KeyFile: f.client.KeyFile}, "private key does not match public key"},
		{"client CA without certificates", config.TLSConfig{CertFile: f.server.CertFile, KeyFile: f.server.KeyFile, ClientCAFile: junk},
			"tls.client_ca_file " + junk + ": no PEM certificate in it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.TLS = tc.tls
			_, err := New(cfg, newFake(), nil, nil)
			var te *TLSError
			if !errors.As(err, &te) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v, want a *TLSError mentioning %q", err, tc.want)
			}
		})
	}
}
