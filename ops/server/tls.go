package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/engram-ops/engram-ops/ops/config"
	"github.com/engram-ops/engram-ops/ops/metrics"
)

// TLS is the server side of the [tls] configuration: the certificate in
// use, which Reload (SIGHUP) and a change of its files replace without
// dropping connections, and the *tls.Config handshakes use.
type TLS struct {
	certFile, keyFile string
	interval          time.Duration
	config            *tls.Config
	cert              atomic.Pointer[tls.Certificate]

	mu      sync.Mutex // serialises reloads
	loaded  fileStamps // the files' stamps when last loaded (or tried)
	pending fileStamps // the stamps seen by the previous poll
	log     *slog.Logger
	metrics *metrics.TLS
}

// TLSError is a certificate, key or client CA file that cannot be used:
// serve refuses to start with it.
type TLSError struct{ Err error }

func (e *TLSError) Error() string { return e.Err.Error() }
func (e *TLSError) Unwrap() error { return e.Err }

// LoadTLS reads the certificate, key and client CAs c names (c.CertFile
// must be set) and builds the server's TLS configuration: TLS 1.2 or
// later, HTTP/1.1, and client certificates required and verified when
// c.ClientCAFile is set. Every failure is a *TLSError naming the file and
// the reason.
func LoadTLS(c config.TLSConfig) (*TLS, error) {
	t := &TLS{certFile: c.CertFile, keyFile: c.KeyFile, interval: c.ReloadInterval.Duration,
		log: slog.New(slog.DiscardHandler)}
	t.loaded = stampFiles(c.CertFile, c.KeyFile)
	t.pending = t.loaded
	cert, err := loadKeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, &TLSError{err}
	}
	t.cert.Store(cert)
	t.config = &tls.Config{
		MinVersion: tls.VersionTLS12,
		// The error envelope of requests net/http refuses by itself
		// (jsonErrorListener) is written on HTTP/1.1 only.
		NextProtos: []string{"http/1.1"},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return t.cert.Load(), nil
		},
	}
	if c.ClientCAFile != "" {
		pem, err := os.ReadFile(c.ClientCAFile)
		if err != nil {
			return nil, &TLSError{fmt.Errorf("tls.client_ca_file: %w", err)}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, &TLSError{fmt.Errorf("tls.client_ca_file %s: no PEM certificate in it", c.ClientCAFile)}
		}
		t.config.ClientCAs = pool
		t.config.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return t, nil
}

// loadKeyPair reads a PEM certificate chain and its private key.
func loadKeyPair(certFile, keyFile string) (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("tls.cert_file: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls.key_file: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("tls.cert_file %s with tls.key_file %s: %w", certFile, keyFile, err)
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("tls.cert_file %s: %w", certFile, err)
		}
	}
	return &cert, nil
}

// attach makes t log to logger and count in m, and records the expiry of
// the certificate loaded at start.
func (t *TLS) attach(logger *slog.Logger, m *metrics.TLS) {
	t.log, t.metrics = logger, m
	leaf := t.cert.Load().Leaf
	m.CertLoaded(leaf.NotAfter)
	if time.Until(leaf.NotAfter) < 7*24*time.Hour {
		logger.Warn("the TLS certificate expires soon or has expired: replace tls.cert_file (it is reloaded on change or SIGHUP)",
			"cert_file", t.certFile, "not_after", leaf.NotAfter)
	}
}

// Config is the configuration handshakes use.
func (t *TLS) Config() *tls.Config { return t.config }

// NotAfter is the expiry of the certificate in use.
func (t *TLS) NotAfter() time.Time { return t.cert.Load().Leaf.NotAfter }

// Reload reads the certificate and key again. On failure the certificate in
// use stays, the reason is logged and returned, and
// engram_tls_reload_failures_total counts it. Connections already open are
// not affected either way; new handshakes use the new certificate.
func (t *TLS) Reload() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.loaded = stampFiles(t.certFile, t.keyFile)
	cert, err := loadKeyPair(t.certFile, t.keyFile)
	if err != nil {
		if t.metrics != nil {
			t.metrics.ReloadFailed()
		}
		t.log.Error("TLS certificate reload failed; the previous certificate stays in use", "err", err)
		return err
	}
	t.cert.Store(cert)
	if t.metrics != nil {
		t.metrics.CertLoaded(cert.Leaf.NotAfter)
	}
	t.log.Info("TLS certificate reloaded", "cert_file", t.certFile, "subject", cert.Leaf.Subject.String(),
		"not_after", cert.Leaf.NotAfter)
	return nil
}

// watch reloads the certificate when its files changed and then stayed the
// same for one interval (so a certificate and key replaced one after the
// other are read together), until ctx ends.
func (t *TLS) watch(ctx context.Context) {
	if t.interval <= 0 {
		return
	}
	tick := time.NewTicker(t.interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := stampFiles(t.certFile, t.keyFile)
		t.mu.Lock()
		changed := now != t.loaded && now == t.pending
		t.pending = now
		t.mu.Unlock()
		if changed {
			_ = t.Reload()
		}
	}
}

// fileStamps identify the contents of the certificate and key files
// cheaply: modification time and size of each.
type fileStamps [2]struct {
	mod  time.Time
	size int64
}

func stampFiles(files ...string) fileStamps {
	var s fileStamps
	for i, f := range files[:2] {
		if st, err := os.Stat(f); err == nil {
			s[i].mod, s[i].size = st.ModTime(), st.Size()
		}
	}
	return s
}

// tlsListener makes every accepted connection a TLS server connection.
// The handshake runs on the connection's first read, under the deadline
// net/http sets for reading the request (server.read_timeout and the
// header timeout), so a slow handshake never holds the accept loop.
type tlsListener struct {
	net.Listener
	t *TLS
}

func (l tlsListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &tlsConn{Conn: tls.Server(c, l.t.config), t: l.t}, nil
}

// tlsConn logs and counts a failed handshake once, which net/http would
// otherwise drop silently (it sees the connection only through wrappers).
type tlsConn struct {
	*tls.Conn
	t         *TLS
	handshook atomic.Bool // cheaper to ask on every read than ConnectionState
	failed    atomic.Bool
}

func (c *tlsConn) Read(p []byte) (int, error) {
	if !c.handshook.Load() {
		if err := c.Handshake(); err != nil {
			c.handshakeFailed(err)
			return 0, err
		}
		c.handshook.Store(true)
	}
	return c.Conn.Read(p)
}

func (c *tlsConn) handshakeFailed(err error) {
	var ne net.Error
	// Timeouts are the read deadline's business; a connection closed
	// before it said anything is a TCP probe.
	if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) ||
		!c.failed.CompareAndSwap(false, true) {
		return
	}
	if c.t.metrics != nil {
		c.t.metrics.HandshakeFailed()
	}
	c.t.log.Warn("TLS handshake failed", "remote", c.RemoteAddr().String(), "err", err)
}
