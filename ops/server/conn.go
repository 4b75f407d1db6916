package server

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"strconv"

	"github.com/engram-ops/engram-ops/ops/api"
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
	var js bytes.Buffer
	if err := encodeJSON(&js, envelope(status, body)); err != nil { // a fixed shape of strings and an int
		panic(err)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nX-Content-Type-Options: nosniff\r\n"+
		"Cache-Control: no-store\r\nConnection: close\r\nContent-Length: %d\r\n\r\n", status, http.StatusText(status), js.Len())
	b.Write(js.Bytes())
	return b.Bytes()
}
