package attack

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"
)

// pacers are one of each implementation, made afresh for each use.
var pacers = []struct {
	name string
	new  func() Pacer
	// random: counts vary around the mean (Poisson), so the tolerance is
	// statistical.
	random bool
}{
	{"constant", func() Pacer { return NewConstant(5000) }, false},
	{"constant-odd", func() Pacer { return NewConstant(333.3) }, false},
	{"poisson", func() Pacer { return NewPoisson(5000, 1) }, true},
	{"ramp", func() Pacer { return NewRamp(100, 5000, 6) }, false},
	{"ramp-down", func() Pacer { return NewRamp(4000, 500, 3) }, false},
	{"burst", func() Pacer { return NewBurst(1000, 5000, 1, 4) }, false},
}

// TestPacerConformance holds every Pacer to the interface's contract on
// a virtual clock (the offsets Next returns; no wall time): offsets start
// at 0 and never decrease; the arrivals in any window [a, b) number the
// integral of the rate over it, b·MeanRate(b) − a·MeanRate(a), within a
// tolerance; RateAt never exceeds PeakRate; and the rate methods do not
// depend on how far Next has gone.
func TestPacerConformance(t *testing.T) {
	const horizon = 12 * time.Second
	for _, pc := range pacers {
		t.Run(pc.name, func(t *testing.T) {
			p := pc.new()
			probe := func() []float64 {
				var v []float64
				for _, at := range []time.Duration{0, 500 * time.Millisecond, 2 * time.Second, 5 * time.Second, horizon} {
					v = append(v, p.RateAt(at), p.MeanRate(at))
				}
				return append(v, p.PeakRate())
			}
			before := probe()
			var offsets []time.Duration
			for at := p.Next(); at < horizon; at = p.Next() {
				if n := len(offsets); n > 0 && at < offsets[n-1] {
					t.Fatalf("arrival %d at %v, before the previous one at %v", n, at, offsets[n-1])
				}
				offsets = append(offsets, at)
			}
			if len(offsets) == 0 || offsets[0] != 0 {
				t.Fatalf("first arrival at %v, want 0", offsets[:min(1, len(offsets))])
			}
			if after := probe(); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Errorf("rates changed as Next advanced: %v, then %v", before, after)
			}
			count := func(a, b time.Duration) int {
				n := 0
				for _, at := range offsets {
					if at >= a && at < b {
						n++
					}
				}
				return n
			}
			integral := func(d time.Duration) float64 { return d.Seconds() * p.MeanRate(d) }
			for a := time.Duration(0); a < horizon; a += 250 * time.Millisecond {
				for _, w := range []time.Duration{250 * time.Millisecond, time.Second, 3 * time.Second} {
					b := min(a+w, horizon)
					want := integral(b) - integral(a)
					// A piecewise rate follows each change within one gap;
					// a Poisson count has a standard deviation of sqrt(want).
					tol := 2 + 0.01*want
					if pc.random {
						tol = 2 + 5*math.Sqrt(want)
					}
					if got := float64(count(a, b)); math.Abs(got-want) > tol {
						t.Errorf("[%v, %v): %.0f arrivals, want %.1f ± %.1f", a, b, got, want, tol)
					}
				}
				if r := p.RateAt(a); r > p.PeakRate() || r <= 0 {
					t.Errorf("RateAt(%v) = %v, outside (0, PeakRate %v]", a, r, p.PeakRate())
				}
			}
		})
	}
}

// BenchmarkPacerNext is the cost of computing one arrival time.
func BenchmarkPacerNext(b *testing.B) {
	for _, pc := range pacers {
		b.Run(pc.name, func(b *testing.B) {
			p := pc.new()
			for b.Loop() {
				p.Next()
			}
		})
	}
}

// BenchmarkPacerDispatch drives the scheduler, hand-off and worker pool
// with requests that cost nothing, at a fixed rate for b.N arrivals, so
// what it measures is the generator's own timing: late-% is the share of
// sends more than 1 ms late, lag-p99-µs the 99th percentile of the
// scheduling lag and cpu-µs/send the process's CPU per send (all of it:
// on a shared machine, compare variants side by side in one run).
func BenchmarkPacerDispatch(b *testing.B) {
	for _, rate := range []float64{1000, 5000, 20000} {
		b.Run(fmt.Sprintf("rate=%.0f", rate), func(b *testing.B) {
			n := max(b.N, 1)
			cfg := testConfig(rate, time.Duration(float64(n)/rate*float64(time.Second)), 1024)
			b.ResetTimer()
			r := attackFunc(context.Background(), cfg, noop)
			b.StopTimer()
			au := r.Audit
			b.ReportMetric(au.LateFraction*100, "late-%")
			b.ReportMetric(au.SchedulingLag.P99MS*1000, "lag-p99-µs")
			if r.Completed > 0 {
				b.ReportMetric((au.CPUUserSec+au.CPUSystemSec)/float64(r.Completed)*1e6, "cpu-µs/send")
			}
			b.ReportMetric(0, "ns/op") // wall time per arrival is 1/rate by construction
		})
	}
}
