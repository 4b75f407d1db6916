package server

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/core/apikey"
	"github.com/engram-ops/engram-ops/ops/api"
	"github.com/engram-ops/engram-ops/ops/config"
)

// Authentication, authorisation and rate limiting.
//
// Every registered route has an access level in routeAccess; New refuses
// a route without one, so a new route cannot be served open by accident.
// With auth.mode = "api_key" a request to a non-public route needs a key
// (Authorization: Bearer or X-API-Key) with the route's permission; the
// space a request names is checked against the key's spaces where the
// space is picked (checkSpace), so every route that reads a space is
// covered by the same check. With auth.mode = "none" on a loopback address,
// requests whose Host is not a loopback name are refused (DNS rebinding).

// access is what a route needs.
type access uint8

const (
	accessPublic  access = iota + 1 // health probes
	accessRead                      // a read key
	accessWrite                     // a write key
	accessAdmin                     // an admin key (every space)
	accessMetrics                   // public or a read key, by auth.metrics
)

func (a access) String() string {
	return [...]string{"", "public", "read", "write", "admin", "metrics"}[a]
}

func (a access) permission() apikey.Permission {
	switch a {
	case accessWrite:
		return apikey.Write
	case accessAdmin:
		return apikey.Admin
	}
	return apikey.Read
}

// routeAccess is the access level of every route pattern.
var routeAccess = map[string]access{
	"POST " + api.PathRemember:          accessWrite,
	"POST " + api.PathMemories:          accessWrite,
	"POST " + api.PathEpisodes:          accessWrite,
	"POST " + api.PathBatch:             accessWrite,
	"GET " + api.PathRecall:             accessRead,
	"POST " + api.PathRecall:            accessRead,
	"GET " + api.PathSearch:             accessRead,
	"GET " + api.PathMemory:             accessRead,
	"DELETE " + api.PathMemory:          accessWrite,
	"GET " + api.PathMemories:           accessRead,
	"POST " + api.PathAssociations:      accessWrite,
	"GET " + api.PathBatchCursor:        accessRead,
	"GET " + api.PathSpaces:             accessRead,
	"POST " + api.PathSpaces:            accessWrite,
	"GET " + api.PathSpace:              accessRead,
	"GET " + api.PathHealth:             accessPublic,
	"GET " + api.PathHealthAlive:        accessPublic,
	"GET " + api.PathHealthReady:        accessPublic,
	"GET " + api.PathSystemHealth:       accessRead,
	"POST " + api.PathRecognize:         accessRead,
	"POST " + api.PathQuery:             accessRead,
	"POST " + api.PathQueryExecute:      accessRead,
	"GET " + api.PathProbabilistic:      accessRead,
	"GET " + api.PathIntrospect:         accessRead,
	"POST " + api.PathComplete:          accessRead,
	"POST " + api.PathReplay:            accessWrite,
	"GET " + api.PathConsolidations:     accessRead,
	"GET " + api.PathConsolidation:      accessRead,
	"GET " + api.PathHealthSpreading:    accessPublic,
	"POST " + api.PathAdminBackup:       accessAdmin,
	"GET " + api.PathAdminBackup:        accessAdmin,
	"GET " + PathAdminFaults:            accessAdmin,
	"POST " + PathAdminFaults:           accessAdmin,
	"DELETE " + PathAdminFaults:         accessAdmin,
	"GET " + api.PathAdminAPIKeys:       accessAdmin,
	"POST " + api.PathAdminAPIKeys:      accessAdmin,
	"DELETE " + api.PathAdminAPIKey:     accessAdmin,
	"POST " + api.PathAdminAPIKeyRotate: accessAdmin,
	"GET " + api.PathAdminSpaceHold:     accessAdmin,
	"POST " + api.PathAdminSpaceHold:    accessAdmin,
	"DELETE " + api.PathAdminSpaceHold:  accessAdmin,
	"GET " + api.PathAdminSpaceChanges:  accessAdmin,
	"GET " + api.PathAdminSpaceExport:   accessAdmin,
	"POST " + api.PathAdminSpacePurge:   accessAdmin,
	"GET " + api.PathMetrics:            accessMetrics,
	"GET " + api.PathMetricsProm:        accessMetrics,
	// Event streams (streams.go): read, in the key's spaces.
	"GET " + api.PathStreamActivities:    accessRead,
	"GET " + api.PathStreamMemories:      accessRead,
	"GET " + api.PathStreamConsolidation: accessRead,
	"GET " + api.PathMonitoringEvents:    accessRead,
	"GET " + api.PathMonitorEvents:       accessRead,
	// The API's description is public: it holds no data, and a browser
	// opening /docs cannot send a key.
	"GET " + api.PathOpenAPI:   accessPublic,
	"GET " + api.PathDocs:      accessPublic,
	"GET " + api.PathDocsAsset: accessPublic,
}

