// Package health judges a server's health: Evaluate is a pure function of
// the figures the server gathered (engine metrics, readiness, the last
// minute's error counts, Go memory, background failures) and Thresholds,
// and returns the report of GET /api/v1/system/health. Every check carries
// the figures it judged, so an operator sees why.
//
// The HTTP server gathers the figures and writes the report; ReadMemory is
// the one function here that reads the running process.
package health

import (
	"errors"
	"fmt"
	"math"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"

	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/ops/api"
)

// Status values of a check and of the report.
const (
	Healthy   = "healthy"
	Degraded  = "degraded"
	Unhealthy = "unhealthy"
)

// Thresholds are the limits the checks judge figures against.
type Thresholds struct {
	// ErrorRate is the share of 5xx responses in the last minute above
	// which the server is degraded, once it served at least
	// ErrorRateMinRequests requests in that minute.
	ErrorRate            float64
	ErrorRateMinRequests int64
	// TierFull is the share of a warm or cold tier's capacity above which
	// storage is degraded.
	TierFull float64
	// IndexPending is the number of acknowledged-but-unindexed writes (over
	// the reported spaces) above which the index is degraded: recall still
	// finds them by exact scan, but slower.
	IndexPending int
	// Memory is the share of GOMEMLIMIT above which Go memory is degraded.
	Memory float64
	// BackgroundWindow: a background-task failure this recent degrades.
	BackgroundWindow time.Duration
}

// DefaultThresholds are the thresholds the server judges with.
func DefaultThresholds() Thresholds {
	return Thresholds{
		ErrorRate:            0.005,
		ErrorRateMinRequests: 20,
		TierFull:             0.9,
		IndexPending:         100_000,
		Memory:               0.9,
		BackgroundWindow:     5 * time.Minute,
	}
}

// Input is what Evaluate judges.
type Input struct {
	Now     time.Time
	Started time.Time // when the server started (uptime)
	Version string
	// Space restricts the per-space figures to one space; "" reports all.
	Space string

	// ReadyErr is the engine's readiness error (nil: ready) as the error
	// envelope's body, and ReadyLatency how long the check took.
	ReadyErr     *api.ErrorBody
	ReadyLatency time.Duration
	// Metrics are the engine's figures and MetricsLatency how long reading
	// them took; unused when the engine is not ready.
	Metrics        core.Metrics
	MetricsLatency time.Duration
	// LastSequence is the engine's change-log sequence, reported when the
	// engine is not ready (Metrics then are not read).
	LastSequence uint64

	// Requests and ServerErrors are the last minute's counts.
	Requests, ServerErrors int64

	Memory Memory
	// Background is nil when the engine does not count background failures.
	Background *Background
}

// Memory are the Go runtime's memory figures (ReadMemory).
type Memory struct {
	TotalBytes      float64 // /memory/classes/total:bytes
	HeapObjectBytes float64 // /memory/classes/heap/objects:bytes
	LimitBytes      float64 // GOMEMLIMIT; 0 or math.MaxInt64 when none is set
}

// Background reports failed background tasks (index saves, tier sweeps,
// reinforcement flushes).
type Background struct {
	Errors   uint64    // failures since the engine opened
	LastGrew time.Time // when Errors last grew; zero if never seen to
}

// ReadMemory reads the Go runtime's memory figures.
func ReadMemory() Memory {
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
	return Memory{TotalBytes: val(0), HeapObjectBytes: val(1), LimitBytes: val(2)}
}

