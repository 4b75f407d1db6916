package server

import (
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/engram-ops/engram-ops/ops/api"
	"github.com/engram-ops/engram-ops/ops/api/openapi"
)

// The OpenAPI document of the REST API is generated from routeDocs (one
// entry per registered route pattern), the wire types of ops/api and the
// error-code table (errcodes.go). The server serves it at
// api.PathOpenAPI; docs/openapi.json and docs/reference/rest-api.md are
// the same document committed (make docs, or go generate ./ops/server,
// regenerates them; TestOpenAPIDoc and TestRESTAPIDoc fail when they are
// stale). TestOpenAPIRoutes fails when a registered route has no entry
// here or an entry names a route the server lacks; TestOpenAPILive
// validates real requests and answers against the document.

//go:generate go test -run ^(TestOpenAPIDoc|TestRESTAPIDoc)$ -count=1 -update

// routeDoc documents one route.
type routeDoc struct {
	Pattern string // "METHOD /path", as registered
	Tag     string
	Summary string
	Desc    string
	// Space: the route picks a space (X-Memory-Space header or ?space=).
	Space bool
	Query []paramDoc
	// Headers are request headers the route reads besides X-Memory-Space.
	Headers []paramDoc
	// Body is the request body's wire type (a zero value); nil: none.
	Body any
	// OK are the answers that are not the error envelope.
	OK []respDoc
	// Errors are the error statuses the route answers besides those of
	// every route (421 and, for routes needing a key, 401, 403 and 429).
	Errors []int
	// Example is a request that succeeds on a server holding what the
	// examples before it wrote: path with query, and body. TestOpenAPILive
	// sends each in the order of routeDocs; KEY_ID stands for the id of
	// the key the API key example created, BELIEF_ID for the first belief
	// the replay example wrote.
	Example example
}

type paramDoc struct {
	Name     string
	Type     string // string, integer, number, boolean, date-time, list (comma-separated), vector (JSON array)
	Desc     string
	Required bool
}

type respDoc struct {
	Status      int
	Body        any    // a wire type's zero value; nil with a ContentType: any body of that type
	ContentType string // default application/json
	Desc        string
	// Events are, for a text/event-stream answer, the wire type of the
	// data of each event name.
	Events map[string]any
}

type example struct {
	Path string
	Body string
}

// Error statuses shared by groups of routes.
var (
	errsBody  = []int{400, 413, 415}
	errsSpace = []int{400, 403, 404}
	errsWrite = []int{409, 503, 507}
)

