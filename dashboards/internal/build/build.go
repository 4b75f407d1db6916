// Package build defines engram-ops' Grafana dashboards in Go with
// grafana-foundation-sdk and renders them to the JSON committed in
// dashboards/grafana/ (by `go generate ./dashboards`). Keeping the SDK in an
// internal package used only by the generator and the tests keeps it out
// of the engram-ops binary, which embeds the rendered JSON instead.
//
// Panels are laid out explicitly (full rows of 24 grid units, ids numbered
// in order) so positions never overlap and the JSON is byte-for-byte
// reproducible, which the drift test relies on. Every query selects on the
// dashboard variables ${datasource}, $instance and (where the metric has
// the label) $space; the latency percentiles come from the recording rules
// in dashboards/prometheus/recording.yml.
package build

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/heatmap"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// Refresh is the auto-refresh interval of every dashboard.
const Refresh = "10s"

// File is one rendered dashboard.
type File struct {
	Name string // file name in dashboards/grafana, e.g. "system-overview.json"
	JSON []byte
}

// kind is a panel type.
type kind int

const (
	timeSeries kind = iota
	singleStat
	heatMap
)

type query struct {
	expr   string
	legend string
}

type panel struct {
	kind        kind
	title, desc string
	unit        string
	w, h        uint32
	queries     []query
}

type board struct {
	file, uid, title, desc string
	tags                   []string
	rows                   []row
}

type row struct {
	title  string
	panels []panel
}

func ts(title, unit, desc string, w uint32, qs ...query) panel {
	return panel{kind: timeSeries, title: title, unit: unit, desc: desc, w: w, h: 8, queries: qs}
}

func st(title, unit, desc string, w uint32, qs ...query) panel {
	return panel{kind: singleStat, title: title, unit: unit, desc: desc, w: w, h: 4, queries: qs}
}

func q(expr, legend string) query { return query{expr: expr, legend: legend} }

// Selectors used in queries.
const (
	inst      = `instance=~"$instance"`
	job       = `job="engram", instance=~"$instance"`
	instSpace = `instance=~"$instance", space=~"$space"`
)

// Boards returns the dashboard definitions, in file order.
func boards() []board {
	return []board{systemOverview(), memoryOperations(), storageTiers(), apiPerformance()}
}

