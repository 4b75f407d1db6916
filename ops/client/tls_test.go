package client_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/engram-ops/engram-ops/internal/testsupport"
	"github.com/engram-ops/engram-ops/ops/client"
)

// TestTLSOptions: the CA file and client certificate reach the
// handshake (a server requiring a client certificate of the CA answers),
// and unusable files are errors naming the flag.
func TestTLSOptions(t *testing.T) {
	dir := t.TempDir()
	ca := testsupport.NewCA(t, dir, "ca")
	srvPair := ca.Issue(t, dir, "server", testsupport.CertOptions{})
	cl := ca.Issue(t, dir, "client", testsupport.CertOptions{Client: true})
	pem, _ := os.ReadFile(ca.File)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	cert, err := tls.LoadX509KeyPair(srvPair.CertFile, srvPair.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"status":"alive"}`))
	}))
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert}
	ts.StartTLS()
	defer ts.Close()

	alive := func(o client.TLSOptions) error {
		tr, err := o.Transport()
		if err != nil {
			t.Fatal(err)
		}
		defer tr.CloseIdleConnections()
		c, err := client.New(ts.URL, client.WithHTTPClient(&http.Client{Transport: tr}))
		if err != nil {
			t.Fatal(err)
		}
		return c.Alive(context.Background())
	}
	if err := alive(client.TLSOptions{CAFile: ca.File, CertFile: cl.CertFile, KeyFile: cl.KeyFile}); err != nil {
		t.Errorf("with the CA and a client certificate: %v", err)
	}
	if err := alive(client.TLSOptions{CAFile: ca.File}); err == nil {
		t.Errorf("without a client certificate the server answered")
	}
	if err := alive(client.TLSOptions{InsecureSkipVerify: true, CertFile: cl.CertFile, KeyFile: cl.KeyFile}); err != nil {
		t.Errorf("insecure with a client certificate: %v", err)
	}

	if tc, err := (client.TLSOptions{}).Config(); tc != nil || err != nil {
		t.Errorf("empty options: %v %v, want nil, nil", tc, err)
	}
	junk := filepath.Join(dir, "junk")
	os.WriteFile(junk, []byte("x"), 0o600)
	for _, tc := range []struct {
		o    client.TLSOptions
		want string
	}{
		{client.TLSOptions{CAFile: junk}, "--ca-file " + junk + ": no PEM certificate"},
		{client.TLSOptions{CAFile: junk + "-missing"}, "--ca-file: open"},
		{client.TLSOptions{CertFile: cl.CertFile}, "--client-cert and --client-key go together"},
		{client.TLSOptions{CertFile: cl.CertFile, KeyFile: srvPair.KeyFile}, "private key does not match"},
	} {
		if _, err := tc.o.Config(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.o, err, tc.want)
		}
	}
}
