package server

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/engram-ops/engram-ops/ops/api"
	"github.com/engram-ops/engram-ops/ops/config"
)

// TestErrorsEchoBoundedInput: an error message repeats at most maxEcho
// bytes of any one input, and says how long the input was.
func TestErrorsEchoBoundedInput(t *testing.T) {
	cfg := testConfig()
	eng := openEngine(t, cfg)
	h := newTestServer(t, cfg, eng).Handler()
	long := strings.Repeat("z", 5000)
	tests := []struct {
		name     string
		req      request
		code     string
		contains string
	}{
		{"too-deep body", request{method: "POST", path: api.PathRemember, body: `{"content":"x","metadata":{"k":` + strings.Repeat("[", 12000) + `}}`},
			"INVALID_JSON", "…(30004 bytes)"},
		{"too-deep objects", request{method: "POST", path: api.PathRemember, body: `{"content":"x","metadata":` + strings.Repeat(`{"k":`, 10001) + `}}`},
			"INVALID_JSON", "…(20006 bytes)"},
		{"long unknown field", request{method: "POST", path: api.PathRemember, body: `{"content":"x","` + long + `":1}`}, "UNKNOWN_FIELD", "…(5000 bytes)"},
		{"long time", request{method: "POST", path: api.PathRemember, body: `{"content":"x","timestamp":"` + long + `"}`}, "INVALID_TIME", "…(5000 bytes)"},
		{"long number", request{method: "POST", path: api.PathRemember, body: `{"content":"x","confidence":1` + strings.Repeat("0", 5000) + `}`}, "INVALID_NUMBER", "…(5001 bytes)"},
		{"long content type", request{method: "POST", path: api.PathRemember, body: `{"content":"x"}`, ctype: "text/" + long}, "UNSUPPORTED_MEDIA_TYPE", "…(5005 bytes)"},
		{"long parameter value", request{method: "GET", path: api.PathRecall + "?query=x&max_results=" + long}, "INVALID_PARAMETER", "…(5000 bytes)"},
		{"long tier", request{method: "GET", path: api.PathMemories + "?tier=" + long}, "INVALID_TIER", "…"},
		{"long embedder name", request{method: "POST", path: api.PathSpaces, body: `{"id":"embed","embedder":"` + long + `"}`}, "UNKNOWN_EMBEDDER", "…"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := do(t, h, tc.req)
			if w.Body.Len() > 1500 {
				t.Errorf("error body is %d bytes: %.300s…", w.Body.Len(), w.Body)
			}
			body := decodeEnvelope(t, w)
			if body.Code != tc.code || !strings.Contains(body.Message, tc.contains) {
				t.Errorf("%s %q, want %s mentioning %q", body.Code, body.Message, tc.code, tc.contains)
			}
		})
	}
}

func TestEcho(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"short", "short"},
		{strings.Repeat("a", maxEcho), strings.Repeat("a", maxEcho)},
		{strings.Repeat("a", maxEcho+1), strings.Repeat("a", maxEcho) + "…(257 bytes)"},
		// A cut never splits a rune.
		{strings.Repeat("a", maxEcho-1) + "éé", strings.Repeat("a", maxEcho-1) + "…(259 bytes)"},
	} {
		if got := echo(tc.in); got != tc.want {
			t.Errorf("echo(%d bytes) = %q, want %q", len(tc.in), got, tc.want)
		}
	}
}

// TestInvalidCharacterIsNamedWhole: a non-ASCII character in a space name
// or memory id is named as the character, and a byte that is not UTF-8 by
// its position.
func TestInvalidCharacterIsNamedWhole(t *testing.T) {
	cfg := testConfig()
	h := newTestServer(t, cfg, openEngine(t, cfg)).Handler()
	tests := []struct {
		name     string
		req      request
		code     string
		contains string
	}{
		{"space é", request{method: "GET", path: api.PathMemories, headers: map[string]string{api.HeaderSpace: "café"}}, "INVALID_SPACE", `'é' is not allowed`},
		{"space invalid UTF-8", request{method: "GET", path: api.PathMemories, headers: map[string]string{api.HeaderSpace: "ab\xffcd"}}, "INVALID_SPACE", "invalid UTF-8 at byte 2"},
		{"space too short counts bytes", request{method: "GET", path: api.PathMemories, headers: map[string]string{api.HeaderSpace: "é"}}, "INVALID_SPACE", "it is 2 bytes"},
		{"id é", request{method: "POST", path: api.PathRemember, body: `{"id":"né","content":"x"}`}, "INVALID_ID", `contains 'é'`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := do(t, h, tc.req)
			body := decodeEnvelope(t, w)
			if w.Code != 400 || body.Code != tc.code || !strings.Contains(body.Message, tc.contains) {
				t.Errorf("%d %s %q, want 400 %s mentioning %q", w.Code, body.Code, body.Message, tc.code, tc.contains)
			}
			if strings.Contains(body.Message, "Ã") {
				t.Errorf("message shows a byte as a character: %q", body.Message)
			}
		})
	}
}

