package server

import (
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/ops/api"
	"github.com/engram-ops/engram-ops/ops/health"
)

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) error {
	h := api.Health{Status: health.Healthy, Service: api.ServiceName, Version: s.info.Version, Timestamp: time.Now().UTC(),
		Implementation: api.Implementation}
	status := http.StatusOK
	err := s.eng.Ready()
	if h.Replica = s.replicaState(h.Timestamp); err == nil && h.Replica != nil {
		err = replicaNotReady(h.Replica, h.Timestamp)
	}
	if err != nil {
		_, body := errorResponse(err)
		h.Status, h.Error, status = health.Unhealthy, &body, http.StatusServiceUnavailable
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds))
	}
	s.writeJSON(w, status, h)
	return nil
}

func (s *Server) handleAlive(w http.ResponseWriter, r *http.Request) error {
	s.writeJSON(w, http.StatusOK, api.Probe{Status: "alive"})
	return nil
}

func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) error {
	err := s.eng.Ready()
	if st := s.replicaState(time.Now()); err == nil && st != nil {
		err = replicaNotReady(st, time.Now())
	}
	if err == nil {
		err = unavailableBarrier(s.eng)
	}
	if err != nil {
		_, body := errorResponse(err)
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds))
		s.writeJSON(w, http.StatusServiceUnavailable, api.Probe{Status: "not_ready", Error: &body})
		return nil
	}
	s.writeJSON(w, http.StatusOK, api.Probe{Status: "ready"})
	return nil
}

// backgroundErrorer is implemented by engines that count failed background
// tasks (index saves, tier sweeps, reinforcement flushes).
type backgroundErrorer interface{ BackgroundErrors() uint64 }

// bgState remembers when the background error count last grew.
type bgState struct {
	mu       sync.Mutex
	last     uint64
	lastGrew time.Time
}

func (s *Server) handleSystemHealth(w http.ResponseWriter, r *http.Request) error {
	p := newParams(r)
	if err := p.check(); err != nil {
		return err
	}
	only := p.str("space")
	if only != "" {
		if _, err := s.checkSpace(r, only); err != nil {
			return err
		}
		if _, err := s.eng.Space(only); err != nil {
			return err
		}
	}
	in := health.Input{Now: time.Now(), Started: s.started, Version: s.info.Version, Space: only}
	t0 := time.Now()
	readyErr := s.eng.Ready()
	in.ReadyLatency = time.Since(t0)
	if readyErr != nil {
		_, body := errorResponse(readyErr)
		in.ReadyErr = &body
		in.LastSequence = s.eng.LastSequence()
	} else {
		t0 = time.Now()
		in.Metrics = s.eng.Metrics()
		in.MetricsLatency = time.Since(t0)
	}
	in.Requests, in.ServerErrors = s.errWindow.lastMinute(in.Now)
	in.Memory = health.ReadMemory()
	if be, ok := s.eng.(backgroundErrorer); ok {
		n := be.BackgroundErrors()
		st := &s.bg
		st.mu.Lock()
		if n > st.last {
			st.last, st.lastGrew = n, in.Now
		}
		in.Background = &health.Background{Errors: n, LastGrew: st.lastGrew}
		st.mu.Unlock()
	}
	out := health.Evaluate(in, s.thresholds)
	if bh, ok := s.backup.(backupHealther); ok {
		out.Backup = bh.Health()
	}
	if out.Replica = s.replicaState(in.Now); out.Replica != nil {
		health.AddCheck(&out, replicaCheck(out.Replica, in.Now))
	}
	// A key limited to spaces sees only its spaces.
	visible := out.Spaces[:0]
	for _, sp := range out.Spaces {
		if visibleSpace(r, sp.Space) {
			visible = append(visible, sp)
		}
	}
	out.Spaces = visible
	health.AddCheck(&out, s.securityCheck())
	if bc, ok := s.backup.(backupChecker); ok {
		for _, c := range bc.Checks() {
			health.AddCheck(&out, c)
		}
	}
	status := http.StatusOK
	if out.Status == health.Unhealthy {
		status = http.StatusServiceUnavailable
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds))
	}
	s.writeJSON(w, status, out)
	return nil
}

// unavailableBarrier is the engine's write barrier when it is a passing
// one (KindUnavailable, e.g. BACKUP_STARTING while the shipper confirms
// the archive at start): the server is not ready for traffic until it
// lifts. A read-only barrier (a follower, a fenced primary) leaves reads
// served, so it does not count.
func unavailableBarrier(eng Engine) error {
	wb, ok := eng.(interface{ WriteBarrier() error })
	if !ok {
		return nil
	}
	var ce *core.Error
	if err := wb.WriteBarrier(); errors.As(err, &ce) && ce.Kind == core.KindUnavailable {
		return err
	}
	return nil
}
