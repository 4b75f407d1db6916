package ops

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/engram-ops/engram-ops/backup"
	"github.com/engram-ops/engram-ops/backup/file"
	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/ops/metrics"
)

// PathAdminBackup is the admin endpoint of backups: POST takes a snapshot of
// the running server to the configured target, GET reports shipping status.
const PathAdminBackup = "/api/v1/admin/backup"

// BackupOpener opens a backup target URL (s3://bucket/prefix or
// file:///dir). cmd/engram-ops passes backup/target's opener; the default
// knows file:// only.
type BackupOpener func(ctx context.Context, rawURL string) (backup.ObjectStore, error)

func defaultBackupOpener(_ context.Context, rawURL string) (backup.ObjectStore, error) {
	dir, ok := strings.CutPrefix(rawURL, "file://")
	if !ok {
		return nil, fmt.Errorf("backup target %q: only file:// is available in this build", rawURL)
	}
	return file.New(dir)
}

// WithBackup serves the admin backup endpoint for shipper.
func WithBackup(sh *backup.Shipper) Option { return func(s *Server) { s.backup = sh } }

// newShipper builds the backup shipper of cfg.Backup, registering the
// engram_backup_* metrics on reg. Unusable encryption or an unopenable
// target is a refusal to start.
func newShipper(ctx context.Context, cfg Config, eng *core.Engine, engOpts core.Options, reg prometheus.Registerer, logger *slog.Logger, open BackupOpener) (*backup.Shipper, error) {
	if open == nil {
		open = defaultBackupOpener
	}
	store, err := open(ctx, cfg.Backup.To)
	if err != nil {
		return nil, fmt.Errorf("backup.to: %w", err)
	}
	var recipients []string
	if cfg.Backup.EncryptRecipient != "" {
		recipients = []string{cfg.Backup.EncryptRecipient}
	}
	codec, err := backup.NewCodec(recipients, nil)
	if err != nil {
		return nil, fmt.Errorf("backup.encrypt_recipient: %w", err)
	}
	obs, err := metrics.NewBackup(reg, store.String())
	if err != nil {
		return nil, fmt.Errorf("register backup metrics: %w", err)
	}
	a, err := backup.New(store, backup.Options{Codec: codec, EngineOptions: engOpts, Observer: obs,
		Logger: logger.With("component", "backup")})
	if err != nil {
		return nil, err
	}
	return a.NewShipper(eng, backup.ShipperOptions{Interval: cfg.Backup.Interval.Duration,
		SnapshotInterval: cfg.Backup.SnapshotInterval.Duration}), nil
}

// BackupSnapshotResponse is the body of POST /api/v1/admin/backup.
type BackupSnapshotResponse struct {
	ID            string  `json:"id"`
	Sequence      uint64  `json:"sequence"`
	Target        string  `json:"target"`
	Files         int     `json:"files"`
	UploadedFiles int     `json:"uploaded_files"`
	UploadedBytes int64   `json:"uploaded_bytes"`
	PlainBytes    int64   `json:"plain_bytes"`
	Memories      int64   `json:"memories"`
	Seconds       float64 `json:"seconds"`
}

func (s *Server) backupRoutes() {
	s.handle("POST "+PathAdminBackup, s.handleBackupSnapshot)
	s.handle("GET "+PathAdminBackup, s.handleBackupStatus)
}

func (s *Server) backupConfigured() error {
	if s.backup == nil {
		return core.Errorf(core.KindConflict, "BACKUP_NOT_CONFIGURED",
			"backup shipping is not configured on this server. Try: serve --backup-to s3://bucket/prefix (or file:///dir), or for a stopped server: engram-ops backup create --to URL --data-dir DIR")
	}
	return nil
}

func (s *Server) handleBackupSnapshot(w http.ResponseWriter, r *http.Request) error {
	if err := s.backupConfigured(); err != nil {
		return err
	}
	// The snapshot outlives a client that disconnects: it is cheap to
	// finish and wasteful to abandon half-uploaded.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), time.Hour)
	defer cancel()
	res, err := s.backup.Snapshot(ctx)
	if err != nil {
		return &core.Error{Kind: core.KindUnavailable, Code: "BACKUP_FAILED", Message: "snapshot failed: " + err.Error(), Err: err}
	}
	m := res.Manifest
	s.writeJSON(w, http.StatusCreated, BackupSnapshotResponse{ID: m.ID, Sequence: m.Sequence, Target: s.backup.Status().Target,
		Files: len(m.Files), UploadedFiles: res.UploadedFiles, UploadedBytes: res.UploadedBytes, PlainBytes: m.PlainBytes(),
		Memories: m.Memories(), Seconds: res.Took.Seconds()})
	return nil
}

func (s *Server) handleBackupStatus(w http.ResponseWriter, r *http.Request) error {
	if err := s.backupConfigured(); err != nil {
		return err
	}
	s.writeJSON(w, http.StatusOK, s.backup.Status())
	return nil
}