func errs(groups ...[]int) []int {
	var out []int
	for _, g := range groups {
		for _, s := range g {
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	slices.Sort(out)
	return out
}

func created(body any, desc string) []respDoc {
	return []respDoc{{Status: 201, Body: body, Desc: desc}}
}
func ok(body any, desc string) []respDoc { return []respDoc{{Status: 200, Body: body, Desc: desc}} }

var recallParamDocs = []paramDoc{
	{"query", "string", "text cue (query or embedding is required)", false},
	{"embedding", "vector", "vector cue of the space's dimension, as a JSON array", false},
	{"max_results", "integer", "at most this many results (default 10, at most limits.max_results)", false},
	{"threshold", "number", "minimum similarity of a direct match", false},
	{"confidence_threshold", "number", "Engram's name for threshold", false},
	{"required_tags", "list", "only memories carrying all these tags (comma-separated or repeated)", false},
	{"from_time", "date-time", "only memories observed at or after this time", false},
	{"to_time", "date-time", "only memories observed at or before this time", false},
	{"mode", "string", "similarity, spreading or hybrid (default)", false},
	{"trace_activation", "boolean", "add each result's activation path", false},
	{"deep", "boolean", "also search the cold tier exactly", false},
	{"include_metadata", "boolean", "add each result's stored metadata", false},
	{"excluded_tags", "list", "accepted for Engram compatibility and not applied", false},
	{"location", "string", "accepted for Engram compatibility and not applied", false},
}

// routeDocs documents every route, in the order the examples run.
var routeDocs = slices.Concat(restRouteDocs, cognitiveRouteDocs, streamRouteDocs, spaceMoveRouteDocs)

var restRouteDocs = []routeDoc{
	{Pattern: "POST " + api.PathSpaces, Tag: "spaces", Summary: "Create a space",
		Desc:   "Creates a memory space with a dimension and an embedder; answers 200 with the space when it exists with the same settings.",
		Body:   api.CreateSpaceRequest{},
		OK:     []respDoc{{Status: 201, Body: api.Space{}, Desc: "the space was created"}, {Status: 200, Body: api.Space{}, Desc: "the space existed with these settings"}},
		Errors: errs(errsBody, []int{403, 409, 503, 507}), Example: example{Body: `{"id":"tenant-a","dimension":16}`}},
	{Pattern: "GET " + api.PathSpaces, Tag: "spaces", Summary: "List spaces",
		Desc: "Lists the spaces the caller's key may see, with their counts.",
		OK:   ok(api.SpacesResponse{}, "the spaces"), Errors: []int{400}},
	{Pattern: "GET " + api.PathSpace, Tag: "spaces", Summary: "Describe a space",
		OK: ok(api.Space{}, "the space and its counts"), Errors: errs(errsSpace), Example: example{Path: "/api/v1/spaces/tenant-a"}},

	{Pattern: "POST " + api.PathRemember, Tag: "memories", Summary: "Remember a memory", Space: true,
		Desc: "Stores one memory (content, optional embedding, confidence, tags, type, time, metadata) and optionally links it to similar memories. A confidence outside 0..1 is clamped, as Engram does, and the reasoning says so.",
		Body: api.RememberRequest{}, OK: created(api.RememberResponse{}, "the memory was stored"),
		Errors:  errs(errsBody, errsSpace, errsWrite),
		Example: example{Body: `{"id":"mito","content":"The mitochondria is the powerhouse of the cell","confidence":0.9,"tags":["biology"]}`}},
	{Pattern: "POST " + api.PathMemories, Tag: "memories", Summary: "Remember a memory (alias of POST /api/v1/memories/remember)", Space: true,
		Body: api.RememberRequest{}, OK: created(api.RememberResponse{}, "the memory was stored"),
		Errors:  errs(errsBody, errsSpace, errsWrite),
		Example: example{Body: `{"id":"paris","content":"Paris is the capital of France","tags":["geo"]}`}},
	{Pattern: "POST " + api.PathEpisodes, Tag: "memories", Summary: "Remember an episode", Space: true,
		Desc: "Engram's episode shape: what becomes the content, importance the confidence; where and confidence are Engram's aliases of where_location and importance.",
		Body: api.EpisodeRequest{}, OK: created(api.RememberResponse{}, "the episode was stored"),
		Errors:  errs(errsBody, errsSpace, errsWrite),
		Example: example{Body: `{"id":"coffee","what":"Coffee with Alice at the station cafe","when":"2025-01-02T15:04:05Z","where":"station cafe","who":["alice"],"importance":0.8}`}},
	{Pattern: "POST " + api.PathBatch, Tag: "memories", Summary: "Write a batch atomically", Space: true,
		Desc: "Writes memories and associations in one atomic batch, with an optional importer cursor stored in the same write (exactly-once resume).",
		Body: api.BatchRequest{}, OK: created(api.BatchResponse{}, "the batch was written"),
		Errors:  errs(errsBody, errsSpace, errsWrite),
		Example: example{Body: `{"memories":[{"id":"b1","content":"first imported memory","memory_type":"episodic"},{"id":"b2","content":"second imported memory","memory_type":"episodic"}],"associations":[{"from":"b1","to":"b2","weight":0.5}],"cursor":{"source":"example-import","value":"2"}}`}},
	{Pattern: "GET " + api.PathBatchCursor, Tag: "memories", Summary: "Read an importer's cursor",
		Query:  []paramDoc{{"source", "string", "the importer's source name", true}, {"space", "string", "accepted and not used: cursors are per source", false}},
		OK:     ok(api.CursorResponse{}, "the stored cursor"),
		Errors: []int{400, 404, 503}, Example: example{Path: api.PathBatchCursor + "?source=example-import"}},
	{Pattern: "POST " + api.PathAssociations, Tag: "memories", Summary: "Associate two memories", Space: true,
		Body: api.AssociationRequest{}, OK: created(api.AssociationResponse{}, "the association was stored"),
		Errors: errs(errsBody, errsSpace, errsWrite), Example: example{Body: `{"from":"mito","to":"paris","weight":0.3,"kind":"related"}`}},
	{Pattern: "GET " + api.PathRecall, Tag: "recall", Summary: "Recall by a cue", Space: true,
		Desc:  "Direct matches (vivid) and memories reached by spreading activation (associated), with Engram's confidence and query analysis.",
		Query: recallParamDocs, OK: ok(api.RecallResponse{}, "the recalled memories"),
		Errors: errs(errsSpace, []int{503}), Example: example{Path: api.PathRecall + "?query=powerhouse+cell&max_results=3"}},
	{Pattern: "POST " + api.PathRecall, Tag: "recall", Summary: "Recall by a cue (JSON body)", Space: true,
		Body: api.RecallRequest{}, OK: ok(api.RecallResponse{}, "the recalled memories"),
		Errors: errs(errsBody, errsSpace, []int{503}), Example: example{Body: `{"query":"capital of France","mode":"hybrid","trace_activation":true}`}},
	{Pattern: "GET " + api.PathSearch, Tag: "recall", Summary: "Search by text", Space: true,
		Desc: "Engram's search: similarity only, a flat list.",
		Query: []paramDoc{{"query", "string", "the text to search for", true}, {"limit", "integer", "at most this many results (default 10)", false},
			{"threshold", "number", "minimum similarity", false}},
		OK: ok(api.SearchResponse{}, "the matches"), Errors: errs(errsSpace, []int{503}), Example: example{Path: api.PathSearch + "?query=capital&limit=5"}},
	{Pattern: "GET " + api.PathMemory, Tag: "memories", Summary: "Get a memory", Space: true,
		Query: []paramDoc{{"include_embedding", "boolean", "add the stored vector", false}},
		OK:    ok(api.Memory{}, "the memory"), Errors: errs(errsSpace, []int{503}), Example: example{Path: "/api/v1/memories/mito"}},
	{Pattern: "GET " + api.PathMemories, Tag: "memories", Summary: "List memories", Space: true,
		Query: []paramDoc{{"tier", "string", "hot, warm, cold or all (default)", false}, {"offset", "integer", "skip this many", false},
			{"limit", "integer", "page size (default 100, at most limits.max_results)", false}, {"include_embeddings", "boolean", "add the stored vectors", false}},
		OK: ok(api.ListResponse{}, "a page of memories"), Errors: errs(errsSpace, []int{503}), Example: example{Path: api.PathMemories + "?limit=10"}},
	{Pattern: "DELETE " + api.PathMemory, Tag: "memories", Summary: "Forget a memory", Space: true,
		OK: ok(api.ForgetResponse{}, "the memory was forgotten"), Errors: errs(errsSpace, errsWrite), Example: example{Path: "/api/v1/memories/paris"}},

	{Pattern: "GET " + api.PathHealth, Tag: "health", Summary: "Liveness and readiness (Engram's shape)",
		OK: []respDoc{{Status: 200, Body: api.Health{}, Desc: "healthy"}, {Status: 503, Body: api.Health{}, Desc: "unhealthy: error says why"}}},
	{Pattern: "GET " + api.PathHealthAlive, Tag: "health", Summary: "Liveness probe", OK: ok(api.Probe{}, "the process answers")},
	{Pattern: "GET " + api.PathHealthReady, Tag: "health", Summary: "Readiness probe",
		OK: []respDoc{{Status: 200, Body: api.Probe{}, Desc: "ready"}, {Status: 503, Body: api.Probe{}, Desc: "not ready: error says why"}}},
	{Pattern: "GET " + api.PathSystemHealth, Tag: "health", Summary: "System health",
		Desc:   "Every check with the figures it judged, per-space counts, the change log and backup shipping.",
		OK:     []respDoc{{Status: 200, Body: api.SystemHealth{}, Desc: "healthy or degraded"}, {Status: 503, Body: api.SystemHealth{}, Desc: "unhealthy"}},
		Errors: []int{400}},
	{Pattern: "GET " + api.PathMetrics, Tag: "health", Summary: "Prometheus metrics",
		OK: []respDoc{{Status: 200, ContentType: "text/plain", Desc: "the Prometheus text exposition"}}},
	{Pattern: "GET " + api.PathMetricsProm, Tag: "health", Summary: "Prometheus metrics (Engram's path)",
		OK: []respDoc{{Status: 200, ContentType: "text/plain", Desc: "the Prometheus text exposition"}}},

	{Pattern: "POST " + api.PathAdminBackup, Tag: "admin", Summary: "Take a backup snapshot",
		Desc: "Snapshots the running server to its shipping target (serve --backup-to).",
		OK:   created(api.BackupSnapshotResponse{}, "the snapshot was uploaded"), Errors: []int{409, 500}},
	{Pattern: "GET " + api.PathAdminBackup, Tag: "admin", Summary: "Backup shipping status",
		OK: []respDoc{{Status: 200, Body: map[string]any{}, Desc: "the shipper's status"}}, Errors: []int{409}},
	{Pattern: "GET " + api.PathAdminAPIKeys, Tag: "admin", Summary: "List API keys",
		Desc: "Never shows secrets.", OK: ok(api.APIKeyList{}, "the keys"), Errors: []int{400, 409}},
	{Pattern: "POST " + api.PathAdminAPIKeys, Tag: "admin", Summary: "Create an API key",
		Desc: "The token is in this answer only.", Body: api.APIKeyCreateRequest{},
		OK: created(api.APIKeyCreated{}, "the key and its token"), Errors: errs(errsBody, []int{409, 503, 507}),
		Example: example{Body: `{"name":"reader","permissions":["read"],"spaces":["tenant-a"],"expires":"90d"}`}},
	{Pattern: "POST " + api.PathAdminAPIKeyRotate, Tag: "admin", Summary: "Rotate an API key",
		Desc: "Creates a new key with the same scope; the old one stays valid for the overlap.", Body: api.APIKeyRotateRequest{},
		OK: created(api.APIKeyCreated{}, "the new key and its token"), Errors: errs(errsBody, []int{404, 409, 503, 507}),
		Example: example{Path: "/api/v1/admin/apikeys/KEY_ID/rotate", Body: `{"overlap":"24h"}`}},
	{Pattern: "DELETE " + api.PathAdminAPIKey, Tag: "admin", Summary: "Revoke an API key",
		OK: ok(api.APIKey{}, "the revoked key"), Errors: []int{400, 404, 409, 503, 507}, Example: example{Path: "/api/v1/admin/apikeys/KEY_ID"}},
	{Pattern: "GET " + PathAdminFaults, Tag: "admin", Summary: "Show the injected fault (test only)",
		OK: ok(FaultSpec{}, "the active fault"), Errors: []int{403}},
	{Pattern: "POST " + PathAdminFaults, Tag: "admin", Summary: "Inject a fault (test only)",
		Desc: "Adds latency and errors to engine operations; refused unless testing.fault_injection = true.",
		Body: FaultSpec{}, OK: ok(FaultSpec{}, "the active fault"), Errors: errs(errsBody, []int{403}),
		Example: example{Body: `{"operations":["recall"],"latency":"1ms","error_ratio":0}`}},
	{Pattern: "DELETE " + PathAdminFaults, Tag: "admin", Summary: "Clear the injected fault (test only)",
		OK: ok(FaultSpec{}, "no fault is active"), Errors: []int{403}},

	{Pattern: "GET " + api.PathOpenAPI, Tag: "docs", Summary: "This OpenAPI document",
		OK: []respDoc{{Status: 200, Body: map[string]any{}, Desc: "the OpenAPI 3.1 document"}}},
	{Pattern: "GET " + api.PathDocs, Tag: "docs", Summary: "API browser",
		Desc: "A page that browses this document and sends requests from the browser; its assets are in the binary.",
		OK:   []respDoc{{Status: 200, ContentType: "text/html", Desc: "the page"}}},
	{Pattern: "GET " + api.PathDocsAsset, Tag: "docs", Summary: "An asset of the API browser",
		OK:     []respDoc{{Status: 200, ContentType: "text/javascript", Desc: "a script"}, {Status: 200, ContentType: "text/css", Desc: "a style sheet"}},
		Errors: []int{404}, Example: example{Path: "/docs/app.js"}},
}

var docTags = []openapi.Tag{
	{Name: "memories", Description: "Write, read, list and forget memories; associations; batches."},
	{Name: "recall", Description: "Recall and search."},
	{Name: "cognitive", Description: "Engram's cognitive routes: recognition, the query language, probabilistic recall, pattern completion, consolidation and introspection."},
	{Name: "streams", Description: "Server-sent event streams of the engine operations of a space."},
	{Name: "spaces", Description: "Memory spaces (tenants)."},
	{Name: "health", Description: "Probes, system health and metrics."},
	{Name: "admin", Description: "Backups, API keys and test-only fault injection; an admin key."},
	{Name: "docs", Description: "This document and its browser."},
}

const docDescription = `The REST API of engram-ops: Engram's routes and shapes where Engram has the route, and the project's own (batches, cursors, system health, admin) besides.

Spaces: a request's space is the X-Memory-Space header, else the body's memory_space_id, memory_space or space field (writes), else ?space=, else "default".

Authentication: with auth.mode = "api_key" every route but the health probes and the API documentation needs a key, sent as Authorization: Bearer <key> or X-API-Key, with the permission the operation's x-permission names (metrics: public or read, by auth.metrics). With auth.mode = "none" (loopback only) no key is needed and requests must be addressed to a loopback host name.

Errors: every error is the envelope ErrorEnvelope; each error status lists the codes it is answered with, and docs/reference/error-codes.md explains each code and its fix.`

// docBaseURL is the address examples are written for (serve's default).
const docBaseURL = "http://127.0.0.1:7432"

var apiPkg = reflect.TypeFor[api.Memory]().PkgPath()

var pathParam = regexp.MustCompile(`\{([a-z_]+)\}`)

// openAPIDocument builds the document from routeDocs.
func openAPIDocument() *openapi.Document {
	ref := openapi.NewReflector()
	ref.Describe = func(t reflect.Type, field string) string {
		if t.PkgPath() != apiPkg {
			return ""
		}
		if field == "" {
			return api.Docs[t.Name()]
		}
		return api.Docs[t.Name()+"."+field]
	}
	d := &openapi.Document{
		OpenAPI: openapi.Version,
		Info: openapi.Info{Title: "engram-ops REST API", Version: "v1", Description: docDescription,
			License: openapi.License{Name: "Apache-2.0", Identifier: "Apache-2.0"}},
		Servers: []openapi.Server{{URL: docBaseURL, Description: "engram-ops serve with its default listen address"}},
		Tags:    docTags,
		Paths:   map[string]*openapi.PathItem{},
		Components: openapi.Components{
			Responses: map[string]*openapi.Response{},
			SecuritySchemes: map[string]*openapi.SecurityScheme{
				"bearer": {Type: "http", Scheme: "bearer", Description: "an API key from engram-ops apikey create"},
				"apiKey": {Type: "apiKey", In: "header", Name: api.HeaderAPIKey, Description: "the same key in X-API-Key"},
			},
		},
	}
	envelope := ref.Ref(api.ErrorEnvelope{})
	docErrorResponse(d, envelope, "Error", "Any other error of the error-code table", allCodes(0))
	for _, rd := range routeDocs {
		method, path, _ := strings.Cut(rd.Pattern, " ")
		item := d.Paths[path]
		if item == nil {
			item = &openapi.PathItem{}
			d.Paths[path] = item
		}
		op := &openapi.Operation{
			OperationID: operationID(method, path),
			Summary:     rd.Summary, Description: rd.Desc, Tags: []string{rd.Tag},
			Responses:  map[string]*openapi.Response{},
			Permission: routeAccess[rd.Pattern].String(),
		}
		for _, m := range pathParam.FindAllStringSubmatch(path, -1) {
			op.Parameters = append(op.Parameters, openapi.Parameter{Name: m[1], In: "path", Required: true, Schema: &openapi.Schema{Type: "string"}})
		}
		if rd.Space {
			op.Parameters = append(op.Parameters,
				openapi.Parameter{Name: api.HeaderSpace, In: "header", Description: "the space (wins over every other way of naming it)", Schema: &openapi.Schema{Type: "string"}},
				openapi.Parameter{Name: "space", In: "query", Description: "the space, when no header or body field names one", Schema: &openapi.Schema{Type: "string"}})
		}
		for _, q := range rd.Query {
			op.Parameters = append(op.Parameters, openapi.Parameter{Name: q.Name, In: "query", Description: q.Desc, Required: q.Required, Schema: paramSchema(q.Type)})
		}
		for _, h := range rd.Headers {
			op.Parameters = append(op.Parameters, openapi.Parameter{Name: h.Name, In: "header", Description: h.Desc, Required: h.Required, Schema: paramSchema(h.Type)})
		}
		if rd.Body != nil {
			op.RequestBody = &openapi.RequestBody{Required: true, Content: map[string]openapi.MediaType{"application/json": {Schema: ref.Ref(rd.Body)}}}
		}
		for _, r := range rd.OK {
			key := strconv.Itoa(r.Status)
			resp := op.Responses[key]
			if resp == nil {
				resp = &openapi.Response{Description: r.Desc, Content: map[string]openapi.MediaType{}}
				op.Responses[key] = resp
			} else {
				resp.Description += "; " + r.Desc
			}
			ct, schema := r.ContentType, &openapi.Schema{Type: "string"}
			if ct == "" {
				ct, schema = "application/json", ref.Ref(r.Body)
			}
			mt := openapi.MediaType{Schema: schema}
			for name, v := range r.Events {
				if mt.Events == nil {
					mt.Events = map[string]*openapi.Schema{}
				}
				mt.Events[name] = ref.Ref(v)
			}
			resp.Content[ct] = mt
		}
		statuses := append([]int{http.StatusMisdirectedRequest}, rd.Errors...)
		if acc := routeAccess[rd.Pattern]; acc != accessPublic {
			statuses = append(statuses, 401, 403, 429)
			op.Security = &[]map[string][]string{{"bearer": {}}, {"apiKey": {}}}
		} else {
			op.Security = &[]map[string][]string{}
		}
		for _, st := range statuses {
			name := "Error" + strconv.Itoa(st)
			if _, ok := d.Components.Responses[name]; !ok {
				docErrorResponse(d, envelope, name, fmt.Sprintf("%d %s", st, http.StatusText(st)), allCodes(st))
			}
			op.Responses[strconv.Itoa(st)] = &openapi.Response{Ref: "#/components/responses/" + name}
		}
		op.Responses["default"] = &openapi.Response{Ref: "#/components/responses/Error"}
		op.Example = curlExample(method, path, rd)
		*item.Operation(method) = op
	}
	// Statuses no operation names explicitly still get their codes listed
	// (they arrive as the default response).
	for _, c := range errorCodes {
		name := "Error" + strconv.Itoa(c.Status)
		if _, ok := d.Components.Responses[name]; !ok {
			docErrorResponse(d, envelope, name, fmt.Sprintf("%d %s", c.Status, http.StatusText(c.Status)), allCodes(c.Status))
		}
	}
	refineCognitiveSchemas(ref.Schemas)
	d.Components.Schemas = ref.Schemas
	return d
}

// errorHeaders are the headers error answers of a status carry.
var errorHeaders = map[string]map[string]*openapi.Header{
	"Error401": {"WWW-Authenticate": {Description: `Bearer realm="engram"`, Schema: &openapi.Schema{Type: "string"}}},
	"Error405": {"Allow": {Description: "the methods the path has", Schema: &openapi.Schema{Type: "string"}}},
	"Error429": {"Retry-After": {Description: "seconds until a request is allowed", Schema: &openapi.Schema{Type: "integer"}}},
	"Error503": {"Retry-After": {Description: "seconds to wait before retrying", Schema: &openapi.Schema{Type: "integer"}}},
}

// docErrorResponse adds a shared error response whose error.code is one of
// codes.
func docErrorResponse(d *openapi.Document, envelope *openapi.Schema, name, desc string, codes []string) {
	d.Components.Responses[name] = &openapi.Response{Description: desc, Headers: errorHeaders[name], Content: map[string]openapi.MediaType{
		"application/json": {Schema: &openapi.Schema{AllOf: []*openapi.Schema{envelope, {
			Type: "object",
			Properties: map[string]*openapi.Schema{"error": {Type: "object", Properties: map[string]*openapi.Schema{
				"code": {Type: "string", Enum: codes},
			}}},
		}}}},
	}}
}

// allCodes are the codes of the table answered with status (every code
// for 0), sorted.
func allCodes(status int) []string {
	var out []string
	for _, c := range errorCodes {
		if status == 0 || c.Status == status {
			out = append(out, c.Code)
		}
	}
	slices.Sort(out)
	return out
}

func paramSchema(typ string) *openapi.Schema {
	switch typ {
	case "date-time":
		return &openapi.Schema{Type: "string", Format: "date-time"}
	case "list", "vector":
		return &openapi.Schema{Type: "string"}
	}
	return &openapi.Schema{Type: typ}
}

// operationID is e.g. post_api_v1_memories_remember.
func operationID(method, path string) string {
	id := strings.ToLower(method) + strings.NewReplacer("/", "_", "{", "", "}", "", "-", "_", ".", "_").Replace(path)
	return strings.TrimSuffix(id, "_")
}

// curlExample is the curl command of a route's example.
func curlExample(method, path string, rd routeDoc) string {
	p := rd.Example.Path
	if p == "" {
		p = path
	}
	var b strings.Builder
	b.WriteString("curl -sS")
	if isStream(rd) {
		b.WriteString("N") // print each event as it comes
	}
	if method != http.MethodGet {
		b.WriteString(" -X " + method)
	}
	fmt.Fprintf(&b, " '%s%s'", docBaseURL, p)
	if routeAccess[rd.Pattern] == accessAdmin {
		b.WriteString(` \` + "\n  -H \"Authorization: Bearer $ENGRAM_API_KEY\"")
	}
	if rd.Example.Body != "" {
		fmt.Fprintf(&b, ` \`+"\n  -H 'Content-Type: application/json' -d '%s'", rd.Example.Body)
	}
	return b.String()
}

// openAPIJSON is the document as served and committed.
var openAPIJSON = sync.OnceValues(func() ([]byte, error) { return openapi.Marshal(openAPIDocument()) })

const restAPIHead = `# REST API reference

Generated from [the OpenAPI document](../openapi.json) (served at ` + "`GET /api-docs/openapi.json`" + `, browsable at ` + "`GET /docs`" + `)
by ` + "`make docs`" + `; do not edit. The document is generated from the server's route table, the wire types of
` + "`ops/api`" + ` and the error-code table, and tests fail when a route, a shape or a code drifts from it.

Base URL: ` + "`" + docBaseURL + "`" + ` (serve's default). Every error is one envelope (see [Error responses](#error-responses));
[error-codes.md](error-codes.md) explains each code, its status and its fix.

Spaces: the ` + "`X-Memory-Space`" + ` header, else the body's ` + "`memory_space_id`" + ` / ` + "`memory_space`" + ` / ` + "`space`" + ` (writes),
else ` + "`?space=`" + `, else ` + "`default`" + `.

Authentication: with ` + "`auth.mode = \"api_key\"`" + ` every route but the health probes and the API documentation needs a key
(` + "`Authorization: Bearer <key>`" + ` or ` + "`X-API-Key`" + `) with the route's permission. Without it (loopback only) no key is
needed; the examples of admin routes carry ` + "`$ENGRAM_API_KEY`" + ` because key management needs authentication on.
`

// restAPIMarkdown is docs/reference/rest-api.md.
func restAPIMarkdown() []byte {
	return openapi.Markdown(openAPIDocument(), restAPIHead, "error-codes.md")
}
