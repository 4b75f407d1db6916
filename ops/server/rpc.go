package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/core/apikey"
	"github.com/engram-ops/engram-ops/ops/api"
	"github.com/engram-ops/engram-ops/ops/config"
	"github.com/engram-ops/engram-ops/ops/metrics"
)

// RPC is the server's API for another protocol's front end (the gRPC
// service, ops/grpcserver): the same key checks, space selection and
// rate limits as the REST routes, the same engine calls with the same
// validation and engram_memory_operation_* metrics, and the same error
// codes and messages (ErrorOf).
type RPC struct{ s *Server }

// RPC returns the server's API for other protocols.
func (s *Server) RPC() RPC { return RPC{s} }

// Metrics are the server's collectors.
func (r RPC) Metrics() *metrics.Metrics { return r.s.metrics }

// Caller is an authenticated caller of one call (a stream is one call).
type Caller struct {
	s   *Server
	key *apikey.Key // nil without auth

	// What the call's engine calls touched, for its audit line.
	mu         sync.Mutex
	space      string
	ids        []string
	idsOmitted int
}

// maxAuditIDs is how many memory ids one call's audit line lists.
const maxAuditIDs = 1000

// touched returns the space the call named last and the memories its
// writes touched (the first maxAuditIDs, and how many more).
func (c *Caller) touched() (space string, ids []string, omitted int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.space, c.ids, c.idsOmitted
}

func (c *Caller) noteIDs(ids []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := min(len(ids), maxAuditIDs-len(c.ids))
	c.ids = append(c.ids, ids[:n]...)
	c.idsOmitted += len(ids) - n
}

type callerKey struct{}

