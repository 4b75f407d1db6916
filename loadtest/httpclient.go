package loadtest

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/engram-ops/engram-ops/ops/client"
)

// HTTPClient is the HTTP client a generator of up to maxWorkers concurrent
// requests should give ops/client. http:// requests are written and read
// with fasthttp on the calling worker's goroutine over a kept-alive
// connection from fasthttp's pool: net/http's Transport hands every
// request to a write goroutine and every response from a read goroutine,
// and at thousands of requests a second those hand-offs cost the
// generator a large share of its CPU. https:// requests take the same path
// over TLS with the configuration given to HTTPClientTLS; others go through
// the standard transport. Both keep a connection per worker: with fewer,
// connections are closed after each burst and dialled again in the next,
// a churn that costs more CPU on both sides than the requests themselves.
//
// A request ends at its context's deadline or as soon as its context is
// cancelled (its connection is then closed, not reused), as with net/http.
// Dialling a connection, or waiting for one (callers beyond maxWorkers),
// is not interrupted: it is bounded by its timeout (10 s) or the deadline.
func HTTPClient(maxWorkers int) *http.Client { return HTTPClientTLS(maxWorkers, nil) }

// HTTPClientTLS is HTTPClient with tc for https:// servers (nil: the
// system's roots; see client.TLSOptions).
func HTTPClientTLS(maxWorkers int, tc *tls.Config) *http.Client {
	maxWorkers = max(maxWorkers, 1)
	t := client.DefaultTransport()
	t.MaxIdleConnsPerHost = max(t.MaxIdleConnsPerHost, maxWorkers)
	t.MaxIdleConns = max(t.MaxIdleConns, maxWorkers)
	t.TLSClientConfig = tc
	return &http.Client{Transport: &fastTransport{fallback: t, maxConns: maxWorkers, tls: tc}}
}

// idleLimit is how long a pooled connection may sit unused before it is
// closed instead of reused: well under the server's idle timeout
// (server.idle_timeout, 2 minutes by default), so a request is not sent
// on a connection the server is closing.
const idleLimit = 30 * time.Second

// fastTransport adapts fasthttp to net/http's RoundTripper, the interface
// ops/client takes. It uses fasthttp's HostClient as a connection pool
// only and does the exchange itself, so that it knows the connection a
// request is on and can interrupt it when the request's context is
// cancelled: fasthttp's own Do heeds a deadline, not a context.
type fastTransport struct {
	fallback *http.Transport
	maxConns int
	tls      *tls.Config // of https:// hosts
	hosts    sync.Map    // scheme://host → *fasthttp.HostClient, kept: a generator has few
}

// host is the connection pool for addr (host or host:port) over plain
// HTTP or TLS.
func (t *fastTransport) host(addr string, isTLS bool) *fasthttp.HostClient {
	key := "http://" + addr
	if isTLS {
		key = "https://" + addr
	}
	if hc, ok := t.hosts.Load(key); ok {
		return hc.(*fasthttp.HostClient)
	}
	hc, _ := t.hosts.LoadOrStore(key, &fasthttp.HostClient{
		Addr:      fasthttp.AddMissingPort(addr, isTLS),
		IsTLS:     isTLS,
		TLSConfig: t.tls,
		MaxConns:  t.maxConns,
		// Callers beyond maxWorkers (setup next to an attack) wait for a
		// connection instead of failing at once.
		MaxConnWaitTimeout:  10 * time.Second,
		MaxIdleConnDuration: idleLimit,
		Dial:                func(addr string) (net.Conn, error) { return fasthttp.DialTimeout(addr, 10*time.Second) },
	})
	return hc.(*fasthttp.HostClient)
}

var errBadHeader = errors.New("invalid header")

func (t *fastTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if (r.URL.Scheme != "http" && r.URL.Scheme != "https") || r.URL.User != nil || (r.Host != "" && r.Host != r.URL.Host) {
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
	req.URI().DisablePathNormalizing = true
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
	if err := do(ctx, t.host(r.URL.Host, r.URL.Scheme == "https"), req, resp); err != nil {
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

// maxAttempts is how many times an idempotent request is sent when its
// connection fails: once more, for a kept-alive connection the server
// closed.
const maxAttempts = 2

// do sends req on one of hc's connections and reads its answer into resp.
func do(ctx context.Context, hc *fasthttp.HostClient, req *fasthttp.Request, resp *fasthttp.Response) error {
	deadline, _ := ctx.Deadline()
	idempotent := req.Header.IsGet() || req.Header.IsHead() || req.Header.IsPut()
	for attempt := 1; ; attempt++ {
		retry, err := exchange(ctx, hc, req, resp, deadline)
		if err == nil || !retry || !idempotent || attempt == maxAttempts || ctx.Err() != nil {
			if err == io.EOF {
				err = fasthttp.ErrConnectionClosed
			}
			return err
		}
	}
}

// longAgo is a deadline in the past, which interrupts a connection's
// blocked reads and writes.
var longAgo = time.Unix(1, 0)

// exchange writes req on a connection from hc and reads the response. The
// connection's deadline is the request's; cancelling ctx moves it to the
// past, which ends the exchange. retry reports a failure of the connection
// (not of the deadline or ctx) that another connection may not have.
func exchange(ctx context.Context, hc *fasthttp.HostClient, req *fasthttp.Request, resp *fasthttp.Response, deadline time.Time) (retry bool, err error) {
	var timeout time.Duration
	if !deadline.IsZero() {
		if timeout = time.Until(deadline); timeout <= 0 {
			return false, fasthttp.ErrTimeout
		}
	}
	cc, err := hc.AcquireConn(timeout, req.ConnectionClose())
	if err != nil {
		return false, err
	}
	conn := cc.Conn()
	if err := conn.SetDeadline(deadline); err != nil {
		hc.CloseConn(cc)
		return true, err
	}
	// Registered after the deadline is set, so a cancellation is never
	// overwritten by it; it runs on a goroutine of its own only if ctx is
	// cancelled.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(longAgo) })
	bw := hc.AcquireWriter(conn)
	err = req.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	hc.ReleaseWriter(bw)
	if err == nil {
		resp.Reset()
		resp.SkipBody = req.Header.IsHead()
		br := hc.AcquireReader(conn)
		err = resp.Read(br)
		hc.ReleaseReader(br)
	}
	// A connection whose deadline the cancellation moved (or is moving)
	// is closed, as is one that failed or is to be closed.
	if !stop() || err != nil || req.ConnectionClose() || resp.ConnectionClose() {
		hc.CloseConn(cc)
	} else {
		hc.ReleaseConn(cc)
	}
	if err != nil {
		var te interface{ Timeout() bool }
		return !errors.As(err, &te) || !te.Timeout(), err
	}
	return false, nil
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
	t.hosts.Range(func(_, hc any) bool {
		hc.(*fasthttp.HostClient).CloseIdleConnections()
		return true
	})
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
