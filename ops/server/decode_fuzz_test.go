package server

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"unicode/utf8"

	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/ops/api"
)

// FuzzDecodeRemember feeds arbitrary bytes to the remember decoder. It must
// never panic; it either rejects the body with a 4xx *httpError, or
// produces an input the real engine accepts or rejects cleanly (an
// invalid/too-large *core.Error, never an internal error or a panic), and an
// accepted memory reads back with the content that was sent. A rejection's
// message is bounded and valid UTF-8.
func FuzzDecodeRemember(f *testing.F) {
	for _, seed := range []string{
		`{"content":"hello"}`,
		`{"id":"a1","content":"x","confidence":0.5,"tags":["t"],"memory_type":"episodic","metadata":{"k":"v"}}`,
		`{"content":"x","embedding":[0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8]}`,
		`{"content":"x","embedding":[1e999]}`,
		`{"content":"x","embedding":"AACAPwAAAEAAAEBAAACAQAAAoEAAAMBAAADgQAAAAEE="}`,
		`{"content":"x","embedding":"AAC\u0041Pw=="}`,
		`{"content":"x","embedding":[1,null]}`,
		`{"content":"x","confidence":1.5}`,
		`{"content":"x","timestamp":"2025-01-02T15:04:05Z","auto_link":true,"link_threshold":0.2}`,
		`{"content":"x","memory_space_id":"abc","space":"def","confidence_reasoning":"r"}`,
		`{"content":"x","memory_space":"abc","memory_space_id":"abd"}`,
		`{"content":"x","memory_space":"abc","confidence":-3}`,
		`{"content":"","bogus":1}`,
		`{"content":"x"} trailing`,
		`[{"content":"x"}]`,
		`null`,
		``,
		`{"content":"\u0000\ud800"}`,
		`{"id":"` + string(bytes.Repeat([]byte("i"), 200)) + `","content":"x"}`,
		`{"content":"x","metadata":{"k":` + string(bytes.Repeat([]byte("["), 10001)) + `}}`,
		`{"content":"x","` + string(bytes.Repeat([]byte("é"), 300)) + `":1}`,
	} {
		f.Add([]byte(seed))
	}
	cfg := testConfig()
	cfg.Durability = "relaxed"
	cfg.Spaces.DefaultDimension = 8
	eng, err := core.Open(f.TempDir(), cfg.EngineOptions(nil, nil))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = eng.Close() })
	ctx := context.Background()

	f.Fuzz(func(t *testing.T, data []byte) {
		var req api.RememberRequest
		err := decodeBody(bytes.NewReader(data), &req)
		if err == nil {
			err = engramFields(nil, &req)
		}
		if err != nil {
			var he *httpError
			if !errors.As(err, &he) || he.status < 400 || he.status > 499 || he.code == "" || he.message == "" {
				t.Fatalf("decode error is not a clean 4xx: %#v", err)
			}
			// What the client reads is bounded and valid UTF-8 (echo never
			// cuts a character in two).
			if _, body := errorResponse(err); len(body.Message) > maxMessageBytes+64 || !utf8.ValidString(body.Message) {
				t.Fatalf("error message of %d bytes (valid UTF-8: %v): %.200q", len(body.Message), utf8.ValidString(body.Message), body.Message)
			}
			return
		}
		if s := req.BodySpace(); s != "" {
			_ = core.ValidateSpaceName(s) // must not panic
		}
		if req.MemorySpace != "" {
			t.Fatalf("alias memory_space %q was not folded into memory_space_id", req.MemorySpace)
		}
		req.Confidence, _ = clampConfidence(req.Confidence, "confidence")
		in := rememberInput(&req)
		res, err := eng.Remember(ctx, "fuzz", in)
		if err != nil {
			switch core.KindOf(err) {
			case core.KindInvalid, core.KindTooLarge, core.KindNotFound:
			default:
				t.Fatalf("engine rejected decoded input with a non-client error: %v (kind %v)", err, core.KindOf(err))
			}
			status, body := errorResponse(err)
			if status < 400 || status > 499 || body.Code == "" {
				t.Fatalf("mapped to %d %+v", status, body)
			}
			return
		}
		m, err := eng.Get(ctx, "fuzz", res.ID, false)
		if err != nil {
			t.Fatalf("accepted memory %q not readable: %v", res.ID, err)
		}
		if m.Content != req.Content {
			t.Fatalf("content changed: sent %q, read %q", req.Content, m.Content)
		}
	})
}

// FuzzDecodeEpisode feeds arbitrary bytes to the episode decoder with
// Engram's alias names. It never panics; a body is either a clean 4xx or
// decodes with every alias folded into our field, the alias left empty.
func FuzzDecodeEpisode(f *testing.F) {
	for _, seed := range []string{
		`{"what":"x","when":"2024-01-15T10:30:00Z","where":"hall","confidence":0.85}`,
		`{"what":"x","when":"2024-01-15T10:30:00Z","where":"hall","where_location":"hall"}`,
		`{"what":"x","when":"2024-01-15T10:30:00Z","where":"a","where_location":"b"}`,
		`{"what":"x","when":"2024-01-15T10:30:00Z","confidence":0.5,"importance":0.6}`,
		`{"what":"x","when":"2024-01-15T10:30:00Z","memory_space":"abc","wher":1}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var req api.EpisodeRequest
		err := decodeBody(bytes.NewReader(data), &req)
		if err == nil {
			err = engramFields(nil, &req)
		}
		if err != nil {
			var he *httpError
			if !errors.As(err, &he) || he.status != 400 || he.code == "" || he.message == "" {
				t.Fatalf("decode error is not a clean 400: %#v", err)
			}
			return
		}
		if req.Where != "" || req.Confidence != nil || req.MemorySpace != "" {
			t.Fatalf("alias left unfolded: %+v", req)
		}
	})
}

// FuzzParseBareError: the check every response write goes through never
// panics, and claims only a complete net/http error response.
func FuzzParseBareError(f *testing.F) {
	for _, seed := range []string{
		"HTTP/1.1 431 Request Header Fields Too Large" + bareErrorHeaders + "431 Request Header Fields Too Large",
		"HTTP/1.1 400 Bad Request: missing required Host header" + bareErrorHeaders + "400 Bad Request: missing required Host header",
		"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nDate: x\r\n\r\n",
		"HTTP/1.1 4",
		"HTTP/1.1 4xx" + bareErrorHeaders,
		"",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		status, reason, ok := parseBareError(p)
		if !ok {
			return
		}
		if status < 400 || status > 599 || !bytes.HasPrefix(p, []byte("HTTP/1.1 ")) || !bytes.Contains(p, []byte(bareErrorHeaders)) || len(reason) > 200+len("…") {
			t.Fatalf("claimed %q as status %d reason %q", p, status, reason)
		}
		if resp := bareErrorResponse(status, reason); !bytes.HasPrefix(resp, []byte("HTTP/1.1 ")) {
			t.Fatalf("response %q", resp)
		}
	})
}