func systemOverview() board {
	return board{
		file: "system-overview.json", uid: "engram-system-overview", title: "Engram / System overview",
		desc: "Health, resources and traffic of engram-ops servers.",
		tags: []string{"engram"},
		rows: []row{
			{"Health", []panel{
				st("Up", "none", "1 when Prometheus scrapes the server (job engram).", 4, q(`up{`+job+`}`, "{{instance}}")),
				st("Uptime", "s", "Time since the process started.", 4, q(`time() - process_start_time_seconds{`+job+`}`, "{{instance}}")),
				st("Version", "none", "engram_build_info: version, revision and Go version of the running binary.", 8,
					q(`engram_build_info{`+inst+`}`, "{{version}} ({{revision}}, {{goversion}})")),
				st("Memories", "short", "Memories stored in all spaces and tiers.", 4, q(`sum by (instance) (engram_memories{`+inst+`})`, "{{instance}}")),
				st("5xx ratio (5m)", "percentunit", "Share of HTTP requests answered with a server error over 5 minutes (alert HighErrorRate at 5%).", 4,
					q(`sum by (instance) (rate(engram_http_requests_total{`+inst+`, code=~"5.."}[5m])) / sum by (instance) (rate(engram_http_requests_total{`+inst+`}[5m]))`, "{{instance}}")),
			}},
			{"Traffic", []panel{
				ts("Request rate", "reqps", "HTTP requests per second.", 12,
					q(`sum by (instance) (rate(engram_http_requests_total{`+inst+`}[$__rate_interval]))`, "{{instance}}")),
				ts("Error rate", "reqps", "HTTP requests per second answered with 5xx, and failed engine operations.", 12,
					q(`sum by (instance) (rate(engram_http_requests_total{`+inst+`, code=~"5.."}[$__rate_interval]))`, "{{instance}} 5xx"),
					q(`sum by (instance) (rate(engram_memory_operation_errors_total{`+inst+`}[$__rate_interval]))`, "{{instance}} operation errors")),
			}},
			{"Resources", []panel{
				ts("CPU", "short", "CPU cores used by the process.", 8,
					q(`rate(process_cpu_seconds_total{`+job+`}[$__rate_interval])`, "{{instance}}")),
				ts("Memory", "bytes", "Resident memory and Go heap in use.", 8,
					q(`process_resident_memory_bytes{`+job+`}`, "{{instance}} resident"),
					q(`go_memstats_heap_inuse_bytes{`+job+`}`, "{{instance}} heap in use")),
				ts("Goroutines", "short", "Goroutines of the process.", 8,
					q(`go_goroutines{`+job+`}`, "{{instance}}")),
				ts("Open file descriptors", "short", "Open and maximum file descriptors.", 12,
					q(`process_open_fds{`+job+`}`, "{{instance}} open"),
					q(`process_max_fds{`+job+`}`, "{{instance}} max")),
				ts("Data directory on disk", "bytes", "Bytes the storage engine uses on disk (engram_storage_disk_bytes).", 12,
					q(`engram_storage_disk_bytes{`+inst+`}`, "{{instance}}")),
			}},
			{"Followers (serve --follow)", []panel{
				ts("Follower lag", "s", "0 when a follower applied its archive's head, else the age of the first change it has not applied (alert EngramReplicaLagHigh at 30s; readiness fails past replica.max_lag).", 12,
					q(`engram_replica_lag_seconds{`+inst+`}`, "{{instance}}")),
				ts("Follower sequences and apply errors", "short", "The archive's head sequence and the sequence each follower applied, and its failed polls per minute (a missing or damaged segment, an unreachable archive).", 12,
					q(`engram_replica_head_sequence{`+inst+`}`, "{{instance}} head"),
					q(`engram_replica_applied_sequence{`+inst+`}`, "{{instance}} applied"),
					q(`rate(engram_replica_apply_errors_total{`+inst+`}[$__rate_interval]) * 60`, "{{instance}} apply errors/min")),
			}},
			{"Go runtime (latency tails on a busy host)", []panel{
				ts("Garbage collector CPU share", "percentunit", "CPU the Go garbage collector used, as a share of the CPU the process used (runtime estimates). Its concurrent marking takes a core's share from requests while it runs; see runbooks/serving.md, Memory and garbage collection.", 6,
					q(`rate(go_cpu_classes_gc_total_cpu_seconds_total{`+job+`}[$__rate_interval]) / (rate(go_cpu_classes_gc_total_cpu_seconds_total{`+job+`}[$__rate_interval]) + rate(go_cpu_classes_user_cpu_seconds_total{`+job+`}[$__rate_interval]))`, "{{instance}}")),
				ts("Collections and allocation", "short", "Garbage collections per minute, and megabytes allocated per second: allocating less makes collections rarer.", 6,
					q(`rate(go_gc_duration_seconds_count{`+job+`}[$__rate_interval]) * 60`, "{{instance}} collections/min"),
					q(`rate(go_memstats_alloc_bytes_total{`+job+`}[$__rate_interval]) / 1e6`, "{{instance}} MB/s allocated")),
				ts("Heap: live and goal", "bytes", "Heap in use and the size at which the next collection starts (server.gc_percent, server.memory_limit).", 6,
					q(`go_memstats_heap_alloc_bytes{`+job+`}`, "{{instance}} heap"),
					q(`go_memstats_next_gc_bytes{`+job+`}`, "{{instance}} next collection at")),
				ts("Scheduling latency p99", "s", "How long runnable goroutines waited for a thread (p99, coarse buckets): high values mean the host's CPUs, not the server's code, set the latency.", 6,
					q(`histogram_quantile(0.99, sum by (instance, le) (rate(go_sched_latencies_seconds_bucket{`+job+`}[$__rate_interval])))`, "{{instance}}")),
			}},
		},
	}
}

