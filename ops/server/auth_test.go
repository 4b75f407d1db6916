package server

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/engram-ops/engram-ops/core/apikey"
	"github.com/engram-ops/engram-ops/internal/testsupport"
	"github.com/engram-ops/engram-ops/ops/api"
	"github.com/engram-ops/engram-ops/ops/config"
)

// keyed is a server with auth.mode = api_key and one key of each kind.
type keyed struct {
	s     *Server
	store *apikey.Store
	// tokens of a read, write, admin and wrong-space (read,write limited
	// to another space) key.
	read, write, admin, wrongSpace string
}

func newKeyedServer(t testing.TB, mod func(*config.Config), opts ...Option) *keyed {
	t.Helper()
	cfg := testConfig()
	cfg.Auth.Mode = config.AuthAPIKey
	cfg.Testing.FaultInjection = true
	if mod != nil {
		mod(&cfg)
	}
	eng := openEngine(t, cfg)
	store, err := apikey.Open(eng)
	if err != nil {
		t.Fatal(err)
	}
	k := &keyed{store: store}
	mk := func(spec apikey.Spec) string {
		tok, _, err := store.Create(context.Background(), spec)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	k.read = mk(apikey.Spec{Name: "r", Permissions: []apikey.Permission{apikey.Read}})
	k.write = mk(apikey.Spec{Name: "w", Permissions: []apikey.Permission{apikey.Write}})
	k.admin = mk(apikey.Spec{Name: "a", Permissions: []apikey.Permission{apikey.Admin}})
	k.wrongSpace = mk(apikey.Spec{Name: "x", Permissions: []apikey.Permission{apikey.Write}, Spaces: []string{"tenant-x"}})
	k.s, err = New(cfg, eng, slog.New(slog.DiscardHandler), nil, append([]Option{WithAPIKeys(store)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func bearer(token string) map[string]string {
	if token == "" {
		return nil
	}
	return map[string]string{"Authorization": "Bearer " + token}
}

// What a route answers a caller: reached means the handler ran (any
// status but 401 and 403); 401 and 403 are refusals.
const reached = 0

// routeRequests are a valid request for each route (bodies the handlers
// accept, so a refusal can only come from authorisation).
var routeRequests = map[string]request{
	"POST " + api.PathRemember:          {body: `{"content":"x"}`},
	"POST " + api.PathMemories:          {body: `{"content":"x"}`},
	"POST " + api.PathEpisodes:          {body: `{"what":"x","when":"2024-01-01T00:00:00Z"}`},
	"POST " + api.PathBatch:             {body: `{"memories":[{"content":"x"}]}`},
	"POST " + api.PathRecall:            {body: `{"query":"x"}`},
	"POST " + api.PathRecognize:         {body: `{"input":"x"}`},
	"POST " + api.PathComplete:          {body: `{"partial":{"what":"x"}}`},
	"POST " + api.PathReplay:            {body: `{}`},
	"POST " + api.PathQuery:             {body: `{"query_text":"RECALL \"x\""}`},
	"POST " + api.PathQueryExecute:      {body: `{"query":"RECALL \"x\""}`},
	"POST " + api.PathAssociations:      {body: `{"from":"a1","to":"b1","weight":0.5}`},
	"POST " + api.PathSpaces:            {body: `{"id":"default"}`},
	"POST " + api.PathAdminAPIKeys:      {body: `{"name":"n","permissions":["read"]}`},
	"POST " + api.PathAdminAPIKeyRotate: {body: `{"overlap":"1h"}`},
	"POST " + PathAdminFaults:           {body: `{"operations":["recall"],"latency":"1ms"}`},
}

// TestRouteTable: every route the server registers × {no key, read,
// write, admin, wrong-space key}. A route without a row fails.
func TestRouteTable(t *testing.T) {
	const F, U = http.StatusForbidden, http.StatusUnauthorized
	// columns: none, read, write, admin, wrong-space
	want := map[string][5]int{
		"POST " + api.PathRemember:           {U, F, reached, reached, F},
		"POST " + api.PathMemories:           {U, F, reached, reached, F},
		"POST " + api.PathEpisodes:           {U, F, reached, reached, F},
		"POST " + api.PathBatch:              {U, F, reached, reached, F},
		"GET " + api.PathRecall:              {U, reached, reached, reached, F},
		"POST " + api.PathRecall:             {U, reached, reached, reached, F},
		"GET " + api.PathSearch:              {U, reached, reached, reached, F},
		"GET " + api.PathMemory:              {U, reached, reached, reached, F},
		"DELETE " + api.PathMemory:           {U, F, reached, reached, F},
		"GET " + api.PathMemories:            {U, reached, reached, reached, F},
		"POST " + api.PathAssociations:       {U, F, reached, reached, F},
		"GET " + api.PathBatchCursor:         {U, reached, reached, reached, reached},
		"GET " + api.PathSpaces:              {U, reached, reached, reached, reached},
		"POST " + api.PathSpaces:             {U, F, reached, reached, F},
		"GET " + api.PathSpace:               {U, reached, reached, reached, F},
		"GET " + api.PathHealth:              {reached, reached, reached, reached, reached},
		"GET " + api.PathHealthAlive:         {reached, reached, reached, reached, reached},
		"GET " + api.PathHealthReady:         {reached, reached, reached, reached, reached},
		"GET " + api.PathSystemHealth:        {U, reached, reached, reached, reached},
		"POST " + api.PathAdminBackup:        {U, F, F, reached, F},
		"GET " + api.PathAdminBackup:         {U, F, F, reached, F},
		"GET " + PathAdminFaults:             {U, F, F, reached, F},
		"POST " + PathAdminFaults:            {U, F, F, reached, F},
		"DELETE " + PathAdminFaults:          {U, F, F, reached, F},
		"GET " + api.PathAdminAPIKeys:        {U, F, F, reached, F},
		"POST " + api.PathAdminAPIKeys:       {U, F, F, reached, F},
		"DELETE " + api.PathAdminAPIKey:      {U, F, F, reached, F},
		"POST " + api.PathAdminAPIKeyRotate:  {U, F, F, reached, F},
		"GET " + api.PathAdminSpaceHold:      {U, F, F, reached, F},
		"POST " + api.PathAdminSpaceHold:     {U, F, F, reached, F},
		"DELETE " + api.PathAdminSpaceHold:   {U, F, F, reached, F},
		"GET " + api.PathAdminSpaceChanges:   {U, F, F, reached, F},
		"GET " + api.PathAdminSpaceExport:    {U, F, F, reached, F},
		"POST " + api.PathAdminSpacePurge:    {U, F, F, reached, F},
		"GET " + api.PathMetrics:             {reached, reached, reached, reached, reached}, // auth.metrics = public
		"GET " + api.PathMetricsProm:         {reached, reached, reached, reached, reached},
		"GET " + api.PathStreamActivities:    {U, reached, reached, reached, F},
		"GET " + api.PathStreamMemories:      {U, reached, reached, reached, F},
		"GET " + api.PathStreamConsolidation: {U, reached, reached, reached, F},
		"GET " + api.PathMonitoringEvents:    {U, reached, reached, reached, F},
		"GET " + api.PathMonitorEvents:       {U, reached, reached, reached, F},
		"GET " + api.PathOpenAPI:             {reached, reached, reached, reached, reached},
		"GET " + api.PathDocs:                {reached, reached, reached, reached, reached},
		"GET " + api.PathDocsAsset:           {reached, reached, reached, reached, reached},
		"POST " + api.PathRecognize:          {U, reached, reached, reached, F},
		"POST " + api.PathQuery:              {U, reached, reached, reached, F},
		"POST " + api.PathQueryExecute:       {U, reached, reached, reached, F},
		"GET " + api.PathProbabilistic:       {U, reached, reached, reached, F},
		"GET " + api.PathIntrospect:          {U, reached, reached, reached, reached},
		"POST " + api.PathComplete:           {U, reached, reached, reached, F},
		"POST " + api.PathReplay:             {U, F, reached, reached, F},
		"GET " + api.PathConsolidations:      {U, reached, reached, reached, F},
		"GET " + api.PathConsolidation:       {U, reached, reached, reached, F},
		"GET " + api.PathHealthSpreading:     {reached, reached, reached, reached, reached},
	}
	k := newKeyedServer(t, nil)
	k.s.hub.Close() // a stream that is reached ends at once instead of running on
	if len(k.s.patterns) < 20 {
		t.Fatalf("only %d routes registered", len(k.s.patterns))
	}
	tokens := [5]string{"", k.read, k.write, k.admin, k.wrongSpace}
	for pattern := range k.s.patterns {
		row, ok := want[pattern]
		if !ok {
			t.Errorf("route %q has no row in the route table: add its expected statuses", pattern)
			continue
		}
		method, path, _ := strings.Cut(pattern, " ")
		path = strings.NewReplacer("{id}", "nope", "{name}", "default").Replace(path)
		if pattern == "GET "+api.PathBatchCursor {
			path += "?source=s"
		}
		if pattern == "GET "+api.PathSearch || pattern == "GET "+api.PathRecall {
			path += "?query=x"
		}
		for col, tok := range tokens {
			rq := routeRequests[pattern]
			rq.method, rq.path, rq.headers = method, path, bearer(tok)
			w := do(t, k.s.Handler(), rq)
			got := w.Code
			if got != U && got != F {
				got = reached
			}
			if got != row[col] {
				t.Errorf("%s with %s: status %d (%s), want %s", pattern, []string{"no key", "read key", "write key", "admin key", "wrong-space key"}[col],
					w.Code, strings.TrimSpace(w.Body.String()), map[int]string{reached: "the handler", U: "401", F: "403"}[row[col]])
			}
		}
	}
	for pattern := range want {
		if !k.s.patterns[pattern] {
			t.Errorf("the route table has a row for %q, which is not registered", pattern)
		}
	}
}

// metricValue reads one sample of the server's /metrics.
func metricValue(t testing.TB, s *Server, series string) float64 {
	t.Helper()
	r := httptest.NewRequest("GET", "/metrics", nil)
	w := httptest.NewRecorder()
	s.metrics.Handler().ServeHTTP(w, r)
	sc := bufio.NewScanner(w.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	return 0
}

// Every refusal says why, on the wire and in engram_auth_failures_total.
func TestAuthFailuresByReason(t *testing.T) {
	k := newKeyedServer(t, nil)
	ctx := context.Background()
	expTok, _, err := k.store.Create(ctx, apikey.Spec{Name: "e", Permissions: []apikey.Permission{apikey.Read}, TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	k.store.SetClock(func() time.Time { return time.Now().Add(2 * time.Minute) })
	revTok, rk, _ := k.store.Create(ctx, apikey.Spec{Name: "v", Permissions: []apikey.Permission{apikey.Read}})
	if _, err := k.store.Revoke(ctx, rk.ID); err != nil {
		t.Fatal(err)
	}
	wrongSecret := k.read[:len(apikey.Prefix)+13] + strings.Repeat("Q", 32)
	wrongSecret += apikey.Checksum(wrongSecret)
	unknown := apikey.Prefix + "ZZZZZZZZZZZZ_" + strings.Repeat("Q", 32)
	unknown += apikey.Checksum(unknown)
	for _, tc := range []struct {
		reason  string
		headers map[string]string
		method  string
		path    string
		status  int
		code    string
	}{
		{"missing", nil, "GET", api.PathSpaces, 401, "MISSING_API_KEY"},
		{"malformed", map[string]string{"Authorization": "Basic dXNlcjpwYXNz"}, "GET", api.PathSpaces, 401, "MALFORMED_API_KEY"},
		{"malformed", map[string]string{"X-API-Key": k.read[:20]}, "GET", api.PathSpaces, 401, "MALFORMED_API_KEY"},
		{"unknown_key", bearer(unknown), "GET", api.PathSpaces, 401, "INVALID_API_KEY"},
		{"wrong_secret", bearer(wrongSecret), "GET", api.PathSpaces, 401, "INVALID_API_KEY"},
		{"expired", bearer(expTok), "GET", api.PathSpaces, 401, "API_KEY_EXPIRED"},
		{"revoked", bearer(revTok), "GET", api.PathSpaces, 401, "API_KEY_REVOKED"},
		{"wrong_space", map[string]string{"X-API-Key": k.wrongSpace, api.HeaderSpace: "default"}, "GET", api.PathMemories, 403, "FORBIDDEN_SPACE"},
		{"forbidden", bearer(k.read), "DELETE", "/api/v1/memories/m1", 403, "FORBIDDEN"},
	} {
		series := `engram_auth_failures_total{reason="` + tc.reason + `"}`
		before := metricValue(t, k.s, series)
		w := do(t, k.s.Handler(), request{method: tc.method, path: tc.path, headers: tc.headers})
		body := decodeEnvelope(t, w)
		if w.Code != tc.status || body.Code != tc.code {
			t.Errorf("%s: %d %s %q, want %d %s", tc.reason, w.Code, body.Code, body.Message, tc.status, tc.code)
		}
		if tc.status == 401 && w.Header().Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", tc.reason)
		}
		if after := metricValue(t, k.s, series); after != before+1 {
			t.Errorf("%s: %s went %v → %v, want +1", tc.reason, series, before, after)
		}
		for _, tok := range []string{k.read, k.wrongSpace, expTok, revTok} {
			if strings.Contains(w.Body.String(), tok[len(apikey.Prefix)+13:]) {
				t.Errorf("%s: the answer repeats a secret", tc.reason)
			}
		}
	}
}

// A key limited to spaces sees only them in lists and health.
func TestScopedKeySeesOnlyItsSpaces(t *testing.T) {
	k := newKeyedServer(t, nil)
	h := k.s.Handler()
	for _, sp := range []string{"tenant-x", "tenant-y"} {
		w := do(t, h, request{method: "POST", path: api.PathRemember, body: `{"content":"hello"}`,
			headers: map[string]string{"Authorization": "Bearer " + k.write, api.HeaderSpace: sp}})
		if w.Code != 201 {
			t.Fatalf("remember in %s: %d %s", sp, w.Code, w.Body.String())
		}
	}
	for _, path := range []string{api.PathSpaces, api.PathSystemHealth} {
		w := do(t, h, request{method: "GET", path: path, headers: bearer(k.wrongSpace)})
		if w.Code != 200 || !strings.Contains(w.Body.String(), "tenant-x") || strings.Contains(w.Body.String(), "tenant-y") {
			t.Errorf("%s with a tenant-x key: %d %s", path, w.Code, w.Body.String())
		}
		w = do(t, h, request{method: "GET", path: path, headers: bearer(k.read)})
		if !strings.Contains(w.Body.String(), "tenant-y") {
			t.Errorf("%s with an unscoped key misses tenant-y: %s", path, w.Body.String())
		}
	}
	w := do(t, h, request{method: "GET", path: api.PathSystemHealth + "?space=tenant-y", headers: bearer(k.wrongSpace)})
	if w.Code != 403 {
		t.Errorf("system health of another space: %d", w.Code)
	}
	// Body-named space counts too.
	w = do(t, h, request{method: "POST", path: api.PathRemember, body: `{"content":"x","memory_space_id":"tenant-y"}`, headers: bearer(k.wrongSpace)})
	if w.Code != 403 {
		t.Errorf("write naming another space in the body: %d", w.Code)
	}
}

// Without auth, on loopback, a request addressed to another host is
// refused (DNS rebinding); loopback names pass.
func TestNoAuthRefusesNonLoopbackHost(t *testing.T) {
	cfg := testConfig()
	s := newTestServer(t, cfg, openEngine(t, cfg))
	for host, want := range map[string]int{
		"localhost": 200, "localhost:7432": 200, "127.0.0.1:7432": 200, "127.1.2.3": 200, "[::1]:7432": 200, "::1": 200,
		"evil.example:7432": 421, "10.0.0.1": 421, "localhost.evil.example": 421, "": 421,
	} {
		r := httptest.NewRequest("GET", api.PathSpaces, nil)
		r.Host = host
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, r)
		if w.Code != want {
			t.Errorf("Host %q: %d, want %d", host, w.Code, want)
		}
		if want == 421 {
			if body := decodeEnvelope(t, w); body.Code != "HOST_NOT_ALLOWED" {
				t.Errorf("Host %q: code %s", host, body.Code)
			}
		}
	}
	// An explicitly insecure server on all interfaces checks no Host, and
	// says it is insecure in system health.
	cfg.Listen = "0.0.0.0:0"
	cfg.Auth.InsecureAllowNoAuth = true
	s = newTestServer(t, cfg, openEngine(t, cfg))
	w := do(t, s.Handler(), request{method: "GET", path: api.PathSystemHealth, headers: map[string]string{"Host": "db.internal"}})
	if w.Code != 200 || !strings.Contains(w.Body.String(), "INSECURE") || !strings.Contains(w.Body.String(), `"status":"degraded"`) {
		t.Errorf("insecure server's system health: %d %s", w.Code, w.Body.String())
	}
}

// Per-key and per-space token buckets answer 429 with Retry-After and
// count engram_rate_limited_total{space}.
func TestRateLimits(t *testing.T) {
	k := newKeyedServer(t, func(c *config.Config) { c.RateLimit.Space = 2; c.RateLimit.SpaceBurst = 2 })
	h := k.s.Handler()
	// The space limit: two at once, then 429.
	hdr := map[string]string{"Authorization": "Bearer " + k.write, api.HeaderSpace: "default"}
	if w := do(t, h, request{method: "POST", path: api.PathRemember, body: `{"content":"x"}`, headers: hdr}); w.Code != 201 {
		t.Fatalf("first: %d %s", w.Code, w.Body.String())
	}
	// (The space now exists: its own bucket starts full.)
	do(t, h, request{method: "GET", path: api.PathMemories, headers: hdr})
	do(t, h, request{method: "GET", path: api.PathMemories, headers: hdr})
	series := `engram_rate_limited_total{space="default"}`
	before := metricValue(t, k.s, series)
	w := do(t, h, request{method: "GET", path: api.PathMemories, headers: hdr})
	if w.Code != 429 || w.Header().Get("Retry-After") == "" || decodeEnvelope(t, w).Code != "RATE_LIMITED" {
		t.Fatalf("third request to a 2/s space: %d %q %s", w.Code, w.Header().Get("Retry-After"), w.Body.String())
	}
	if after := metricValue(t, k.s, series); after != before+1 {
		t.Errorf("%s went %v → %v", series, before, after)
	}
	// The key limit: 1/s on a key, whatever the space.
	tok, _, err := k.store.Create(context.Background(), apikey.Spec{Name: "slow", Permissions: []apikey.Permission{apikey.Read}, Rate: 1})
	if err != nil {
		t.Fatal(err)
	}
	if w := do(t, h, request{method: "GET", path: api.PathSpaces, headers: bearer(tok)}); w.Code != 200 {
		t.Fatalf("first: %d", w.Code)
	}
	w = do(t, h, request{method: "GET", path: api.PathSpaces, headers: bearer(tok)})
	if w.Code != 429 || w.Header().Get("Retry-After") != "1" {
		t.Fatalf("second request of a 1/s key: %d %q", w.Code, w.Header().Get("Retry-After"))
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk on fire") }

// The audit log names the key (never the secret), route, space and ids;
// a failing sink is counted and reported.
func TestAuditLog(t *testing.T) {
	var buf testsupport.SyncBuffer
	k := newKeyedServer(t, nil, WithAudit(&buf, false))
	h := k.s.Handler()
	w := do(t, h, request{method: "POST", path: api.PathRemember, body: `{"id":"m-audit","content":"x"}`,
		headers: map[string]string{"Authorization": "Bearer " + k.write, api.HeaderSpace: "tenant-a"}})
	if w.Code != 201 {
		t.Fatal(w.Code, w.Body.String())
	}
	do(t, h, request{method: "GET", path: api.PathMemories, headers: bearer(k.read)})                    // a read: not audited
	do(t, h, request{method: "DELETE", path: "/api/v1/memories/m-audit", headers: bearer(k.wrongSpace)}) // refused
	do(t, h, request{method: "GET", path: api.PathAdminAPIKeys, headers: bearer(k.admin)})               // admin
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d audit lines, want 3:\n%s", len(lines), buf.String())
	}
	for _, want := range []string{`"ids":["m-audit"]`, `"space":"tenant-a"`, `"route":"/api/v1/memories/remember"`, `"outcome":"ok"`, `"status":201`, `"remote":"192.0.2.1:1234"`} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("write line lacks %s: %s", want, lines[0])
		}
	}
	if !strings.Contains(lines[1], `"outcome":"refused"`) || !strings.Contains(lines[1], `"reason":"wrong_space"`) {
		t.Errorf("refused line: %s", lines[1])
	}
	if !strings.Contains(lines[2], `"route":"/api/v1/admin/apikeys"`) {
		t.Errorf("admin line: %s", lines[2])
	}
	for _, tok := range []string{k.write, k.read, k.wrongSpace, k.admin} {
		if strings.Contains(buf.String(), tok[len(apikey.Prefix)+13:]) {
			t.Fatal("the audit log holds a secret")
		}
	}

	f := newKeyedServer(t, nil, WithAudit(failingWriter{}, false))
	do(t, f.s.Handler(), request{method: "POST", path: api.PathRemember, body: `{"content":"x"}`, headers: bearer(f.write)})
	if v := metricValue(t, f.s, "engram_audit_write_failures_total"); v != 1 {
		t.Errorf("engram_audit_write_failures_total = %v, want 1", v)
	}
	w = do(t, f.s.Handler(), request{method: "GET", path: api.PathSystemHealth, headers: bearer(f.read)})
	if !strings.Contains(w.Body.String(), "audit log failed") || !strings.Contains(w.Body.String(), "disk on fire") {
		t.Errorf("system health does not report the failing audit sink: %s", w.Body.String())
	}
}

// AuditFile rotates by size and keeps N files.
func TestAuditFileRotates(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/audit.log"
	a, err := NewAuditFile(path, 100, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	line := []byte(strings.Repeat("x", 59) + "\n")
	for range 5 {
		if _, err := a.Write(line); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{path, path + ".1", path + ".2"} {
		if b, err := os.ReadFile(p); err != nil || len(b) != 60 {
			t.Errorf("%s: %d bytes, %v", p, len(b), err)
		}
	}
	if _, err := os.Stat(path + ".3"); err == nil {
		t.Error("kept more than 2 rotated files")
	}
}

func FuzzCredentials(f *testing.F) {
	f.Add("Bearer engk_AAAAAAAAAAAA_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB000000", "")
	f.Add("bearer   x", "x")
	f.Add("", "engk_")
	f.Add("Basic Zm9vOmJhcg==", "")
	f.Fuzz(func(t *testing.T, auth, key string) {
		h := http.Header{}
		if auth != "" {
			h.Set("Authorization", auth)
		}
		if key != "" {
			h.Set(api.HeaderAPIKey, key)
		}
		tok, err := credentials(h)
		if err != nil {
			var ae *apikey.Error
			if !errors.As(err, &ae) || (ae.Reason != apikey.Missing && ae.Reason != apikey.Malformed) {
				t.Fatalf("error %v is not missing or malformed", err)
			}
			return
		}
		if tok == "" || strings.ContainsAny(tok, " \t") || len(tok) > maxCredentialBytes+16 {
			t.Fatalf("accepted token %q", tok)
		}
		if !strings.Contains(auth, tok) && !strings.Contains(key, tok) {
			t.Fatalf("token %q is in neither header", tok)
		}
	})
}

// BenchmarkAuth: the same request without authentication and with a
// verified key; the ratio is the cost of authentication.
func BenchmarkAuth(b *testing.B) {
	k := newKeyedServer(b, nil)
	cfg := testConfig()
	open := newTestServer(b, cfg, openEngine(b, cfg))
	run := func(b *testing.B, h http.Handler, token string) {
		b.ReportAllocs()
		for b.Loop() {
			r := httptest.NewRequest("GET", api.PathHealthReady, nil)
			r.Host = "localhost"
			if token != "" {
				r.Header.Set("Authorization", "Bearer "+token)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != 200 {
				b.Fatal(w.Code)
			}
		}
	}
	b.Run("none", func(b *testing.B) { run(b, open.Handler(), "") })
	b.Run("api_key", func(b *testing.B) {
		// /health/ready is public; make it keyed for the measurement.
		prev := routeAccess["GET "+api.PathHealthReady]
		routeAccess["GET "+api.PathHealthReady] = accessRead
		defer func() { routeAccess["GET "+api.PathHealthReady] = prev }()
		run(b, k.s.Handler(), k.read)
	})
}

// auth.metrics = "key" keeps /metrics behind a key.
func TestMetricsKeyed(t *testing.T) {
	k := newKeyedServer(t, func(c *config.Config) { c.Auth.Metrics = "key" })
	if w := do(t, k.s.Handler(), request{method: "GET", path: api.PathMetrics}); w.Code != 401 {
		t.Errorf("no key: %d", w.Code)
	}
	if w := do(t, k.s.Handler(), request{method: "GET", path: api.PathMetrics, headers: bearer(k.read)}); w.Code != 200 {
		t.Errorf("read key: %d", w.Code)
	}
}
