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
// Self-audit. The pacer dispatches every arrival whose time has come in one
// wake-up, sleeping precisely in between, and hands it through a queue to a
// warm, bounded worker pool that grows to what the load needs; it never
// waits for a worker. An arrival that starts more than late_after_ms after
// its intended time is a late send, attributed to a full pool, a late pacer
// or a late worker; one later than the drop bound is dropped. Late and
// dropped sends, achieved versus requested rate, the scheduling lag
// distribution, the process's CPU use (getrusage) and run-queue wait are in
// every result, and the result says whether the server, the generator or
// contention for the machine's CPU limited the run. Before the load, the
// run waits for the server to index the preloaded data set.
//
// Layering. loadtest reaches servers only through ops/client (and the wire
// types of ops/api). It must not import core, ops (the server), cobra or any
// other CLI or UI package: cmd/engram-ops owns flags, terminals and exit codes.
package loadtest
