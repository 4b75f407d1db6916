// Package server is engram-ops' HTTP server: the Engram-compatible REST
// API over an Engine (routes, handlers, request decoding, error→status
// mapping, space selection, health probes, access logging, test-only fault
// injection). It serves what it is given — an Engine, a config.Config, a
// Prometheus registry and optionally a BackupAdmin — and opens nothing
// itself: cmd/engram-ops opens the engine and builds the backup shipper.
//
// Division of labour: the engine validates memory fields (confidence,
// dimension, finiteness, content size, ids, space names, recall knobs) and
// this package validates HTTP concerns only (content type, body size, JSON
// syntax, unknown fields, query parameter syntax), so each rule lives in one
// place. Every error — including routing, JSON and size errors, and the
// requests net/http itself refuses (malformed or oversized headers, see
// jsonErrorListener) — is written as one envelope, Engram's
// {"error":{"code","message","educational_context","cognitive_guidance",…},
// "documentation":{…}} with our precise code (errcodes.go, the table
// docs/reference/error-codes.md is generated from), and nothing else is
// written for a failed request. Messages repeat at most maxEcho bytes of any one input.
// The OpenAPI document of the API (openapi.go) is generated from a table
// of the routes registered here and served with a browser over it
// (apidocs.go).
//
// Wire types live in ops/api (shared with ops/client), Prometheus
// instrumentation in ops/metrics, the judgement of system health in
// ops/health. This package never imports cobra, a backup store or the
// global Prometheus registry.
package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/core/apikey"
	"github.com/engram-ops/engram-ops/ops/api"
	"github.com/engram-ops/engram-ops/ops/api/apijson"
	"github.com/engram-ops/engram-ops/ops/config"
	"github.com/engram-ops/engram-ops/ops/events"
	"github.com/engram-ops/engram-ops/ops/health"
	"github.com/engram-ops/engram-ops/ops/metrics"
)

// Engine is what the server needs of the storage engine; *core.Engine
// satisfies it. Tests substitute fakes for edge cases.
type Engine interface {
	Ready() error
	CreateSpace(ctx context.Context, c core.SpaceConfig) (core.SpaceInfo, bool, error)
	Space(name string) (core.SpaceStats, error)
	Spaces() []core.SpaceStats
	Remember(ctx context.Context, space string, in core.RememberInput) (core.RememberResult, error)
	Batch(ctx context.Context, space string, b core.BatchInput) (core.BatchResult, error)
	Cursor(source string) (value string, ok bool, err error)
	Get(ctx context.Context, space, id string, withEmbedding bool) (core.Memory, error)
	List(ctx context.Context, space string, o core.ListOptions) (core.ListResult, error)
	Recall(ctx context.Context, space string, q core.RecallQuery) (core.RecallResult, error)
	SpreadFrom(ctx context.Context, space, id string, q core.RecallQuery) (core.RecallResult, error)
	Forget(ctx context.Context, space, id string) (uint64, error)
	Associate(ctx context.Context, space string, a core.Association) (uint64, error)
	LastSequence() uint64
	Metrics() core.Metrics
}

var _ Engine = (*core.Engine)(nil)

// BuildInfo identifies the running binary (reported by /health, system
// health and engram_build_info).
type BuildInfo struct {
	Version   string `json:"version"`
	Revision  string `json:"revision"`
	GoVersion string `json:"go_version"`
}

