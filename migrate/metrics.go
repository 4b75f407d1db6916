package migrate

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the engram_migrate_* metrics of a run.
type Metrics struct {
	records  *prometheus.CounterVec
	rejects  *prometheus.CounterVec
	position *prometheus.GaugeVec
}

// NewMetrics registers the migration metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "engram_migrate_records_total",
			Help: "Source records committed to Engram (written, or skipped by the mapping) by the running migration.",
		}, []string{"source", "object"}),
		rejects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "engram_migrate_rejects_total",
			Help: "Source records rejected (written to the reject file) by the running migration.",
		}, []string{"source", "object"}),
		position: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "engram_migrate_source_position",
			Help: "Records of the source read and committed by this run, labelled with the object of the last one.",
		}, []string{"source", "object"}),
	}
	reg.MustRegister(m.records, m.rejects, m.position)
	return m
}
