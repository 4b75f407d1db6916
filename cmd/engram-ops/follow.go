package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"filippo.io/age"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/engram-ops/engram-ops/backup"
	"github.com/engram-ops/engram-ops/backup/target"
	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/core/apikey"
	"github.com/engram-ops/engram-ops/ops/api"
	"github.com/engram-ops/engram-ops/ops/config"
	"github.com/engram-ops/engram-ops/ops/metrics"
)

// followArchive opens the archive of cfg.Replica.Follow (S3 settings from
// getenv; replica.identity_file decrypts an encrypted one) and seeds an
// empty cfg.DataDir from its newest snapshot, before the engine opens.
func followArchive(ctx context.Context, cfg config.Config, engOpts core.Options, logger *slog.Logger, getenv func(string) string) (*backup.Archive, error) {
	store, err := target.Open(ctx, cfg.Replica.Follow, target.Options{}, getenv)
	if err != nil {
		return nil, fmt.Errorf("replica.follow: %w", err)
	}
	var ids []age.Identity
	if f := cfg.Replica.IdentityFile; f != "" {
		fh, err := os.Open(f)
		if err != nil {
			return nil, fmt.Errorf("replica.identity_file: %w", err)
		}
		ids, err = backup.ParseIdentities(fh)
		fh.Close()
		if err != nil {
			return nil, fmt.Errorf("replica.identity_file %s: %w", f, err)
		}
	}
	codec, err := backup.NewCodec(nil, ids)
	if err != nil {
		return nil, fmt.Errorf("replica.identity_file: %w", err)
	}
	log := logger.With("component", "follower")
	a, err := backup.New(store, backup.Options{Codec: codec, EngineOptions: engOpts, Logger: log})
	if err != nil {
		return nil, err
	}
	rep, err := a.SeedFollower(ctx, cfg.DataDir)
	if err != nil {
		return nil, err
	}
	if rep != nil {
		log.Info("follower seeded from the newest snapshot", "archive", a.Target(), "snapshot", rep.Snapshot,
			"sequence", rep.Sequence, "seconds", rep.Seconds)
	} else {
		log.Info("follower resumes on its data directory", "archive", a.Target(), "data_dir", cfg.DataDir)
	}
	return a, nil
}

// newFollower makes eng a read-only replica (its write barrier names
// replica.primary_url) and builds the follower applying a to it, with the
// engram_replica_* metrics on reg. keys are reloaded whenever applied
// changes write system records (API keys created or revoked on the
// primary).
func newFollower(cfg config.Config, a *backup.Archive, eng *core.Engine, keys *apikey.Store, reg prometheus.Registerer, logger *slog.Logger) (*backup.Follower, error) {
	eng.SetWriteBarrier(core.ReadOnlyReplica(cfg.Replica.PrimaryURL))
	obs, err := metrics.NewReplica(reg, a.Target())
	if err != nil {
		return nil, fmt.Errorf("register replica metrics: %w", err)
	}
	return a.NewFollower(eng, backup.FollowerOptions{Interval: cfg.Replica.PollInterval.Duration, Observer: obs,
		Applied: func(changes []core.Change) {
			for _, c := range changes {
				if c.Op == core.OpSetSystem {
					if err := keys.Reload(); err != nil {
						logger.Error("cannot reload the API keys after applying the primary's changes", "err", err)
					}
					return
				}
			}
		}}), nil
}

// followerState is the server's view of the follower (its health).
type followerState struct{ f *backup.Follower }

func (s followerState) State() api.ReplicaState {
	st := s.f.Status()
	out := api.ReplicaState{Archive: st.Target, AppliedSequence: st.AppliedSequence, HeadSequence: st.HeadSequence,
		LagSeconds: st.LagSeconds, Error: st.LastError, ErrorSequence: st.ErrorSequence, Stopped: st.Stopped}
	if !st.LastPoll.IsZero() {
		t := st.LastPoll.UTC().Truncate(time.Millisecond)
		out.LastPoll = &t
	}
	return out
}