// WithCaller returns ctx carrying c, the caller of the call ctx belongs
// to: the engine calls made with it record what they touched on c.
func WithCaller(ctx context.Context, c *Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFrom is the caller WithCaller put in ctx (nil if none).
func CallerFrom(ctx context.Context) *Caller {
	c, _ := ctx.Value(callerKey{}).(*Caller)
	return c
}

// KeyID is the caller's key id ("" without auth).
func (c *Caller) KeyID() string {
	if c.key == nil {
		return ""
	}
	return c.key.ID
}

// Authenticate checks the credentials a call carries (the values of its
// authorization and x-api-key metadata, as REST reads the Authorization
// and X-API-Key headers) for a call named what that reads or, with
// write, writes. With auth.mode = "none" every call is let through (the
// listen address is loopback, or the operator allowed no auth
// explicitly).
func (r RPC) Authenticate(authorization, apiKey []string, write bool, what string) (*Caller, error) {
	s := r.s
	if s.cfg.Auth.Mode != config.AuthAPIKey {
		return &Caller{s: s}, nil
	}
	h := http.Header{}
	for _, v := range authorization {
		h.Add("Authorization", v)
	}
	for _, v := range apiKey {
		h.Add(api.HeaderAPIKey, v)
	}
	token, err := credentials(h)
	if err != nil {
		e, _ := s.authError(err)
		return nil, e
	}
	key, err := s.keys.Verify(token)
	if err != nil {
		e, _ := s.authError(err)
		return nil, e
	}
	need := accessRead
	if write {
		need = accessWrite
	}
	if !key.Allows(need.permission()) {
		e, _ := s.authError(&apikey.Error{Reason: apikey.Forbidden,
			Message: fmt.Sprintf("the API key %s has permissions %v; %s needs %s", key.ID, key.Permissions, what, need.permission())})
		return nil, e
	}
	return &Caller{s: s, key: key}, nil
}

// Space picks the space a request names ("" is "default") as REST's
// handlers do: the engine's name rule, the key's spaces, then one token
// of the key's rate and of the space's rate (rate_limit.space). Each
// engine call takes one, so each message of a stream counts as a
// request.
func (c *Caller) Space(name string) (string, error) {
	s := c.s
	space := strings.TrimSpace(name)
	if space == "" {
		space = api.DefaultSpace
	}
	if err := core.ValidateSpaceName(space); err != nil {
		return "", err
	}
	// A space outside the key's is refused without taking a token.
	if c.key != nil && c.key.InSpace(space) {
		if err := s.takeKeyRate(c.key, space); err != nil {
			return "", err
		}
	}
	if _, err := s.admitSpace(c.key, space); err != nil {
		return "", err
	}
	c.mu.Lock()
	c.space = space
	c.mu.Unlock()
	return space, nil
}

// Visible reports whether the caller's key may see space.
func (c *Caller) Visible(space string) bool { return c.key == nil || c.key.InSpace(space) }

// Engine is the engine the server serves (fault injection included).
func (r RPC) Engine() Engine { return r.s.eng }

// Limits are the request limits of the configuration.
func (r RPC) Limits() config.LimitsConfig { return r.s.cfg.Limits }

// call is engineOp's timing and counting without HTTP.
func call[Req, Resp any](s *Server, ctx context.Context, op, space string, req Req,
	f func(ctx context.Context, space string, req Req) (Resp, error)) (Resp, error) {
	if rpcWrites[op] {
		// Inside the hold gate, as REST's write routes (spacemove.go).
		s.holds.gate.RLock()
		defer s.holds.gate.RUnlock()
		if err := s.heldError(space); err != nil {
			var zero Resp
			return zero, err
		}
	}
	start := time.Now()
	resp, err := f(ctx, space, req)
	s.observe(op, space, start, err)
	if c := CallerFrom(ctx); c != nil && err == nil {
		if ids := touchedIDs(resp); len(ids) > 0 {
			c.noteIDs(ids)
		}
	}
	return resp, err
}

// Remember is POST /api/v1/memories/remember's engine call.
func (r RPC) Remember(ctx context.Context, space string, req *api.RememberRequest) (api.RememberResponse, error) {
	return call(r.s, ctx, opRemember, space, req, r.s.remember)
}

// Episode is POST /api/v1/episodes/remember's engine call.
func (r RPC) Episode(ctx context.Context, space string, req *api.EpisodeRequest) (api.RememberResponse, error) {
	return call(r.s, ctx, opRemember, space, req, r.s.episode)
}

// Recall is recall's engine call. release gives the response's memory
// back for reuse once it has been copied out; call it exactly once when
// err is nil.
func (r RPC) Recall(ctx context.Context, space string, req *api.RecallRequest) (resp *api.RecallResponse, release func(), err error) {
	a, err := call(r.s, ctx, opRecall, space, req, r.s.recall)
	if err != nil {
		return nil, nil, err
	}
	return a.RecallResponse, a.afterWrite, nil
}

// Forget is DELETE /api/v1/memories/{id}'s engine call.
func (r RPC) Forget(ctx context.Context, space, id string) (api.ForgetResponse, error) {
	return call(r.s, ctx, opForget, space, id, r.s.forget)
}

// Associate is POST /api/v1/associations' engine call.
func (r RPC) Associate(ctx context.Context, space string, req *api.AssociationRequest) (api.AssociationResponse, error) {
	return call(r.s, ctx, opAssociate, space, req, r.s.associate)
}

// ErrorOf is err as REST answers it: the HTTP status, the error code and
// message of the envelope (limited as REST limits them) and its details.
// Internal errors never expose their cause.
func ErrorOf(err error) (status int, code, message string, details map[string]any) {
	st, body := errorResponse(err)
	return st, body.Code, body.Message, body.Details
}

// InvalidArgument is a 400 of the given code: for request checks of
// another protocol that REST makes while decoding.
func InvalidArgument(code, format string, args ...any) error {
	return httpErrorf(http.StatusBadRequest, code, format, args...)
}

// TLSConfig is the TLS configuration the REST API is served with (its
// certificate reloads included), or nil without TLS.
func (r RPC) TLSConfig() *tls.Config {
	if r.s.tls == nil {
		return nil
	}
	return r.s.tls.Config()
}

// Get is GET /api/v1/memories/{id}'s engine call.
func (r RPC) Get(ctx context.Context, space, id string) (api.Memory, error) {
	return call(r.s, ctx, opGet, space, getRequest{id: id}, r.s.get)
}