func memoryOperations() board {
	ops := `operation=~"remember|recall|forget|get"`
	pct := func(p string) panel {
		return ts("Latency p"+p, "s", "p"+p+" latency per operation and space over 5m (recording rule instance_operation_space:engram_memory_operation_duration_seconds:p"+p+").", 8,
			q(`instance_operation_space:engram_memory_operation_duration_seconds:p`+p+`{`+instSpace+`, `+ops+`}`, "{{operation}} {{space}}"))
	}
	return board{
		file: "memory-operations.json", uid: "engram-memory-operations", title: "Engram / Memory operations",
		desc: "Remember, recall, forget and get: rates, latency percentiles, errors, recall quality and memories per space.",
		tags: []string{"engram"},
		rows: []row{
			{"Rates", []panel{
				ts("Operations per second", "ops", "Engine operations per second, by operation and space.", 12,
					q(`sum by (operation, space) (rate(engram_memory_operation_duration_seconds_count{`+instSpace+`}[$__rate_interval]))`, "{{operation}} {{space}}")),
				ts("Error ratio by error type", "percentunit", "Failed operations divided by all operations of the same kind, by error type.", 12,
					q(`sum by (operation, error_type) (rate(engram_memory_operation_errors_total{`+instSpace+`}[$__rate_interval])) / ignoring (error_type) group_left sum by (operation) (rate(engram_memory_operation_duration_seconds_count{`+instSpace+`}[$__rate_interval]))`, "{{operation}} {{error_type}}")),
			}},
			{"Latency", []panel{pct("50"), pct("95"), pct("99")}},
			{"Recall", []panel{
				{kind: heatMap, title: "Recall confidence distribution", unit: "short", w: 12, h: 8,
					desc:    "How confident recalls are (engram_recall_confidence buckets).",
					queries: []query{q(`sum by (le) (increase(engram_recall_confidence_bucket{`+instSpace+`}[$__rate_interval]))`, "{{le}}")}},
				ts("Mean recall confidence", "percentunit", "Average overall confidence of recalls.", 12,
					q(`sum by (space) (rate(engram_recall_confidence_sum{`+instSpace+`}[$__rate_interval])) / sum by (space) (rate(engram_recall_confidence_count{`+instSpace+`}[$__rate_interval]))`, "{{space}}")),
				ts("Spreading activation size", "short", "Memories reached by spreading activation per recall: p95 and mean.", 24,
					q(`histogram_quantile(0.95, sum by (le, space) (rate(engram_spreading_activated_memories_bucket{`+instSpace+`}[$__rate_interval])))`, "p95 {{space}}"),
					q(`sum by (space) (rate(engram_spreading_activated_memories_sum{`+instSpace+`}[$__rate_interval])) / sum by (space) (rate(engram_spreading_activated_memories_count{`+instSpace+`}[$__rate_interval]))`, "mean {{space}}")),
			}},
			{"Spaces", []panel{
				ts("Memories per space", "short", "Memories stored, by space (all tiers).", 8,
					q(`sum by (space) (engram_memories{`+instSpace+`})`, "{{space}}")),
				ts("Associations per space", "short", "Associations stored, by space.", 8,
					q(`sum by (space) (engram_associations{`+instSpace+`})`, "{{space}}")),
				ts("Index backlog", "short", "Acknowledged writes not yet in the ANN index (searched exactly until indexed), against the bound index.max_pending past which writes wait.", 8,
					q(`sum by (space) (engram_index_pending_memories{`+instSpace+`})`, "{{space}}"),
					q(`max(engram_index_pending_limit{`+inst+`})`, "bound")),
				ts("Writes held by the index", "ops", "Writes per second that waited for the indexer under index.max_pending, and those refused with 503 INDEX_BACKLOG.", 8,
					q(`sum(rate(engram_index_backpressure_waits_total{`+inst+`}[$__rate_interval]))`, "waited"),
					q(`sum(rate(engram_index_backlog_refused_writes_total{`+inst+`}[$__rate_interval]))`, "refused")),
				ts("Index backpressure wait", "s", "Mean time a held write waited for the indexer before it was admitted or refused (index.pending_wait is the most).", 8,
					q(`sum(rate(engram_index_backpressure_wait_seconds_total{`+inst+`}[$__rate_interval])) / sum(rate(engram_index_backpressure_waits_total{`+inst+`}[$__rate_interval]))`, "mean wait")),
			}},
			{"Consolidation (episodes into semantic memories)", []panel{
				ts("Consolidation passes", "ops", "Passes per second (POST /api/v1/episodes/replay and consolidation.interval), by result.", 6,
					q(`sum by (result) (rate(engram_consolidation_runs_total{`+inst+`}[$__rate_interval]))`, "{{result}}")),
				ts("Episodes read and beliefs written", "ops", "Episodes the passes grouped, and semantic memories (beliefs) they wrote or updated, per second.", 6,
					q(`sum(rate(engram_consolidation_episodes_total{`+inst+`}[$__rate_interval]))`, "episodes"),
					q(`sum(rate(engram_consolidation_beliefs_written_total{`+inst+`}[$__rate_interval]))`, "beliefs")),
				ts("Pass duration p95", "s", "p95 duration of a consolidation pass over 1h.", 12,
					q(`histogram_quantile(0.95, sum by (le) (rate(engram_consolidation_duration_seconds_bucket{`+inst+`}[1h])))`, "p95")),
			}},
			{"Migration (engram-ops migrate --metrics-listen; Instance: All)", []panel{
				ts("Records migrated per second", "short", "Source records a running migration committed per second (engram_migrate_records_total), by source and object (table, key pattern, label or relationship type). A migration is its own process: scrape its --metrics-listen address (runbooks/migrate-postgresql.md).", 8,
					q(`sum by (source, object) (rate(engram_migrate_records_total{`+inst+`}[$__rate_interval]))`, "{{source}} {{object}}")),
				ts("Rejected records per second", "short", "Records the migration wrote to its reject file instead of Engram (engram_migrate_rejects_total).", 8,
					q(`sum by (source, object) (rate(engram_migrate_rejects_total{`+inst+`}[$__rate_interval]))`, "{{source}} {{object}}")),
				ts("Records committed by the run", "short", "Records of the source read and committed by this run (engram_migrate_source_position), labelled with the object of the last one.", 8,
					q(`sum by (source) (engram_migrate_source_position{`+inst+`})`, "{{source}}")),
			}},
		},
	}
}

