package main

// The generator's former HTTP/1.1 client, replaced by loadtest.HTTPClient
// (fasthttp), kept as the reference BenchmarkGeneratorCeiling measures the
// replacement against in the same run.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// directTransport is the generator's HTTP/1.1 transport for http://
// targets. Each request runs start to finish on the calling worker's
// goroutine over a kept-alive connection from a pool: net/http's Transport
// hands every request to a write goroutine and every response from a read
// goroutine, and at thousands of requests a second those hand-offs and
// their selects are a large share of the generator's CPU. Anything else
// (https) goes to the fallback transport.
type directTransport struct {
	fallback http.RoundTripper
	dialer   net.Dialer
	maxIdle  int

	mu   sync.Mutex
	idle map[string][]*directConn // by host:port, most recently used last
}

// idleLimit is how long a pooled connection may sit unused before it is
// closed instead of reused.
const idleLimit = 30 * time.Second

type directConn struct {
	conn     net.Conn
	br       *bufio.Reader
	bw       *bufio.Writer
	host     string
	lastUsed time.Time
}

func newDirectTransport(fallback http.RoundTripper, maxIdle int) *directTransport {
	return &directTransport{
		fallback: fallback,
		dialer:   net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second},
		maxIdle:  maxIdle,
		idle:     map[string][]*directConn{},
	}
}

// errNoResponse marks a connection that ended (or failed) before the first
// byte of a response.
var errNoResponse = errors.New("connection closed before a response")

// errNotSent marks a failure before any byte of the request reached a
// reused connection's socket buffer; such a request is sent again on a new
// connection.
var errNotSent = errors.New("request not sent")

func (t *directTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "http" || req.URL.User != nil {
		return t.fallback.RoundTrip(req)
	}
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
	}
	host := req.URL.Host
	if req.URL.Port() == "" {
		host = net.JoinHostPort(req.URL.Hostname(), "80")
	}
	for attempt := 0; ; attempt++ {
		dc, reused, err := t.get(req.Context(), host)
		if err != nil {
			return nil, err
		}
		resp, err := t.exchange(req, dc, body)
		if err == nil {
			return resp, nil
		}
		dc.conn.Close()
		// A reused connection the server closed while it sat idle fails
		// on the first write or, for a request small enough to sit in the
		// socket buffer, before any response byte: a request that may be
		// replayed is sent once more on a new connection, as net/http does.
		if reused && attempt == 0 && (errors.Is(err, errNotSent) || (replayable(req) && errors.Is(err, errNoResponse))) {
			continue
		}
		return nil, err
	}
}

func replayable(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return true
	}
	return false
}

// get returns a pooled connection to host, or dials one.
func (t *directTransport) get(ctx context.Context, host string) (dc *directConn, reused bool, err error) {
	now := time.Now()
	t.mu.Lock()
	for list := t.idle[host]; len(list) > 0; list = t.idle[host] {
		dc = list[len(list)-1]
		t.idle[host] = list[:len(list)-1]
		if now.Sub(dc.lastUsed) < idleLimit {
			t.mu.Unlock()
			return dc, true, nil
		}
		dc.conn.Close()
	}
	t.mu.Unlock()
	conn, err := t.dialer.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, false, err
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	return &directConn{conn: conn, br: bufio.NewReaderSize(conn, 16<<10), bw: bufio.NewWriterSize(conn, 8<<10), host: host}, false, nil
}

// put returns a connection whose response was read to the end to the pool.
func (t *directTransport) put(dc *directConn) {
	dc.lastUsed = time.Now()
	t.mu.Lock()
	if len(t.idle[dc.host]) < t.maxIdle {
		t.idle[dc.host] = append(t.idle[dc.host], dc)
		dc = nil
	}
	t.mu.Unlock()
	if dc != nil {
		dc.conn.Close()
	}
}

// CloseIdleConnections closes every pooled connection.
func (t *directTransport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = map[string][]*directConn{}
	t.mu.Unlock()
	for _, list := range idle {
		for _, dc := range list {
			dc.conn.Close()
		}
	}
	if ci, ok := t.fallback.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}

// exchange writes req and reads the response head. The connection stays
// bound to the response body until the body is closed; a cancelled
// context interrupts a blocked read or write through the deadline.
func (t *directTransport) exchange(req *http.Request, dc *directConn, body []byte) (*http.Response, error) {
	ctx := req.Context()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := writeRequest(dc.bw, req, body); err != nil {
		if errors.Is(err, errBadHeader) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %w", errNotSent, err)
	}
	stop := context.AfterFunc(ctx, func() { _ = dc.conn.SetDeadline(time.Unix(1, 0)) })
	if err := dc.bw.Flush(); err != nil {
		stop()
		return nil, ctxErr(ctx, fmt.Errorf("%w: %w", errNotSent, err))
	}
	if _, err := dc.br.Peek(1); err != nil {
		stop()
		return nil, ctxErr(ctx, fmt.Errorf("%w: %w", errNoResponse, err))
	}
	resp, err := http.ReadResponse(dc.br, req)
	if err != nil {
		stop()
		return nil, ctxErr(ctx, err)
	}
	resp.Body = &directBody{rc: resp.Body, t: t, dc: dc, stop: stop, keep: !resp.Close && resp.ProtoAtLeast(1, 1)}
	return resp, nil
}

// ctxErr prefers the context's error to the deadline error its
// cancellation caused.
func ctxErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%w (%v)", cerr, err)
	}
	return err
}

var errBadHeader = errors.New("invalid header")

// writeRequest writes req's request line, headers and body in HTTP/1.1
// form; header names and values with control characters are refused, as
// net/http refuses them.
func writeRequest(w *bufio.Writer, req *http.Request, body []byte) error {
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	w.WriteString(req.Method)
	w.WriteByte(' ')
	w.WriteString(req.URL.RequestURI())
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.WriteString(host)
	w.WriteString("\r\n")
	for k, vs := range req.Header {
		if !validHeaderField(k) || strings.ContainsAny(k, " :") {
			return fmt.Errorf("%w name %q", errBadHeader, k)
		}
		for _, v := range vs {
			if !validHeaderField(v) {
				return fmt.Errorf("%w value for %s", errBadHeader, k)
			}
			w.WriteString(k)
			w.WriteString(": ")
			w.WriteString(v)
			w.WriteString("\r\n")
		}
	}
	if len(body) > 0 || req.Method == http.MethodPost || req.Method == http.MethodPut || req.Method == http.MethodPatch {
		w.WriteString("Content-Length: ")
		var num [20]byte
		w.Write(strconv.AppendInt(num[:0], int64(len(body)), 10))
		w.WriteString("\r\n")
	}
	w.WriteString("\r\n")
	_, err := w.Write(body)
	return err
}

func validHeaderField(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// directBody is a response body; closing it returns the connection to the
// pool once the body was read to its end (net/http's body drains the rest
// on Close), or closes the connection.
type directBody struct {
	rc   io.ReadCloser
	t    *directTransport
	dc   *directConn
	stop func() bool
	keep bool
	once sync.Once
}

func (b *directBody) Read(p []byte) (int, error) { return b.rc.Read(p) }

func (b *directBody) Close() error {
	var err error
	b.once.Do(func() {
		err = b.rc.Close()
		if b.stop() && err == nil && b.keep && b.dc.br.Buffered() == 0 {
			b.t.put(b.dc)
			return
		}
		b.dc.conn.Close()
	})
	return err
}