// Server serves the REST API for one engine.
type Server struct {
	cfg     config.Config
	eng     Engine
	log     *slog.Logger
	access  *slog.Logger // the access log's lines (WithAccessLogger)
	metrics *metrics.Metrics
	info    BuildInfo
	started time.Time

	handler  http.Handler
	patterns map[string]bool
	mux      *http.ServeMux

	// spaceLabels caches space names known to exist, so metric labels
	// never carry names of spaces that do not exist (unbounded cardinality).
	spaceLabels sync.Map

	errWindow errorWindow
	bg        bgState
	faults    *faults // test-only fault injection (faults.go)

	backup     BackupAdmin // nil unless serve --backup-to (backup.go)
	replica    Replica     // nil unless serve --follow (replica.go)
	authState              // API keys, Host check, rate limits (auth.go)
	corsPolicy corsPolicy  // browser cross-origin policy (cors.go)
	audit      *auditLog   // nil: admin operations go to the server log (audit.go)
	thresholds health.Thresholds

	tls   *TLS // nil: plain HTTP (tls.go)
	conns *metrics.Connections
	cons  *consolidator // consolidation passes (consolidate.go)
	holds spaceHolds    // spaces whose writes are held (spacemove.go)

	hub           *events.Hub // engine events for the streams (streams.go)
	streamMetrics *metrics.Streams
	unobserve     func() // stops feeding the hub; nil when the engine has no observer hook

	mu  sync.Mutex
	ln  net.Listener
	srv *http.Server

	bufs sync.Pool
}

// Option customises a Server.
type Option func(*Server)

// WithBuildInfo sets the version reported by /health and engram_build_info.
func WithBuildInfo(info BuildInfo) Option { return func(s *Server) { s.info = info } }

// WithHealthThresholds sets the thresholds system health judges with
// (default health.DefaultThresholds).
func WithHealthThresholds(th health.Thresholds) Option { return func(s *Server) { s.thresholds = th } }

// WithTLS serves over TLS with t (from LoadTLS). Without it, New loads
// cfg.TLS itself when a certificate is configured.
func WithTLS(t *TLS) Option { return func(s *Server) { s.tls = t } }

// WithAccessLogger sends the access log's lines to l instead of the
// server's logger (nil keeps the server's logger).
func WithAccessLogger(l *slog.Logger) Option {
	return func(s *Server) {
		if l != nil {
			s.access = l
		}
	}
}

// New builds a server for eng. Metrics are registered on reg (never the
// global registry); reg may be nil in tests, in which case a private
// registry is used. cfg should have passed Validate.
func New(cfg config.Config, eng Engine, logger *slog.Logger, reg *prometheus.Registry, opts ...Option) (*Server, error) {
	if eng == nil {
		return nil, errors.New("server: an engine is required")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	s := &Server{cfg: cfg, eng: eng, log: logger, access: logger, started: time.Now(), patterns: map[string]bool{},
		thresholds: health.DefaultThresholds()}
	for _, o := range opts {
		o(s)
	}
	s.eng, s.faults = withFaults(cfg.Testing, eng, logger)
	if s.info.Version == "" {
		s.info.Version = "dev"
	}
	if s.info.GoVersion == "" {
		s.info.GoVersion = runtime.Version()
	}
	s.bufs.New = func() any { return new(bytes.Buffer) }
	m, err := metrics.New(reg, eng, metrics.BuildInfo(s.info), metrics.WithMaxSpaceLabels(cfg.Metrics.MaxSpaceLabels))
	if err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	s.metrics = m
	if s.conns, err = metrics.NewConnections(reg); err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	if s.cons, err = newConsolidator(reg); err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	if s.tls == nil && cfg.TLS.CertFile != "" {
		if s.tls, err = LoadTLS(cfg.TLS); err != nil {
			return nil, err
		}
	}
	if s.tls != nil {
		tm, err := metrics.NewTLS(reg)
		if err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
		s.tls.attach(logger, tm)
	}
	if s.streamMetrics, err = metrics.NewStreams(reg); err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	s.hub = events.New(cfg.Streams.Buffer)
	if o, ok := eng.(interface {
		Observe(func(core.Event)) func()
	}); ok {
		s.unobserve = o.Observe(s.hub.Publish)
	}
	s.mux = http.NewServeMux()
	s.routes()
	if err := s.loadHolds(); err != nil {
		return nil, err
	}
	if err := s.setupAuth(); err != nil {
		return nil, err
	}
	s.setupCORS()
	s.handler = s.accessLog(s.metrics.InstrumentHTTP(http.HandlerFunc(s.route)))
	return s, nil
}

// Handler is the server's complete HTTP handler (routing, metrics, access
// log), for tests and embedding.
func (s *Server) Handler() http.Handler { return s.handler }

// Metrics returns the server's collectors (for components that count auth
// failures or rate limiting).
func (s *Server) Metrics() *metrics.Metrics { return s.metrics }

// handle registers a handler returning an error; errors become envelopes.
func (s *Server) handle(pattern string, h func(w http.ResponseWriter, r *http.Request) error) {
	s.patterns[pattern] = true
	h = s.writeGate(pattern, h)
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	})
}

