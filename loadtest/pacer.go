package loadtest

import "github.com/engram-ops/engram-ops/loadtest/attack"

// NewPacer returns the pacer of a (validated) [arrival] pattern; seed
// drives the poisson pattern's randomness.
func NewPacer(a Arrival, seed int64) attack.Pacer {
	switch a.Pattern {
	case "poisson":
		return attack.NewPoisson(a.Rate, seed)
	case "ramp":
		return attack.NewRamp(a.StartRate, a.Rate, a.RampSeconds)
	case "burst":
		return attack.NewBurst(a.BaseRate, a.BurstRate, a.BurstDurationSec, a.BurstPeriodSec)
	default:
		return attack.NewConstant(a.Rate)
	}
}
