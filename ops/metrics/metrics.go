// Package metrics owns engram-ops' Prometheus instrumentation: the metric
// names of design brief §5 (the contract dashboards, alerts and the TUI
// share), registered on an explicit *prometheus.Registry — never the global
// one.
//
// It provides
//   - HTTP middleware (engram_http_requests_total, _request_duration_seconds,
//     _in_flight_requests) labelled by the ServeMux route pattern;
//   - operation observers the handlers call (engram_memory_operation_*,
//     engram_recall_confidence, engram_spreading_activated_memories);
//   - a scrape-time collector that reads core.Engine.Metrics() for the
//     engine gauges and counters (memories, tiers, cache, disk, change log);
//   - engram_build_info, the auth and rate-limit counters, and the Go and
//     process collectors.
//
// Labels are low-cardinality by construction: routes are registered
// patterns (anything else is "unmatched"), error_type is the engine error
// kind, and callers must pass only validated, existing space names (see
// ops' space labelling), of which at most WithMaxSpaceLabels are exported
// by name and the rest as space="_other" (see spaces.go). Backup metrics
// belong to the backup component.
//
// This package imports core (for its types) and Prometheus; it must not
// import ops, cobra or net/http handlers beyond middleware.
package metrics

import (
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/engram-ops/engram-ops/core"
)

// DurationBuckets are the fixed buckets (seconds) of every latency
// histogram, from 0.5 ms to 5 s.
var DurationBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}

// ConfidenceBuckets are the buckets of engram_recall_confidence (0..1).
var ConfidenceBuckets = []float64{.05, .1, .2, .3, .4, .5, .6, .7, .8, .9, 1}

// ActivatedBuckets are the buckets of engram_spreading_activated_memories.
var ActivatedBuckets = []float64{0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000}

// goRuntimeMetrics adds, to the Go collector's defaults, what explains a
// latency tail on a busy host: the CPU the collector spends beside the
// program's own (go_cpu_classes_gc_total_cpu_seconds_total and
// go_cpu_classes_user_cpu_seconds_total; concurrent marking is not in
// go_gc_duration_seconds, which holds only the stop-the-world pauses), and
// how long runnable goroutines wait for a thread (go_sched_latencies_seconds).
var goRuntimeMetrics = collectors.GoRuntimeMetricsRule{
	Matcher: regexp.MustCompile(`^/(cpu/classes/(gc/total|user):cpu-seconds|sched/latencies:seconds)$`),
}

// Unmatched is the route label of requests no route matched.
const Unmatched = "unmatched"

// AuthFailureReasons are the reason labels of engram_auth_failures_total,
// exported at zero from the start.
var AuthFailureReasons = []string{"missing", "malformed", "unknown_key", "wrong_secret",
	"expired", "revoked", "wrong_space", "forbidden"}

// Source is what the scrape-time collector reads; *core.Engine satisfies it.
type Source interface {
	Metrics() core.Metrics
}

// spaceLister is the cheaper way a Source may offer its spaces for ranking
// them before a scrape (*core.Engine has it).
type spaceLister interface {
	Spaces() []core.SpaceStats
}

// BuildInfo labels engram_build_info.
type BuildInfo struct {
	Version   string
	Revision  string
	GoVersion string
}

// Metrics holds every collector of the server. Its methods are safe for
// concurrent use.
type Metrics struct {
	reg *prometheus.Registry
	src Source

	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec
	httpInFlight prometheus.Gauge

	opDuration         *prometheus.HistogramVec
	opErrors           *prometheus.CounterVec
	recallConfidence   *prometheus.HistogramVec
	spreadingActivated *prometheus.HistogramVec

	authFailures  *prometheus.CounterVec
	rateLimited   *prometheus.CounterVec
	auditFailures prometheus.Counter

	spaces *spaceLabels
}

// Option customises Metrics.
type Option func(*Metrics)

// WithMaxSpaceLabels sets how many spaces are labelled by name (default
// DefaultMaxSpaceLabels); the others are labelled OtherSpaces. n < 0 is 0.
func WithMaxSpaceLabels(n int) Option {
	return func(m *Metrics) { m.spaces.max = max(n, 0) }
}

