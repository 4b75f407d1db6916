package loadtest

import (
	"fmt"

	"github.com/engram-ops/engram-ops/loadtest/attack"
)

// Verdicts of Audit.LimitedBy.
const (
	LimitedByServer    = attack.LimitedByServer
	LimitedByGenerator = attack.LimitedByGenerator
	LimitedByMachine   = attack.LimitedByMachine
)

// judge decides who limited the run (attack.Judge), with what the result
// knows of the data set's setup.
func judge(res *Result) {
	var notes []string
	if s := res.Setup; s.IndexPending > 0 {
		notes = append(notes, fmt.Sprintf("the server's index had not settled: %d preloaded memories were still waiting to be indexed when the load started (after %.0fs); recalls scanned them exactly, so read latency and server CPU are above the steady state",
			s.IndexPending, s.IndexSettleSeconds))
	}
	attack.Judge(&res.Audit, attack.RunFacts{Scheduled: res.Scheduled, GOMAXPROCS: res.Generator.GOMAXPROCS,
		NumCPU: res.Generator.NumCPU, WallSeconds: res.DurationSeconds + res.WarmupSeconds, Interrupted: res.Interrupted,
		RequestedRate: res.RequestedRate, AchievedRate: res.AchievedRate, Notes: notes})
}