func (s *Server) routes() {
	s.engineRoutes()
	s.handle("GET "+api.PathBatchCursor, s.handleCursor)
	s.handle("GET "+api.PathSpaces, s.handleSpaces)
	s.handle("POST "+api.PathSpaces, s.handleCreateSpace)
	s.handle("GET "+api.PathSpace, s.handleSpace)
	s.handle("GET "+api.PathHealth, s.handleHealth)
	s.handle("GET "+api.PathHealthAlive, s.handleAlive)
	s.handle("GET "+api.PathHealthReady, s.handleReady)
	s.handle("GET "+api.PathSystemHealth, s.handleSystemHealth)
	s.cognitiveRoutes()
	s.backupRoutes()
	s.faultRoutes()
	s.apiKeyRoutes()
	s.spaceMoveRoutes()
	s.streamRoutes()
	s.docsRoutes()
	metricsHandler := s.metrics.Handler()
	for _, p := range []string{api.PathMetrics, api.PathMetricsProm} {
		s.patterns["GET "+p] = true
		s.mux.Handle("GET "+p, metricsHandler)
	}
}

// route dispatches through the mux, answering unmatched requests (404,
// 405) with the error envelope. It serves the request it was given, so
// r.Pattern is visible to the middleware around it.
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	defer s.recoverPanic(w, r)
	if p := r.URL.Path; p != cleanPath(p) {
		// Redirect to the canonical path ourselves (no HTML body).
		r.Pattern = ""
		u := *r.URL
		u.Path, u.RawPath = cleanPath(p), ""
		w.Header().Set("Location", u.RequestURI())
		w.WriteHeader(http.StatusPermanentRedirect)
		return
	}
	if s.cors(w, r) {
		return
	}
	h, pattern := s.mux.Handler(r)
	if s.patterns[pattern] {
		if err := s.authorize(r, pattern); err != nil {
			r.Pattern = pattern // the refusal is counted under its route
			s.writeError(w, r, err)
			return
		}
		s.mux.ServeHTTP(w, r)
		return
	}
	r.Pattern = ""
	// Let the mux's own handler decide (404, 405 with Allow, or a redirect
	// to the canonical path), then answer in our envelope.
	cw := &captureWriter{header: http.Header{}}
	h.ServeHTTP(cw, r)
	switch {
	case cw.status == http.StatusMethodNotAllowed:
		w.Header().Set("Allow", cw.header.Get("Allow"))
		s.writeError(w, r, httpErrorf(http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED",
			"method %s is not allowed on %s; allowed: %s", r.Method, r.URL.Path, cw.header.Get("Allow")).
			with("allow", cw.header.Get("Allow")))
	case cw.status >= 300 && cw.status < 400 && cw.header.Get("Location") != "":
		w.Header().Set("Location", cw.header.Get("Location"))
		w.WriteHeader(cw.status)
	default:
		s.writeError(w, r, httpErrorf(http.StatusNotFound, "NOT_FOUND",
			"no route for %s %s; see the REST API reference for the routes", r.Method, r.URL.Path))
	}
}

