package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/ops/api"
	"github.com/engram-ops/engram-ops/ops/config"
)

// testConfig is the default configuration with small limits for tests.
func testConfig() config.Config {
	c := config.Default()
	c.Listen = "127.0.0.1:0"
	c.Log.Access = false
	c.Limits.MaxBodyBytes = 64 << 10
	c.Limits.MaxContentBytes = 4096
	c.Spaces.DefaultDimension = 16
	c.Tiers.SweepInterval = config.Duration{}
	return c
}

// openEngine opens a real engine in a temporary directory.
func openEngine(t testing.TB, cfg config.Config) *core.Engine {
	t.Helper()
	eng, err := core.Open(t.TempDir(), cfg.EngineOptions(nil, nil))
	if err != nil {
		t.Fatalf("open engine: %v", err)
	}
	t.Cleanup(func() { _ = eng.Close() })
	return eng
}

// newTestServer builds a Server over eng.
func newTestServer(t testing.TB, cfg config.Config, eng Engine) *Server {
	t.Helper()
	s, err := New(cfg, eng, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// request is one HTTP request for a table test.
type request struct {
	method  string
	path    string
	body    string
	ctype   string // default application/json when body is set; "-" for none
	headers map[string]string
}

func do(t testing.TB, h http.Handler, rq request) *httptest.ResponseRecorder {
	t.Helper()
	var body io.Reader
	if rq.body != "" {
		body = strings.NewReader(rq.body)
	}
	r := httptest.NewRequest(rq.method, rq.path, body)
	r.Host = "localhost" // a loopback name, as a local client sends (see auth.go)
	switch {
	case rq.ctype == "-":
	case rq.ctype != "":
		r.Header.Set("Content-Type", rq.ctype)
	case rq.body != "":
		r.Header.Set("Content-Type", "application/json")
	}
	for k, v := range rq.headers {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// decodeEnvelope asserts the response is the error envelope and returns it.
func decodeEnvelope(t testing.TB, w *httptest.ResponseRecorder) api.ErrorBody {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("error Content-Type = %q, want application/json; body %s", ct, w.Body.String())
	}
	var env api.ErrorEnvelope
	dec := json.NewDecoder(bytes.NewReader(w.Body.Bytes()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&env); err != nil {
		t.Fatalf("body is not the error envelope: %v: %s", err, w.Body.String())
	}
	if env.Error.Code == "" || env.Error.Message == "" {
		t.Fatalf("envelope lacks code or message: %s", w.Body.String())
	}
	return env.Error
}

func decodeJSONBody[T any](t testing.TB, w *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("decode %T: %v: %s", v, err, w.Body.String())
	}
	return v
}

// fakeEngine is an in-memory Engine for edge cases the real engine cannot
// produce on demand (not ready, internal failures) and for recording what
// the HTTP layer passed down. It validates nothing.
type fakeEngine struct {
	mu       sync.Mutex
	readyErr error
	err      error // returned by every data call when set
	writes   int
	spaces   []string // space argument of every data call
	last     any      // last input passed down
	mems     map[string]core.Memory
	seq      uint64
}

func newFake() *fakeEngine { return &fakeEngine{mems: map[string]core.Memory{}} }

func (f *fakeEngine) call(space string, in any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.spaces = append(f.spaces, space)
	f.last = in
	return f.err
}

func (f *fakeEngine) lastSpace() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.spaces) == 0 {
		return ""
	}
	return f.spaces[len(f.spaces)-1]
}

func (f *fakeEngine) Ready() error { return f.readyErr }
func (f *fakeEngine) CreateSpace(ctx context.Context, c core.SpaceConfig) (core.SpaceInfo, bool, error) {
	if err := f.call(c.Name, c); err != nil {
		return core.SpaceInfo{}, false, err
	}
	return core.SpaceInfo{Name: c.Name, Dimension: c.Dimension}, true, nil
}
func (f *fakeEngine) Space(name string) (core.SpaceStats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return core.SpaceStats{}, f.err
	}
	return core.SpaceStats{SpaceInfo: core.SpaceInfo{Name: name, Dimension: 16}}, nil
}
func (f *fakeEngine) Spaces() []core.SpaceStats { return nil }
func (f *fakeEngine) Remember(ctx context.Context, space string, in core.RememberInput) (core.RememberResult, error) {
	if err := f.call(space, in); err != nil {
		return core.RememberResult{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes++
	f.seq++
	id := in.ID
	if id == "" {
		id = "mem_fake"
	}
	f.mems[space+"/"+id] = core.Memory{Space: space, ID: id, Content: in.Content, Type: in.Type, Tags: in.Tags}
	return core.RememberResult{ID: id, Confidence: 0.7, Created: true, Seq: f.seq, StoredAt: time.Now()}, nil
}
func (f *fakeEngine) Batch(ctx context.Context, space string, b core.BatchInput) (core.BatchResult, error) {
	if err := f.call(space, b); err != nil {
		return core.BatchResult{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes++
	f.seq++
	return core.BatchResult{Seq: f.seq}, nil
}
func (f *fakeEngine) Cursor(source string) (string, bool, error) {
	if err := f.call("", source); err != nil {
		return "", false, err
	}
	return "", false, nil
}
func (f *fakeEngine) Get(ctx context.Context, space, id string, withEmbedding bool) (core.Memory, error) {
	if err := f.call(space, id); err != nil {
		return core.Memory{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	m, ok := f.mems[space+"/"+id]
	if !ok {
		return core.Memory{}, core.Errorf(core.KindNotFound, "MEMORY_NOT_FOUND", "memory %q not found", id)
	}
	return m, nil
}
func (f *fakeEngine) List(ctx context.Context, space string, o core.ListOptions) (core.ListResult, error) {
	if err := f.call(space, o); err != nil {
		return core.ListResult{}, err
	}
	return core.ListResult{}, nil
}
func (f *fakeEngine) Recall(ctx context.Context, space string, q core.RecallQuery) (core.RecallResult, error) {
	if err := f.call(space, q); err != nil {
		return core.RecallResult{}, err
	}
	return core.RecallResult{Strategy: "fake"}, nil
}
func (f *fakeEngine) SpreadFrom(ctx context.Context, space, id string, q core.RecallQuery) (core.RecallResult, error) {
	if err := f.call(space, q); err != nil {
		return core.RecallResult{}, err
	}
	return core.RecallResult{Strategy: "fake"}, nil
}
func (f *fakeEngine) Forget(ctx context.Context, space, id string) (uint64, error) {
	if err := f.call(space, id); err != nil {
		return 0, err
	}
	return 1, nil
}
func (f *fakeEngine) Associate(ctx context.Context, space string, a core.Association) (uint64, error) {
	if err := f.call(space, a); err != nil {
		return 0, err
	}
	return 1, nil
}
func (f *fakeEngine) LastSequence() uint64 { return f.seq }
func (f *fakeEngine) Metrics() core.Metrics {
	return core.Metrics{}
}

// slowEngine delays recalls, to hold requests in flight.
type slowEngine struct {
	*fakeEngine
	delay time.Duration
}

func (s *slowEngine) Recall(ctx context.Context, space string, q core.RecallQuery) (core.RecallResult, error) {
	time.Sleep(s.delay)
	return s.fakeEngine.Recall(ctx, space, q)
}

func contextWithCancel() (context.Context, context.CancelFunc) {
	return context.WithCancel(context.Background())
}