// Evaluate judges in against th. The report is unhealthy when any check
// is, else degraded when any check is, else healthy.
func Evaluate(in Input, th Thresholds) api.SystemHealth {
	out := api.SystemHealth{
		Timestamp:     in.Now.UTC(),
		Version:       in.Version,
		UptimeSeconds: in.Now.Sub(in.Started).Seconds(),
		Spaces:        []api.SpaceHealth{},
	}
	engine := api.HealthCheck{Name: "engine", Status: Healthy, Message: "engine is open and serving", LatencySeconds: in.ReadyLatency.Seconds()}
	if in.ReadyErr != nil {
		body := *in.ReadyErr
		engine.Status, engine.Message = Unhealthy, body.Message
		out.Error = &body
	}
	out.Checks = append(out.Checks, engine)
	if in.ReadyErr == nil {
		out.Checks = append(out.Checks, storageCheck(in, th))
		var index api.HealthCheck
		out.Spaces, index = spaces(in, th)
		out.Checks = append(out.Checks, index)
		out.Changelog.Sequence = in.Metrics.ChangelogSequence
		out.Durability = string(in.Metrics.Durability)
	} else {
		out.Changelog.Sequence = in.LastSequence
	}
	out.Checks = append(out.Checks, errorRateCheck(in, th), memoryCheck(in.Memory, th))
	if in.Background != nil {
		out.Checks = append(out.Checks, backgroundCheck(in, th))
	}
	out.Status = Healthy
	for _, c := range out.Checks {
		switch {
		case c.Status == Unhealthy:
			out.Status = Unhealthy
		case c.Status == Degraded && out.Status == Healthy:
			out.Status = Degraded
		}
	}
	return out
}

// AddCheck adds a check judged outside Evaluate (the server's security
// check) to out, worsening its status when the check is worse.
func AddCheck(out *api.SystemHealth, c api.HealthCheck) {
	out.Checks = append(out.Checks, c)
	switch {
	case c.Status == Unhealthy:
		out.Status = Unhealthy
	case c.Status == Degraded && out.Status == Healthy:
		out.Status = Degraded
	}
}

func storageCheck(in Input, th Thresholds) api.HealthCheck {
	m := in.Metrics
	c := api.HealthCheck{Name: "storage", Status: Healthy, LatencySeconds: in.MetricsLatency.Seconds(), Figures: map[string]float64{
		"disk_bytes":  float64(m.DiskBytes),
		"compactions": float64(m.Compactions),
	}}
	c.Message = "every tier is below " + percent(th.TierFull) + " of its capacity"
	for _, t := range core.Tiers {
		used, capacity := m.TierBytes[t], m.TierCapacityBytes[t]
		c.Figures[t.String()+"_bytes"] = float64(used)
		c.Figures[t.String()+"_capacity_bytes"] = float64(capacity)
		if t != core.TierHot && capacity > 0 && float64(used) > th.TierFull*float64(capacity) {
			c.Status = Degraded
			c.Message = t.String() + " tier is above " + percent(th.TierFull) + " of its capacity"
		}
	}
	if m.Disk.Measured {
		c.Figures["disk_free_bytes"] = float64(m.Disk.FreeBytes)
		c.Figures["disk_total_bytes"] = float64(m.Disk.TotalBytes)
	}
	c.Figures["min_free_bytes"] = float64(m.Disk.MinFreeBytes)
	if m.Disk.WritesRefused {
		c.Status, c.Message = Degraded, "writes are refused: "+message(m.Disk.Err())
	}
	c.Figures["corruption_events"] = float64(m.Corruption.Events)
	if k := m.Corruption; k.Events > 0 && len(k.Files) > 0 {
		c.Status = Unhealthy
		c.Message = fmt.Sprintf("on-disk corruption in %d storage file(s), first %s: reads that need the damaged parts fail with STORAGE_CORRUPT. %s",
			len(k.Files), k.Files[0], core.RestoreAdvice)
	}
	return c
}

// spaces reports the spaces of in.Space (all when "") and judges their
// index backlog.
func spaces(in Input, th Thresholds) ([]api.SpaceHealth, api.HealthCheck) {
	out := []api.SpaceHealth{}
	var pending int
	limit := in.Metrics.Backlog.Limit
	var atBound []string
	for _, st := range in.Metrics.Spaces {
		if in.Space != "" && st.Name != in.Space {
			continue
		}
		pending += st.IndexPending
		if limit > 0 && st.IndexPending >= limit {
			atBound = append(atBound, st.Name)
		}
		out = append(out, api.SpaceHealth{
			Space:        st.Name,
			Memories:     st.Total(),
			Tiers:        TierCounts(st.Memories),
			Associations: st.Associations,
			IndexPending: st.IndexPending,
			Dimension:    st.Dimension,
			Fingerprint:  st.Fingerprint,
		})
	}
	c := api.HealthCheck{Name: "index", Status: Healthy, Message: "the ANN index keeps up with writes",
		Figures: map[string]float64{"index_pending": float64(pending), "degraded_above": float64(th.IndexPending),
			"pending_limit": float64(limit), "writes_waited": float64(in.Metrics.Backlog.Waits),
			"writes_refused": float64(in.Metrics.Backlog.Refused)}}
	switch {
	case len(atBound) > 0:
		c.Status = Degraded
		c.Message = fmt.Sprintf("the index backlog of %s is at its bound (index.max_pending %d): writes wait for the indexer and are refused with INDEX_BACKLOG after index.pending_wait",
			strings.Join(atBound, ", "), limit)
	case pending > th.IndexPending:
		c.Status, c.Message = Degraded, "the ANN index is far behind writes; recall scans unindexed vectors exactly"
	}
	return out, c
}

