package metrics

import "github.com/prometheus/client_golang/prometheus"

// Replica holds the engram_replica_* metrics of a follower (serve
// --follow) for the archive it follows, and implements
// backup.FollowerObserver. The target label is the archive URL without
// credentials.
type Replica struct {
	target  string
	applied *prometheus.GaugeVec
	head    *prometheus.GaugeVec
	gen     *prometheus.GaugeVec
	lag     *prometheus.GaugeVec
	errors  *prometheus.CounterVec
}

// NewReplica registers the replica metrics for one archive on reg.
func NewReplica(reg prometheus.Registerer, target string) (*Replica, error) {
	r := &Replica{
		target: target,
		applied: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "engram_replica_applied_sequence",
			Help: "Last change-log sequence this follower applied from the archive."}, []string{"target"}),
		head: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "engram_replica_head_sequence",
			Help: "Newest sequence the archive's head.json named at the follower's last poll."}, []string{"target"}),
		gen: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "engram_replica_generation",
			Help: "Generation (primary term) of the archive's head.json at the follower's last poll."}, []string{"target"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "engram_replica_lag_seconds",
			Help: "0 when the follower applied the archive's head, else the age of the first change not applied (its commit time on the primary)."}, []string{"target"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "engram_replica_apply_errors_total",
			Help: "Follower polls that stopped short of the archive's head (target unreachable, a missing or damaged segment, a refused change)."}, []string{"target"}),
	}
	for _, c := range []prometheus.Collector{r.applied, r.head, r.gen, r.lag, r.errors} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	r.applied.WithLabelValues(target)
	r.head.WithLabelValues(target)
	r.gen.WithLabelValues(target)
	r.lag.WithLabelValues(target)
	r.errors.WithLabelValues(target)
	return r, nil
}

// AppliedSequence sets engram_replica_applied_sequence.
func (r *Replica) AppliedSequence(seq uint64) { r.applied.WithLabelValues(r.target).Set(float64(seq)) }

// HeadSequence sets engram_replica_head_sequence.
func (r *Replica) HeadSequence(seq uint64) { r.head.WithLabelValues(r.target).Set(float64(seq)) }

// Generation sets engram_replica_generation.
func (r *Replica) Generation(gen uint64) { r.gen.WithLabelValues(r.target).Set(float64(gen)) }

// Lag sets engram_replica_lag_seconds.
func (r *Replica) Lag(seconds float64) { r.lag.WithLabelValues(r.target).Set(seconds) }

// ApplyError counts a failed poll in engram_replica_apply_errors_total.
func (r *Replica) ApplyError() { r.errors.WithLabelValues(r.target).Inc() }
