package server

import (
	"context"
	"net/http"
	"time"

	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/ops/api"
)

// BackupAdmin is what the admin backup endpoint needs of backup shipping:
// cmd/engram-ops adapts the backup shipper to it, so the server never
// opens a target or knows a store.
type BackupAdmin interface {
	// Snapshot takes a snapshot of the running engine to the shipping
	// target.
	Snapshot(ctx context.Context) (api.BackupSnapshotResponse, error)
	// Status is the shipping status, the body of GET /api/v1/admin/backup.
	Status() any
}

// backupHealther is a BackupAdmin that also reports shipping for the
// backup block of /api/v1/system/health.
type backupHealther interface {
	Health() api.BackupState
}

// backupChecker is a BackupAdmin that adds checks to /api/v1/system/health
// (an unhealthy one once shipping was fenced by a promotion).
type backupChecker interface {
	Checks() []api.HealthCheck
}

// WithBackup serves the admin backup endpoint for b.
func WithBackup(b BackupAdmin) Option { return func(s *Server) { s.backup = b } }

func (s *Server) backupRoutes() {
	s.handle("POST "+api.PathAdminBackup, s.handleBackupSnapshot)
	s.handle("GET "+api.PathAdminBackup, s.handleBackupStatus)
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
	s.writeJSON(w, http.StatusCreated, res)
	return nil
}

func (s *Server) handleBackupStatus(w http.ResponseWriter, r *http.Request) error {
	if err := s.backupConfigured(); err != nil {
		return err
	}
	s.writeJSON(w, http.StatusOK, s.backup.Status())
	return nil
}
