package server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/engram-ops/engram-ops/ops/api"
	"github.com/engram-ops/engram-ops/ops/api/apijson"
	"github.com/engram-ops/engram-ops/ops/metrics"
)

// The audit log: one JSON line per audited request, saying who (the key
// id, never the secret), what (route, space, memory ids of writes and
// forgets, the key an admin operation concerned), when, from where and
// with what outcome. Writes, forgets, admin operations and refused
// requests are audited (reads too with audit.reads). Without an audit
// sink, admin operations are still audited, to the server log. A sink
// that fails to write is counted (engram_audit_write_failures_total) and
// reported by system health; the request itself is not failed.

// AuditRecord is one line of the audit log.
type AuditRecord struct {
	Time   time.Time `json:"time"`
	Key    string    `json:"key,omitempty"` // key id; empty without auth
	Method string    `json:"method"`
	Route  string    `json:"route"`
	Path   string    `json:"path,omitempty"` // unmatched requests only
	Space  string    `json:"space,omitempty"`
	IDs    []string  `json:"ids,omitempty"`
	// IDsOmitted counts the ids of a long stream past the first
	// maxAuditIDs, which are not listed.
	IDsOmitted int    `json:"ids_omitted,omitempty"`
	Target     string `json:"target,omitempty"` // e.g. the key an admin operation concerned
	Status     int    `json:"status"`
	Outcome    string `json:"outcome"` // ok | refused | failed
	Reason     string `json:"reason,omitempty"`
	Remote     string `json:"remote"`
}

// WithAudit writes the audit log to w (a file from NewAuditFile, or
// standard output); reads are audited too when reads is set.
func WithAudit(w io.Writer, reads bool) Option {
	return func(s *Server) { s.audit = &auditLog{w: w, reads: reads} }
}

// auditLog is the server's audit sink and its failure state.
type auditLog struct {
	w     io.Writer
	reads bool

	mu       sync.Mutex
	buf      bytes.Buffer
	failures uint64
	lastErr  string
	lastFail time.Time
}

// auditRequest writes the request's audit line when it is audited.
func (s *Server) auditRequest(r *http.Request, ri *requestInfo, status int, when time.Time) {
	admin := routeAccess[r.Pattern] == accessAdmin
	refused := ri.authFailure != "" || status == http.StatusMisdirectedRequest || status == http.StatusTooManyRequests
	write := r.Method != http.MethodGet && r.Method != http.MethodHead
	if !s.audited(admin, refused, write) {
		return
	}
	rec := AuditRecord{Time: when.UTC(), Key: ri.key, Method: r.Method, Route: metrics.Route(r), Space: ri.space,
		IDs: ri.ids, Target: ri.target, Status: status, Reason: ri.authFailure, Remote: r.RemoteAddr}
	if rec.Route == metrics.Unmatched {
		rec.Path = truncateString(r.URL.Path, 200)
	}
	s.writeAudit(r.Context(), &rec, refused)
}

// Call is a finished call of another protocol (gRPC), for the audit and
// access logs.
type Call struct {
	Caller *Caller // nil when the call was refused before authentication passed
	Method string  // the protocol: "gRPC"
	Route  string  // the call's full method name
	Write  bool    // the call needs a write key
	Status int     // the REST status of its outcome (ErrorOf)
	Reason string  // why it was refused, as REST's "reason"
	Code   string  // the protocol's own status, e.g. "OK", "PermissionDenied"
	Remote string
	When   time.Time // when it started
	Took   time.Duration
}

// CallDone writes a finished call's access-log line (with log.access) and
// its audit line, under REST's rules: writes and refused calls are
// audited (reads too with audit.reads) when the server has an audit sink.
// The caller's space and the memories its writes touched come from the
// engine calls it made.
func (r RPC) CallDone(ctx context.Context, c Call) {
	s := r.s
	var key, space string
	var ids []string
	var omitted int
	if c.Caller != nil {
		key = c.Caller.KeyID()
		space, ids, omitted = c.Caller.touched()
	}
	if s.cfg.Log.Access {
		attrs := []slog.Attr{
			slog.String("method", c.Method),
			slog.String("route", c.Route),
			slog.Int("status", c.Status),
			slog.String("code", c.Code),
			slog.Float64("duration_ms", float64(c.Took.Microseconds())/1000),
		}
		if space != "" {
			attrs = append(attrs, slog.String("space", space))
		}
		if key != "" {
			attrs = append(attrs, slog.String("key", key))
		}
		s.access.LogAttrs(ctx, slog.LevelInfo, "grpc call", attrs...)
	}
	refused := c.Reason != "" || c.Status == http.StatusTooManyRequests
	if !s.audited(false, refused, c.Write) {
		return
	}
	rec := AuditRecord{Time: c.When.UTC(), Key: key, Method: c.Method, Route: c.Route, Space: space, IDs: ids, IDsOmitted: omitted,
		Status: c.Status, Reason: c.Reason, Remote: c.Remote}
	s.writeAudit(ctx, &rec, refused)
}

// audited says whether a request is audited: admin operations always,
// refusals and writes with an audit sink, reads with audit.reads.
func (s *Server) audited(admin, refused, write bool) bool {
	a := s.audit
	return admin || a != nil && (refused || write || a.reads)
}

