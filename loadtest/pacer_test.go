package loadtest

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkPacerNext is the cost of computing one arrival time.
func BenchmarkPacerNext(b *testing.B) {
	for _, a := range []Arrival{
		{Pattern: "constant", Rate: 5000},
		{Pattern: "poisson", Rate: 5000},
		{Pattern: "ramp", StartRate: 100, Rate: 5000, RampSeconds: 60},
		{Pattern: "burst", BaseRate: 1000, BurstRate: 5000, BurstDurationSec: 1, BurstPeriodSec: 10},
	} {
		b.Run(a.Pattern, func(b *testing.B) {
			p := NewPacer(a, 1)
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
			sc := aliveScenario(rate, time.Duration(float64(n)/rate*float64(time.Second)), 1024)
			b.ResetTimer()
			r := attackFunc(context.Background(), sc, noop)
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
