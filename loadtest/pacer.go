package loadtest

import (
	"math"
	"math/rand/v2"
	"time"
)

// Pacer yields the intended send times of an arrival pattern, as offsets
// from the start of the run. It is used by one goroutine (the attacker's
// scheduler) and is not safe for concurrent use.
type Pacer struct {
	a   Arrival
	rng *rand.Rand
	n   int64         // arrivals yielded (constant pattern: exact n/rate)
	t   time.Duration // offset of the last arrival
}

// NewPacer returns a pacer of a (validated) arrival pattern; seed drives
// the poisson pattern's randomness.
func NewPacer(a Arrival, seed int64) *Pacer {
	return &Pacer{a: a, rng: rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15))}
}

// RateAt is the pattern's instantaneous rate (per second) at offset t.
func (p *Pacer) RateAt(t time.Duration) float64 {
	a := p.a
	switch a.Pattern {
	case "ramp":
		s := t.Seconds()
		if s >= a.RampSeconds {
			return a.Rate
		}
		return a.StartRate + (a.Rate-a.StartRate)*s/a.RampSeconds
	case "burst":
		pos := math.Mod(t.Seconds(), a.BurstPeriodSec)
		if pos < a.BurstDurationSec {
			return a.BurstRate
		}
		return a.BaseRate
	default:
		return a.Rate
	}
}

// MeanRate is the average rate over [0, d).
func (p *Pacer) MeanRate(d time.Duration) float64 {
	a := p.a
	s := d.Seconds()
	if s <= 0 {
		return p.RateAt(0)
	}
	switch a.Pattern {
	case "ramp":
		r := math.Min(s, a.RampSeconds)
		endRate := a.StartRate + (a.Rate-a.StartRate)*r/a.RampSeconds
		n := (a.StartRate+endRate)/2*r + a.Rate*math.Max(0, s-a.RampSeconds)
		return n / s
	case "burst":
		full := math.Floor(s / a.BurstPeriodSec)
		rest := s - full*a.BurstPeriodSec
		burst := full*a.BurstDurationSec + math.Min(rest, a.BurstDurationSec)
		return (burst*a.BurstRate + (s-burst)*a.BaseRate) / s
	default:
		return a.Rate
	}
}

// Next returns the offset of the next arrival.
func (p *Pacer) Next() time.Duration {
	p.n++
	switch p.a.Pattern {
	case "constant":
		// From the index, not by accumulating gaps: no drift at any rate.
		p.t = time.Duration(float64(p.n-1) * float64(time.Second) / p.a.Rate)
	case "poisson":
		if p.n > 1 {
			p.t += time.Duration(p.rng.ExpFloat64() / p.a.Rate * float64(time.Second))
		}
	default:
		// Piecewise: the gap follows the rate at the previous arrival,
		// which tracks ramps and burst edges to within one gap.
		if p.n > 1 {
			p.t += time.Duration(float64(time.Second) / p.RateAt(p.t))
		}
	}
	return p.t
}

// PeakRate is the highest rate the pattern reaches.
func (p *Pacer) PeakRate() float64 {
	a := p.a
	switch a.Pattern {
	case "ramp":
		return max(a.StartRate, a.Rate)
	case "burst":
		return max(a.BaseRate, a.BurstRate)
	default:
		return a.Rate
	}
}