// New registers every engram-ops collector on reg: HTTP, operation, engine
// (reading src at scrape time; src may be nil in tests of the HTTP layer),
// build info, auth and rate-limit counters, and the Go and process
// collectors (skipped if reg already has them).
func New(reg *prometheus.Registry, src Source, info BuildInfo, opts ...Option) (*Metrics, error) {
	if reg == nil {
		return nil, errors.New("metrics: a registry is required (the global registry is never used)")
	}
	m := &Metrics{
		reg: reg,
		src: src,
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "engram_http_requests_total",
			Help: "HTTP requests served, by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "engram_http_request_duration_seconds",
			Help:    "HTTP request latency, by route pattern and method.",
			Buckets: DurationBuckets,
		}, []string{"route", "method"}),
		httpInFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "engram_http_in_flight_requests",
			Help: "HTTP requests being served.",
		}),
		opDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "engram_memory_operation_duration_seconds",
			Help:    "Engine operation latency (remember, recall, get, forget, associate, batch, list), by space.",
			Buckets: DurationBuckets,
		}, []string{"operation", "space"}),
		opErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "engram_memory_operation_errors_total",
			Help: "Failed engine operations, by error type (invalid, not_found, conflict, too_large, unavailable, internal).",
		}, []string{"operation", "space", "error_type"}),
		recallConfidence: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "engram_recall_confidence",
			Help:    "Overall confidence of recalls, by space.",
			Buckets: ConfidenceBuckets,
		}, []string{"space"}),
		spreadingActivated: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "engram_spreading_activated_memories",
			Help:    "Memories reached by spreading activation per recall, by space.",
			Buckets: ActivatedBuckets,
		}, []string{"space"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "engram_auth_failures_total",
			Help: "Rejected requests by authentication failure reason.",
		}, []string{"reason"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "engram_rate_limited_total",
			Help: "Requests rejected by rate limiting, by space.",
		}, []string{"space"}),
		auditFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "engram_audit_write_failures_total",
			Help: "Audit log lines that could not be written (the audit sink failed).",
		}),
		spaces: newSpaceLabels(DefaultMaxSpaceLabels),
	}
	for _, o := range opts {
		o(m)
	}
	m.spaces.onDrop = func(space string) {
		match := prometheus.Labels{"space": space}
		m.opDuration.DeletePartialMatch(match)
		m.opErrors.DeletePartialMatch(match)
		m.recallConfidence.DeletePartialMatch(match)
		m.spreadingActivated.DeletePartialMatch(match)
		m.rateLimited.DeletePartialMatch(match)
	}
	// Counters with labels appear in the exposition only once a label set
	// exists; start the known ones at zero so dashboards and alerts see
	// them before the first event.
	for _, r := range AuthFailureReasons {
		m.authFailures.WithLabelValues(r)
	}
	m.rateLimited.WithLabelValues("default")

	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "engram_build_info",
		Help: "Build information; the value is always 1.",
	}, []string{"version", "revision", "goversion"})
	buildInfo.WithLabelValues(orUnknown(info.Version), orUnknown(info.Revision), orUnknown(info.GoVersion)).Set(1)

	cs := []prometheus.Collector{
		m.httpRequests, m.httpDuration, m.httpInFlight,
		m.opDuration, m.opErrors, m.recallConfidence, m.spreadingActivated,
		m.authFailures, m.rateLimited, m.auditFailures, buildInfo,
	}
	if src != nil {
		ec := NewEngineCollector(src)
		ec.spaces = m.spaces
		cs = append(cs, ec)
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(goRuntimeMetrics)),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, err
			}
		}
	}
	return m, nil
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// Registry returns the registry the metrics are registered on.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus text exposition format,
// ranking the spaces labelled by name first.
func (m *Metrics) Handler() http.Handler {
	h := promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		Registry:          m.reg,
		ErrorHandling:     promhttp.ContinueOnError,
		EnableOpenMetrics: false,
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.RankSpaces()
		h.ServeHTTP(w, r)
	})
}

// RankSpaces labels by name the spaces holding the most memories (at most
// WithMaxSpaceLabels of them) and deletes the per-space series of the
// spaces no longer labelled. Handler calls it before every scrape.
func (m *Metrics) RankSpaces() {
	switch src := m.src.(type) {
	case nil:
	case spaceLister:
		m.spaces.rank(src.Spaces())
	default:
		m.spaces.rank(src.Metrics().Spaces)
	}
}

