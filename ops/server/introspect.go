package server

// GET /api/v1/system/introspect (the server's own figures) and GET
// /health/spreading (a spreading activation probe). Engram answers the
// first with hard-coded figures and never registers the second.

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"time"

	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/ops/api"
	"github.com/engram-ops/engram-ops/ops/health"
)

// Spreading probe bounds: how many memories it may spread from, and the
// latency above which spreading is degraded (Engram's latency probe's
// degraded bound).
const (
	spreadProbeSources  = 20
	spreadProbeDegraded = 100 * time.Millisecond
)

// introspectOps are the operations whose latency introspection reports.
var introspectOps = []string{opRecall, opRemember, opGet, opList, opForget, opAssociate, opBatch}

func (s *Server) introspectRoutes() {
	s.handle("GET "+api.PathIntrospect, s.handleIntrospect)
	s.handle("GET "+api.PathHealthSpreading, s.handleSpreadingHealth)
}

func (s *Server) handleIntrospect(w http.ResponseWriter, r *http.Request) error {
	if err := newParams(r).check(); err != nil {
		return err
	}
	if err := s.eng.Ready(); err != nil {
		return err
	}
	now := time.Now()
	m := s.eng.Metrics()
	out := api.Introspection{
		Timestamp:     now.UTC(),
		UptimeSeconds: now.Sub(s.started).Seconds(),
		Version:       s.info.Version,
		Spaces:        []api.IntrospectSpace{},
		Storage: api.IntrospectStorage{
			DiskBytes:         m.DiskBytes,
			TierBytes:         health.TierCounts(m.TierBytes),
			ChangelogSequence: m.ChangelogSequence,
			Durability:        string(m.Durability),
			Compactions:       m.Compactions,
			DiskFreeBytes:     m.Disk.FreeBytes,
		},
	}
	if n := m.CacheHits + m.CacheMisses; n > 0 {
		out.Storage.CacheHitRatio = float64(m.CacheHits) / float64(n)
	}
	// A key limited to spaces sees only its spaces, and totals over them.
	for _, st := range m.Spaces {
		if !visibleSpace(r, st.Name) {
			continue
		}
		out.Spaces = append(out.Spaces, api.IntrospectSpace{
			Space: st.Name, Memories: health.TierCounts(st.Memories), Associations: st.Associations,
			IndexPending: st.IndexPending, Dimension: st.Dimension, Embedder: st.Fingerprint,
		})
		out.TotalNodes += st.Total()
		out.TotalEdges += st.Associations
	}
	for _, op := range introspectOps {
		l := s.metrics.OperationLatency(op, 0.5, 0.9, 0.99)
		ol := api.OperationLatency{Operation: op, Count: l.Count}
		if l.Count > 0 {
			ol.AvgMS = l.Sum / float64(l.Count) * 1000
			ol.P50MS, ol.P90MS, ol.P99MS = l.Quantiles[0]*1000, l.Quantiles[1]*1000, l.Quantiles[2]*1000
		}
		if op == opRecall {
			out.AvgRecallTimeMS = ol.AvgMS
		}
		out.Operations = append(out.Operations, ol)
	}
	mem := health.ReadMemory()
	out.Runtime = api.IntrospectRuntime{Goroutines: runtime.NumGoroutine(), MemoryBytes: mem.TotalBytes, HeapObjectBytes: mem.HeapObjectBytes}
	out.Requests.LastMinute, out.Requests.ServerErrorsLastMinute = s.errWindow.lastMinute(now)
	s.writeJSON(w, http.StatusOK, out)
	return nil
}

// handleSpreadingHealth runs spreading activation from memories of the
// first space holding associations (up to spreadProbeSources of them,
// until one reaches another memory) and judges its latency. The answer
// names no space or memory: the route is public.
func (s *Server) handleSpreadingHealth(w http.ResponseWriter, r *http.Request) error {
	if err := newParams(r).check(); err != nil {
		return err
	}
	start := time.Now()
	out := api.SpreadingHealth{Status: health.Healthy}
	tried, reached, err := s.spreadProbe(r.Context())
	out.LatencyMS = float64(time.Since(start).Microseconds()) / 1000
	out.Sources, out.Reached, out.Timestamp = tried, reached, time.Now().UTC()
	status := http.StatusOK
	switch {
	case err != nil:
		_, body := errorResponse(err)
		out.Status, out.Message, status = health.Unhealthy, "spreading activation failed: "+body.Message, http.StatusServiceUnavailable
		w.Header().Set("Retry-After", fmt.Sprint(retryAfterSeconds))
	case tried == 0:
		out.Message = "no space holds associations yet: there is nothing to spread over; the engine is ready"
	case time.Since(start) > spreadProbeDegraded:
		out.Status = health.Degraded
		out.Message = fmt.Sprintf("spreading activation from %d memories took %.1fms, above %s", tried, out.LatencyMS, spreadProbeDegraded)
	default:
		out.Message = fmt.Sprintf("spreading activation from %d memories reached %d in %.1fms", tried, reached, out.LatencyMS)
	}
	s.writeJSON(w, status, out)
	return nil
}

func (s *Server) spreadProbe(ctx context.Context) (tried, reached int, err error) {
	if err := s.eng.Ready(); err != nil {
		return 0, 0, err
	}
	for _, st := range s.eng.Spaces() {
		if st.Associations == 0 {
			continue
		}
		page, err := s.eng.List(ctx, st.Name, core.ListOptions{AllTiers: true, Limit: spreadProbeSources})
		if err != nil {
			return tried, 0, err
		}
		for i := range page.Memories {
			res, err := s.eng.SpreadFrom(ctx, st.Name, page.Memories[i].ID, core.RecallQuery{MaxHops: 2, MaxResults: 10})
			if core.KindOf(err) == core.KindNotFound {
				continue // forgotten since the listing
			}
			if err != nil {
				return tried, 0, err
			}
			tried++
			n := len(res.Associated)
			res.Release()
			if n > 0 {
				return tried, n, nil
			}
		}
		return tried, 0, nil
	}
	return 0, 0, nil
}
