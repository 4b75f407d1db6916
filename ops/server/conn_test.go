package server

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/engram-ops/engram-ops/ops/api"
	"github.com/engram-ops/engram-ops/ops/config"
)

// runTestServer serves srv on a loopback port until the test ends.
func runTestServer(t *testing.T, srv *Server) string {
	t.Helper()
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := contextWithCancel()
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return srv.Addr().String()
}

// rawResponses writes raw to a new connection and reads n responses.
func rawResponses(t *testing.T, addr, raw string, n int) []*http.Response {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	// Write while reading: the server may answer (and stop reading)
	// before an oversized request has been sent in full.
	go func() { _, _ = io.WriteString(conn, raw) }()
	br := bufio.NewReader(conn)
	var out []*http.Response
	for range n {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d of %q: %v", len(out)+1, truncateString(raw, 60), err)
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("response %d body: %v", len(out)+1, err)
		}
		resp.Body = io.NopCloser(strings.NewReader(string(body)))
		out = append(out, resp)
	}
	return out
}

func envelopeOf(t *testing.T, resp *http.Response) api.ErrorBody {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type = %q, want application/json", ct)
	}
	var env api.ErrorEnvelope
	dec := json.NewDecoder(resp.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&env); err != nil {
		t.Fatalf("body is not the error envelope: %v", err)
	}
	if env.Error.Code == "" || env.Error.Message == "" {
		t.Fatalf("envelope lacks code or message: %+v", env.Error)
	}
	return env.Error
}

// TestRequestsNetHTTPRefusesGetTheEnvelope: requests net/http rejects
// before any handler runs (malformed request line or header, headers over
// the limit, bad protocol version) are answered with the error envelope,
// also after other requests on the same keep-alive connection, whose
// responses (a handler's own 404 among them) pass through unchanged.
func TestRequestsNetHTTPRefusesGetTheEnvelope(t *testing.T) {
	addr := runTestServer(t, newTestServer(t, testConfig(), newFake()))
	const (
		notFound = "GET /nothing HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
		good     = "GET /health/alive HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
	)
	tests := []struct {
		name     string
		raw      string
		status   int
		code     string
		contains string
	}{
		{"malformed request line", "NONSENSE\r\n\r\n", 400, "BAD_REQUEST", "not valid HTTP/1.1"},
		{"malformed header line", "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nno colon here\r\n\r\n", 400, "BAD_REQUEST", "malformed request"},
		{"missing Host", "GET /health HTTP/1.1\r\n\r\n", 400, "BAD_REQUEST", "missing required Host header"},
		{"invalid header name", "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Name: x\r\n\r\n", 400, "BAD_REQUEST", "invalid header name"},
		{"unsupported version", "GET /health HTTP/2.5\r\nHost: 127.0.0.1\r\n\r\n", 505, "HTTP_VERSION_NOT_SUPPORTED", "HTTP/1.1"},
		{"unsupported transfer coding", "POST /api/v1/memories HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: zip\r\n\r\n", 501, "UNSUPPORTED_TRANSFER_ENCODING", "Transfer-Encoding"},
		{"oversized header", "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + strings.Repeat("b", maxHeaderBytes+8192) + "\r\n\r\n",
			431, "HEADERS_TOO_LARGE", "1048576 bytes (MaxHeaderBytes)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, pipelined := range []bool{false, true} {
				raw, n := tc.raw, 1
				if pipelined {
					raw, n = notFound+good+tc.raw, 3
				}
				resps := rawResponses(t, addr, raw, n)
				if pipelined {
					if r := resps[0]; r.StatusCode != 404 || envelopeOf(t, r).Code != "NOT_FOUND" || r.Close {
						t.Fatalf("pipelined unknown route: %d close=%v", r.StatusCode, r.Close)
					}
					if r := resps[1]; r.StatusCode != 200 || r.Close {
						t.Fatalf("pipelined good request: %d close=%v", r.StatusCode, r.Close)
					}
				}
				resp := resps[n-1]
				if resp.StatusCode != tc.status {
					t.Fatalf("pipelined=%v: status = %d, want %d", pipelined, resp.StatusCode, tc.status)
				}
				body := envelopeOf(t, resp)
				if body.Code != tc.code || !strings.Contains(body.Message, tc.contains) {
					t.Errorf("pipelined=%v: %s %q, want %s mentioning %q", pipelined, body.Code, body.Message, tc.code, tc.contains)
				}
				if tc.code == "HEADERS_TOO_LARGE" && body.Details["limit"] != float64(maxHeaderBytes) {
					t.Errorf("details = %v, want the limit %d", body.Details, maxHeaderBytes)
				}
				if !resp.Close {
					t.Errorf("the connection is not closed after an unreadable request")
				}
			}
		})
	}
}

