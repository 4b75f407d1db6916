package api

import "time"

// ReplicaState is the replica block of /health and /api/v1/system/health
// on a follower (serve --follow): where it applies changes from, how far
// it got and whether it is ready to serve reads.
type ReplicaState struct {
	Role    string `json:"role"`              // follower
	Primary string `json:"primary,omitempty"` // where writes go (replica.primary_url)
	Archive string `json:"archive"`           // the archive followed (without credentials)
	// AppliedSequence is the last change applied.
	AppliedSequence uint64 `json:"applied_sequence"`
	// HeadSequence is the newest change the archive's head.json named at
	// the last poll.
	HeadSequence uint64 `json:"head_sequence"`
	// LagSeconds is 0 when applied = head, else the age of the first
	// change not applied (its commit time on the primary).
	LagSeconds float64 `json:"lag_seconds"`
	// MaxLagSeconds is replica.max_lag.
	MaxLagSeconds float64    `json:"max_lag_seconds"`
	LastPoll      *time.Time `json:"last_poll,omitempty"` // the last poll that read the head
	// Error is why applying stopped short of the head.
	Error string `json:"error,omitempty"`
	// ErrorSequence is the first change not applied because of Error (0:
	// the error is not about a change, e.g. the archive is unreachable).
	ErrorSequence uint64 `json:"error_sequence,omitempty"`
	// Stopped: the archive went behind the follower; it applies nothing
	// more until seeded again.
	Stopped bool `json:"stopped"`
	// Ready is false while the lag or the time since the last poll exceeds
	// MaxLagSeconds, applying is stuck at a change, or the follower stopped.
	Ready bool `json:"ready"`
}
