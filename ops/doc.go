// Package ops is the parent of engram-ops' serving side; its children hold
// one job each:
//
//   - ops/server: the HTTP server — routes, handlers, request decoding,
//     error→status mapping, health probes, access log, test-only fault
//     injection. It serves an Engine it is given and opens nothing.
//   - ops/grpcserver: Engram's gRPC service (engram.v1.EngramService,
//     proto/engram/v1) over ops/server's RPC API: the same engine calls,
//     keys, spaces, limits and error codes as REST.
//   - ops/config: the configuration — types, defaults (derived from the
//     engine's), TOML file + ENGRAM_* environment + --set layering,
//     validation that reports every problem at once.
//   - ops/health: the judgement of system health, a pure function of
//     engine figures and thresholds.
//   - ops/metrics: Prometheus collectors on an explicit registry.
//   - ops/api: the plain wire types of the REST API.
//   - ops/client: the typed REST client (load tester, tools, tests).
//   - ops/embedder: the embedders spaces can use (hashing, OpenAI-compatible).
//   - ops/placement: spaces placed on shards — the placement file, the
//     HAProxy router rendered from it, and moving a space between servers.
//
// cmd/engram-ops composes them: it loads the configuration, opens the
// engine, builds the backup shipper and hands them to the server.
// layering_test.go enforces the import rules between them.
package ops