// TierCounts are a space's memories per tier and in total.
func TierCounts(c [3]int64) api.TierCounts {
	return api.TierCounts{
		Hot:   c[core.TierHot],
		Warm:  c[core.TierWarm],
		Cold:  c[core.TierCold],
		Total: c[core.TierHot] + c[core.TierWarm] + c[core.TierCold],
	}
}

func errorRateCheck(in Input, th Thresholds) api.HealthCheck {
	rate := 0.0
	if in.Requests > 0 {
		rate = float64(in.ServerErrors) / float64(in.Requests)
	}
	c := api.HealthCheck{Name: "error_rate", Status: Healthy, Message: "server errors are rare", Figures: map[string]float64{
		"requests_last_minute":      float64(in.Requests),
		"server_errors_last_minute": float64(in.ServerErrors),
		"error_rate":                rate,
		"degraded_above":            th.ErrorRate,
	}}
	if in.Requests >= th.ErrorRateMinRequests && rate > th.ErrorRate {
		c.Status, c.Message = Degraded, "more than "+percent(th.ErrorRate)+" of requests in the last minute failed with a server error"
	}
	return c
}

// memoryCheck judges Go memory against GOMEMLIMIT when one is set.
func memoryCheck(m Memory, th Thresholds) api.HealthCheck {
	c := api.HealthCheck{Name: "memory", Status: Healthy, Figures: map[string]float64{
		"go_total_bytes":       m.TotalBytes,
		"go_heap_object_bytes": m.HeapObjectBytes,
	}}
	if m.LimitBytes > 0 && m.LimitBytes < math.MaxInt64 {
		c.Figures["gomemlimit_bytes"] = m.LimitBytes
		c.Message = "Go memory is below " + percent(th.Memory) + " of GOMEMLIMIT"
		if m.TotalBytes > th.Memory*m.LimitBytes {
			c.Status, c.Message = Degraded, "Go memory is above "+percent(th.Memory)+" of GOMEMLIMIT"
		}
	} else {
		c.Message = "no GOMEMLIMIT is set; figures are informational"
	}
	return c
}

func backgroundCheck(in Input, th Thresholds) api.HealthCheck {
	b := in.Background
	c := api.HealthCheck{Name: "background", Status: Healthy, Message: "background tasks succeed",
		Figures: map[string]float64{"background_errors_total": float64(b.Errors)}}
	if !b.LastGrew.IsZero() && in.Now.Sub(b.LastGrew) < th.BackgroundWindow {
		c.Status, c.Message = Degraded, "a background task (index save, tier sweep or reinforcement flush) failed in the last "+
			span(th.BackgroundWindow)+"; see the server log"
	}
	return c
}

// percent formats a share as a percentage: 0.9 → "90%", 0.005 → "0.5%".
func percent(share float64) string {
	return strconv.FormatFloat(math.Round(share*1e4)/1e2, 'f', -1, 64) + "%"
}

// span formats a window in words when it is whole minutes ("5 minutes").
func span(d time.Duration) string {
	switch {
	case d == time.Minute:
		return "minute"
	case d > 0 && d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + " minutes"
	}
	return d.String()
}

// message is what an engine error says to an operator.
func message(err error) string {
	var ce *core.Error
	if errors.As(err, &ce) && ce.Message != "" {
		return ce.Message
	}
	if err == nil {
		return ""
	}
	return err.Error()
}
