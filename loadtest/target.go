package loadtest

import (
	"context"
	"fmt"
	"strings"

	"github.com/engram-ops/engram-ops/ops/api"
	"github.com/engram-ops/engram-ops/ops/client"
)

// Target kinds: which server a run drives, and so which routes it uses.
const (
	// TargetEngramOps is engram-ops' server: recall by POST, the preload
	// through POST /api/v1/memories/batch, the index backlog from
	// GET /api/v1/spaces/{id}.
	TargetEngramOps = "engram-ops"
	// TargetEngram is an Engram server: only routes its router has
	// (POST /api/v1/spaces, POST /api/v1/memories/remember one memory at
	// a time, GET /api/v1/memories/recall with query parameters,
	// DELETE /api/v1/memories/{id}, GET /health and /health/alive), so
	// one scenario measures both servers side by side.
	TargetEngram = "engram"
	// TargetAuto detects the kind from GET /health (DetectTargetKind).
	TargetAuto = "auto"
)

// EngramDimension is the only embedding dimension an Engram server
// accepts.
const EngramDimension = 768

// TargetKinds lists the values --target-kind accepts.
var TargetKinds = []string{TargetEngramOps, TargetEngram, TargetAuto}

// ParseTargetKind checks a --target-kind value.
func ParseTargetKind(s string) (string, error) {
	switch k := strings.ToLower(strings.TrimSpace(s)); k {
	case "", TargetEngramOps:
		return TargetEngramOps, nil
	case TargetEngram, TargetAuto:
		return k, nil
	}
	return "", fmt.Errorf("target kind %q: must be one of %s", s, strings.Join(TargetKinds, ", "))
}

// DetectTargetKind reads GET /health: both servers answer Engram's shape
// (service "engram"), and engram-ops adds implementation "engram-ops".
// Anything else is not a server this generator can drive.
func DetectTargetKind(ctx context.Context, c *client.Client) (string, error) {
	h, err := c.Health(ctx)
	if err != nil && client.StatusOf(err) != 503 {
		return "", fmt.Errorf("detect the target kind from GET %s: %w", api.PathHealth, err)
	}
	switch {
	case h.Implementation == api.Implementation:
		return TargetEngramOps, nil
	case h.Service == api.ServiceName:
		return TargetEngram, nil
	}
	return "", fmt.Errorf("detect the target kind: GET %s answered service %q, implementation %q: neither Engram nor engram-ops; pass --target-kind",
		api.PathHealth, h.Service, h.Implementation)
}