func storageTiers() board {
	return board{
		file: "storage-tiers.json", uid: "engram-storage-tiers", title: "Engram / Storage tiers",
		desc: "Hot, warm and cold tiers, cache, disk, change log and backup.",
		tags: []string{"engram"},
		rows: []row{
			{"Tiers", []panel{
				ts("Memories by tier", "short", "Memories in each tier (selected spaces).", 8,
					q(`sum by (tier) (engram_memories{`+instSpace+`})`, "{{tier}}")),
				ts("Bytes by tier", "bytes", "Bytes held in each tier, and its configured capacity.", 8,
					q(`sum by (tier) (engram_storage_tier_bytes{`+inst+`})`, "{{tier}}"),
					q(`sum by (tier) (engram_storage_tier_capacity_bytes{`+inst+`})`, "{{tier}} capacity")),
				ts("Tier utilisation", "percentunit", "Bytes over configured capacity (alert StorageTierNearCapacity at 90%).", 8,
					q(`engram_storage_tier_bytes{`+inst+`} / (engram_storage_tier_capacity_bytes{`+inst+`} > 0)`, "{{instance}} {{tier}}")),
				ts("Migrations between tiers", "ops", "Memories moved between tiers per second.", 12,
					q(`sum by (from, to) (rate(engram_storage_tier_migrations_total{`+inst+`}[$__rate_interval]))`, "{{from}} → {{to}}")),
				ts("Cache hit rate", "percentunit", "Hot-tier cache hits over all lookups.", 12,
					q(`sum by (instance) (rate(engram_cache_requests_total{`+inst+`, result="hit"}[$__rate_interval])) / sum by (instance) (rate(engram_cache_requests_total{`+inst+`}[$__rate_interval]))`, "{{instance}}")),
			}},
			{"Disk and change log", []panel{
				ts("Disk bytes", "bytes", "Bytes the storage engine uses on disk.", 12,
					q(`engram_storage_disk_bytes{`+inst+`}`, "{{instance}}")),
				ts("Data directory filesystem", "bytes", "Free and total bytes of the filesystem holding the data directory, and the reserve (min_free_space) under which writes are refused (alerts DiskFillingUp when free space is predicted to reach the reserve within 4h, WritesRefusedDiskFull once writes are refused).", 12,
					q(`engram_storage_disk_free_bytes{`+inst+`}`, "{{instance}} free"),
					q(`engram_storage_disk_total_bytes{`+inst+`}`, "{{instance}} total"),
					q(`engram_storage_min_free_bytes{`+inst+`}`, "{{instance}} reserve")),
				ts("Writes refused for disk space", "short", "1 while the data directory's filesystem is under min_free_space and every write gets 507 INSUFFICIENT_STORAGE (alert WritesRefusedDiskFull).", 12,
					q(`engram_storage_writes_refused{`+inst+`}`, "{{instance}}")),
				ts("On-disk corruption found", "short", "Reads and compactions that met a storage file failing its checksum since the server started: above 0, part of the data directory is damaged, reads that need it fail with STORAGE_CORRUPT, and it must be restored from a backup (alert StorageCorruption).", 12,
					q(`engram_storage_corruption_events_total{`+inst+`}`, "{{instance}}")),
				ts("Compactions", "ops", "Storage engine compactions per second.", 12,
					q(`rate(engram_storage_compactions_total{`+inst+`}[$__rate_interval])`, "{{instance}}")),
				ts("Change-log growth", "wps", "Change-log sequence numbers per second (mutations made durable).", 12,
					q(`deriv(engram_changelog_sequence{`+inst+`}[$__rate_interval])`, "{{instance}}")),
				ts("WAL fsync latency", "s", "p50 and p99 of the write-ahead-log fsyncs every durable write waits for: the floor of remember latency (alert SlowWALSync at 50ms p99).", 12,
					q(`histogram_quantile(0.5, sum by (instance, le) (rate(engram_storage_wal_sync_duration_seconds_bucket{`+inst+`}[$__rate_interval])))`, "{{instance}} p50"),
					q(`histogram_quantile(0.99, sum by (instance, le) (rate(engram_storage_wal_sync_duration_seconds_bucket{`+inst+`}[$__rate_interval])))`, "{{instance}} p99")),
				ts("Writes per fsync", "short", "Durable writes each write-ahead-log fsync covered (group commit): near 1 when writes arrive one at a time, higher under concurrent load.", 12,
					q(`rate(engram_storage_wal_synced_writes_total{`+inst+`}[$__rate_interval]) / rate(engram_storage_wal_sync_duration_seconds_count{`+inst+`}[$__rate_interval])`, "{{instance}}")),
			}},
			{"Backup", []panel{
				ts("Backup RPO", "s", "Age of the oldest change not yet shipped, per target (alert BackupRPOHigh at 5m).", 8,
					q(`engram_backup_rpo_seconds{`+inst+`}`, "{{target}}")),
				ts("Time since last successful backup", "s", "Per target and kind (snapshot, log); alert BackupStale at 26h for snapshots.", 8,
					q(`time() - engram_backup_last_success_timestamp_seconds{`+inst+`}`, "{{target}} {{kind}}")),
				ts("Change-log sequences not yet shipped", "short", "Durable change-log sequence minus the sequence shipped to each target.", 8,
					q(`max by (instance) (engram_changelog_sequence{`+inst+`}) - on (instance) group_right max by (instance, target) (engram_backup_shipped_sequence{`+inst+`})`, "{{target}}")),
				ts("Uploaded bytes", "Bps", "Bytes uploaded to each backup target per second.", 8,
					q(`sum by (target) (rate(engram_backup_uploaded_bytes_total{`+inst+`}[$__rate_interval]))`, "{{target}}")),
				ts("Backup errors", "ops", "Backup errors per second, by target and stage (alert BackupShippingErrors).", 8,
					q(`sum by (target, stage) (rate(engram_backup_errors_total{`+inst+`}[$__rate_interval]))`, "{{target}} {{stage}}")),
				ts("Time since last passed verification", "s", "Per target, set by engram-ops backup verify (alert RestoreDrillStale at 8 days).", 4,
					q(`time() - engram_backup_last_verified_timestamp_seconds{`+inst+`}`, "{{target}}")),
				ts("Restore drill duration", "s", "How long the last restore drill (backup verify --level 4) took, per target.", 4,
					q(`engram_backup_last_restore_drill_seconds{`+inst+`}`, "{{target}}")),
			}},
		},
	}
}