// TestBodyReadFailureSaysWhatHappened: a body that stops arriving or whose
// connection is closed is named as such, without socket addresses.
func TestBodyReadFailureSaysWhatHappened(t *testing.T) {
	cfg := testConfig()
	cfg.Server.ReadTimeout = config.Duration{Duration: 500 * time.Millisecond}
	addr := runTestServer(t, newTestServer(t, cfg, newFake()))
	const head = "POST /api/v1/memories/remember HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"content\""
	for _, tc := range []struct {
		name      string
		halfClose bool
		contains  string
	}{
		{"stalled", false, "timed out after 500ms (server.read_timeout"},
		{"closed", true, "the connection was closed by the client"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.WriteString(conn, head); err != nil {
				t.Fatal(err)
			}
			if tc.halfClose {
				_ = conn.(*net.TCPConn).CloseWrite()
			}
			r, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			body := envelopeOf(t, r)
			if r.StatusCode != 400 || body.Code != "BODY_READ_FAILED" || !strings.Contains(body.Message, tc.contains) ||
				!strings.Contains(body.Message, "10 of 100 bytes had arrived") {
				t.Errorf("%d %s %q, want 400 BODY_READ_FAILED mentioning %q", r.StatusCode, body.Code, body.Message, tc.contains)
			}
			if strings.Contains(body.Message, "127.0.0.1") || strings.Contains(body.Message, "tcp") {
				t.Errorf("message names socket addresses: %q", body.Message)
			}
		})
	}
}

// TestLimitsAboveTheMaximumAreSaid: list's limit above limits.max_results
// is capped, as Engram does, and the page says so; search's limit and
// recall's max_results above it are refused naming the maximum.
func TestLimitsAboveTheMaximumAreSaid(t *testing.T) {
	cfg := testConfig()
	h := newTestServer(t, cfg, openEngine(t, cfg)).Handler()
	w := do(t, h, request{method: "GET", path: api.PathMemories + "?limit=100000000"})
	if w.Code != 200 {
		t.Fatalf("list: %d %s", w.Code, w.Body)
	}
	lr := decodeJSONBody[struct {
		Pagination    api.Pagination `json:"pagination"`
		SystemMessage string         `json:"system_message"`
	}](t, w)
	if lr.Pagination.Limit != 1000 || !strings.Contains(lr.SystemMessage, "limit 100000000 is above the maximum 1000") {
		t.Errorf("list limit %d, system_message %q; want 1000 and the cap said", lr.Pagination.Limit, lr.SystemMessage)
	}
	if w := do(t, h, request{method: "GET", path: api.PathMemories + "?limit=1000"}); strings.Contains(w.Body.String(), "system_message") {
		t.Errorf("a limit at the maximum is reported as capped: %s", w.Body)
	}
	for _, tc := range []struct{ path, code, contains string }{
		{api.PathSearch + "?query=x&limit=5000", "INVALID_PARAMETER", "limit=5000 is above the maximum 1000"},
		{api.PathRecall + "?query=x&max_results=5000", "INVALID_MAX_RESULTS", "1..1000"},
	} {
		w := do(t, h, request{method: "GET", path: tc.path})
		body := decodeEnvelope(t, w)
		if w.Code != 400 || body.Code != tc.code || !strings.Contains(body.Message, tc.contains) {
			t.Errorf("%s: %d %s %q, want 400 %s mentioning %q", tc.path, w.Code, body.Code, body.Message, tc.code, tc.contains)
		}
	}
}

// TestRepeatedParameterRefused: a single-valued query parameter or header
// given twice is refused, naming it, instead of one value being used.
func TestRepeatedParameterRefused(t *testing.T) {
	cfg := testConfig()
	h := newTestServer(t, cfg, openEngine(t, cfg)).Handler()
	tests := []struct {
		name     string
		req      request
		code     string
		contains string
	}{
		{"search query", request{method: "GET", path: api.PathSearch + "?query=a&query=b"}, "DUPLICATE_PARAMETER", "query parameter query appears 2 times"},
		{"recall query", request{method: "GET", path: api.PathRecall + "?query=a&query=b"}, "DUPLICATE_PARAMETER", "query parameter query"},
		{"recall max_results", request{method: "GET", path: api.PathRecall + "?query=a&max_results=1&max_results=2"}, "DUPLICATE_PARAMETER", "max_results"},
		{"list limit", request{method: "GET", path: api.PathMemories + "?limit=1&limit=2"}, "DUPLICATE_PARAMETER", "limit"},
		{"read space", request{method: "GET", path: api.PathMemories + "?space=aaa&space=bbb"}, "DUPLICATE_PARAMETER", "space"},
		{"write space", request{method: "POST", path: api.PathRemember + "?space=aaa&space=bbb", body: `{"content":"x"}`}, "DUPLICATE_PARAMETER", "space"},
		{"system health space", request{method: "GET", path: api.PathSystemHealth + "?space=aaa&space=bbb"}, "DUPLICATE_PARAMETER", "space"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := do(t, h, tc.req)
			body := decodeEnvelope(t, w)
			if w.Code != 400 || body.Code != tc.code || !strings.Contains(body.Message, tc.contains) {
				t.Errorf("%d %s %q, want 400 %s mentioning %q", w.Code, body.Code, body.Message, tc.code, tc.contains)
			}
		})
	}
	// Headers: do sets one value per name, so build these by hand.
	for _, name := range []string{api.HeaderSpace, "Content-Type"} {
		r := httptest.NewRequest("POST", api.PathRemember, strings.NewReader(`{"content":"x"}`))
		r.Host = "localhost"
		r.Header.Set("Content-Type", "application/json")
		r.Header.Add(name, "aaa")
		r.Header.Add(name, "bbb")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		body := decodeEnvelope(t, w)
		if w.Code != 400 || body.Code != "DUPLICATE_HEADER" || !strings.Contains(body.Message, name) {
			t.Errorf("header %s twice: %d %s %q", name, w.Code, body.Code, body.Message)
		}
	}
	// A list parameter may be repeated.
	if w := do(t, h, request{method: "GET", path: api.PathRecall + "?query=a&required_tags=x&required_tags=y"}); w.Code != 200 {
		t.Errorf("repeated required_tags: %d %s", w.Code, w.Body)
	}
}
