package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Backup holds the engram_backup_* metrics of design brief §5 for one
// target and implements backup.Observer. The target label is the target URL
// without credentials.
type Backup struct {
	target       string
	shipped      *prometheus.GaugeVec
	rpo          *prometheus.GaugeVec
	lastSuccess  *prometheus.GaugeVec
	uploaded     *prometheus.CounterVec
	errors       *prometheus.CounterVec
	lastVerified *prometheus.GaugeVec
	drill        *prometheus.GaugeVec
	fenced       *prometheus.GaugeVec
	generation   *prometheus.GaugeVec
}

// BackupStages are the stage labels of engram_backup_errors_total, exported
// at zero from the start.
var BackupStages = []string{"log", "snapshot", "resume", "verify", "restore"}

// NewBackup registers the backup metrics for one target on reg (the
// server ships to one target).
func NewBackup(reg prometheus.Registerer, target string) (*Backup, error) {
	b := &Backup{
		target: target,
		shipped: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "engram_backup_shipped_sequence",
			Help: "Highest change-log sequence stored on the backup target."}, []string{"target"}),
		rpo: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "engram_backup_rpo_seconds",
			Help: "Age of the oldest change not yet shipped to the target (0 when caught up)."}, []string{"target"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "engram_backup_last_success_timestamp_seconds",
			Help: "Unix time of the last successful snapshot or log shipment."}, []string{"target", "kind"}),
		uploaded: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "engram_backup_uploaded_bytes_total",
			Help: "Bytes uploaded to the backup target (stored, i.e. compressed and encrypted)."}, []string{"target"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "engram_backup_errors_total",
			Help: "Backup failures by stage."}, []string{"target", "stage"}),
		lastVerified: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "engram_backup_last_verified_timestamp_seconds",
			Help: "Unix time of the last passed backup verification."}, []string{"target"}),
		drill: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "engram_backup_last_restore_drill_seconds",
			Help: "Duration of the last restore drill (verify level 4)."}, []string{"target"}),
		fenced: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "engram_backup_fenced",
			Help: "1 when shipping stopped because another primary was promoted (the archive is at a later generation), else 0."}, []string{"target"}),
		generation: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "engram_backup_generation",
			Help: "Generation (primary term) this server ships to the archive as; a promotion claims the next one."}, []string{"target"}),
	}
	for _, c := range []prometheus.Collector{b.shipped, b.rpo, b.lastSuccess, b.uploaded, b.errors, b.lastVerified, b.drill, b.fenced, b.generation} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	b.shipped.WithLabelValues(target)
	b.rpo.WithLabelValues(target)
	b.uploaded.WithLabelValues(target)
	b.fenced.WithLabelValues(target)
	for _, s := range BackupStages {
		b.errors.WithLabelValues(target, s)
	}
	return b, nil
}

// ShippedSequence sets engram_backup_shipped_sequence.
func (b *Backup) ShippedSequence(seq uint64) { b.shipped.WithLabelValues(b.target).Set(float64(seq)) }

// RPO sets engram_backup_rpo_seconds.
func (b *Backup) RPO(seconds float64) { b.rpo.WithLabelValues(b.target).Set(seconds) }

// Success sets engram_backup_last_success_timestamp_seconds{kind}.
func (b *Backup) Success(kind string, at time.Time) {
	b.lastSuccess.WithLabelValues(b.target, kind).Set(float64(at.UnixNano()) / 1e9)
}

// Uploaded adds to engram_backup_uploaded_bytes_total.
func (b *Backup) Uploaded(n int64) { b.uploaded.WithLabelValues(b.target).Add(float64(n)) }

// Error counts a failure in engram_backup_errors_total{stage}.
func (b *Backup) Error(stage string) { b.errors.WithLabelValues(b.target, stage).Inc() }

// Verified sets engram_backup_last_verified_timestamp_seconds.
func (b *Backup) Verified(at time.Time) {
	b.lastVerified.WithLabelValues(b.target).Set(float64(at.UnixNano()) / 1e9)
}

// RestoreDrill sets engram_backup_last_restore_drill_seconds.
func (b *Backup) RestoreDrill(d time.Duration) { b.drill.WithLabelValues(b.target).Set(d.Seconds()) }

// Generation sets engram_backup_generation.
func (b *Backup) Generation(gen uint64) { b.generation.WithLabelValues(b.target).Set(float64(gen)) }

// Fenced sets engram_backup_fenced to 1.
func (b *Backup) Fenced() { b.fenced.WithLabelValues(b.target).Set(1) }