func apiPerformance() board {
	pct := func(p string) panel {
		return ts("Latency p"+p+" by route", "s", "p"+p+" HTTP latency per route over 5m (recording rule instance_route:engram_http_request_duration_seconds:p"+p+").", 8,
			q(`instance_route:engram_http_request_duration_seconds:p`+p+`{`+inst+`}`, "{{route}}"))
	}
	return board{
		file: "api-performance.json", uid: "engram-api-performance", title: "Engram / API performance",
		desc: "REST API and gRPC service: per-route and per-method rates, latency, status codes, in-flight requests, rate limiting and authentication failures.",
		tags: []string{"engram"},
		rows: []row{
			{"Requests", []panel{
				ts("Request rate by route", "reqps", "HTTP requests per second, by route pattern and method.", 12,
					q(`sum by (route, method) (rate(engram_http_requests_total{`+inst+`}[$__rate_interval]))`, "{{method}} {{route}}")),
				ts("Status codes", "reqps", "HTTP responses per second, by status code.", 12,
					q(`sum by (code) (rate(engram_http_requests_total{`+inst+`}[$__rate_interval]))`, "{{code}}")),
			}},
			{"Latency", []panel{
				pct("50"), pct("95"), pct("99"),
				ts("Mean latency by route", "s", "Average HTTP latency per route.", 12,
					q(`sum by (route) (rate(engram_http_request_duration_seconds_sum{`+inst+`}[$__rate_interval])) / sum by (route) (rate(engram_http_request_duration_seconds_count{`+inst+`}[$__rate_interval]))`, "{{route}}")),
				ts("In-flight requests", "short", "HTTP requests being served.", 12,
					q(`engram_http_in_flight_requests{`+inst+`}`, "{{instance}}")),
				ts("Connections", "short", "Open client connections against server.max_connections, and connections refused at the cap per second.", 12,
					q(`engram_http_connections{`+inst+`}`, "open {{instance}}"),
					q(`rate(engram_http_connections_refused_total{`+inst+`}[$__rate_interval])`, "refused/s {{instance}}")),
			}},
			{"gRPC (engram.v1.EngramService)", []panel{
				ts("gRPC call rate by method", "reqps", "gRPC calls per second, by method (a stream is one call).", 12,
					q(`sum by (method) (rate(engram_grpc_requests_total{`+inst+`}[$__rate_interval]))`, "{{method}}")),
				ts("gRPC status codes", "reqps", "gRPC calls per second, by status code.", 12,
					q(`sum by (code) (rate(engram_grpc_requests_total{`+inst+`}[$__rate_interval]))`, "{{code}}")),
				ts("gRPC latency p99 by method", "s", "p99 gRPC call latency per method over 5m (a stream: from its opening to its end).", 8,
					q(`histogram_quantile(0.99, sum by (method, le) (rate(engram_grpc_request_duration_seconds_bucket{`+inst+`}[5m])))`, "{{method}}")),
				ts("REST and gRPC p99", "s", "p99 latency of all REST requests next to all unary gRPC calls, over 5m.", 8,
					q(`histogram_quantile(0.99, sum by (le) (rate(engram_http_request_duration_seconds_bucket{`+inst+`}[5m])))`, "REST"),
					q(`histogram_quantile(0.99, sum by (le) (rate(engram_grpc_request_duration_seconds_bucket{`+inst+`, method!~"Streaming.*"}[5m])))`, "gRPC unary")),
				ts("gRPC stream messages", "ops", "Messages per second on gRPC streams, by method and direction; in-flight calls include open streams.", 8,
					q(`sum by (method, direction) (rate(engram_grpc_stream_messages_total{`+inst+`}[$__rate_interval]))`, "{{method}} {{direction}}"),
					q(`engram_grpc_in_flight_requests{`+inst+`}`, "in flight {{instance}}")),
			}},
			{"Event streams (/api/v1/stream/*)", []panel{
				ts("Open streams", "short", "Server-sent event streams open, by stream, against streams.max_subscribers.", 8,
					q(`sum by (stream) (engram_stream_subscribers{`+inst+`})`, "{{stream}}")),
				ts("Events dropped for slow clients", "ops", "Events a stream's bounded queue dropped per second (the client is told with event: warning), by stream.", 8,
					q(`sum by (stream) (rate(engram_stream_events_dropped_total{`+inst+`}[$__rate_interval]))`, "{{stream}}")),
				ts("Streams refused", "ops", "Stream requests refused per second at streams.max_subscribers (503 TOO_MANY_STREAMS).", 8,
					q(`sum(rate(engram_stream_refused_total{`+inst+`}[$__rate_interval]))`, "refused")),
			}},
			{"Access control", []panel{
				ts("Rate-limited requests", "reqps", "Requests rejected by rate limiting (429), by space (alert TooManyRateLimited).", 12,
					q(`sum by (space) (rate(engram_rate_limited_total{`+instSpace+`}[$__rate_interval]))`, "{{space}}")),
				ts("Authentication failures", "reqps", "Requests rejected by authentication, by reason (alert AuthFailuresSpike).", 12,
					q(`sum by (reason) (rate(engram_auth_failures_total{`+inst+`}[$__rate_interval]))`, "{{reason}}")),
			}},
		},
	}
}

