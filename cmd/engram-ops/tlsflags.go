package main

import (
	"crypto/tls"
	"fmt"
	"net/http"

	"github.com/spf13/pflag"

	"github.com/engram-ops/engram-ops/ops/client"
)

// tlsClientFlags are the TLS flags of every command that talks to a
// running server (tui, loadtest, migrate --target, backup create
// --server); client.TLSOptions builds the configuration.
type tlsClientFlags struct {
	o client.TLSOptions
}

func (f *tlsClientFlags) add(fs *pflag.FlagSet) {
	fs.StringVar(&f.o.CAFile, "ca-file", "", "PEM CA certificates an https:// server's certificate must chain to (default: the system's)")
	fs.StringVar(&f.o.CertFile, "client-cert", "", "PEM client certificate for a server requiring mutual TLS")
	fs.StringVar(&f.o.KeyFile, "client-key", "", "PEM private key of --client-cert")
	fs.BoolVar(&f.o.InsecureSkipVerify, "insecure-skip-verify", false, "accept any server certificate (encrypted but NOT authenticated; for tests only)")
}

// config is the TLS configuration of the flags (nil when none is given);
// --insecure-skip-verify is warned about on stderr.
func (f *tlsClientFlags) config(a *app) (*tls.Config, error) {
	tc, err := f.o.Config()
	if err != nil {
		return nil, &usageError{err}
	}
	if f.o.InsecureSkipVerify {
		fmt.Fprintln(a.stderr, "warning: --insecure-skip-verify: the server's certificate is not checked; anyone on the path can impersonate it")
	}
	return tc, nil
}

// httpClient is an *http.Client with client.DefaultTransport and the
// flags' TLS configuration.
func (f *tlsClientFlags) httpClient(a *app) (*http.Client, error) {
	tc, err := f.config(a)
	if err != nil {
		return nil, err
	}
	t := client.DefaultTransport()
	t.TLSClientConfig = tc
	return &http.Client{Transport: t}, nil
}