// recoverPanic turns a handler panic into a logged 500 envelope (or, when
// the response had already started, an aborted connection) instead of a
// silently dropped connection.
func (s *Server) recoverPanic(w http.ResponseWriter, r *http.Request) {
	v := recover()
	if v == nil {
		return
	}
	if v == http.ErrAbortHandler {
		panic(v)
	}
	s.log.LogAttrs(r.Context(), slog.LevelError, "handler panic (a bug)",
		slog.String("method", r.Method), slog.String("path", r.URL.Path),
		slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
	if rec, ok := w.(interface{ Wrote() bool }); ok && rec.Wrote() {
		panic(http.ErrAbortHandler)
	}
	s.writeError(w, r, httpErrorf(http.StatusInternalServerError, "INTERNAL", "internal error (a bug); the server log has the details"))
}

// cleanPath is the canonical form of an URL path, as ServeMux computes it:
// rooted, no "." or ".." elements, no repeated slashes, trailing slash kept.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	np := path.Clean(p)
	if p[len(p)-1] == '/' && np != "/" {
		np += "/"
	}
	return np
}

// captureWriter records what the mux's fallback handler would write.
type captureWriter struct {
	header http.Header
	status int
}

func (c *captureWriter) Header() http.Header { return c.header }
func (c *captureWriter) WriteHeader(code int) {
	if c.status == 0 {
		c.status = code
	}
}
func (c *captureWriter) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	return len(b), nil
}

// writeJSON encodes v and writes it with status; encoding happens before
// anything is written, so a failure is still a clean 500.
func (s *Server) writeJSON(w http.ResponseWriter, status int, v any) {
	buf := s.bufs.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= 1<<20 {
			s.bufs.Put(buf)
		}
	}()
	if err := apijson.Encode(buf, v); err != nil {
		s.log.Error("encode response", "err", err)
		buf.Reset()
		status = http.StatusInternalServerError
		_ = apijson.Encode(buf, envelope(status, api.ErrorBody{Code: "INTERNAL", Message: "could not encode the response"}))
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'")
	h.Set("X-Frame-Options", "DENY")
	if s.tls != nil {
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// requestInfo is per-request state the access and audit logs read after
// the handler.
type requestInfo struct {
	space string
	// key is the id of the request's API key and scope the key ("" and
	// nil without auth).
	key   string
	scope *apikey.Key
	// authFailure is the reason a key was refused.
	authFailure string
	// ids are the memories a write or forget touched; target the object
	// of an admin operation (a key id).
	ids    []string
	target string
	// notes are said in the answer: Engram fields accepted and not
	// applied, values clamped (compat.go).
	notes []string
}

type ctxKey struct{}

func infoFrom(ctx context.Context) *requestInfo {
	ri, _ := ctx.Value(ctxKey{}).(*requestInfo)
	return ri
}

// setSpace records the request's space for the access log.
func setSpace(r *http.Request, space string) {
	if ri := infoFrom(r.Context()); ri != nil {
		ri.space = space
	}
}

// setIDs records the memories a write or forget touched, for the audit
// log.
func setIDs(r *http.Request, ids ...string) {
	if ri := infoFrom(r.Context()); ri != nil {
		ri.ids = ids
	}
}

// setTarget records the object of an admin operation, for the audit log.
func setTarget(r *http.Request, target string) {
	if ri := infoFrom(r.Context()); ri != nil {
		ri.target = target
	}
}

// accessLog logs one line per request (never bodies) and feeds the error
// window of system health.
func (s *Server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ri := &requestInfo{}
		r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, ri))
		rec := metrics.NewStatusRecorder(w)
		next.ServeHTTP(rec, r)
		status := rec.Status()
		s.errWindow.record(start, status >= 500)
		s.auditRequest(r, ri, status, start)
		if !s.cfg.Log.Access {
			return
		}
		attrs := []slog.Attr{
			slog.String("method", r.Method),
			slog.String("route", metrics.Route(r)),
			slog.Int("status", status),
			slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
			slog.Int64("bytes", rec.BytesWritten()),
		}
		if ri.space != "" {
			attrs = append(attrs, slog.String("space", ri.space))
		}
		if ri.key != "" {
			attrs = append(attrs, slog.String("key", ri.key))
		}
		if metrics.Route(r) == metrics.Unmatched {
			attrs = append(attrs, slog.String("path", truncateString(r.URL.Path, 200)))
		}
		s.access.LogAttrs(r.Context(), slog.LevelInfo, "http request", attrs...)
	})
}