// WithAPIKeys serves with the keys of store: required by auth.mode =
// "api_key", and what the admin key routes manage.
func WithAPIKeys(store *apikey.Store) Option { return func(s *Server) { s.keys = store } }

// authState is the server's authentication and rate-limiting state.
type authState struct {
	keys *apikey.Store
	// hostCheck refuses non-loopback Host headers (auth none on loopback).
	hostCheck bool
	// insecure: no auth on a non-loopback address, allowed explicitly.
	insecure bool

	keyLimiters   sync.Map // key id → *rate.Limiter
	spaceLimiters sync.Map // space label → *rate.Limiter
}

// setupAuth checks that every route has an access level and that the
// configured mode can be served.
func (s *Server) setupAuth() error {
	for p := range s.patterns {
		if routeAccess[p] == 0 {
			return fmt.Errorf("server: route %q has no access level in routeAccess (a bug: every route must say who may call it)", p)
		}
	}
	host, _, _ := net.SplitHostPort(s.cfg.Listen)
	switch s.cfg.Auth.Mode {
	case config.AuthAPIKey:
		if s.keys == nil {
			return errors.New("server: auth.mode = \"api_key\" needs the API key store (WithAPIKeys)")
		}
	default:
		s.hostCheck = config.IsLoopbackHost(host)
		s.insecure = !s.hostCheck
	}
	return nil
}

// authorize decides whether the request may reach the route pattern; when
// not, it returns the error to answer with. It records the key in the
// request's info.
func (s *Server) authorize(r *http.Request, pattern string) error {
	if s.hostCheck && !hostIsLoopback(r.Host) {
		return httpErrorf(http.StatusMisdirectedRequest, "HOST_NOT_ALLOWED",
			"this server has no authentication and answers only requests addressed to a loopback name (localhost, 127.0.0.1, ::1); Host %q is not one. "+
				"This refusal stops web pages from reaching it by DNS rebinding. To serve other hosts, enable API keys (auth.mode = \"api_key\")", echo(r.Host))
	}
	if s.cfg.Auth.Mode != config.AuthAPIKey {
		return nil
	}
	acc := routeAccess[pattern]
	if acc == accessPublic || (acc == accessMetrics && s.cfg.Auth.Metrics == "public") {
		return nil
	}
	token, err := credentials(r.Header)
	if err != nil {
		return s.authFailure(r, err)
	}
	key, err := s.keys.Verify(token)
	if err != nil {
		return s.authFailure(r, err)
	}
	if ri := infoFrom(r.Context()); ri != nil {
		ri.key = key.ID
		ri.scope = key
	}
	need := acc.permission()
	if !key.Allows(need) {
		return s.authFailure(r, &apikey.Error{Reason: apikey.Forbidden,
			Message: fmt.Sprintf("the API key %s has permissions %v; %s %s needs %s", key.ID, key.Permissions, r.Method, r.URL.Path, need)})
	}
	return s.takeKeyRate(key, peekSpace(r))
}

// takeKeyRate takes one token of key's rate; space labels a refusal.
func (s *Server) takeKeyRate(key *apikey.Key, space string) error {
	if key.Rate > 0 {
		lim := s.limiter(&s.keyLimiters, key.ID, key.Rate, 0)
		if wait := take(lim); wait > 0 {
			s.metrics.RateLimited(s.spaceLabel(space))
			return rateLimited(wait, "the API key %s is limited to %s", key.ID, apikey.FormatRate(key.Rate))
		}
	}
	return nil
}

// authFailure counts a refused request and turns err into its answer:
// 401 for a missing or bad key, 403 for a key without the permission or
// the space.
func (s *Server) authFailure(r *http.Request, err error) error {
	e, reason := s.authError(err)
	if ri := infoFrom(r.Context()); ri != nil {
		ri.authFailure = reason
	}
	return e
}