// Route returns the route label of a request after a ServeMux served it:
// the path of the matched pattern ("/api/v1/memories/{id}"), or
// "unmatched". Callers must leave r.Pattern empty for anything that is not
// a registered pattern (redirects, 404, 405).
func Route(r *http.Request) string {
	p := r.Pattern
	if p == "" {
		return Unmatched
	}
	if i := strings.IndexByte(p, ' '); i >= 0 {
		p = p[i+1:]
	}
	return p
}

// InstrumentHTTP wraps next with the HTTP metrics. next must serve the same
// *http.Request it receives through a ServeMux (which records the matched
// pattern in r.Pattern), so the route is known when next returns.
func (m *Metrics) InstrumentHTTP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		m.httpInFlight.Inc()
		sw, ok := w.(StatusWriter)
		if !ok {
			rec := NewStatusRecorder(w)
			sw, w = rec, rec
		}
		defer func() {
			m.httpInFlight.Dec()
			route := Route(r)
			method := methodLabel(r.Method)
			m.httpRequests.WithLabelValues(route, method, strconv.Itoa(sw.Status())).Inc()
			m.httpDuration.WithLabelValues(route, method).Observe(time.Since(start).Seconds())
		}()
		next.ServeHTTP(w, r)
	})
}

// methodLabel bounds the method label to the standard methods.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "OTHER"
}

// ObserveOperation records one engine operation: its latency and, when err
// is not nil, an error of the engine error kind. space must be a label-safe
// space name (validated and existing) or UnknownSpace.
func (m *Metrics) ObserveOperation(op, space string, d time.Duration, err error) {
	m.spaces.observe(space, func(label string) {
		m.opDuration.WithLabelValues(op, label).Observe(d.Seconds())
		if err != nil {
			m.opErrors.WithLabelValues(op, label, ErrorType(err)).Inc()
		}
	})
}

// ErrorType is the error_type label of err: the engine error kind
// (invalid, not_found, conflict, too_large, unavailable, internal).
func ErrorType(err error) string {
	return core.KindOf(err).String()
}

// ObserveRecall records a recall's overall confidence and how many memories
// spreading activation reached.
func (m *Metrics) ObserveRecall(space string, confidence float64, activated int) {
	m.spaces.observe(space, func(label string) {
		m.recallConfidence.WithLabelValues(label).Observe(confidence)
		m.spreadingActivated.WithLabelValues(label).Observe(float64(activated))
	})
}

// AuthFailure counts a request rejected by authentication.
func (m *Metrics) AuthFailure(reason string) { m.authFailures.WithLabelValues(reason).Inc() }

// RateLimited counts a request rejected by rate limiting.
func (m *Metrics) RateLimited(space string) {
	m.spaces.observe(space, func(label string) { m.rateLimited.WithLabelValues(label).Inc() })
}

// AuditWriteFailed counts an audit line the sink could not write.
func (m *Metrics) AuditWriteFailed() { m.auditFailures.Inc() }

// StatusWriter is a ResponseWriter that remembers the status it wrote.
type StatusWriter interface {
	http.ResponseWriter
	Status() int
}

// StatusRecorder records the status code written through it. It supports
// http.ResponseController through Unwrap.
type StatusRecorder struct {
	http.ResponseWriter
	status  int
	written int64
}

// NewStatusRecorder wraps w.
func NewStatusRecorder(w http.ResponseWriter) *StatusRecorder {
	return &StatusRecorder{ResponseWriter: w}
}

// WriteHeader records code.
func (s *StatusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

// Write records an implicit 200.
func (s *StatusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.written += int64(n)
	return n, err
}

// Status is the status written (200 if the handler wrote nothing).
func (s *StatusRecorder) Status() int {
	if s.status == 0 {
		return http.StatusOK
	}
	return s.status
}

// Wrote reports whether anything (a status or body bytes) was written.
func (s *StatusRecorder) Wrote() bool { return s.status != 0 }

// BytesWritten counts body bytes written.
func (s *StatusRecorder) BytesWritten() int64 { return s.written }

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *StatusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Flush forwards to the underlying writer when it can flush.
func (s *StatusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		if s.status == 0 {
			s.status = http.StatusOK
		}
		f.Flush()
	}
}
