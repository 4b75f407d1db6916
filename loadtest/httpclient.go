package loadtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/engram-ops/engram-ops/ops/client"
)

// HTTPClient is the HTTP client a generator of up to maxWorkers concurrent
// requests should give ops/client. http:// requests go through fasthttp's
// client, which sends each request and reads its response on the calling
// worker's goroutine over a kept-alive connection: net/http's Transport
// hands every request to a write goroutine and every response from a read
// goroutine, and at thousands of requests a second those hand-offs cost
// the generator a large share of its CPU. Others (https) go through the
// standard transport. Both keep a connection per worker: with fewer,
// connections are closed after each burst and dialled again in the next,
// a churn that costs more CPU on both sides than the requests themselves.
//
// fasthttp cannot abandon a request when its context is cancelled, only
// when its deadline passes: a request with a deadline (the attack gives
// each its request_timeout_ms) ends by then; one without runs to its end.
func HTTPClient(maxWorkers int) *http.Client {
	maxWorkers = max(maxWorkers, 1)
	t := client.DefaultTransport()
	t.MaxIdleConnsPerHost = max(t.MaxIdleConnsPerHost, maxWorkers)
	t.MaxIdleConns = max(t.MaxIdleConns, maxWorkers)
	fc := &fasthttp.Client{
		MaxConnsPerHost: maxWorkers,
		// Callers beyond maxWorkers (setup next to an attack) wait for a
		// connection instead of failing at once.
		MaxConnWaitTimeout:        10 * time.Second,
		MaxIdleConnDuration:       idleLimit,
		MaxIdemponentCallAttempts: 2,
		NoDefaultUserAgentHeader:  true,
		DisablePathNormalizing:    true,
		Dial:                      func(addr string) (net.Conn, error) { return fasthttp.DialTimeout(addr, 10*time.Second) },
	}
	return &http.Client{Transport: &fastTransport{fallback: t, c: fc}}
}

// idleLimit is how long a pooled connection may sit unused before it is
// closed instead of reused: well under the server's idle timeout
// (server.idle_timeout, 2 minutes by default), so a request is not sent
// on a connection the server is closing.
const idleLimit = 30 * time.Second

// fastTransport adapts fasthttp's client to net/http's RoundTripper, the
// interface ops/client takes.
type fastTransport struct {
	fallback *http.Transport
	c        *fasthttp.Client
}

var errBadHeader = errors.New("invalid header")

func (t *fastTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme != "http" || r.URL.User != nil || (r.Host != "" && r.Host != r.URL.Host) {
		return t.fallback.RoundTrip(r)
	}
	ctx := r.Context()
	closeBody := func() {
		if r.Body != nil {
			r.Body.Close()
		}
	}
	if err := ctx.Err(); err != nil {
		closeBody()
		return nil, err
	}
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	req.Header.SetMethod(r.Method)
	req.SetRequestURI(r.URL.String())
	for k, vs := range r.Header {
		// Control characters are refused, as net/http refuses them,
		// rather than sent on to split a header.
		if !validHeaderField(k) || strings.ContainsAny(k, " :") {
			closeBody()
			return nil, fmt.Errorf("%w name %q", errBadHeader, k)
		}
		for _, v := range vs {
			if !validHeaderField(v) {
				closeBody()
				return nil, fmt.Errorf("%w value for %s", errBadHeader, k)
			}
			req.Header.Add(k, v)
		}
	}
	if r.Body != nil && r.Body != http.NoBody {
		_, err := io.Copy(req.BodyWriter(), r.Body)
		r.Body.Close()
		if err != nil {
			return nil, err
		}
	}
	resp := fasthttp.AcquireResponse()
	var err error
	if dl, ok := ctx.Deadline(); ok {
		err = t.c.DoDeadline(req, resp, dl)
	} else {
		err = t.c.Do(req, resp)
	}
	if err != nil {
		fasthttp.ReleaseResponse(resp)
		return nil, ctxErr(ctx, err)
	}
	hr := &http.Response{Status: fmt.Sprintf("%d %s", resp.StatusCode(), http.StatusText(resp.StatusCode())),
		StatusCode: resp.StatusCode(), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: make(http.Header, resp.Header.Len()), Close: resp.ConnectionClose(), Request: r}
	for k, v := range resp.Header.All() {
		hr.Header.Add(string(k), string(v))
	}
	body := resp.Body()
	hr.ContentLength = int64(len(body))
	hr.Body = &fastBody{Reader: bytes.NewReader(body), resp: resp}
	return hr, nil
}

// ctxErr reports a failure after the context's deadline passed, or its
// cancellation, as the context's error.
func ctxErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%w (%v)", cerr, err)
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return fmt.Errorf("%w (%v)", context.DeadlineExceeded, err)
	}
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

// CloseIdleConnections closes every pooled connection.
func (t *fastTransport) CloseIdleConnections() {
	t.c.CloseIdleConnections()
	t.fallback.CloseIdleConnections()
}

// fastBody is a response body read from fasthttp's pooled response, which
// Close returns to its pool.
type fastBody struct {
	*bytes.Reader
	resp *fasthttp.Response
}

func (b *fastBody) Close() error {
	if b.resp != nil {
		b.Reader.Reset(nil)
		fasthttp.ReleaseResponse(b.resp)
		b.resp = nil
	}
	return nil
}
