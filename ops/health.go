package ops

import (
	"fmt"
	"math"
	"net/http"
	"runtime/metrics"
	"strconv"
	"sync"
	"time"

	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/ops/api"
)

// Health thresholds of GET /api/v1/system/health. They judge real figures;
// each check reports the figures it judged.
const (
	// errorRateDegraded: share of 5xx responses in the last minute (with at
	// least errorRateMinRequests requests) above which the server is degraded.
	errorRateDegraded    = 0.005
	errorRateMinRequests = 20
	// tierFullDegraded: a tier above this share of its capacity is degraded.
	tierFullDegraded = 0.9
	// indexPendingDegraded: more acknowledged-but-unindexed writes than this
	// (over all spaces) means the indexer is far behind; recall still finds
	// them by exact scan, but slower.
	indexPendingDegraded = 100_000
	// memoryDegraded: Go memory above this share of GOMEMLIMIT.
	memoryDegraded = 0.9
	// backgroundWindow: background-task failures this recent degrade health.
	backgroundWindow = 5 * time.Minute
)

const (
	statusHealthy   = "healthy"
	statusDegraded  = "degraded"
	statusUnhealthy = "unhealthy"
)

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) error {
	h := api.Health{Status: statusHealthy, Service: api.ServiceName, Version: s.info.Version, Timestamp: time.Now().UTC()}
	status := http.StatusOK
	if err := s.eng.Ready(); err != nil {
		_, body := errorResponse(err)
		h.Status, h.Error, status = statusUnhealthy, &body, http.StatusServiceUnavailable
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
	if err := s.eng.Ready(); err != nil {
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
		if _, err := s.eng.Space(only); err != nil {
			return err
		}
	}
	now := time.Now()
	out := api.SystemHealth{
		Timestamp:     now.UTC(),
		Version:       s.info.Version,
		UptimeSeconds: now.Sub(s.started).Seconds(),
		Spaces:        []api.SpaceHealth{},
	}

	// engine readiness
	t0 := time.Now()
	readyErr := s.eng.Ready()
	engine := api.HealthCheck{Name: "engine", Status: statusHealthy, Message: "engine is open and serving", LatencySeconds: time.Since(t0).Seconds()}
	if readyErr != nil {
		_, body := errorResponse(readyErr)
		engine.Status, engine.Message = statusUnhealthy, body.Message
		out.Error = &body
	}
	out.Checks = append(out.Checks, engine)

	if readyErr == nil {
		t0 = time.Now()
		m := s.eng.Metrics()
		lat := time.Since(t0).Seconds()

		storage := api.HealthCheck{Name: "storage", Status: statusHealthy, LatencySeconds: lat, Figures: map[string]float64{
			"disk_bytes":  float64(m.DiskBytes),
			"compactions": float64(m.Compactions),
		}}
		storage.Message = "every tier is below 90% of its capacity"
		for _, t := range core.Tiers {
			used, capacity := m.TierBytes[t], m.TierCapacityBytes[t]
			storage.Figures[t.String()+"_bytes"] = float64(used)
			storage.Figures[t.String()+"_capacity_bytes"] = float64(capacity)
			if t != core.TierHot && capacity > 0 && float64(used) > tierFullDegraded*float64(capacity) {
				storage.Status = statusDegraded
				storage.Message = t.String() + " tier is above 90% of its capacity"
			}
		}
		if m.Disk.Measured {
			storage.Figures["disk_free_bytes"] = float64(m.Disk.FreeBytes)
			storage.Figures["disk_total_bytes"] = float64(m.Disk.TotalBytes)
		}
		storage.Figures["min_free_bytes"] = float64(m.Disk.MinFreeBytes)
		if m.Disk.WritesRefused {
			_, body := errorResponse(m.Disk.Err())
			storage.Status, storage.Message = statusDegraded, "writes are refused: "+body.Message
		}
		storage.Figures["corruption_events"] = float64(m.Corruption.Events)
		if c := m.Corruption; c.Events > 0 && len(c.Files) > 0 {
			storage.Status = statusUnhealthy
			storage.Message = fmt.Sprintf("on-disk corruption in %d storage file(s), first %s: reads that need the damaged parts fail with STORAGE_CORRUPT. %s",
				len(c.Files), c.Files[0], core.RestoreAdvice)
		}
		out.Checks = append(out.Checks, storage)

		var pending int
		for _, st := range m.Spaces {
			if only != "" && st.Name != only {
				continue
			}
			pending += st.IndexPending
			out.Spaces = append(out.Spaces, api.SpaceHealth{
				Space:        st.Name,
				Memories:     st.Total(),
				Tiers:        tierCounts(st.Memories),
				Associations: st.Associations,
				IndexPending: st.IndexPending,
				Dimension:    st.Dimension,
				Fingerprint:  st.Fingerprint,
			})
		}
		index := api.HealthCheck{Name: "index", Status: statusHealthy, Message: "the ANN index keeps up with writes",
			Figures: map[string]float64{"index_pending": float64(pending), "degraded_above": indexPendingDegraded}}
		if pending > indexPendingDegraded {
			index.Status, index.Message = statusDegraded, "the ANN index is far behind writes; recall scans unindexed vectors exactly"
		}
		out.Checks = append(out.Checks, index)
		out.Changelog.Sequence = m.ChangelogSequence
	} else {
		out.Changelog.Sequence = s.eng.LastSequence()
	}

	// error rate over the last minute
	total, fails := s.errWindow.lastMinute(now)
	rate := 0.0
	if total > 0 {
		rate = float64(fails) / float64(total)
	}
	errs := api.HealthCheck{Name: "error_rate", Status: statusHealthy, Message: "server errors are rare", Figures: map[string]float64{
		"requests_last_minute":      float64(total),
		"server_errors_last_minute": float64(fails),
		"error_rate":                rate,
		"degraded_above":            errorRateDegraded,
	}}
	if total >= errorRateMinRequests && rate > errorRateDegraded {
		errs.Status, errs.Message = statusDegraded, "more than 0.5% of requests in the last minute failed with a server error"
	}
	out.Checks = append(out.Checks, errs)

	out.Checks = append(out.Checks, memoryCheck())

	if be, ok := s.eng.(backgroundErrorer); ok {
		n := be.BackgroundErrors()
		st := &s.bg
		st.mu.Lock()
		if n > st.last {
			st.last, st.lastGrew = n, now
		}
		grew := st.lastGrew
		st.mu.Unlock()
		bg := api.HealthCheck{Name: "background", Status: statusHealthy, Message: "background tasks succeed",
			Figures: map[string]float64{"background_errors_total": float64(n)}}
		if !grew.IsZero() && now.Sub(grew) < backgroundWindow {
			bg.Status, bg.Message = statusDegraded, "a background task (index save, tier sweep or reinforcement flush) failed in the last 5 minutes; see the server log"
		}
		out.Checks = append(out.Checks, bg)
	}

	out.Status = statusHealthy
	for _, c := range out.Checks {
		switch {
		case c.Status == statusUnhealthy:
			out.Status = statusUnhealthy
		case c.Status == statusDegraded && out.Status == statusHealthy:
			out.Status = statusDegraded
		}
	}
	status := http.StatusOK
	if out.Status == statusUnhealthy {
		status = http.StatusServiceUnavailable
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds))
	}
	s.writeJSON(w, status, out)
	return nil
}

// memoryCheck reads the Go runtime's memory figures and judges them against
// GOMEMLIMIT when one is set.
func memoryCheck() api.HealthCheck {
	samples := []metrics.Sample{
		{Name: "/memory/classes/total:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/gc/gomemlimit:bytes"},
	}
	metrics.Read(samples)
	val := func(i int) float64 {
		if samples[i].Value.Kind() == metrics.KindUint64 {
			return float64(samples[i].Value.Uint64())
		}
		return 0
	}
	total, heap, limit := val(0), val(1), val(2)
	c := api.HealthCheck{Name: "memory", Status: statusHealthy, Figures: map[string]float64{
		"go_total_bytes":       total,
		"go_heap_object_bytes": heap,
	}}
	if limit > 0 && limit < math.MaxInt64 {
		c.Figures["gomemlimit_bytes"] = limit
		c.Message = "Go memory is below 90% of GOMEMLIMIT"
		if total > memoryDegraded*limit {
			c.Status, c.Message = statusDegraded, "Go memory is above 90% of GOMEMLIMIT"
		}
	} else {
		c.Message = "no GOMEMLIMIT is set; figures are informational"
	}
	return c
}
