package core_test

import (
	"math/rand"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/engram-ops/engram-ops/core"
)

// BenchmarkRememberOpenLoop offers durable remembers at a fixed rate (open
// model: each starts at its scheduled time, however long earlier ones take)
// and reports latency percentiles from the scheduled time, so queueing
// behind slow fsyncs is counted. b.N is the number of remembers.
func BenchmarkRememberOpenLoop(b *testing.B) {
	for _, rate := range []int{2000, 5000} {
		b.Run(strconv.Itoa(rate)+"per_s", func(b *testing.B) {
			e, err := core.Open(b.TempDir(), core.Options{Tiers: core.TierOptions{SweepInterval: -1}})
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			interval := time.Second / time.Duration(rate)
			lat := make([]time.Duration, b.N)
			late := make([]time.Duration, b.N)
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				due := start.Add(time.Duration(i) * interval)
				if d := time.Until(due); d > 0 {
					time.Sleep(d)
				}
				wg.Add(1)
				go func(i int, due time.Time) {
					defer wg.Done()
					late[i] = time.Since(due)
					r := rand.New(rand.NewSource(int64(i)))
					if _, err := e.Remember(ctx, "default", core.RememberInput{Content: "note " + strconv.Itoa(r.Int()) + " about the harbour lighthouse and the winter storm"}); err != nil {
						b.Error(err)
					}
					lat[i] = time.Since(due)
				}(i, due)
			}
			wg.Wait()
			b.StopTimer()
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			q := func(p float64) float64 { return float64(lat[int(float64(len(lat)-1)*p)].Microseconds()) / 1000 }
			b.ReportMetric(q(0.5), "p50-ms")
			b.ReportMetric(q(0.99), "p99-ms")
			b.ReportMetric(q(0.999), "p999-ms")
			sort.Slice(late, func(i, j int) bool { return late[i] < late[j] })
			b.ReportMetric(float64(late[len(late)*99/100].Microseconds())/1000, "start-lag-p99-ms")
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "writes/s")
		})
	}
}