// authError counts a refusal and turns err into its answer and reason
// (authFailure without a request: the gRPC service's).
func (s *Server) authError(err error) (*httpError, string) {
	var ae *apikey.Error
	if !errors.As(err, &ae) {
		ae = &apikey.Error{Reason: apikey.Malformed, Message: err.Error()}
	}
	s.metrics.AuthFailure(string(ae.Reason))
	return authAnswer(ae), string(ae.Reason)
}

// authAnswer is the answer to a refused key: 401 for a missing or bad
// key, 403 for a key without the permission or the space.
func authAnswer(ae *apikey.Error) *httpError {
	switch ae.Reason {
	case apikey.Forbidden:
		return httpErrorf(http.StatusForbidden, "FORBIDDEN", "%s", ae.Message).with("reason", string(ae.Reason))
	case apikey.WrongSpace:
		return httpErrorf(http.StatusForbidden, "FORBIDDEN_SPACE", "%s", ae.Message).with("reason", string(ae.Reason))
	}
	code, msg := "UNAUTHORIZED", ae.Message
	switch ae.Reason {
	case apikey.Missing:
		code = "MISSING_API_KEY"
	case apikey.Malformed:
		code = "MALFORMED_API_KEY"
	case apikey.Expired:
		code = "API_KEY_EXPIRED"
	case apikey.Revoked:
		code = "API_KEY_REVOKED"
	case apikey.UnknownKey, apikey.WrongSecret:
		// One answer for both, so a caller cannot probe which ids exist.
		code, msg = "INVALID_API_KEY", "the API key is not valid on this server"
	}
	e := httpErrorf(http.StatusUnauthorized, code, "%s. Send a key as Authorization: Bearer <key> (create one with engram-ops apikey create)", msg).
		with("reason", string(ae.Reason))
	e.header = map[string]string{"WWW-Authenticate": `Bearer realm="engram"`}
	return e
}

// maxCredentialBytes bounds a credential header; real keys are
// apikey.TokenLen bytes.
const maxCredentialBytes = 256

// credentials returns the key a request carries in Authorization: Bearer
// or X-API-Key. Both may be sent when they agree; anything else
// ambiguous is malformed.
func credentials(h http.Header) (string, error) {
	auths, keys := h.Values("Authorization"), h.Values(api.HeaderAPIKey)
	if len(auths) == 0 && len(keys) == 0 {
		return "", &apikey.Error{Reason: apikey.Missing, Message: "the request carries no API key"}
	}
	if len(auths) > 1 || len(keys) > 1 {
		return "", &apikey.Error{Reason: apikey.Malformed, Message: "the request carries more than one Authorization or X-API-Key header"}
	}
	var token string
	if len(auths) == 1 {
		t, err := parseAuthorization(auths[0])
		if err != nil {
			return "", err
		}
		token = t
	}
	if len(keys) == 1 {
		k := strings.TrimSpace(keys[0])
		if k == "" || len(k) > maxCredentialBytes || strings.ContainsAny(k, " \t") {
			return "", &apikey.Error{Reason: apikey.Malformed, Message: "the X-API-Key header is empty, too long or holds spaces"}
		}
		if token != "" && token != k {
			return "", &apikey.Error{Reason: apikey.Malformed, Message: "Authorization and X-API-Key carry different keys"}
		}
		token = k
	}
	return token, nil
}

// parseAuthorization reads "Bearer <token>" (scheme case-insensitive).
func parseAuthorization(v string) (string, error) {
	if len(v) > maxCredentialBytes+16 {
		return "", &apikey.Error{Reason: apikey.Malformed, Message: "the Authorization header is longer than any API key"}
	}
	scheme, token, ok := strings.Cut(strings.TrimSpace(v), " ")
	token = strings.TrimLeft(token, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" || strings.ContainsAny(token, " \t") {
		return "", &apikey.Error{Reason: apikey.Malformed, Message: "the Authorization header is not \"Bearer <key>\""}
	}
	return token, nil
}

// hostIsLoopback reports whether a Host header (with or without port)
// names a loopback host.
func hostIsLoopback(h string) bool {
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	return config.IsLoopbackHost(h)
}

