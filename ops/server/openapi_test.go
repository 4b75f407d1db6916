package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/ops/api"
	"github.com/engram-ops/engram-ops/ops/api/openapi"
)

const (
	openAPIPath = "../../docs/openapi.json"
	restAPIPath = "../../docs/reference/rest-api.md"
)

// TestOpenAPIRoutes: routeDocs documents exactly the routes the server
// registers, once each, and the document holds exactly those operations.
func TestOpenAPIRoutes(t *testing.T) {
	k := newKeyedServer(t, nil)
	documented := map[string]bool{}
	for _, rd := range routeDocs {
		if documented[rd.Pattern] {
			t.Errorf("routeDocs (ops/server/openapi.go) documents %q twice: keep one entry", rd.Pattern)
		}
		documented[rd.Pattern] = true
		if rd.Summary == "" || rd.Tag == "" || len(rd.OK) == 0 {
			t.Errorf("routeDocs entry %q lacks a Summary, a Tag or its OK answers", rd.Pattern)
		}
		if !slices.ContainsFunc(docTags, func(tg openapi.Tag) bool { return tg.Name == rd.Tag }) {
			t.Errorf("routeDocs entry %q has tag %q, which is not in docTags (ops/server/openapi.go)", rd.Pattern, rd.Tag)
		}
	}
	for _, p := range slices.Sorted(mapsKeys(k.s.patterns)) {
		if !documented[p] {
			t.Errorf("route %q is registered but not in the OpenAPI document: add an entry\n"+
				"\t{Pattern: %q, Tag: …, Summary: …, Body: <request wire type>{}, OK: ok(<response wire type>{}, …), Errors: […], Example: example{…}},\n"+
				"to routeDocs in ops/server/openapi.go (in the order its example can run), then run make docs "+
				"(it rewrites docs/openapi.json and docs/reference/rest-api.md)", p, p)
		}
	}
	for _, rd := range routeDocs {
		if !k.s.patterns[rd.Pattern] {
			t.Errorf("routeDocs (ops/server/openapi.go) documents %q, which the server does not register: "+
				"remove the entry (or register the route), then run make docs", rd.Pattern)
		}
	}
	ops := openAPIDocument().Operations()
	for _, p := range ops {
		if !k.s.patterns[p] {
			t.Errorf("the document names %q, which the server does not register", p)
		}
	}
	if len(ops) != len(k.s.patterns) {
		t.Errorf("the document has %d operations for %d registered routes", len(ops), len(k.s.patterns))
	}
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// TestOpenAPIDoc: docs/openapi.json is the generated document, and it is
// a valid OpenAPI 3.1 document; -update (make docs) rewrites it.
func TestOpenAPIDoc(t *testing.T) {
	want, err := openAPIJSON()
	if err != nil {
		t.Fatal(err)
	}
	again, _ := openapi.Marshal(openAPIDocument())
	if !bytes.Equal(want, again) {
		t.Fatal("two generations of the document differ: the generator is not deterministic")
	}
	if *update {
		if err := os.WriteFile(openAPIPath, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(openAPIPath)
	if err != nil {
		t.Fatalf("%v (make docs writes it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is not the document the server generates (routeDocs in ops/server/openapi.go, the wire types of ops/api, errcodes.go): regenerate it with make docs", openAPIPath)
	}
	loadOpenAPI(t)
}

// TestRESTAPIDoc: docs/reference/rest-api.md is rendered from the
// document; -update (make docs) rewrites it.
func TestRESTAPIDoc(t *testing.T) {
	want := restAPIMarkdown()
	if *update {
		if err := os.WriteFile(restAPIPath, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(restAPIPath)
	if err != nil {
		t.Fatalf("%v (make docs writes it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is not rendered from the current document: regenerate it with make docs", restAPIPath)
	}
	for _, rd := range routeDocs {
		method, path, _ := strings.Cut(rd.Pattern, " ")
		if !bytes.Contains(got, []byte("### `"+method+" "+path+"`")) {
			t.Errorf("%s has no section for %s", restAPIPath, rd.Pattern)
		}
	}
}

// TestOpenAPIErrorCodes: every code of the error-code table is in the
// committed document, under the error response of its status and under
// the default response.
func TestOpenAPIErrorCodes(t *testing.T) {
	b, err := os.ReadFile(openAPIPath)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Components struct {
			Responses map[string]struct {
				Content map[string]struct {
					Schema struct {
						AllOf []struct {
							Properties struct {
								Error struct {
									Properties struct {
										Code struct {
											Enum []string `json:"enum"`
										} `json:"code"`
									} `json:"properties"`
								} `json:"error"`
							} `json:"properties"`
						} `json:"allOf"`
					} `json:"schema"`
				} `json:"content"`
			} `json:"responses"`
		} `json:"components"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	codes := func(name string) []string {
		r, ok := doc.Components.Responses[name]
		if !ok {
			return nil
		}
		for _, part := range r.Content["application/json"].Schema.AllOf {
			if e := part.Properties.Error.Properties.Code.Enum; e != nil {
				return e
			}
		}
		return nil
	}
	for _, c := range errorCodes {
		name := "Error" + strconv.Itoa(c.Status)
		if !slices.Contains(codes(name), c.Code) {
			t.Errorf("%s (%d) is in the error-code table (errcodes.go) but not in %s's components.responses.%s: run make docs", c.Code, c.Status, openAPIPath, name)
		}
		if !slices.Contains(codes("Error"), c.Code) {
			t.Errorf("%s is not in %s's default error response: run make docs", c.Code, openAPIPath)
		}
	}
}

// loadOpenAPI loads and validates the committed document.
func loadOpenAPI(t testing.TB) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(openAPIPath)
	if err != nil {
		t.Fatalf("load %s: %v", openAPIPath, err)
	}
	if !doc.IsOpenAPI31OrLater() || doc.IsOpenAPI32OrLater() {
		t.Fatalf("%s is OpenAPI %s, want 3.1", openAPIPath, doc.OpenAPI)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatalf("%s is not a valid OpenAPI document: %v", openAPIPath, err)
	}
	return doc
}

var registerDecoders sync.Once

// openAPIRouter routes requests addressed to the document's server
// (docBaseURL) to its operations; loaded once, as it is slow to build.
var openAPIRouter = sync.OnceValues(func() (routers.Router, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(openAPIPath)
	if err != nil {
		return nil, err
	}
	return gorillamux.NewRouter(doc)
})

// liveAPI sends requests to a live server and validates each request
// (when it is meant to be valid) and each answer against the document.
type liveAPI struct {
	t      *testing.T
	url    string
	router routers.Router
	// seen records, per operation, the statuses answered.
	seen map[string][]int
}

func newLiveAPI(t *testing.T, h http.Handler) *liveAPI {
	registerDecoders.Do(func() {
		for _, ct := range []string{"text/html", "text/javascript", "text/css", "text/event-stream", "application/x-ndjson"} {
			openapi3filter.RegisterBodyDecoder(ct, openapi3filter.PlainBodyDecoder)
		}
	})
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	router, err := openAPIRouter()
	if err != nil {
		t.Fatal(err)
	}
	return &liveAPI{t: t, url: ts.URL, router: router, seen: map[string][]int{}}
}

type liveCall struct {
	pattern string
	path    string // with query; default the pattern's path
	body    string
	headers map[string]string
	valid   bool // the request is meant to match the document
	want    int  // the status expected
}

// call sends c and returns the answer's body.
func (l *liveAPI) call(c liveCall) []byte {
	t := l.t
	t.Helper()
	method, path, _ := strings.Cut(c.pattern, " ")
	if c.path != "" {
		path = c.path
	}
	req := func(base string) *http.Request {
		var body io.Reader
		if c.body != "" {
			body = strings.NewReader(c.body)
		}
		r, err := http.NewRequest(method, base+path, body)
		if err != nil {
			t.Fatal(err)
		}
		if c.body != "" {
			r.Header.Set("Content-Type", "application/json")
		}
		for k, v := range c.headers {
			if k == "Host" {
				r.Host = v
				continue
			}
			r.Header.Set(k, v)
		}
		return r
	}
	vreq := req(docBaseURL) // the document's server, for the router
	route, params, err := l.router.FindRoute(vreq)
	if err != nil {
		t.Fatalf("%s %s: the document has no operation for it: %v", method, path, err)
	}
	if got := route.Method + " " + route.Path; got != c.pattern {
		t.Fatalf("%s %s: the document routes it to %s, want %s", method, path, got, c.pattern)
	}
	in := &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	if c.valid {
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			t.Errorf("%s %s: the request does not match the document: %v", method, path, err)
		}
	}
	resp, err := http.DefaultClient.Do(req(l.url))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body []byte
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		// A stream runs until the client leaves: read its opening
		// comment, then close it.
		body = readSSEBlock(t, resp.Body)
	} else if body, err = io.ReadAll(resp.Body); err != nil {
		t.Fatal(err)
	}
	shown := truncateString(string(body), 300)
	if resp.StatusCode != c.want {
		t.Errorf("%s %s answered %d, want %d: %s", method, path, resp.StatusCode, c.want, shown)
	}
	l.seen[c.pattern] = append(l.seen[c.pattern], resp.StatusCode)
	if route.Operation.Responses.Status(resp.StatusCode) == nil {
		t.Errorf("%s %s answered %d, which the document does not list for %s: add it to the route's OK or Errors in routeDocs (ops/server/openapi.go): %s",
			method, path, resp.StatusCode, c.pattern, shown)
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true}}
	out.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		t.Errorf("%s %s: the %d answer does not match the document: %v\n%s", method, path, resp.StatusCode, err, shown)
	}
	return body
}

// readSSEBlock reads a stream's first block (up to its first blank
// line), failing the test when the stream sends none within 5s.
func readSSEBlock(t *testing.T, r io.Reader) []byte {
	t.Helper()
	got := make(chan []byte, 1)
	go func() {
		var b bytes.Buffer
		br := bufio.NewReader(r)
		for {
			line, err := br.ReadBytes('\n')
			b.Write(line)
			if err != nil || len(bytes.TrimSpace(line)) == 0 {
				break
			}
		}
		got <- b.Bytes()
	}()
	select {
	case b := <-got:
		return b
	case <-time.After(5 * time.Second):
		t.Fatal("the stream sent nothing within 5s")
		return nil
	}
}

// fakeBackup is a configured backup shipper.
type fakeBackup struct{}

func (fakeBackup) Snapshot(context.Context) (api.BackupSnapshotResponse, error) {
	return api.BackupSnapshotResponse{ID: "snap-1", Sequence: 3, Target: "file:///backups", Files: 2}, nil
}
func (fakeBackup) Status() any {
	return map[string]any{"target": "file:///backups", "shipped_sequence": 3}
}

// TestOpenAPILive sends every route's documented example to a live
// server and then requests that fail, validating every request and answer
// against the committed document: each route answers a success and at
// least one error, each with a documented status and shape.
func TestOpenAPILive(t *testing.T) {
	k := newKeyedServer(t, nil, WithBackup(fakeBackup{}))
	l := newLiveAPI(t, k.s.Handler())
	admin := bearer(k.admin)

	// Success: every example, in order, as the admin.
	keyID, beliefID := "", ""
	for _, rd := range routeDocs {
		path := strings.NewReplacer("KEY_ID", keyID, "BELIEF_ID", beliefID).Replace(rd.Example.Path)
		want := rd.OK[0].Status
		body := l.call(liveCall{pattern: rd.Pattern, path: path, body: rd.Example.Body, headers: admin, valid: true, want: want})
		switch rd.Pattern {
		case "POST " + api.PathAdminAPIKeys:
			var created api.APIKeyCreated
			if err := json.Unmarshal(body, &created); err != nil {
				t.Fatal(err)
			}
			keyID = created.Key.ID
		case "POST " + api.PathReplay:
			var replay api.ReplayResponse
			if err := json.Unmarshal(body, &replay); err != nil {
				t.Fatal(err)
			}
			if len(replay.Beliefs) == 0 {
				t.Fatalf("the replay example wrote no belief for GET %s's example: %s", api.PathConsolidation, body)
			}
			beliefID = replay.Beliefs[0]
		}
	}

	// Errors: without a key, every route needing one answers 401.
	for _, rd := range routeDocs {
		if acc := routeAccess[rd.Pattern]; acc == accessPublic || acc == accessMetrics {
			continue // metrics: public under the default auth.metrics
		}
		path := strings.NewReplacer("KEY_ID", "nope", "BELIEF_ID", "nope").Replace(rd.Example.Path)
		l.call(liveCall{pattern: rd.Pattern, path: path, body: rd.Example.Body, want: http.StatusUnauthorized})
	}
	read, wrong := bearer(k.read), bearer(k.wrongSpace)
	const big = 70 << 10
	for _, c := range []liveCall{
		{pattern: "POST " + api.PathRemember, body: `{"content":""}`, headers: admin, want: 400},
		{pattern: "POST " + api.PathRemember, body: `{"content":"x","confidence":"high"}`, headers: admin, want: 400},
		{pattern: "POST " + api.PathRemember, body: `{"content":"x"`, headers: admin, want: 400},
		{pattern: "POST " + api.PathRemember, body: `{"content":"` + strings.Repeat("x", big) + `"}`, headers: admin, want: 413},
		{pattern: "POST " + api.PathRemember, body: `{"content":"x"}`, headers: map[string]string{"Authorization": "Bearer " + k.admin, "Content-Type": "text/plain"}, want: 415},
		{pattern: "POST " + api.PathRemember, body: `{"content":"x"}`, headers: read, want: 403},
		{pattern: "POST " + api.PathRemember, body: `{"content":"x","space":"other-space"}`, headers: wrong, want: 403},
		{pattern: "POST " + api.PathMemories, body: `{"content":"x","embedding":[1,2]}`, headers: admin, want: 400},
		{pattern: "POST " + api.PathEpisodes, body: `{"what":"x"}`, headers: admin, want: 400},
		{pattern: "POST " + api.PathBatch, body: `{"memories":[]}`, headers: admin, want: 400},
		{pattern: "POST " + api.PathBatch, body: `{"memories":[{"id":"a","content":"x"},{"id":"a","content":"y"}]}`, headers: admin, want: 400},
		{pattern: "GET " + api.PathBatchCursor, path: api.PathBatchCursor + "?source=never", headers: admin, want: 404},
		{pattern: "GET " + api.PathBatchCursor, headers: admin, want: 400},
		{pattern: "POST " + api.PathAssociations, body: `{"from":"mito","to":"mito","weight":0.5}`, headers: admin, want: 400},
		{pattern: "GET " + api.PathRecall, headers: admin, want: 400},
		{pattern: "GET " + api.PathRecall, path: api.PathRecall + "?query=x&max_results=many", headers: admin, want: 400},
		{pattern: "GET " + api.PathRecall, path: api.PathRecall + "?query=x&bogus=1", headers: admin, want: 400},
		{pattern: "POST " + api.PathRecall, body: `{"mode":"psychic","query":"x"}`, headers: admin, want: 400},
		{pattern: "GET " + api.PathSearch, headers: admin, want: 400},
		{pattern: "GET " + api.PathMemory, path: "/api/v1/memories/never-stored", headers: admin, want: 404},
		{pattern: "GET " + api.PathMemory, path: "/api/v1/memories/mito?space=Bad!", headers: admin, want: 400},
		{pattern: "DELETE " + api.PathMemory, path: "/api/v1/memories/never-stored", headers: admin, want: 404},
		{pattern: "GET " + api.PathMemories, path: api.PathMemories + "?tier=lukewarm", headers: admin, want: 400},
		{pattern: "POST " + api.PathSpaces, body: `{"id":"tenant-a","dimension":32}`, headers: admin, want: 409},
		{pattern: "GET " + api.PathSpaces, path: api.PathSpaces + "?x=1", headers: admin, want: 400},
		{pattern: "GET " + api.PathSpace, path: "/api/v1/spaces/ab", headers: admin, want: 400},
		{pattern: "GET " + api.PathSpace, path: "/api/v1/spaces/tenant-a", headers: wrong, want: 403},
		{pattern: "GET " + api.PathSystemHealth, path: api.PathSystemHealth + "?x=1", headers: admin, want: 400},
		{pattern: "GET " + api.PathAdminBackup, headers: read, want: 403},
		{pattern: "POST " + api.PathAdminAPIKeys, body: `{"name":"n","permissions":["fly"]}`, headers: admin, want: 400},
		{pattern: "GET " + api.PathAdminAPIKeys, path: api.PathAdminAPIKeys + "?x=1", headers: admin, want: 400},
		{pattern: "DELETE " + api.PathAdminAPIKey, path: "/api/v1/admin/apikeys/nope", headers: admin, want: 404},
		{pattern: "POST " + api.PathAdminAPIKeyRotate, path: "/api/v1/admin/apikeys/nope/rotate", body: `{"overlap":"1h"}`, headers: admin, want: 404},
		{pattern: "POST " + PathAdminFaults, body: `{"error_ratio":2}`, headers: admin, want: 400},
		{pattern: "GET " + api.PathDocsAsset, path: "/docs/secrets.txt", want: 404},
		{pattern: "POST " + api.PathRecognize, body: `{"input":"  "}`, headers: admin, want: 400},
		{pattern: "POST " + api.PathRecognize, body: `{"input":"x","threshold":2}`, headers: admin, want: 400},
		{pattern: "POST " + api.PathRecognize, body: `{"input":"x","space":"other-space"}`, headers: wrong, want: 403},
		{pattern: "POST " + api.PathComplete, body: `{"partial":{"when":"2025-01-02T15:04:05Z"}}`, headers: admin, want: 400},
		{pattern: "POST " + api.PathComplete, body: `{"partial":{"what":"x"},"params":{"num_hypotheses":99}}`, headers: admin, want: 400},
		{pattern: "POST " + api.PathQuery, body: `{"query_text":"RECALL \"unterminated"}`, headers: admin, want: 400},
		{pattern: "POST " + api.PathQuery, body: `{"query_text":"PREDICT \"rain\" GIVEN clouds"}`, headers: admin, want: 400},
		{pattern: "POST " + api.PathQuery, body: `{"query_text":"SPREAD FROM mito MAX_HOPS 9"}`, headers: admin, want: 400},
		{pattern: "POST " + api.PathQuery, body: `{"query_text":"SPREAD FROM never-stored"}`, headers: admin, want: 404},
		{pattern: "POST " + api.PathQueryExecute, body: `{"query":"RECALL *","memory_space_id":"no-such-space"}`, headers: admin, want: 404},
		{pattern: "POST " + api.PathQueryExecute, body: `{"query":"RECALL *"}`, headers: map[string]string{"Authorization": "Bearer " + k.wrongSpace, api.HeaderSpace: "other-space"}, want: 403},
		{pattern: "GET " + api.PathProbabilistic, path: api.PathProbabilistic + "?query=x&include_evidence=perhaps", headers: admin, want: 400},
		{pattern: "POST " + api.PathReplay, body: `{"min_episodes":1}`, headers: admin, want: 400},
		{pattern: "POST " + api.PathReplay, body: `{"min_similarity":1.5}`, headers: admin, want: 400},
		{pattern: "POST " + api.PathReplay, body: `{}`, headers: read, want: 403},
		{pattern: "GET " + api.PathConsolidations, path: api.PathConsolidations + "?max_episodes=-1", headers: admin, want: 400},
		{pattern: "GET " + api.PathConsolidation, path: "/api/v1/consolidations/mito", headers: admin, want: 404},
		{pattern: "GET " + api.PathConsolidation, path: "/api/v1/consolidations/never-stored", headers: admin, want: 404},
		{pattern: "GET " + api.PathIntrospect, path: api.PathIntrospect + "?x=1", headers: admin, want: 400},
		{pattern: "GET " + api.PathHealthSpreading, path: api.PathHealthSpreading + "?x=1", want: 400},
		{pattern: "GET " + api.PathStreamActivities, path: api.PathStreamActivities + "?buffer_size=0", headers: admin, want: 400},
		{pattern: "GET " + api.PathStreamActivities, path: api.PathStreamActivities + "?event_types=telepathy", headers: admin, want: 400},
		{pattern: "GET " + api.PathStreamMemories, path: api.PathStreamMemories + "?memory_types=dream", headers: admin, want: 400},
		{pattern: "GET " + api.PathStreamMemories, path: api.PathStreamMemories + "?space=other-space", headers: wrong, want: 403},
		{pattern: "GET " + api.PathStreamConsolidation, path: api.PathStreamConsolidation + "?include_replay=maybe", headers: admin, want: 400},
		{pattern: "GET " + api.PathMonitoringEvents, path: api.PathMonitoringEvents + "?level=cosmic", headers: admin, want: 400},
		{pattern: "GET " + api.PathMonitorEvents, path: api.PathMonitorEvents, headers: map[string]string{"Authorization": "Bearer " + k.admin, "Last-Event-ID": "soon"}, want: 400},
	} {
		c.valid = false
		l.call(c)
	}

	// Errors the keyed server cannot answer: a server without backup
	// shipping, fault injection or key management, without auth (Host
	// check), holding its one allowed stream, and one whose engine is not
	// ready.
	cfg := testConfig()
	cfg.Streams.MaxSubscribers = 1
	plain := newLiveAPI(t, newTestServer(t, cfg, openEngine(t, cfg)).Handler())
	openStream(t, plain.url+api.PathStreamConsolidation, nil)
	for _, rd := range streamRouteDocs {
		plain.call(liveCall{pattern: rd.Pattern, path: rd.Example.Path, want: http.StatusServiceUnavailable})
	}
	for _, c := range []liveCall{
		{pattern: "POST " + api.PathAdminBackup, want: 409},
		{pattern: "GET " + api.PathAdminBackup, want: 409},
		{pattern: "GET " + PathAdminFaults, want: 403},
		{pattern: "DELETE " + PathAdminFaults, want: 403},
		{pattern: "GET " + api.PathAdminAPIKeys, want: 409},
	} {
		plain.call(c)
	}
	for _, rd := range routeDocs {
		path := strings.NewReplacer("KEY_ID", "nope", "BELIEF_ID", "nope").Replace(rd.Example.Path)
		plain.call(liveCall{pattern: rd.Pattern, path: path, body: rd.Example.Body,
			headers: map[string]string{"Host": "rebind.example"}, want: http.StatusMisdirectedRequest})
	}
	fake := newFake()
	fake.readyErr = core.ErrClosed
	down := newLiveAPI(t, newTestServer(t, testConfig(), fake).Handler())
	for _, p := range []string{"GET " + api.PathHealth, "GET " + api.PathHealthReady, "GET " + api.PathHealthSpreading, "GET " + api.PathIntrospect} {
		down.call(liveCall{pattern: p, want: 503})
	}

	for _, rd := range routeDocs {
		var statuses []int
		for _, x := range []*liveAPI{l, plain, down} {
			statuses = append(statuses, x.seen[rd.Pattern]...)
		}
		if !slices.ContainsFunc(statuses, func(s int) bool { return s < 400 }) {
			t.Errorf("%s: no success was validated (give its routeDoc an Example)", rd.Pattern)
		}
		if !slices.ContainsFunc(statuses, func(s int) bool { return s >= 400 }) {
			t.Errorf("%s: no error answer was validated", rd.Pattern)
		}
	}
}

// TestOpenAPIQueryParameters: each route's documented query parameters
// are the ones its handler accepts: a route refusing an unknown
// parameter lists what it accepts, and that list must be the document's.
func TestOpenAPIQueryParameters(t *testing.T) {
	cfg := testConfig()
	cfg.Testing.FaultInjection = true
	h := newTestServer(t, cfg, openEngine(t, cfg)).Handler()
	for _, rd := range routeDocs {
		method, path, _ := strings.Cut(rd.Pattern, " ")
		if rd.Example.Path != "" {
			path, _, _ = strings.Cut(strings.ReplaceAll(rd.Example.Path, "KEY_ID", "nope"), "?")
		}
		documented := []string{}
		for _, q := range rd.Query {
			if q.Name != "space" {
				documented = append(documented, q.Name)
			}
		}
		slices.Sort(documented)
		w := do(t, h, request{method: method, path: path + "?zz_undocumented=1", body: rd.Example.Body})
		if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), `"UNKNOWN_PARAMETER"`) {
			if len(documented) > 0 {
				t.Errorf("%s: documents query parameters %v but does not refuse an unknown one (answered %d)", rd.Pattern, documented, w.Code)
			}
			continue
		}
		msg := decodeEnvelope(t, w).Message
		_, list, ok := strings.Cut(msg, "accepted are: ")
		if !ok {
			t.Fatalf("%s: UNKNOWN_PARAMETER message without the accepted list: %s", rd.Pattern, msg)
		}
		accepted := []string{}
		for _, name := range strings.Split(list, ", ") {
			if name != "space" {
				accepted = append(accepted, name)
			}
		}
		slices.Sort(accepted)
		if !slices.Equal(accepted, documented) {
			t.Errorf("%s accepts the query parameters %v, but its routeDoc (ops/server/openapi.go) documents %v: fix the Query list, then run make docs",
				rd.Pattern, accepted, documented)
		}
	}
}

// TestAPIDocsPage: /docs is served from the binary with a policy that
// allows only this server's own scripts, styles and requests; every asset
// it names is served, nothing comes from elsewhere, and the script reads
// the document from the route that serves it.
func TestAPIDocsPage(t *testing.T) {
	cfg := testConfig()
	h := newTestServer(t, cfg, openEngine(t, cfg)).Handler()
	w := do(t, h, request{method: "GET", path: api.PathDocs})
	if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("GET /docs: %d %s", w.Code, w.Header().Get("Content-Type"))
	}
	if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("GET /docs: Content-Security-Policy %q", csp)
	}
	page := w.Body.String()
	assets := 0
	for _, attr := range []string{`src="`, `href="`} {
		for rest := page; ; {
			i := strings.Index(rest, attr)
			if i < 0 {
				break
			}
			rest = rest[i+len(attr):]
			url := rest[:strings.IndexByte(rest, '"')]
			switch {
			case strings.HasPrefix(url, "/docs/"):
				assets++
				if a := do(t, h, request{method: "GET", path: url}); a.Code != 200 || a.Body.Len() == 0 {
					t.Errorf("GET /docs names %s, which answers %d", url, a.Code)
				}
			case url == api.PathOpenAPI, url == "data:,":
			default:
				t.Errorf("GET /docs loads %q, which is not one of its embedded assets", url)
			}
		}
	}
	if assets != 2 {
		t.Errorf("GET /docs names %d assets, want app.js and app.css", assets)
	}
	js := do(t, h, request{method: "GET", path: "/docs/app.js"}).Body.String()
	if !strings.Contains(js, `fetch("`+api.PathOpenAPI+`")`) {
		t.Errorf("app.js does not fetch %s", api.PathOpenAPI)
	}
	for _, f := range []string{page, js} {
		if strings.Contains(f, "http://") || strings.Contains(f, "https://") {
			t.Error("the API browser refers to another site; its assets must all be embedded")
		}
	}
}
