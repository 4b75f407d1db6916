package server

// Test-only fault injection.
//
// The end-to-end alert tests (dashboards/) must make a real server slow or
// failing on demand, so that Prometheus sees a real latency histogram or a
// real 5xx ratio and fires the real alert. The switch is off by default and
// the admin endpoint refuses to do anything unless the server was started
// with testing.fault_injection = true (ENGRAM_TESTING_FAULT_INJECTION=true,
// --set testing.fault_injection=true). When on, the server logs a warning
// at startup, and faults are applied by wrapping the Engine, so every
// handler, metric and log line sees exactly what a slow or failing engine
// would cause.

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"sync/atomic"
	"time"

	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/ops/config"
)

// PathAdminFaults is the test-only fault injection endpoint: GET shows the
// active fault, POST sets it, DELETE clears it.
const PathAdminFaults = "/api/v1/admin/faults"

// FaultSpec is the body of POST /api/v1/admin/faults and the answer of
// every method of that endpoint.
type FaultSpec struct {
	// Operations the fault applies to (remember, recall, get, forget,
	// associate, batch, list); empty means all of them.
	Operations []string `json:"operations"`
	// Latency is added before each affected operation, e.g. "50ms".
	Latency string `json:"latency,omitempty"`
	// ErrorRatio in [0, 1] is the share of affected operations that fail
	// with an injected 503 (error_type "unavailable").
	ErrorRatio float64 `json:"error_ratio"`
}

// faultOperations are the operation names a fault can target (those of
// engram_memory_operation_duration_seconds).
var faultOperations = []string{opRemember, opRecall, opGet, opForget, opAssociate, opBatch, opList}

type activeFault struct {
	ops     map[string]bool // nil: all
	latency time.Duration
	ratio   float64
}

// faults is the switch; state is nil when no fault is active.
type faults struct {
	enabled bool
	state   atomic.Pointer[activeFault]
}

// withFaults wraps eng with the fault injector when the switch is on.
func withFaults(cfg config.TestingConfig, eng Engine, log *slog.Logger) (Engine, *faults) {
	f := &faults{enabled: cfg.FaultInjection}
	if !f.enabled {
		return eng, f
	}
	if log != nil {
		log.Warn("TEST-ONLY FAULT INJECTION IS ENABLED (testing.fault_injection): " + PathAdminFaults +
			" can add latency and errors to any operation. Never enable it in production.")
	}
	return &faultEngine{Engine: eng, f: f}, f
}

