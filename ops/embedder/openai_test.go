package embedder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

const testKey = "sk-test-5EcReT-0123456789abcdef"

// fake is an OpenAI-compatible embeddings server. By default it answers
// every request with well-formed vectors in reverse order; handle overrides
// the answer for the nth request (0-based) when it returns true.
type fake struct {
	t      *testing.T
	dim    int
	srv    *httptest.Server
	handle func(w http.ResponseWriter, r *http.Request, n int, inputs []string) bool

	mu   sync.Mutex
	reqs []recorded
}

type recorded struct {
	path   string
	auth   string
	model  string
	inputs []string
	fields map[string]json.RawMessage
}

func newFake(t *testing.T, dim int) *fake {
	t.Helper()
	f := &fake{t: t, dim: dim}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fake) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var fields map[string]json.RawMessage
	var req struct {
		Model string   `json:"model"`
		Input []string `json:"input"`
	}
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" ||
		json.Unmarshal(body, &fields) != nil || json.Unmarshal(body, &req) != nil {
		http.Error(w, `{"error":{"message":"bad request"}}`, http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	n := len(f.reqs)
	f.reqs = append(f.reqs, recorded{path: r.URL.Path, auth: r.Header.Get("Authorization"), model: req.Model, inputs: req.Input, fields: fields})
	f.mu.Unlock()
	if f.handle != nil && f.handle(w, r, n, req.Input) {
		return
	}
	writeEmbeddings(w, req.Input, f.dim, true)
}

func (f *fake) requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.reqs...)
}

// vectorFor is the fake model: a deterministic vector per text.
func vectorFor(text string, dim int) []float32 {
	v := make([]float32, dim)
	for k := range v {
		h := fnv.New32a()
		fmt.Fprintf(h, "%d/%s", k, text)
		v[k] = float32(h.Sum32()%2000)/1000 - 1
	}
	return v
}

func writeEmbeddings(w http.ResponseWriter, inputs []string, dim int, reverse bool) {
	type item struct {
		Object    string    `json:"object"`
		Index     int       `json:"index"`
		Embedding []float32 `json:"embedding"`
	}
	data := make([]item, len(inputs))
	for i, s := range inputs {
		j := i
		if reverse {
			j = len(inputs) - 1 - i
		}
		data[j] = item{Object: "embedding", Index: i, Embedding: vectorFor(s, dim)}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"object": "list", "data": data, "model": "m", "usage": map[string]int{"prompt_tokens": 1}})
}

// sleeps records the waits between attempts instead of sleeping.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return ctx.Err()
}

func newClient(t *testing.T, f *fake, mod func(*OpenAIConfig)) (*OpenAI, *sleeps) {
	t.Helper()
	cfg := OpenAIConfig{BaseURL: f.srv.URL + "/v1", Model: "test-embed", APIKey: testKey, Dimension: f.dim}
	if mod != nil {
		mod(&cfg)
	}
	o, err := NewOpenAI(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := &sleeps{}
	o.sleep = s.sleep
	return o, s
}

// noKey fails the test if err is nil or mentions the API key.
func noKey(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		t.Fatal("want an error")
	}
	if strings.Contains(err.Error(), testKey) || strings.Contains(err.Error(), "5EcReT") {
		t.Fatalf("error leaks the API key: %v", err)
	}
}