// allowSpace checks the request's key against space and the space's rate
// limit. checkSpace calls it for every route that picks a space.
func (s *Server) allowSpace(r *http.Request, space string) error {
	var key *apikey.Key
	ri := infoFrom(r.Context())
	if ri != nil {
		key = ri.scope
	}
	reason, err := s.admitSpace(key, space)
	if reason != "" && ri != nil {
		ri.authFailure = reason
	}
	return err
}

// admitSpace checks key (nil without auth) against space and takes a
// token of the space's rate limit; reason is the refused key's reason.
func (s *Server) admitSpace(key *apikey.Key, space string) (reason string, err error) {
	if key != nil && !key.InSpace(space) {
		e, reason := s.authError(&apikey.Error{Reason: apikey.WrongSpace,
			Message: fmt.Sprintf("the API key %s may not use space %q (its spaces: %s)", key.ID, echo(space), strings.Join(key.Spaces, ", "))})
		return reason, e
	}
	if s.cfg.RateLimit.Space > 0 {
		label := s.spaceLabel(space)
		lim := s.limiter(&s.spaceLimiters, label, s.cfg.RateLimit.Space, s.cfg.RateLimit.SpaceBurst)
		if wait := take(lim); wait > 0 {
			s.metrics.RateLimited(label)
			return "", rateLimited(wait, "space %q is limited to %g requests per second (rate_limit.space)", echo(space), s.cfg.RateLimit.Space)
		}
	}
	return "", nil
}

// visibleSpace reports whether the request's key may see space (lists and
// health details are filtered with it).
func visibleSpace(r *http.Request, space string) bool {
	ri := infoFrom(r.Context())
	return ri == nil || ri.scope == nil || ri.scope.InSpace(space)
}

func (s *Server) limiter(m *sync.Map, name string, perSecond float64, burst int) *rate.Limiter {
	if l, ok := m.Load(name); ok {
		return l.(*rate.Limiter)
	}
	if burst <= 0 {
		burst = int(math.Ceil(perSecond))
	}
	l, _ := m.LoadOrStore(name, rate.NewLimiter(rate.Limit(perSecond), max(burst, 1)))
	return l.(*rate.Limiter)
}

// take takes a token from lim, or returns how long until one is free.
func take(lim *rate.Limiter) time.Duration {
	now := time.Now()
	res := lim.ReserveN(now, 1)
	d := res.DelayFrom(now)
	if d == 0 {
		return 0
	}
	res.CancelAt(now)
	return d
}

func rateLimited(wait time.Duration, format string, args ...any) error {
	secs := int(math.Ceil(wait.Seconds()))
	e := httpErrorf(http.StatusTooManyRequests, "RATE_LIMITED", format+"; retry after %ds", append(args, secs)...).
		with("retry_after_seconds", secs)
	e.header = map[string]string{"Retry-After": strconv.Itoa(secs)}
	return e
}

// peekSpace is the space a request names in its header or query (the
// label of a per-key rate limit; the body is not read here).
func peekSpace(r *http.Request) string {
	if v := strings.TrimSpace(r.Header.Get(api.HeaderSpace)); v != "" {
		return v
	}
	if v := strings.TrimSpace(r.URL.Query().Get("space")); v != "" {
		return v
	}
	return api.DefaultSpace
}

// KeyOut describes k on the wire (the admin routes and apikey list).
func KeyOut(k apikey.Key, now time.Time) api.APIKey {
	out := api.APIKey{ID: k.ID, Name: k.Name, Spaces: k.Spaces, Rate: apikey.FormatRate(k.Rate), State: k.State(now),
		Created: k.Created, RotatedFrom: k.RotatedFrom}
	for _, p := range k.Permissions {
		out.Permissions = append(out.Permissions, string(p))
	}
	if out.Spaces == nil {
		out.Spaces = []string{}
	}
	if !k.Expires.IsZero() {
		t := k.Expires
		out.Expires = &t
	}
	if !k.Revoked.IsZero() {
		t := k.Revoked
		out.Revoked = &t
	}
	return out
}

