package server

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/engram-ops/engram-ops/ops/api"
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
