package client

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
)

// TLSOptions are the client side of TLS every command talking to a server
// takes (--ca-file, --client-cert, --client-key, --insecure-skip-verify).
type TLSOptions struct {
	// CAFile holds the PEM CA certificates the server's certificate must
	// chain to, instead of the system's roots.
	CAFile string
	// CertFile and KeyFile are the client certificate and key presented
	// to a server requiring mutual TLS.
	CertFile, KeyFile string
	// InsecureSkipVerify accepts any server certificate: the connection is
	// encrypted but the server is not authenticated.
	InsecureSkipVerify bool
}

// Config builds the *tls.Config of o: TLS 1.2 or later, the CA file's
// roots (or the system's), the client certificate if given. It returns
// nil and no error when o is empty (the transport's defaults apply).
func (o TLSOptions) Config() (*tls.Config, error) {
	if o == (TLSOptions{}) {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: o.InsecureSkipVerify}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("--ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ca-file %s: no PEM certificate in it", o.CAFile)
		}
		tc.RootCAs = pool
	}
	switch {
	case o.CertFile != "" && o.KeyFile != "":
		cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("--client-cert %s with --client-key %s: %w", o.CertFile, o.KeyFile, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	case o.CertFile != "" || o.KeyFile != "":
		return nil, errors.New("--client-cert and --client-key go together: give both for mutual TLS")
	}
	return tc, nil
}

// Transport is DefaultTransport with o's TLS configuration.
func (o TLSOptions) Transport() (*http.Transport, error) {
	tc, err := o.Config()
	if err != nil {
		return nil, err
	}
	t := DefaultTransport()
	t.TLSClientConfig = tc
	return t, nil
}