// SpecFromRequest turns a create request into a key spec.
func SpecFromRequest(req api.APIKeyCreateRequest) (apikey.Spec, error) {
	var errs []error
	spec := apikey.Spec{Name: req.Name, Spaces: req.Spaces}
	perms, err := apikey.ParsePermissions(strings.Join(req.Permissions, ","))
	errs = append(errs, err)
	spec.Permissions = perms
	if req.Expires != "" {
		spec.TTL, err = apikey.ParseTTL(req.Expires)
		errs = append(errs, err)
	}
	if req.Rate != "" {
		spec.Rate, err = apikey.ParseRate(req.Rate)
		errs = append(errs, err)
	}
	return spec, errors.Join(errs...)
}

func (s *Server) apiKeyRoutes() {
	s.handle("GET "+api.PathAdminAPIKeys, s.handleListKeys)
	s.handle("POST "+api.PathAdminAPIKeys, s.handleCreateKey)
	s.handle("DELETE "+api.PathAdminAPIKey, s.handleRevokeKey)
	s.handle("POST "+api.PathAdminAPIKeyRotate, s.handleRotateKey)
}

func (s *Server) keyStore() (*apikey.Store, error) {
	if s.keys == nil {
		return nil, httpErrorf(http.StatusConflict, "APIKEYS_NOT_CONFIGURED", "this server was started without an API key store")
	}
	return s.keys, nil
}

func (s *Server) handleListKeys(w http.ResponseWriter, r *http.Request) error {
	st, err := s.keyStore()
	if err != nil {
		return err
	}
	if err := newParams(r).check(); err != nil {
		return err
	}
	now := time.Now()
	out := api.APIKeyList{Keys: []api.APIKey{}}
	for _, k := range st.List() {
		out.Keys = append(out.Keys, KeyOut(k, now))
	}
	s.writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) handleCreateKey(w http.ResponseWriter, r *http.Request) error {
	st, err := s.keyStore()
	if err != nil {
		return err
	}
	var req api.APIKeyCreateRequest
	if err := decodeJSON(w, r, s.cfg.Limits.MaxBodyBytes, &req); err != nil {
		return err
	}
	spec, err := SpecFromRequest(req)
	if err != nil {
		return httpErrorf(http.StatusBadRequest, "INVALID_API_KEY_SPEC", "%v", err)
	}
	token, k, err := st.Create(r.Context(), spec)
	if err != nil {
		return keyError(err)
	}
	setTarget(r, k.ID)
	s.writeJSON(w, http.StatusCreated, api.APIKeyCreated{Key: KeyOut(k, time.Now()), Token: token})
	return nil
}

func (s *Server) handleRevokeKey(w http.ResponseWriter, r *http.Request) error {
	st, err := s.keyStore()
	if err != nil {
		return err
	}
	if err := newParams(r).check(); err != nil {
		return err
	}
	setTarget(r, r.PathValue("id"))
	k, err := st.Revoke(r.Context(), r.PathValue("id"))
	if err != nil {
		return keyError(err)
	}
	s.keyLimiters.Delete(k.ID)
	s.writeJSON(w, http.StatusOK, KeyOut(k, time.Now()))
	return nil
}

func (s *Server) handleRotateKey(w http.ResponseWriter, r *http.Request) error {
	st, err := s.keyStore()
	if err != nil {
		return err
	}
	var req api.APIKeyRotateRequest
	if err := decodeJSON(w, r, s.cfg.Limits.MaxBodyBytes, &req); err != nil {
		return err
	}
	overlap, err := time.ParseDuration(strings.TrimSpace(req.Overlap))
	if err != nil || overlap < 0 {
		return httpErrorf(http.StatusBadRequest, "INVALID_PARAMETER", "overlap %q must be a duration such as \"24h\" (how long the old key stays valid)", echo(req.Overlap)).
			with("parameter", "overlap")
	}
	setTarget(r, r.PathValue("id"))
	token, k, err := st.Rotate(r.Context(), r.PathValue("id"), overlap)
	if err != nil {
		return keyError(err)
	}
	s.writeJSON(w, http.StatusCreated, api.APIKeyCreated{Key: KeyOut(k, time.Now()), Token: token})
	return nil
}

func keyError(err error) error {
	switch {
	case errors.Is(err, apikey.ErrNotFound):
		return httpErrorf(http.StatusNotFound, "API_KEY_NOT_FOUND", "%v", err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	var ce *core.Error
	if errors.As(err, &ce) {
		return err // the engine's own refusal (unavailable, disk full, ...)
	}
	return httpErrorf(http.StatusBadRequest, "INVALID_API_KEY_SPEC", "%v", err)
}