// All renders every dashboard to indented JSON (with a trailing newline).
func All() ([]File, error) {
	var out []File
	for _, b := range boards() {
		d, err := b.build()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", b.file, err)
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(d); err != nil {
			return nil, fmt.Errorf("%s: %w", b.file, err)
		}
		out = append(out, File{Name: b.file, JSON: buf.Bytes()})
	}
	return out, nil
}

func ptr[T any](v T) *T { return &v }

func datasourceRef() common.DataSourceRef {
	return common.DataSourceRef{Type: ptr("prometheus"), Uid: ptr("${datasource}")}
}

//lint:ignore SA1019 Grafana's file provisioning reads classic dashboard JSON, which this builder writes
func (b board) build() (dashboard.Dashboard, error) {
	ds := datasourceRef()
	//lint:ignore SA1019 as above: classic dashboard JSON
	db := dashboard.NewDashboardBuilder(b.title).
		Uid(b.uid).
		Description(b.desc).
		Tags(b.tags).
		Refresh(Refresh).
		Time("now-1h", "now").
		Timezone(common.TimeZoneBrowser).
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		Editable().
		WithVariable(dashboard.NewDatasourceVariableBuilder("datasource").
			Label("Data source").
			Type("prometheus")).
		WithVariable(dashboard.NewQueryVariableBuilder("instance").
			Label("Instance").
			Datasource(ds).
			Query(dashboard.StringOrMap{String: ptr(`label_values(engram_build_info, instance)`)}).
			Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
			Sort(dashboard.VariableSortAlphabeticalAsc).
			Multi(true).
			IncludeAll(true).
			AllValue(".*"))
	// Space: panels whose metric has no space label ignore it.
	db = db.WithVariable(dashboard.NewQueryVariableBuilder("space").
		Label("Space").
		Datasource(ds).
		Query(dashboard.StringOrMap{String: ptr(`label_values(engram_memories{instance=~"$instance"}, space)`)}).
		Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
		Sort(dashboard.VariableSortAlphabeticalAsc).
		Multi(true).
		IncludeAll(true).
		AllValue(".*"))
	var id uint32
	var y uint32
	for _, r := range b.rows {
		id++
		db = db.WithRow(dashboard.NewRowBuilder(r.title).Id(id).GridPos(dashboard.GridPos{X: 0, Y: y, W: 24, H: 1}))
		y++
		var x, rowH uint32
		for _, p := range r.panels {
			if x+p.w > 24 {
				x, y, rowH = 0, y+rowH, 0
			}
			id++
			db = db.WithPanel(p.builder(id, dashboard.GridPos{X: x, Y: y, W: p.w, H: p.h}, ds))
			x += p.w
			rowH = max(rowH, p.h)
		}
		y += rowH
	}
	return db.Build()
}

