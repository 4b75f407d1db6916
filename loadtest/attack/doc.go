// Package attack is the load generator's engine, knowing nothing of what
// it sends: an open-model attacker that offers a Pacer's arrivals, takes
// each arrival's requests from a Targeter, and reports HDR-histogram
// latencies per operation and an audit of its own timing.
//
// Interfaces:
//
//	type Pacer interface {                       // when to send
//		Next() time.Duration                    // offset of the next arrival
//		RateAt(t time.Duration) float64          // rate at offset t
//		MeanRate(d time.Duration) float64        // mean rate over [0, d)
//		PeakRate() float64
//	}
//	type Targeter interface {                    // what to send
//		NewSource(rng *rand.Rand) Source         // one per worker
//	}
//	type Source interface {
//		Next() (op int, r Request)               // op indexes Config.Ops
//	}
//	type Request interface {
//		Do(ctx context.Context) (Outcome, error)
//	}
//
// Constant, Poisson, Ramp and Burst are the Pacers; Repeat, RequestFunc,
// SourceFunc and TargeterFunc adapt functions. Attack runs a Config and
// returns a Report; Config.OnResult streams every request's Hit as it
// completes.
//
// Model. Requests are scheduled at the pacer's arrival times whether or
// not earlier ones have finished, and latency is measured from the
// intended send time, so a slow server cannot hide its queueing delay by
// slowing the generator down (coordinated omission); the service time
// (actual send to answer) is recorded beside it. Both go into HDR
// histograms (NewHistogram, Summarize, Metrics) of one geometry, so memory
// stays bounded and histograms from several machines merge exactly.
//
// Self-audit. The scheduler dispatches every arrival whose time has come
// in one wake-up, sleeping precisely in between, and hands it through a
// queue to a warm, bounded worker pool that grows to what the load needs;
// it never waits for a worker. An arrival that starts more than LateAfter
// after its intended time is late, attributed to a full pool, a late
// pacer or a late worker; one later than DropAfter is dropped. The Audit
// holds late and dropped sends, the scheduling lag distribution, the
// process's CPU use (getrusage) and run-queue wait; Judge says whether
// the server, the generator or contention for the machine's CPU limited
// the run.
package attack