// Listen binds the configured address. Run calls it when it has not been
// called; call it first to learn Addr before serving (tests use :0).
func (s *Server) Listen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return nil
	}
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (is another server using it? set listen / --listen)", s.cfg.Listen, err)
	}
	s.ln = newLimitListener(ln, s.cfg.Server.MaxConnections, s.tls == nil, s.conns)
	return nil
}

// TLSEnabled reports whether the server serves TLS.
func (s *Server) TLSEnabled() bool { return s.tls != nil }

// ReloadTLS reads the TLS certificate and key again (SIGHUP). On failure
// the certificate in use stays; see TLS.Reload.
func (s *Server) ReloadTLS() error {
	if s.tls == nil {
		return errors.New("TLS is not configured (tls.cert_file): there is no certificate to reload")
	}
	return s.tls.Reload()
}

// Addr is the bound address (nil before Listen).
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Run serves until ctx is cancelled, then stops accepting connections and
// drains in-flight requests for at most server.shutdown_timeout. It returns
// nil after a clean drain. It does not close the engine.
func (s *Server) Run(ctx context.Context) error {
	if err := s.Listen(); err != nil {
		return err
	}
	s.mu.Lock()
	if s.srv != nil {
		s.mu.Unlock()
		return errors.New("server: Run called twice")
	}
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: min(10*time.Second, s.cfg.Server.ReadTimeout.Duration),
		ReadTimeout:       s.cfg.Server.ReadTimeout.Duration,
		WriteTimeout:      s.cfg.Server.WriteTimeout.Duration,
		IdleTimeout:       s.cfg.Server.IdleTimeout.Duration,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	s.srv = srv
	ln := s.ln
	s.mu.Unlock()
	// Streams never go idle: shutdown ends them, and the engine stops
	// feeding them once the server stops.
	srv.RegisterOnShutdown(s.hub.Close)
	defer s.hub.Close()
	if s.unobserve != nil {
		defer s.unobserve()
	}
	if every := s.cfg.Consolidation.Interval.Duration; every > 0 {
		cctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); s.consolidateEvery(cctx, every) }()
		defer func() { stop(); <-done }()
	}

	if s.tls != nil {
		ln = tlsListener{Listener: ln, t: s.tls}
		wctx, stopWatch := context.WithCancel(ctx)
		defer stopWatch()
		go s.tls.watch(wctx)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(jsonErrorListener{ln}) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	timeout := s.cfg.Server.ShutdownTimeout.Duration
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		_ = srv.Close()
		err = fmt.Errorf("shutdown: in-flight requests did not finish within server.shutdown_timeout (%s); they were cut off: %w", timeout, err)
	}
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = fmt.Errorf("serve: %w", serr)
	}
	return err
}

// errorWindow counts requests and server errors per second over the last
// minute, for the error_rate check of system health.
type errorWindow struct {
	mu      sync.Mutex
	buckets [60]struct {
		sec          int64
		total, fails int64
	}
	lifetimeTotal atomic.Int64
	lifetimeFails atomic.Int64
}

func (e *errorWindow) record(t time.Time, failed bool) {
	e.lifetimeTotal.Add(1)
	if failed {
		e.lifetimeFails.Add(1)
	}
	sec := t.Unix()
	e.mu.Lock()
	b := &e.buckets[sec%60]
	if b.sec != sec {
		b.sec, b.total, b.fails = sec, 0, 0
	}
	b.total++
	if failed {
		b.fails++
	}
	e.mu.Unlock()
}

// lastMinute returns requests and server errors of the last 60 seconds.
func (e *errorWindow) lastMinute(now time.Time) (total, fails int64) {
	sec := now.Unix()
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, b := range e.buckets {
		if b.sec > sec-60 && b.sec <= sec {
			total += b.total
			fails += b.fails
		}
	}
	return total, fails
}
