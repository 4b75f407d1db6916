package loadtest

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/engram-ops/engram-ops/ops/client"
)

// echoServer answers POST /echo with the body it got, GET /big with a
// chunked body, /close with Connection: close and /slow after a while;
// paths under /hang/ are never answered (until the test ends or the client
// goes). It counts the connections it accepted.
func echoServer(t *testing.T, idle time.Duration) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	release := make(chan struct{})
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/hang/") {
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		switch r.URL.Path {
		case "/echo":
			b, _ := io.ReadAll(r.Body)
			w.Header().Set("X-Query", r.URL.RawQuery)
			w.Header().Set("X-Space", r.Header.Get("X-Memory-Space"))
			w.Write(b)
		case "/big":
			for i := range 1000 {
				fmt.Fprintf(w, "line %d of a chunked body\n", i)
			}
		case "/close":
			w.Header().Set("Connection", "close")
			io.WriteString(w, "bye")
		case "/slow":
			select {
			case <-time.After(5 * time.Second):
			case <-r.Context().Done():
			}
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	ts.Config.IdleTimeout = idle
	ts.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	ts.Start()
	t.Cleanup(ts.Close)
	t.Cleanup(func() { close(release) }) // before Close, which waits for handlers
	return ts, &conns
}

func doBody(t *testing.T, hc *http.Client, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", req.Method, req.URL, err)
	}
	return resp, string(b)
}

// getNothing sends GET /nothing and expects its 204.
func getNothing(t *testing.T, hc *http.Client, base string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/nothing", nil)
	if resp, _ := doBody(t, hc, req); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

func TestHTTPClientKeepsConnectionsAlive(t *testing.T) {
	ts, conns := echoServer(t, time.Minute)
	hc := HTTPClient(8)
	for i := range 100 {
		body := fmt.Sprintf(`{"n":%d}`, i)
		req, _ := http.NewRequest(http.MethodPost, ts.URL+"/echo?x=1&y=%C3%A9", strings.NewReader(body))
		req.Header.Set("X-Memory-Space", "tenant-a")
		resp, got := doBody(t, hc, req)
		if got != body || resp.Header.Get("X-Query") != "x=1&y=%C3%A9" || resp.Header.Get("X-Space") != "tenant-a" {
			t.Fatalf("request %d: body %q query %q space %q", i, got, resp.Header.Get("X-Query"), resp.Header.Get("X-Space"))
		}
	}
	// A chunked body read to its end leaves the connection reusable; an
	// empty POST and a 204 too.
	req, _ := http.NewRequest(http.MethodGet, ts.URL+"/big", nil)
	if _, got := doBody(t, hc, req); strings.Count(got, "\n") != 1000 {
		t.Fatalf("chunked body: %d lines", strings.Count(got, "\n"))
	}
	req, _ = http.NewRequest(http.MethodPost, ts.URL+"/echo", nil)
	if _, got := doBody(t, hc, req); got != "" {
		t.Fatalf("empty POST echoed %q", got)
	}
	getNothing(t, hc, ts.URL)
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections for sequential requests, want 1", n)
	}
	// A HEAD's answer has no body to wait for.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ = http.NewRequestWithContext(ctx, http.MethodHead, ts.URL+"/big", nil)
	if _, got := doBody(t, hc, req); got != "" {
		t.Fatalf("HEAD answered with a body %q", got)
	}
}