func (p panel) targets() []cog.Builder[variants.Dataquery] {
	var out []cog.Builder[variants.Dataquery]
	for i, qq := range p.queries {
		t := prometheus.NewDataqueryBuilder().
			Datasource(datasourceRef()).
			RefId(string(rune('A' + i))).
			Expr(qq.expr).
			LegendFormat(qq.legend)
		switch p.kind {
		case heatMap:
			t = t.Format(prometheus.PromQueryFormatHeatmap)
		case singleStat:
			t = t.Instant()
		}
		out = append(out, t)
	}
	return out
}

func (p panel) builder(id uint32, pos dashboard.GridPos, ds common.DataSourceRef) cog.Builder[dashboard.Panel] {
	switch p.kind {
	case singleStat:
		b := stat.NewPanelBuilder().Id(id).Title(p.title).Description(p.desc).Datasource(ds).GridPos(pos).Unit(p.unit).
			GraphMode(common.BigValueGraphModeNone)
		if p.unit == "none" {
			b = b.TextMode(common.BigValueTextModeName)
		}
		for _, t := range p.targets() {
			b = b.WithTarget(t)
		}
		return b
	case heatMap:
		b := heatmap.NewPanelBuilder().Id(id).Title(p.title).Description(p.desc).Datasource(ds).GridPos(pos).Unit(p.unit).
			Calculate(false)
		for _, t := range p.targets() {
			b = b.WithTarget(t)
		}
		return b
	default:
		b := timeseries.NewPanelBuilder().Id(id).Title(p.title).Description(p.desc).Datasource(ds).GridPos(pos).Unit(p.unit).
			FillOpacity(10).
			Legend(common.NewVizLegendOptionsBuilder().
				ShowLegend(true).
				DisplayMode(common.LegendDisplayModeList).
				Placement(common.LegendPlacementBottom)).
			Tooltip(common.NewVizTooltipOptionsBuilder().
				Mode(common.TooltipDisplayModeMulti).
				Sort(common.SortOrderDescending))
		if p.unit == "s" || p.unit == "bytes" || p.unit == "percentunit" {
			b = b.Min(0)
		}
		for _, t := range p.targets() {
			b = b.WithTarget(t)
		}
		return b
	}
}
