// Package loadtest is engram-ops' load generator for Engram servers, as a
// library: strict scenario files (TOML, built-in or given), the workload
// of remember, recall, embedding search, pattern completion and forget
// over an id pool ([data] num_nodes, Engram's meaning) with an optional
// preload ([preload] memories) whose cues are checked for recall@k, the
// routes of either target kind (engram-ops, or an Engram server's
// routes only), the result schema with its reporters, validation,
// regression comparison, merging and the generator's calibration.
// cmd/engram-ops wraps it in the `loadtest` command group.
//
// The timing, pacing, histograms and self-audit are the engine's, package
// loadtest/attack: a scenario becomes an attack.Config (its [arrival]
// pattern a Pacer, its workload a Targeter), and the engine's Report
// becomes a Result. Before the load, Run waits for the server to index
// the preloaded memories. HTTPClient is the HTTP client a generator
// should give ops/client.
//
// Layering. loadtest reaches servers only through ops/client (and the wire
// types of ops/api). It must not import core, ops (the server), cobra or any
// other CLI or UI package: cmd/engram-ops owns flags, terminals and exit codes.
// loadtest/attack imports none of them, nor ops/client.
package loadtest