func TestHTTPClientConcurrentWorkers(t *testing.T) {
	ts, conns := echoServer(t, time.Minute)
	const workers = 16
	hc := HTTPClient(workers)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				body := fmt.Sprintf("worker %d request %d %s", w, i, strings.Repeat("x", w*100))
				req, _ := http.NewRequest(http.MethodPost, ts.URL+"/echo", strings.NewReader(body))
				resp, err := hc.Do(req)
				if err != nil {
					errs <- err
					return
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || string(b) != body {
					errs <- fmt.Errorf("worker %d request %d: %q, %v", w, i, b, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := conns.Load(); n > workers {
		t.Errorf("%d connections for %d workers", n, workers)
	}
}

func TestHTTPClientServerClosesConnections(t *testing.T) {
	ts, conns := echoServer(t, 100*time.Millisecond)
	hc := HTTPClient(4)
	// Connection: close in a response: the next request dials again.
	req, _ := http.NewRequest(http.MethodGet, ts.URL+"/close", nil)
	if _, got := doBody(t, hc, req); got != "bye" {
		t.Fatalf("got %q", got)
	}
	req, _ = http.NewRequest(http.MethodPost, ts.URL+"/echo", strings.NewReader("after close"))
	if _, got := doBody(t, hc, req); got != "after close" {
		t.Fatalf("got %q", got)
	}
	// The server closes the idle connection; a GET on it is sent again on
	// a new one.
	time.Sleep(400 * time.Millisecond)
	getNothing(t, hc, ts.URL)
	if n := conns.Load(); n != 3 {
		t.Errorf("%d connections, want 3", n)
	}
}

func TestHTTPClientCancel(t *testing.T) {
	ts, conns := echoServer(t, time.Minute)
	hc := HTTPClient(4)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/slow", nil)
	start := time.Now()
	_, err := hc.Do(req)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want the context's deadline", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("cancelled request returned after %v", d)
	}
	// The interrupted connection is not reused.
	getNothing(t, hc, ts.URL)
	if n := conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

// Cancelling a request's context abandons it at once, well before its
// deadline, and its connection is not reused.
func TestHTTPClientCancelAbandonsRequest(t *testing.T) {
	ts, conns := echoServer(t, time.Minute)
	hc := HTTPClient(4)
	getNothing(t, hc, ts.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	time.AfterFunc(100*time.Millisecond, cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/hang/", nil)
	start := time.Now()
	_, err := hc.Do(req)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want the context's cancellation", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("cancelled request returned after %v", d)
	}
	getNothing(t, hc, ts.URL)
	if n := conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

// An interrupted attack ends within its grace period even when the server
// never answers, and the requests it cut off are not counted as errors.
func TestInterruptedAttackAbandonsHungRequests(t *testing.T) {
	ts, _ := echoServer(t, time.Minute)
	cl, err := client.New(ts.URL+"/hang", client.WithHTTPClient(HTTPClient(4)))
	if err != nil {
		t.Fatal(err)
	}
	sc := aliveScenario(100, 30*time.Second, 4)
	sc.Generator.RequestTimeoutMS = 30_000
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	time.AfterFunc(300*time.Millisecond, cancel)
	start := time.Now()
	r, err := attackOnly(ctx, sc, cl, Config{Client: cl, Grace: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("interrupted attack with a 200ms grace returned after %v", d)
	}
	if !r.Interrupted {
		t.Error("not marked interrupted")
	}
	if r.Completed != 0 || r.Errors != 0 {
		t.Errorf("completed %d, errors %d: cut-off requests counted", r.Completed, r.Errors)
	}
}

func TestHTTPClientRefusesHeaderInjection(t *testing.T) {
	ts, _ := echoServer(t, time.Minute)
	hc := HTTPClient(1)
	req, _ := http.NewRequest(http.MethodGet, ts.URL+"/nothing", nil)
	req.Header.Set("X-Memory-Space", "a\r\nX-Evil: 1")
	if _, err := hc.Do(req); err == nil || !strings.Contains(err.Error(), "invalid header") {
		t.Fatalf("err %v, want an invalid header refusal", err)
	}
}

// TestHTTPClientTLS: https:// requests take the fasthttp path (no
// net/http TLS state on the response) over one kept-alive TLS connection
// verified with the given roots; without them the server's certificate is
// refused with an x509 error.
func TestHTTPClientTLS(t *testing.T) {
	var conns atomic.Int64
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	}))
	ts.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	ts.StartTLS()
	t.Cleanup(ts.Close)
	roots := ts.Client().Transport.(*http.Transport).TLSClientConfig

	hc := HTTPClientTLS(4, roots)
	for i := range 20 {
		body := fmt.Sprintf(`{"n":%d}`, i)
		req, _ := http.NewRequest(http.MethodPost, ts.URL+"/echo", strings.NewReader(body))
		resp, got := doBody(t, hc, req)
		if got != body || resp.TLS != nil {
			t.Fatalf("request %d: body %q, net/http TLS state %v (want the fasthttp path)", i, got, resp.TLS != nil)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d TLS connections for sequential requests, want 1", n)
	}
	_, err := HTTPClient(4).Get(ts.URL + "/echo")
	var uerr x509.UnknownAuthorityError
	if !errors.As(err, &uerr) {
		t.Errorf("without the roots: %v, want x509.UnknownAuthorityError", err)
	}
}
