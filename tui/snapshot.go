package tui

import "time"

// Snapshot is what the board shows at one moment, computed from the last
// two scrapes. It is also the stable JSON of `engram-ops tui --once
// --output json`: fields are only ever added. A figure the board cannot
// know is null, and Unknown says why.
type Snapshot struct {
	Target string    `json:"target"`
	Time   time.Time `json:"time"`
	Health Health    `json:"health"`
	// IntervalSeconds is the time between the two scrapes rates and
	// percentiles come from; 0 when there was only one.
	IntervalSeconds float64 `json:"interval_seconds"`

	Operations []Operation `json:"operations"`
	Spaces     []Space     `json:"spaces"`
	Tiers      []Tier      `json:"tiers"`
	// CacheHitRatio is hits / (hits + misses) over the interval.
	CacheHitRatio *float64 `json:"cache_hit_ratio"`
	// IndexBacklog is the memories waiting for the ANN index, all spaces.
	IndexBacklog *float64 `json:"index_backlog"`
	Disk         Disk     `json:"disk"`
	// Backup is empty when the server ships no backups.
	Backup    []Backup   `json:"backup"`
	Alerts    []Alert    `json:"alerts"`
	Migration *Migration `json:"migration"`
	LoadTest  *LoadTest  `json:"loadtest"`
	// Unknown maps a field (e.g. "operations.latency") to why it is null.
	Unknown map[string]string `json:"unknown"`
}

// Health is the server's state as the board last saw it.
type Health struct {
	// Status is ready, degraded, unhealthy (the server's own verdict),
	// unreachable (no answer) or error (an answer the board could not use).
	Status        string     `json:"status"`
	Error         string     `json:"error,omitempty"`
	Version       string     `json:"version"`
	UptimeSeconds *float64   `json:"uptime_seconds"`
	LastSuccess   *time.Time `json:"last_success"`
	// Checks are the server's failing health checks (name: message).
	Checks []string `json:"checks,omitempty"`
}

// Operation is one memory operation across all spaces.
type Operation struct {
	Name string `json:"name"`
	// Total counts operations since the server started.
	Total float64 `json:"total"`
	// PerSecond is the throughput over the interval.
	PerSecond *float64 `json:"per_second"`
	// ErrorRatio is errors / operations over the interval.
	ErrorRatio *float64 `json:"error_ratio"`
	// P50, P95, P99 are latencies in seconds, interpolated in the server's
	// histogram buckets over the interval.
	P50 *float64 `json:"p50_seconds"`
	P95 *float64 `json:"p95_seconds"`
	P99 *float64 `json:"p99_seconds"`
}

// Space is one memory space.
type Space struct {
	Name         string             `json:"name"`
	Memories     float64            `json:"memories"`
	Tiers        map[string]float64 `json:"tiers"`
	Associations float64            `json:"associations"`
	IndexPending float64            `json:"index_pending"`
	PerSecond    *float64           `json:"per_second"`
}

// Tier is one storage tier.
type Tier struct {
	Name          string   `json:"name"`
	Bytes         float64  `json:"bytes"`
	CapacityBytes float64  `json:"capacity_bytes"`
	Utilisation   *float64 `json:"utilisation"`
}

// Disk is the filesystem of the data directory against the server's
// reserve (min_free_space), under which writes are refused.
type Disk struct {
	FreeBytes     *float64 `json:"free_bytes"`
	TotalBytes    *float64 `json:"total_bytes"`
	ReserveBytes  *float64 `json:"reserve_bytes"`
	DataBytes     *float64 `json:"data_bytes"`
	WritesRefused bool     `json:"writes_refused"`
}

// Backup is one backup target the server ships to.
type Backup struct {
	Target          string     `json:"target"`
	RPOSeconds      *float64   `json:"rpo_seconds"`
	LastSnapshot    *time.Time `json:"last_snapshot"`
	LastLog         *time.Time `json:"last_log"`
	ShippedSequence *float64   `json:"shipped_sequence"`
	LagSequences    *float64   `json:"lag_sequences"`
	LastVerified    *time.Time `json:"last_verified"`
	// RestoreDrillSeconds is how long the last restore drill took.
	RestoreDrillSeconds *float64 `json:"restore_drill_seconds"`
	Errors              float64  `json:"errors"`
}

// Alert is an alert that would fire (evaluated by the board from the
// shipped rules' thresholds) or that Prometheus reports.
type Alert struct {
	Name     string `json:"name"`
	Severity string `json:"severity"`
	// State is pending (the condition holds, not yet for the rule's for:
	// duration) or firing.
	State   string     `json:"state"`
	Labels  string     `json:"labels,omitempty"`
	Summary string     `json:"summary"`
	Since   *time.Time `json:"since"`
	// Source is "rules" (evaluated here) or "prometheus".
	Source  string `json:"source"`
	Runbook string `json:"runbook"`
}

// Migration is a migration the server's metrics show in progress.
type Migration struct {
	Source    string   `json:"source"`
	Records   float64  `json:"records"`
	Rejects   float64  `json:"rejects"`
	PerSecond *float64 `json:"per_second"`
}

// LoadTest is traffic on the spaces `engram-ops loadtest` creates
// (PREFIX-N and PREFIX-N-vec, default prefix "lt").
type LoadTest struct {
	Spaces    []string `json:"spaces"`
	PerSecond float64  `json:"per_second"`
}
