// Package tui is the live status board of `engram-ops tui`: a bubbletea
// program that polls one server and draws health, per-operation
// throughput, errors and latency, spaces, storage, backup, alerts and any
// migration or load test in progress.
//
// It reads through the Source interface (ClientSource implements it over
// ops/client): the system health report and /metrics, asked for in the
// delimited protobuf format and read as text when a server or proxy
// answers text; both become the same dto.MetricFamily map. A Scraper turns two successive scrapes into a
// Snapshot: rates from counter deltas and p50/p95/p99 from histogram bucket
// deltas, with Prometheus' counter-reset rule (a counter that went down
// restarted, so its value is the increase), so rates are never negative.
// Alerts are evaluated with the thresholds, quantiles and for: durations
// read from the rules the dashboards package ships, or read from
// Prometheus (PrometheusAlerts), falling back to the board's own
// evaluation, with Prometheus' error, while Prometheus does not answer. A figure the board cannot know stays nil
// and Snapshot.Unknown says why; the view prints "—" for it.
//
// The Model is pure: Snapshot in, View out, with one key map (keys.go)
// and one styles file (styles.go). It redraws only after a message
// changed something, polls every Config.Refresh and doubles the interval
// per failed poll up to Config.MaxBackoff, saying so in the header.
//
// With several servers (a sharded deployment) the board is the shard
// board instead: a ShardScraper reads each Member's health and /metrics
// in parallel and RenderShards draws one line per server with its shard,
// role, applied sequence, lag and whether it is up (ShardModel is its
// live program).
package tui