// apply runs the active fault for op: waits the added latency, then maybe
// returns an injected error.
func (f *faults) apply(ctx context.Context, op string) error {
	a := f.state.Load()
	if a == nil || (a.ops != nil && !a.ops[op]) {
		return nil
	}
	if a.latency > 0 {
		t := time.NewTimer(a.latency)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
	if a.ratio > 0 && rand.Float64() < a.ratio {
		return core.Errorf(core.KindUnavailable, "INJECTED_FAULT",
			"injected %s failure (test-only fault injection is active)", op)
	}
	return nil
}

func (f *faults) spec() FaultSpec {
	a := f.state.Load()
	if a == nil {
		return FaultSpec{Operations: []string{}}
	}
	sp := FaultSpec{Operations: []string{}, ErrorRatio: a.ratio}
	for op := range a.ops {
		sp.Operations = append(sp.Operations, op)
	}
	sort.Strings(sp.Operations)
	if a.latency > 0 {
		sp.Latency = a.latency.String()
	}
	return sp
}

func (s *Server) faultRoutes() {
	s.handle("GET "+PathAdminFaults, s.handleFaults)
	s.handle("POST "+PathAdminFaults, s.handleFaults)
	s.handle("DELETE "+PathAdminFaults, s.handleFaults)
}

func (s *Server) handleFaults(w http.ResponseWriter, r *http.Request) error {
	if !s.faults.enabled {
		return httpErrorf(http.StatusForbidden, "FAULT_INJECTION_DISABLED",
			"fault injection is a test-only switch and is disabled on this server; start a test server with "+
				"testing.fault_injection = true (ENGRAM_TESTING_FAULT_INJECTION=true or --set testing.fault_injection=true)")
	}
	switch r.Method {
	case http.MethodDelete:
		s.faults.state.Store(nil)
		s.log.Warn("injected fault cleared")
	case http.MethodPost:
		var sp FaultSpec
		if err := decodeJSON(w, r, 64<<10, &sp); err != nil {
			return err
		}
		a := &activeFault{ratio: sp.ErrorRatio}
		if sp.ErrorRatio < 0 || sp.ErrorRatio > 1 || sp.ErrorRatio != sp.ErrorRatio {
			return httpErrorf(http.StatusBadRequest, "INVALID_FAULT", "error_ratio must be in [0, 1]").with("error_ratio", sp.ErrorRatio)
		}
		if sp.Latency != "" {
			d, err := time.ParseDuration(sp.Latency)
			if err != nil || d < 0 || d > time.Minute {
				return httpErrorf(http.StatusBadRequest, "INVALID_FAULT", "latency must be a duration in 0s..1m, e.g. \"50ms\"").with("latency", sp.Latency)
			}
			a.latency = d
		}
		for _, op := range sp.Operations {
			if !slices.Contains(faultOperations, op) {
				return httpErrorf(http.StatusBadRequest, "INVALID_FAULT", "unknown operation %q", op).with("allowed", faultOperations)
			}
			if a.ops == nil {
				a.ops = map[string]bool{}
			}
			a.ops[op] = true
		}
		s.faults.state.Store(a)
		s.log.Warn("fault injected", "operations", sp.Operations, "latency", a.latency.String(), "error_ratio", a.ratio)
	}
	s.writeJSON(w, http.StatusOK, s.faults.spec())
	return nil
}

// faultEngine applies the active fault before each engine operation.
type faultEngine struct {
	Engine
	f *faults
}

func (e *faultEngine) Remember(ctx context.Context, space string, in core.RememberInput) (core.RememberResult, error) {
	if err := e.f.apply(ctx, opRemember); err != nil {
		return core.RememberResult{}, err
	}
	return e.Engine.Remember(ctx, space, in)
}

func (e *faultEngine) Batch(ctx context.Context, space string, b core.BatchInput) (core.BatchResult, error) {
	if err := e.f.apply(ctx, opBatch); err != nil {
		return core.BatchResult{}, err
	}
	return e.Engine.Batch(ctx, space, b)
}

func (e *faultEngine) Get(ctx context.Context, space, id string, withEmbedding bool) (core.Memory, error) {
	if err := e.f.apply(ctx, opGet); err != nil {
		return core.Memory{}, err
	}
	return e.Engine.Get(ctx, space, id, withEmbedding)
}

func (e *faultEngine) List(ctx context.Context, space string, o core.ListOptions) (core.ListResult, error) {
	if err := e.f.apply(ctx, opList); err != nil {
		return core.ListResult{}, err
	}
	return e.Engine.List(ctx, space, o)
}

func (e *faultEngine) Recall(ctx context.Context, space string, q core.RecallQuery) (core.RecallResult, error) {
	if err := e.f.apply(ctx, opRecall); err != nil {
		return core.RecallResult{}, err
	}
	return e.Engine.Recall(ctx, space, q)
}

func (e *faultEngine) SpreadFrom(ctx context.Context, space, id string, q core.RecallQuery) (core.RecallResult, error) {
	if err := e.f.apply(ctx, opRecall); err != nil {
		return core.RecallResult{}, err
	}
	return e.Engine.SpreadFrom(ctx, space, id, q)
}

func (e *faultEngine) Forget(ctx context.Context, space, id string) (uint64, error) {
	if err := e.f.apply(ctx, opForget); err != nil {
		return 0, err
	}
	return e.Engine.Forget(ctx, space, id)
}

func (e *faultEngine) Associate(ctx context.Context, space string, a core.Association) (uint64, error) {
	if err := e.f.apply(ctx, opAssociate); err != nil {
		return 0, err
	}
	return e.Engine.Associate(ctx, space, a)
}
