package server

import (
	"fmt"
	"time"

	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/ops/api"
	"github.com/engram-ops/engram-ops/ops/health"
)

// Replica is what a follower's server needs of the follower applying the
// archive: cmd/engram-ops adapts backup.Follower to it, so the server never
// opens an archive. The engine refuses writes itself (its write barrier
// answers READ_ONLY_REPLICA, 421).
type Replica interface {
	// State is the follower's figures; the server fills Role, Primary,
	// MaxLagSeconds and Ready.
	State() api.ReplicaState
}

// WithReplica makes the server report r in its health and readiness
// (serve --follow).
func WithReplica(r Replica) Option { return func(s *Server) { s.replica = r } }

// replicaState is the follower's state judged against replica.max_lag;
// nil on a primary.
func (s *Server) replicaState(now time.Time) *api.ReplicaState {
	if s.replica == nil {
		return nil
	}
	st := s.replica.State()
	maxLag := s.cfg.Replica.MaxLag.Duration
	st.Role, st.Primary, st.MaxLagSeconds = "follower", s.cfg.Replica.PrimaryURL, maxLag.Seconds()
	st.Ready = replicaNotReady(&st, now) == nil
	return &st
}

// replicaNotReady says why the follower st should not serve reads, or nil:
// it stopped, it is stuck at a change, its lag exceeds the bound, or it has
// not read the archive's head for longer than the bound (the lag would not
// show a primary it cannot see).
func replicaNotReady(st *api.ReplicaState, now time.Time) error {
	maxLag := time.Duration(st.MaxLagSeconds * float64(time.Second))
	notReady := func(format string, args ...any) error {
		return core.Errorf(core.KindUnavailable, "REPLICA_NOT_READY", format, args...).
			WithDetails("applied_sequence", st.AppliedSequence, "head_sequence", st.HeadSequence, "lag_seconds", st.LagSeconds)
	}
	switch {
	case st.Stopped:
		return notReady("the follower stopped applying: %s", st.Error)
	case st.ErrorSequence != 0:
		return notReady("the follower cannot apply change %d: %s", st.ErrorSequence, st.Error)
	case st.LagSeconds > maxLag.Seconds():
		return notReady("the follower lags the archive by %.1fs; replica.max_lag is %s", st.LagSeconds, maxLag)
	case st.LastPoll == nil:
		return notReady("the follower has not read the archive's head yet")
	case now.Sub(*st.LastPoll) > maxLag:
		msg := fmt.Sprintf("the follower has not read the archive's head for %s; replica.max_lag is %s", now.Sub(*st.LastPoll).Round(time.Second), maxLag)
		if st.Error != "" {
			msg += ": " + st.Error
		}
		return notReady("%s", msg)
	}
	return nil
}

// replicaCheck is the replica check of system health.
func replicaCheck(st *api.ReplicaState, now time.Time) api.HealthCheck {
	c := api.HealthCheck{Name: "replica", Status: health.Healthy, Message: fmt.Sprintf("following %s: applied %d of %d", st.Archive, st.AppliedSequence, st.HeadSequence),
		Figures: map[string]float64{"lag_seconds": st.LagSeconds, "max_lag_seconds": st.MaxLagSeconds,
			"applied_sequence": float64(st.AppliedSequence), "head_sequence": float64(st.HeadSequence)}}
	if err := replicaNotReady(st, now); err != nil {
		c.Status, c.Message = health.Unhealthy, err.Error()
	}
	return c
}
