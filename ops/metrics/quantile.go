package metrics

import (
	"sort"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Latency summarises engram_memory_operation_duration_seconds of one
// operation over every space since the server started.
type Latency struct {
	Count uint64
	Sum   float64 // seconds
	// Quantiles holds the estimate of each asked-for quantile, in
	// seconds, in the order asked; empty when Count is 0.
	Quantiles []float64
}

// OperationLatency reads the operation's latency histogram (every space
// summed) and estimates the quantiles qs from its buckets as Prometheus'
// histogram_quantile does: the bucket holding rank q·count, interpolated
// linearly; a rank beyond the last finite bucket answers that bound.
func (m *Metrics) OperationLatency(op string, qs ...float64) Latency {
	ch := make(chan prometheus.Metric, 64)
	go func() {
		m.opDuration.Collect(ch)
		close(ch)
	}()
	bounds := DurationBuckets
	counts := make([]float64, len(bounds))
	var l Latency
	for pm := range ch {
		var d dto.Metric
		if err := pm.Write(&d); err != nil || d.Histogram == nil || labelOf(&d, "operation") != op {
			continue
		}
		h := d.Histogram
		l.Count += h.GetSampleCount()
		l.Sum += h.GetSampleSum()
		for i, b := range h.GetBucket() {
			if i < len(counts) {
				counts[i] += float64(b.GetCumulativeCount())
			}
		}
	}
	if l.Count == 0 {
		return l
	}
	total := float64(l.Count)
	for _, q := range qs {
		rank := q * total
		i := sort.Search(len(counts), func(i int) bool { return counts[i] >= rank })
		if i >= len(counts) {
			l.Quantiles = append(l.Quantiles, bounds[len(bounds)-1])
			continue
		}
		lower, below := 0.0, 0.0
		if i > 0 {
			lower, below = bounds[i-1], counts[i-1]
		}
		v := bounds[i]
		if in := counts[i] - below; in > 0 {
			v = lower + (bounds[i]-lower)*(rank-below)/in
		}
		l.Quantiles = append(l.Quantiles, v)
	}
	return l
}

func labelOf(m *dto.Metric, name string) string {
	for _, lp := range m.GetLabel() {
		if lp.GetName() == name {
			return lp.GetValue()
		}
	}
	return ""
}
