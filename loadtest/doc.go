// Package loadtest is engram-ops' load generator, as a library first: strict
// scenario files, an open-model pacer and attacker, HDR-histogram results,
// reporters, regression comparison and merging. cmd/engram-ops wraps it in
// the `loadtest` command group.
//
// Model. Requests are scheduled at the arrival times the scenario's pattern
// dictates (constant, poisson, ramp, burst), whether or not earlier requests
// have finished, and latency is measured from the *intended* send time, so
// a slow server cannot hide its queueing delay by slowing the generator down
// (coordinated omission). The uncorrected service time (actual send to
// response) is recorded beside it. Both go into HDR histograms, so memory
// stays bounded however long a run lasts, and histograms from several
// generator machines merge exactly.
//
// Self-audit. The attacker hands each arrival to a bounded worker pool that
// grows to what the load needs. An arrival that finds no free worker, or that
// the pacer itself dispatches late, is a late send; one later than the drop
// bound is dropped. Late and dropped sends, achieved versus requested rate,
// the scheduling lag distribution and the process's CPU use (getrusage) are
// in every result, and the result says when the generator, not the server,
// limited the run.
//
// Layering. loadtest reaches servers only through ops/client (and the wire
// types of ops/api). It must not import core, ops (the server), cobra or any
// other CLI or UI package: cmd/engram-ops owns flags, terminals and exit codes.
package loadtest