func wantContains(t *testing.T, err error, subs ...string) {
	t.Helper()
	noKey(t, err)
	for _, s := range subs {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
}

func TestSuccessReorderedAndHeaders(t *testing.T) {
	f := newFake(t, 8)
	o, _ := newClient(t, f, nil)
	texts := []string{"alpha", "beta", "gamma", "delta"}
	vs, err := o.Embed(context.Background(), texts)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range texts {
		if fmt.Sprint(vs[i]) != fmt.Sprint(vectorFor(s, 8)) {
			t.Fatalf("vector %d does not belong to %q (index order ignored?)", i, s)
		}
	}
	reqs := f.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.path != "/v1/embeddings" || r.model != "test-embed" || strings.Join(r.inputs, ",") != "alpha,beta,gamma,delta" {
		t.Fatalf("request %+v", r)
	}
	if r.auth != "Bearer "+testKey {
		t.Fatalf("Authorization = %q", r.auth)
	}
	if _, ok := r.fields["dimensions"]; ok {
		t.Fatal("dimensions sent although SendDimensions is false")
	}
	if o.Fingerprint() != "openai/test-embed/8" || o.Dimension() != 8 {
		t.Fatalf("Fingerprint %q Dimension %d", o.Fingerprint(), o.Dimension())
	}
}

func TestSendDimensionsAndNoKey(t *testing.T) {
	f := newFake(t, 4)
	o, _ := newClient(t, f, func(c *OpenAIConfig) { c.SendDimensions = true; c.APIKey = "" })
	if _, err := o.Embed(context.Background(), []string{"x"}); err != nil {
		t.Fatal(err)
	}
	r := f.requests()[0]
	if string(r.fields["dimensions"]) != "4" {
		t.Fatalf("dimensions = %s, want 4", r.fields["dimensions"])
	}
	if r.auth != "" {
		t.Fatalf("Authorization %q sent without a key", r.auth)
	}
}

func TestBatchingAndBlanks(t *testing.T) {
	f := newFake(t, 4)
	o, _ := newClient(t, f, nil)
	texts := make([]string, 152)
	for i := range texts {
		texts[i] = fmt.Sprintf("text %d", i)
	}
	texts[10], texts[100] = "", "  \n" // blanks get zero vectors and are not sent
	vs, err := o.Embed(context.Background(), texts)
	if err != nil {
		t.Fatal(err)
	}
	reqs := f.requests()
	if len(reqs) != 3 || len(reqs[0].inputs) != 64 || len(reqs[1].inputs) != 64 || len(reqs[2].inputs) != 22 {
		t.Fatalf("batches: %d requests", len(reqs))
	}
	for i, s := range texts {
		want := vectorFor(s, 4)
		if i == 10 || i == 100 {
			want = make([]float32, 4)
		}
		if fmt.Sprint(vs[i]) != fmt.Sprint(want) {
			t.Fatalf("vector %d wrong", i)
		}
	}
	o2, _ := newClient(t, f, func(c *OpenAIConfig) { c.MaxBatch = 7 })
	before := len(f.requests())
	if _, err := o2.Embed(context.Background(), texts[:20]); err != nil {
		t.Fatal(err)
	}
	if n := len(f.requests()) - before; n != 3 {
		t.Fatalf("MaxBatch 7, 19 inputs: %d requests, want 3", n)
	}
	if vs, err := o.Embed(context.Background(), nil); err != nil || len(vs) != 0 {
		t.Fatalf("empty input: %v %v", vs, err)
	}
}

func TestWrongDimension(t *testing.T) {
	f := newFake(t, 3)
	o, _ := newClient(t, f, func(c *OpenAIConfig) { c.Dimension = 4 })
	_, err := o.Embed(context.Background(), []string{"a", "b"})
	wantContains(t, err, "returned 3-dimensional", "expected 4", "test-embed")
}

func TestNonFiniteValues(t *testing.T) {
	for name, payload := range map[string]string{
		"NaN":      `{"data":[{"index":0,"embedding":[0.1,NaN,0.3]}]}`,
		"Infinity": `{"data":[{"index":0,"embedding":[0.1,-Infinity,0.3]}]}`,
		"overflow": `{"data":[{"index":0,"embedding":[0.1,1e39,0.3]}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			f := newFake(t, 3)
			f.handle = func(w http.ResponseWriter, _ *http.Request, _ int, _ []string) bool {
				_, _ = io.WriteString(w, payload)
				return true
			}
			o, _ := newClient(t, f, nil)
			_, err := o.Embed(context.Background(), []string{"a"})
			wantContains(t, err, "non-finite")
		})
	}
}

func TestBadIndices(t *testing.T) {
	for name, payload := range map[string]string{
		"duplicate": `{"data":[{"index":0,"embedding":[1]},{"index":0,"embedding":[1]}]}`,
		"range":     `{"data":[{"index":0,"embedding":[1]},{"index":2,"embedding":[1]}]}`,
		"count":     `{"data":[{"index":0,"embedding":[1]}]}`,
		"garbage":   `<html>oops</html>`,
	} {
		t.Run(name, func(t *testing.T) {
			f := newFake(t, 1)
			f.handle = func(w http.ResponseWriter, _ *http.Request, _ int, _ []string) bool {
				_, _ = io.WriteString(w, payload)
				return true
			}
			o, _ := newClient(t, f, nil)
			_, err := o.Embed(context.Background(), []string{"a", "b"})
			noKey(t, err)
		})
	}
	// Servers that omit "index" answer in input order.
	f := newFake(t, 1)
	f.handle = func(w http.ResponseWriter, _ *http.Request, _ int, _ []string) bool {
		_, _ = io.WriteString(w, `{"data":[{"embedding":[1]},{"embedding":[2]}]}`)
		return true
	}
	o, _ := newClient(t, f, nil)
	vs, err := o.Embed(context.Background(), []string{"a", "b"})
	if err != nil || vs[0][0] != 1 || vs[1][0] != 2 {
		t.Fatalf("positional answer: %v, %v", vs, err)
	}
}

func TestRetry429HonoursRetryAfter(t *testing.T) {
	f := newFake(t, 2)
	f.handle = func(w http.ResponseWriter, _ *http.Request, n int, _ []string) bool {
		if n == 0 {
			w.Header().Set("Retry-After", "2")
			http.Error(w, `{"error":{"message":"Rate limit reached","type":"requests"}}`, http.StatusTooManyRequests)
			return true
		}
		return false
	}
	o, s := newClient(t, f, nil)
	vs, err := o.Embed(context.Background(), []string{"a"})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(vs[0]) != fmt.Sprint(vectorFor("a", 2)) {
		t.Fatal("wrong vector after retry")
	}
	if len(f.requests()) != 2 || len(s.d) != 1 || s.d[0] != 2*time.Second {
		t.Fatalf("requests %d, waits %v; want 2 requests and one 2s wait", len(f.requests()), s.d)
	}
}

func TestRetryRealSleepRetryAfterMs(t *testing.T) {
	f := newFake(t, 2)
	f.handle = func(w http.ResponseWriter, _ *http.Request, n int, _ []string) bool {
		if n < 2 {
			w.Header().Set("Retry-After-Ms", "20")
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		}
		return false
	}
	o, _ := newClient(t, f, nil)
	o.sleep = sleepContext
	start := time.Now()
	if _, err := o.Embed(context.Background(), []string{"a"}); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < 40*time.Millisecond || el > 5*time.Second {
		t.Fatalf("took %v, want two 20ms waits", el)
	}
}

func TestRetriesExhaustedWithBackoff(t *testing.T) {
	f := newFake(t, 2)
	f.handle = func(w http.ResponseWriter, _ *http.Request, _ int, _ []string) bool {
		http.Error(w, `{"error":{"message":"upstream overloaded"}}`, http.StatusBadGateway)
		return true
	}
	o, s := newClient(t, f, func(c *OpenAIConfig) { c.MaxRetries = 2 })
	_, err := o.Embed(context.Background(), []string{"a"})
	wantContains(t, err, "502", "upstream overloaded", "gave up after 3 attempts")
	var se *StatusError
	if !errors.As(err, &se) || se.StatusCode != http.StatusBadGateway {
		t.Fatalf("errors.As StatusError: %v", err)
	}
	if len(f.requests()) != 3 || len(s.d) != 2 {
		t.Fatalf("requests %d waits %v", len(f.requests()), s.d)
	}
	// Exponential with jitter: [base/2, base], then [base, 2*base].
	if s.d[0] < backoffBase/2 || s.d[0] > backoffBase || s.d[1] < backoffBase || s.d[1] > 2*backoffBase {
		t.Fatalf("backoff waits %v", s.d)
	}

	o, s = newClient(t, f, func(c *OpenAIConfig) { c.MaxRetries = -1 })
	before := len(f.requests())
	_, err = o.Embed(context.Background(), []string{"a"})
	noKey(t, err)
	if len(f.requests())-before != 1 || len(s.d) != 0 {
		t.Fatal("MaxRetries < 0 must not retry")
	}
}

func TestRetryAfterTooLongOrPastDeadline(t *testing.T) {
	f := newFake(t, 2)
	f.handle = func(w http.ResponseWriter, _ *http.Request, _ int, _ []string) bool {
		w.Header().Set("Retry-After", "3600")
		w.WriteHeader(http.StatusTooManyRequests)
		return true
	}
	o, s := newClient(t, f, nil)
	_, err := o.Embed(context.Background(), []string{"a"})
	wantContains(t, err, "429", "retry after 1h0m0s")
	if len(f.requests()) != 1 || len(s.d) != 0 {
		t.Fatalf("requests %d waits %v", len(f.requests()), s.d)
	}

	f.handle = func(w http.ResponseWriter, _ *http.Request, _ int, _ []string) bool {
		w.Header().Set("Retry-After", "30")
		w.WriteHeader(http.StatusTooManyRequests)
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = o.Embed(ctx, []string{"a"})
	wantContains(t, err, "429", "deadline")
	if len(s.d) != 0 {
		t.Fatalf("waited %v past the deadline", s.d)
	}
}

func TestUnauthorized(t *testing.T) {
	for _, code := range []int{http.StatusUnauthorized, http.StatusForbidden} {
		f := newFake(t, 2)
		f.handle = func(w http.ResponseWriter, r *http.Request, _ int, _ []string) bool {
			// Echo the key back, as some servers partly do.
			http.Error(w, `{"error":{"message":"Incorrect API key provided: `+r.Header.Get("Authorization")+`"}}`, code)
			return true
		}
		o, s := newClient(t, f, func(c *OpenAIConfig) { c.APIKeyEnv = "ENGRAM_EMBED_KEY" })
		_, err := o.Embed(context.Background(), []string{"a"})
		wantContains(t, err, "API key", "$ENGRAM_EMBED_KEY", fmt.Sprint(code))
		var se *StatusError
		if !errors.As(err, &se) || se.StatusCode != code {
			t.Fatalf("errors.As StatusError: %v", err)
		}
		if len(f.requests()) != 1 || len(s.d) != 0 {
			t.Fatalf("%d: an auth failure must not be retried", code)
		}
	}
	f := newFake(t, 2)
	f.handle = func(w http.ResponseWriter, _ *http.Request, _ int, _ []string) bool {
		w.WriteHeader(http.StatusUnauthorized)
		return true
	}
	o, _ := newClient(t, f, func(c *OpenAIConfig) { c.APIKey = "" })
	_, err := o.Embed(context.Background(), []string{"a"})
	wantContains(t, err, "no API key is set", "$OPENAI_API_KEY")
}

func TestClientErrorRedactsKey(t *testing.T) {
	f := newFake(t, 2)
	f.handle = func(w http.ResponseWriter, r *http.Request, _ int, _ []string) bool {
		http.Error(w, `{"error":{"message":"model not found (you sent `+r.Header.Get("Authorization")+`)"}}`, http.StatusNotFound)
		return true
	}
	o, s := newClient(t, f, nil)
	_, err := o.Embed(context.Background(), []string{"a"})
	wantContains(t, err, "404", "model not found", "[redacted]")
	if len(s.d) != 0 {
		t.Fatal("a 404 must not be retried")
	}
}

func TestOversizeBody(t *testing.T) {
	for _, chunked := range []bool{false, true} {
		f := newFake(t, 64)
		f.handle = func(w http.ResponseWriter, r *http.Request, _ int, inputs []string) bool {
			rec := httptest.NewRecorder()
			writeEmbeddings(rec, inputs, 64, false)
			if chunked {
				w.(http.Flusher).Flush() // no Content-Length: the cap applies while reading
			} else {
				w.Header().Set("Content-Length", fmt.Sprint(rec.Body.Len()))
			}
			_, _ = w.Write(rec.Body.Bytes())
			return true
		}
		o, _ := newClient(t, f, func(c *OpenAIConfig) { c.MaxResponseBytes = 4096 })
		_, err := o.Embed(context.Background(), []string{"a", "b", "c", "d", "e", "f", "g", "h"})
		wantContains(t, err, "larger than the 4096-byte limit")
		if len(f.requests()) != 1 {
			t.Fatal("an oversize answer must not be retried")
		}
	}
}

func TestContextCancellation(t *testing.T) {
	f := newFake(t, 2)
	release := make(chan struct{})
	defer close(release)
	f.handle = func(w http.ResponseWriter, r *http.Request, _ int, _ []string) bool {
		select {
		case <-r.Context().Done():
		case <-release:
		}
		return true
	}
	o, _ := newClient(t, f, nil)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, err := o.Embed(ctx, []string{"a"})
	noKey(t, err)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("cancellation took %v", el)
	}

	// Cancelled while waiting to retry.
	f2 := newFake(t, 2)
	f2.handle = func(w http.ResponseWriter, _ *http.Request, _ int, _ []string) bool {
		w.Header().Set("Retry-After", "30")
		w.WriteHeader(http.StatusServiceUnavailable)
		return true
	}
	o2, _ := newClient(t, f2, nil)
	o2.sleep = sleepContext
	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start = time.Now()
	_, err = o2.Embed(ctx, []string{"a"})
	if !errors.Is(err, context.Canceled) || time.Since(start) > 5*time.Second {
		t.Fatalf("err = %v after %v, want prompt context.Canceled", err, time.Since(start))
	}
	noKey(t, err)
}

func TestAttemptTimeoutIsRetried(t *testing.T) {
	f := newFake(t, 2)
	f.handle = func(w http.ResponseWriter, r *http.Request, n int, _ []string) bool {
		if n == 0 {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
			return true
		}
		return false
	}
	o, s := newClient(t, f, func(c *OpenAIConfig) { c.Timeout = 100 * time.Millisecond })
	if _, err := o.Embed(context.Background(), []string{"a"}); err != nil {
		t.Fatal(err)
	}
	if len(f.requests()) != 2 || len(s.d) != 1 {
		t.Fatalf("requests %d waits %v", len(f.requests()), s.d)
	}
}

func TestTransportErrorNamesEndpointWithoutQuery(t *testing.T) {
	f := newFake(t, 2)
	url := f.srv.URL
	f.srv.Close()
	o, err := NewOpenAI(OpenAIConfig{BaseURL: url + "/v1?token=" + testKey, Model: "m", APIKey: testKey, Dimension: 2, MaxRetries: 1})
	if err != nil {
		t.Fatal(err)
	}
	s := &sleeps{}
	o.sleep = s.sleep
	_, err = o.Embed(context.Background(), []string{"a"})
	wantContains(t, err, url+"/v1/embeddings", "gave up after 2 attempts")
}

func TestConcurrentEmbed(t *testing.T) {
	f := newFake(t, 4)
	o, _ := newClient(t, f, func(c *OpenAIConfig) { c.MaxBatch = 3 })
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			texts := []string{fmt.Sprint("g", g, "a"), fmt.Sprint("g", g, "b"), fmt.Sprint("g", g, "c"), fmt.Sprint("g", g, "d")}
			vs, err := o.Embed(context.Background(), texts)
			if err != nil {
				t.Error(err)
				return
			}
			for i, s := range texts {
				if fmt.Sprint(vs[i]) != fmt.Sprint(vectorFor(s, 4)) {
					t.Errorf("goroutine %d: vector %d wrong", g, i)
				}
			}
		}(g)
	}
	wg.Wait()
}

func TestNewOpenAIValidation(t *testing.T) {
	ok := OpenAIConfig{BaseURL: "https://api.example.com/v1", Model: "m", Dimension: 8}
	for name, mod := range map[string]func(*OpenAIConfig){
		"empty url":      func(c *OpenAIConfig) { c.BaseURL = "" },
		"relative url":   func(c *OpenAIConfig) { c.BaseURL = "/v1" },
		"ftp url":        func(c *OpenAIConfig) { c.BaseURL = "ftp://example.com" },
		"bad url":        func(c *OpenAIConfig) { c.BaseURL = "http://[::1" },
		"user info":      func(c *OpenAIConfig) { c.BaseURL = "https://u:" + testKey + "@example.com/v1" },
		"empty model":    func(c *OpenAIConfig) { c.Model = " " },
		"zero dimension": func(c *OpenAIConfig) { c.Dimension = 0 },
		"neg dimension":  func(c *OpenAIConfig) { c.Dimension = -3 },
		"neg timeout":    func(c *OpenAIConfig) { c.Timeout = -time.Second },
		"huge batch":     func(c *OpenAIConfig) { c.MaxBatch = 5000 },
		"key newline":    func(c *OpenAIConfig) { c.APIKey = testKey + "\n" },
	} {
		c := ok
		mod(&c)
		_, err := NewOpenAI(c)
		if err == nil {
			t.Errorf("%s: want error", name)
			continue
		}
		noKey(t, err)
	}
	o, err := NewOpenAI(ok)
	if err != nil {
		t.Fatal(err)
	}
	if o.endpoint != "https://api.example.com/v1/embeddings" || o.maxBatch != DefaultMaxBatch ||
		o.maxRetries != DefaultMaxRetries || o.timeout != DefaultTimeout || o.maxResponse != DefaultMaxResponseBytes {
		t.Fatalf("defaults not applied: %+v", o)
	}
	o, _ = NewOpenAI(OpenAIConfig{BaseURL: "http://localhost:8080/v1/", Model: "m", Dimension: 8})
	if o.endpoint != "http://localhost:8080/v1/embeddings" {
		t.Fatalf("endpoint %q", o.endpoint)
	}
}

func TestRetryAfterParsing(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		h    map[string]string
		want time.Duration
	}{
		{nil, 0},
		{map[string]string{"Retry-After": "3"}, 3 * time.Second},
		{map[string]string{"Retry-After": "0.5"}, 500 * time.Millisecond},
		{map[string]string{"Retry-After": "-1"}, 0},
		{map[string]string{"Retry-After": "soon"}, 0},
		{map[string]string{"Retry-After": now.Add(7 * time.Second).Format(http.TimeFormat)}, 7 * time.Second},
		{map[string]string{"Retry-After": now.Add(-time.Hour).Format(http.TimeFormat)}, 0},
		{map[string]string{"Retry-After-Ms": "250", "Retry-After": "9"}, 250 * time.Millisecond},
		{map[string]string{"Retry-After": "1e300"}, 1e6 * time.Second},
	} {
		h := http.Header{}
		for k, v := range tc.h {
			h.Set(k, v)
		}
		if got := retryAfter(h, now); got != tc.want {
			t.Errorf("%v: got %v, want %v", tc.h, got, tc.want)
		}
	}
}
