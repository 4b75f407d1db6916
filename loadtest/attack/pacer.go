package attack

import (
	"math"
	"math/rand/v2"
	"time"
)

// Pacer yields the intended send times of an arrival process, as offsets
// from the start of the attack. Next is called by one goroutine (the
// attack's scheduler) and need not be safe for concurrent use; RateAt,
// MeanRate and PeakRate must not depend on Next's state, and are called
// from other goroutines while Next runs.
type Pacer interface {
	// Next returns the offset of the next arrival; offsets never decrease.
	Next() time.Duration
	// RateAt is the instantaneous rate (arrivals per second) at offset t.
	RateAt(t time.Duration) float64
	// MeanRate is the average rate over [0, d); RateAt(0) for d <= 0.
	MeanRate(d time.Duration) float64
	// PeakRate is the highest rate the process reaches.
	PeakRate() float64
}

// Constant spaces arrivals evenly at Rate per second.
type Constant struct {
	Rate float64
	n    int64
}

// NewConstant returns a constant pacer of rate arrivals per second.
func NewConstant(rate float64) *Constant { return &Constant{Rate: rate} }

// Next computes the offset from the arrival's index, not by accumulating
// gaps: no drift at any rate.
func (p *Constant) Next() time.Duration {
	p.n++
	return time.Duration(float64(p.n-1) * float64(time.Second) / p.Rate)
}

func (p *Constant) RateAt(time.Duration) float64   { return p.Rate }
func (p *Constant) MeanRate(time.Duration) float64 { return p.Rate }
func (p *Constant) PeakRate() float64              { return p.Rate }

// Poisson draws exponential gaps of mean 1/Rate: a Poisson process.
type Poisson struct {
	Rate float64
	rng  *rand.Rand
	n    int64
	t    time.Duration
}

// NewPoisson returns a Poisson pacer of rate arrivals per second; seed
// drives its randomness.
func NewPoisson(rate float64, seed int64) *Poisson {
	return &Poisson{Rate: rate, rng: rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15))}
}

// Next returns 0 for the first arrival, then adds an exponential gap.
func (p *Poisson) Next() time.Duration {
	p.n++
	if p.n > 1 {
		p.t += time.Duration(p.rng.ExpFloat64() / p.Rate * float64(time.Second))
	}
	return p.t
}

func (p *Poisson) RateAt(time.Duration) float64   { return p.Rate }
func (p *Poisson) MeanRate(time.Duration) float64 { return p.Rate }
func (p *Poisson) PeakRate() float64              { return p.Rate }

// Ramp goes linearly from StartRate to Rate over Seconds, then stays at
// Rate.
type Ramp struct {
	StartRate, Rate, Seconds float64
	piecewise
}

// NewRamp returns a ramp pacer.
func NewRamp(startRate, rate, seconds float64) *Ramp {
	r := &Ramp{StartRate: startRate, Rate: rate, Seconds: seconds}
	r.piecewise.rate = r.RateAt
	return r
}

func (p *Ramp) RateAt(t time.Duration) float64 {
	s := t.Seconds()
	if s >= p.Seconds {
		return p.Rate
	}
	return p.StartRate + (p.Rate-p.StartRate)*s/p.Seconds
}

func (p *Ramp) MeanRate(d time.Duration) float64 {
	s := d.Seconds()
	if s <= 0 {
		return p.RateAt(0)
	}
	r := math.Min(s, p.Seconds)
	endRate := p.StartRate + (p.Rate-p.StartRate)*r/p.Seconds
	n := (p.StartRate+endRate)/2*r + p.Rate*math.Max(0, s-p.Seconds)
	return n / s
}

func (p *Ramp) PeakRate() float64 { return max(p.StartRate, p.Rate) }

// Burst offers BurstRate for DurationSec at the start of every PeriodSec,
// and BaseRate in between.
type Burst struct {
	BaseRate, BurstRate, DurationSec, PeriodSec float64
	piecewise
}

// NewBurst returns a burst pacer.
func NewBurst(baseRate, burstRate, durationSec, periodSec float64) *Burst {
	b := &Burst{BaseRate: baseRate, BurstRate: burstRate, DurationSec: durationSec, PeriodSec: periodSec}
	b.piecewise.rate = b.RateAt
	return b
}

func (p *Burst) RateAt(t time.Duration) float64 {
	if math.Mod(t.Seconds(), p.PeriodSec) < p.DurationSec {
		return p.BurstRate
	}
	return p.BaseRate
}

func (p *Burst) MeanRate(d time.Duration) float64 {
	s := d.Seconds()
	if s <= 0 {
		return p.RateAt(0)
	}
	full := math.Floor(s / p.PeriodSec)
	rest := s - full*p.PeriodSec
	burst := full*p.DurationSec + math.Min(rest, p.DurationSec)
	return (burst*p.BurstRate + (s-burst)*p.BaseRate) / s
}

func (p *Burst) PeakRate() float64 { return max(p.BaseRate, p.BurstRate) }

// piecewise is the Next of a rate that changes over time: each gap
// follows the rate at the previous arrival, which tracks ramps and burst
// edges to within one gap.
type piecewise struct {
	rate func(time.Duration) float64
	n    int64
	t    time.Duration
}

func (p *piecewise) Next() time.Duration {
	p.n++
	if p.n > 1 {
		p.t += time.Duration(float64(time.Second) / p.rate(p.t))
	}
	return p.t
}