// writeAudit sets rec's outcome and writes it to the audit sink (the
// server log without one).
func (s *Server) writeAudit(ctx context.Context, rec *AuditRecord, refused bool) {
	switch {
	case refused || rec.Status == http.StatusUnauthorized || rec.Status == http.StatusForbidden:
		rec.Outcome = "refused"
	case rec.Status >= 400:
		rec.Outcome = "failed"
	default:
		rec.Outcome = "ok"
	}
	a := s.audit
	if a == nil {
		s.log.LogAttrs(ctx, slog.LevelInfo, "audit",
			slog.String("key", rec.Key), slog.String("method", rec.Method), slog.String("route", rec.Route),
			slog.String("target", rec.Target), slog.Int("status", rec.Status), slog.String("outcome", rec.Outcome),
			slog.String("remote", rec.Remote))
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.buf.Reset()
	err := apijson.Encode(&a.buf, rec)
	if err == nil {
		_, err = a.w.Write(a.buf.Bytes())
	}
	if err != nil {
		a.failures++
		a.lastErr, a.lastFail = err.Error(), time.Now()
		s.metrics.AuditWriteFailed()
		if a.failures == 1 || a.failures%1000 == 0 {
			s.log.Error("audit log write failed: audited requests are not being recorded", "err", err, "failures", a.failures)
		}
	}
}

// auditHealth is the audit sink's state for system health: failures since
// start, the last error and when.
func (a *auditLog) health() (failures uint64, lastErr string, at time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.failures, a.lastErr, a.lastFail
}

// securityCheck is system health's view of exposure and auditing.
func (s *Server) securityCheck() api.HealthCheck {
	c := api.HealthCheck{Name: "security", Status: "healthy", Figures: map[string]float64{}}
	switch {
	case s.cfg.Auth.Mode == "api_key":
		c.Message = "API keys are required"
	case s.insecure:
		c.Status = "degraded"
		c.Message = fmt.Sprintf("INSECURE: no authentication on %s, which is not a loopback address (auth.insecure_allow_no_auth): anyone who reaches it can read and delete every space. "+
			"Create keys (engram-ops apikey create) and set auth.mode = \"api_key\"", s.cfg.Listen)
	default:
		c.Message = "no authentication, loopback only (requests addressed to other hosts are refused)"
	}
	if s.audit != nil {
		n, last, at := s.audit.health()
		c.Figures["audit_write_failures"] = float64(n)
		if n > 0 && time.Since(at) < 5*time.Minute {
			c.Status = "degraded"
			c.Message += "; the audit log failed to write " + strconv.FormatUint(n, 10) + " line(s), last: " + last
		}
	}
	return c
}

// AuditFile is an append-only audit file rotated by size: before a write
// would take it past maxSize, path becomes path.1 (path.1 becomes path.2,
// ...), keeping keep rotated files.
type AuditFile struct {
	path    string
	maxSize int64
	keep    int

	mu   sync.Mutex
	f    *os.File
	size int64
}

// NewAuditFile opens (appends to) the audit file at path.
func NewAuditFile(path string, maxSize int64, keep int) (*AuditFile, error) {
	a := &AuditFile{path: path, maxSize: maxSize, keep: keep}
	if err := a.open(); err != nil {
		return nil, err
	}
	return a, nil
}

func (a *AuditFile) open() error {
	f, err := os.OpenFile(a.path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("open the audit log %s: %w (set audit.path to a writable file, or \"-\" for standard output)", a.path, err)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return fmt.Errorf("audit log %s: %w", a.path, err)
	}
	a.f, a.size = f, st.Size()
	return nil
}

// Write appends p (one or more whole lines), rotating first when needed.
func (a *AuditFile) Write(p []byte) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f == nil {
		if err := a.open(); err != nil {
			return 0, err
		}
	}
	if a.size > 0 && a.size+int64(len(p)) > a.maxSize {
		if err := a.rotate(); err != nil {
			return 0, err
		}
	}
	n, err := a.f.Write(p)
	a.size += int64(n)
	return n, err
}

func (a *AuditFile) rotate() error {
	if err := a.f.Close(); err != nil {
		a.f = nil
		return fmt.Errorf("close the audit log %s: %w", a.path, err)
	}
	a.f = nil
	if a.keep == 0 {
		if err := os.Remove(a.path); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("rotate the audit log: %w", err)
		}
	} else {
		_ = os.Remove(a.path + "." + strconv.Itoa(a.keep))
		for i := a.keep - 1; i >= 1; i-- {
			if err := os.Rename(a.path+"."+strconv.Itoa(i), a.path+"."+strconv.Itoa(i+1)); err != nil && !os.IsNotExist(err) {
				return fmt.Errorf("rotate the audit log: %w", err)
			}
		}
		if err := os.Rename(a.path, a.path+".1"); err != nil {
			return fmt.Errorf("rotate the audit log: %w", err)
		}
	}
	return a.open()
}

// Close closes the file.
func (a *AuditFile) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f == nil {
		return nil
	}
	err := a.f.Close()
	a.f = nil
	return err
}
