package server

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/engram-ops/engram-ops/ops/api"
	"github.com/engram-ops/engram-ops/ops/api/apijson"
	"github.com/engram-ops/engram-ops/ops/metrics"
)

// maxHeaderBytes bounds a request's line and headers (http.Server's
// MaxHeaderBytes).
const maxHeaderBytes = 1 << 20

// jsonErrorListener makes the responses net/http writes by itself, when it
// cannot read a request at all (a malformed request line or header, headers
// over MaxHeaderBytes, an unsupported transfer coding or protocol version),
// go out as the API's error envelope instead of plain text.
//
// net/http has no hook for these: it writes them straight to the
// connection and closes it. The wrapper recognises them on the write side
// and leaves the read side alone, so net/http stays the only parser of the
// byte stream: request framing on keep-alive and pipelined connections is
// exactly net/http's, and no second parser can disagree with it about where
// a request ends.
type jsonErrorListener struct {
	net.Listener
}

func (l jsonErrorListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &jsonErrorConn{Conn: c}, nil
}

// jsonErrorConn rewrites net/http's own error responses (see
// jsonErrorListener); every other write passes through unchanged.
type jsonErrorConn struct {
	net.Conn
}

func (c *jsonErrorConn) Write(p []byte) (int, error) {
	status, reason, ok := parseBareError(p)
	if !ok {
		return c.Conn.Write(p)
	}
	if _, err := c.Conn.Write(bareErrorResponse(status, reason)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// CloseWrite lets net/http half-close the connection after a 431, so the
// client reads the response before the connection is reset.
func (c *jsonErrorConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// bareErrorHeaders follow the status line of every response net/http
// writes without a handler. A response from a handler never matches: it
// carries a Date header, and net/http sorts Connection before Content-Type.
const bareErrorHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

// parseBareError reports whether p is one of net/http's own error
// responses, with its status and the reason net/http gave (after the
// status text, e.g. "missing required Host header"; empty when none).
func parseBareError(p []byte) (status int, reason string, ok bool) {
	const proto = "HTTP/1.1 "
	if len(p) < len(proto)+3 || string(p[:len(proto)]) != proto || (p[len(proto)] != '4' && p[len(proto)] != '5') {
		return 0, "", false
	}
	end := bytes.Index(p, []byte("\r\n"))
	if end < 0 || !bytes.HasPrefix(p[end:], []byte(bareErrorHeaders)) {
		return 0, "", false
	}
	line := p[len(proto):end] // "431 Request Header Fields Too Large", "400 Bad Request: invalid header name"
	status, err := strconv.Atoi(string(line[:3]))
	if err != nil {
		return 0, "", false
	}
	if i := bytes.Index(line, []byte(": ")); i >= 0 {
		reason = truncateString(string(line[i+2:]), 200)
	}
	return status, reason, true
}

// bareErrorResponse is the complete HTTP response, with the error
// envelope, that replaces net/http's plain-text one.
func bareErrorResponse(status int, reason string) []byte {
	var body api.ErrorBody
	switch status {
	case http.StatusRequestHeaderFieldsTooLarge:
		body = api.ErrorBody{Code: "HEADERS_TOO_LARGE",
			Message: fmt.Sprintf("the request line and headers exceed the limit of %d bytes (MaxHeaderBytes); send fewer or smaller headers", maxHeaderBytes),
			Details: map[string]any{"limit": maxHeaderBytes}}
	case http.StatusNotImplemented:
		body = api.ErrorBody{Code: "UNSUPPORTED_TRANSFER_ENCODING",
			Message: "the request's Transfer-Encoding is not supported; send the body with a Content-Length or chunked"}
	case http.StatusHTTPVersionNotSupported:
		body = api.ErrorBody{Code: "HTTP_VERSION_NOT_SUPPORTED",
			Message: "the request's protocol version is not supported; send HTTP/1.1 or HTTP/1.0"}
	default:
		if reason == "" {
			reason = "the request line or a header line is not valid HTTP/1.1"
		}
		body = api.ErrorBody{Code: "BAD_REQUEST", Message: "malformed request: " + reason}
	}
	return envelopeResponse(status, body, "")
}

// envelopeResponse is a complete HTTP/1.1 response carrying body as the
// error envelope, with the security headers of writeJSON, closing the
// connection; extra are more header lines, each ending in CRLF.
func envelopeResponse(status int, body api.ErrorBody, extra string) []byte {
	var js bytes.Buffer
	if err := apijson.Encode(&js, envelope(status, body)); err != nil { // a fixed shape of strings and an int
		panic(err)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n%s%sConnection: close\r\nContent-Length: %d\r\n\r\n",
		status, http.StatusText(status), securityHeaders, extra, js.Len())
	b.Write(js.Bytes())
	return b.Bytes()
}

// securityHeaders go with every JSON response (writeJSON sets the same):
// never sniffed as another type, cached, framed or allowed to load
// anything if a browser renders it.
const securityHeaders = "X-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\n" +
	"Content-Security-Policy: default-src 'none'\r\nX-Frame-Options: DENY\r\n"

// limitListener caps the open connections at max (0: no cap) and counts
// them. A connection over the cap is refused at once, never queued: a
// queue behind idle keep-alive connections would hold new clients for up
// to server.idle_timeout with no answer. Over plain HTTP the refused
// client is told why (503 with the error envelope and Retry-After); a TLS
// client cannot be answered before a handshake, so its connection is
// closed.
type limitListener struct {
	net.Listener
	max     int
	sem     chan struct{} // one token per open connection; nil: no cap
	plain   bool
	writers chan struct{} // bounds the goroutines answering refused connections
	m       *metrics.Connections
}

// maxRefusalWriters bounds the refused connections being answered at once;
// beyond it they are closed without an answer.
const maxRefusalWriters = 64

func newLimitListener(ln net.Listener, max int, plain bool, m *metrics.Connections) *limitListener {
	l := &limitListener{Listener: ln, max: max, plain: plain, writers: make(chan struct{}, maxRefusalWriters), m: m}
	if max > 0 {
		l.sem = make(chan struct{}, max)
	}
	return l
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.sem != nil {
			select {
			case l.sem <- struct{}{}:
			default:
				l.m.Refused()
				l.refuse(c)
				continue
			}
		}
		l.m.Opened()
		return &limitedConn{Conn: c, l: l}, nil
	}
}

// refuse answers (plain HTTP) and closes a connection over the cap.
func (l *limitListener) refuse(c net.Conn) {
	if !l.plain {
		_ = c.Close()
		return
	}
	select {
	case l.writers <- struct{}{}:
	default:
		_ = c.Close()
		return
	}
	go func() {
		defer func() { <-l.writers }()
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(time.Second))
		resp := envelopeResponse(http.StatusServiceUnavailable, api.ErrorBody{Code: "TOO_MANY_CONNECTIONS",
			Message: fmt.Sprintf("the server has server.max_connections (%d) connections open; retry later or raise server.max_connections", l.max),
			Details: map[string]any{"limit": l.max}}, "Retry-After: 1\r\n")
		if _, err := c.Write(resp); err != nil {
			return
		}
		// Half-close and read what the client sent, so that closing does
		// not reset the connection before the client read the answer.
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(c, 64<<10))
	}()
}

// limitedConn gives its token back when closed.
type limitedConn struct {
	net.Conn
	l    *limitListener
	once sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		if c.l.sem != nil {
			<-c.l.sem
		}
		c.l.m.Closed()
	})
	return err
}

// CloseWrite lets net/http half-close the connection (see jsonErrorConn).
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