// TestConnectionCap: with server.max_connections open, one more connection
// is answered 503 TOO_MANY_CONNECTIONS with Retry-After and closed, and
// counted; once a connection closes, a new one is served again.
func TestConnectionCap(t *testing.T) {
	cfg := testConfig()
	cfg.Server.MaxConnections = 2
	reg := prometheus.NewRegistry()
	srv, err := New(cfg, newFake(), nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	addr := runTestServer(t, srv)
	const alive = "GET /health/alive HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
	open := func() (net.Conn, *bufio.Reader) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(conn, alive)
		return conn, bufio.NewReader(conn)
	}
	var held []net.Conn
	for range 2 {
		conn, br := open()
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("connection under the cap: %v", err)
		}
		held = append(held, conn)
	}
	conn, br := open()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("connection over the cap: %v", err)
	}
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "1" || !resp.Close {
		t.Errorf("over the cap: %d Retry-After %q close=%v", resp.StatusCode, resp.Header.Get("Retry-After"), resp.Close)
	}
	if body := envelopeOf(t, resp); body.Code != "TOO_MANY_CONNECTIONS" || !strings.Contains(body.Message, "server.max_connections (2)") {
		t.Errorf("over the cap: %+v", body)
	}
	conn.Close()
	if n, _ := registryValue(t, reg, "engram_http_connections_refused_total"); n != 1 {
		t.Errorf("engram_http_connections_refused_total = %v, want 1", n)
	}
	if n, _ := registryValue(t, reg, "engram_http_connections"); n != 2 {
		t.Errorf("engram_http_connections = %v, want 2", n)
	}
	held[0].Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		conn, br := open()
		resp, err := http.ReadResponse(br, nil)
		conn.Close()
		if err == nil && resp.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no connection served 5s after one of the cap closed: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSlowHeadersAreCutOff: a client sending its headers a byte at a time
// (slowloris) is disconnected once the header read timeout passes, however
// steadily it trickles.
func TestSlowHeadersAreCutOff(t *testing.T) {
	cfg := testConfig()
	cfg.Server.ReadTimeout = config.Duration{Duration: 300 * time.Millisecond}
	addr := runTestServer(t, newTestServer(t, cfg, newFake()))
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	closed := make(chan error, 1)
	go func() {
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		// net/http answers the unfinished header 400 (as the envelope)
		// or not at all; either way the connection ends.
		b, err := io.ReadAll(conn)
		if err == nil && len(b) > 0 && !strings.HasPrefix(string(b), "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n") {
			err = fmt.Errorf("answered %q", b)
		}
		closed <- err
	}()
	const raw = "GET /health/alive HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " +
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	for i := 0; i < len(raw); i++ {
		select {
		case err := <-closed:
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("cut off after %s, want about server.read_timeout (300ms)", d)
			}
			if err != nil {
				t.Fatalf("cut off: %v, want the connection closed (with the envelope or nothing)", err)
			}
			return
		case <-time.After(20 * time.Millisecond):
		}
		if _, err := conn.Write([]byte{raw[i]}); err != nil {
			return // reset: cut off
		}
	}
	t.Fatalf("still connected after trickling headers for %s", time.Since(start))
}

// TestSecurityHeaders: JSON responses — a handler's, an error envelope and
// the envelope of a request net/http refused by itself — forbid sniffing,
// caching, framing and loading anything; over plain HTTP there is no
// Strict-Transport-Security (TestTLSServesTLS12AndLaterOnly covers TLS).
func TestSecurityHeaders(t *testing.T) {
	addr := runTestServer(t, newTestServer(t, testConfig(), newFake()))
	raw := "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" +
		"GET /nothing HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" +
		"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Name: x\r\n\r\n"
	for i, resp := range rawResponses(t, addr, raw, 3) {
		for k, want := range map[string]string{
			"X-Content-Type-Options":  "nosniff",
			"Cache-Control":           "no-store",
			"Content-Security-Policy": "default-src 'none'",
			"X-Frame-Options":         "DENY",
		} {
			if got := resp.Header.Get(k); got != want {
				t.Errorf("response %d (%d): %s = %q, want %q", i+1, resp.StatusCode, k, got, want)
			}
		}
		if h := resp.Header.Get("Strict-Transport-Security"); h != "" {
			t.Errorf("response %d: Strict-Transport-Security %q over plain HTTP", i+1, h)
		}
	}
}
