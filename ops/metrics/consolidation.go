package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Consolidation holds the engram_consolidation_* metrics: consolidation
// passes (episodes grouped into semantic memories) by result, the
// episodes they read, the semantic memories they wrote, and their
// duration.
type Consolidation struct {
	runs     *prometheus.CounterVec
	episodes prometheus.Counter
	beliefs  prometheus.Counter
	duration prometheus.Histogram
}

// NewConsolidation registers the consolidation metrics on reg.
func NewConsolidation(reg prometheus.Registerer) (*Consolidation, error) {
	c := &Consolidation{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "engram_consolidation_runs_total",
			Help: "Consolidation passes, by result (success, failure)."}, []string{"result"}),
		episodes: prometheus.NewCounter(prometheus.CounterOpts{Name: "engram_consolidation_episodes_total",
			Help: "Episodes read by consolidation passes."}),
		beliefs: prometheus.NewCounter(prometheus.CounterOpts{Name: "engram_consolidation_beliefs_written_total",
			Help: "Semantic memories written by consolidation passes."}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "engram_consolidation_duration_seconds",
			Help: "Duration of consolidation passes.", Buckets: DurationBuckets}),
	}
	for _, col := range []prometheus.Collector{c.runs, c.episodes, c.beliefs, c.duration} {
		if err := reg.Register(col); err != nil {
			return nil, err
		}
	}
	c.runs.WithLabelValues("success")
	c.runs.WithLabelValues("failure")
	return c, nil
}

// Observe records one pass.
func (c *Consolidation) Observe(d time.Duration, episodes, beliefs int, err error) {
	result := "success"
	if err != nil {
		result = "failure"
	}
	c.runs.WithLabelValues(result).Inc()
	c.episodes.Add(float64(episodes))
	c.beliefs.Add(float64(beliefs))
	c.duration.Observe(d.Seconds())
}
