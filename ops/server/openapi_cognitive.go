package server

import (
	"fmt"
	"slices"
	"strings"

	"github.com/engram-ops/engram-ops/ops/api"
	"github.com/engram-ops/engram-ops/ops/api/openapi"
)

// The OpenAPI description of Engram's cognitive routes (cognitive.go,
// query.go, probabilistic.go, complete.go, consolidate.go, introspect.go).
// Their examples run after the REST examples, so they find the memories,
// episodes and associations those wrote (the replay example consolidates
// the batch example's two episodes); BELIEF_ID stands for the first belief
// the replay example wrote (TestOpenAPILive substitutes it).

// queryHeaderDocs: the query routes pick their space from the statement's
// IN SPACE, the body, then this header; never from ?space=.
var queryHeaderDocs = []paramDoc{
	{api.HeaderSpace, "string", "the space, when neither the statement's IN SPACE nor the body's memory_space_id names one", false},
}

const queryDesc = "Runs one statement of the query language (docs/query-language.md): RECALL (a recall, a lookup by id or a scan of *, " +
	"with its WHERE conditions) or SPREAD (spreading activation from a memory). The space is the statement's IN SPACE, else the body's " +
	"memory_space_id (or memory_space), else the X-Memory-Space header, else default; a query never creates it (404 SPACE_NOT_FOUND). " +
	"query is an alias of query_text. Errors: 400 QUERY_SYNTAX_ERROR (details give line, column, offset and what was found), " +
	"400 QUERY_NOT_SUPPORTED (PREDICT, IMAGINE, CONSOLIDATE, BASE_RATE; details name the construct), " +
	"400 QUERY_TOO_COMPLEX (cost above 100000: SPREAD costs 1000·2^hops), 400 INVALID_MAX_RESULTS (LIMIT above limits.max_results), " +
	"404 MEMORY_NOT_FOUND (SPREAD FROM an unknown id)."

var queryErrors = errs(errsBody, errsSpace, []int{503})

var cognitiveRouteDocs = []routeDoc{
	{Pattern: "POST " + api.PathRecognize, Tag: "cognitive", Summary: "Recognize a cue", Space: true,
		Desc: fmt.Sprintf("A read-only similarity recall of the %d memories closest to input (or embedding): recognized is true when the best cosine similarity "+
			"reaches threshold (default %g, -1..1). Nothing is reinforced. Errors: 400 MISSING_CUE (neither input nor embedding), 400 INVALID_THRESHOLD.",
			recognizeCandidates, api.DefaultRecognizeThreshold),
		Body: api.RecognizeRequest{}, OK: ok(api.RecognizeResponse{}, "whether the cue is familiar, and the closest memories"),
		Errors:  errs(errsBody, errsSpace, []int{503}),
		Example: example{Body: `{"input":"the powerhouse of the cell","threshold":0.5}`}},
	{Pattern: "POST " + api.PathComplete, Tag: "cognitive", Summary: "Complete a partial episode", Space: true,
		Desc: fmt.Sprintf("The partial episode's text fields are the cue of a read-only similarity recall of params.num_hypotheses memories (default %d, 1..%d); "+
			"each missing field (%s) is filled from the best-scoring match that has it, with that match's score as the field's confidence. "+
			"params.ca3_sparsity and params.ca1_threshold are accepted and not applied (the answer says so). "+
			"Errors: 400 MISSING_CUE (no text field), 400 INVALID_MAX_RESULTS (num_hypotheses out of range), 400 CONFLICTING_FIELDS (where and where_location differ).",
			defaultHypotheses, maxHypotheses, quoted(completionFields)),
		Body: api.CompleteRequest{}, OK: ok(api.CompleteResponse{}, "the completed episode, each field's confidence and source, and the other matches"),
		Errors:  errs(errsBody, errsSpace, []int{503}),
		Example: example{Body: `{"partial":{"what":"Coffee with Alice"},"params":{"num_hypotheses":3}}`}},
	{Pattern: "POST " + api.PathQuery, Tag: "cognitive", Summary: "Run a query language statement",
		Desc: queryDesc, Headers: queryHeaderDocs,
		Body: api.QueryRequest{}, OK: ok(api.QueryResponse{}, "the episodes the statement returned, with their aggregate confidence"),
		Errors:  queryErrors,
		Example: example{Body: `{"query_text":"RECALL \"powerhouse cell\" WHERE content CONTAINS \"mitochondria\" LIMIT 5"}`}},
	{Pattern: "POST " + api.PathQueryExecute, Tag: "cognitive", Summary: "Run a query language statement (alias of POST " + api.PathQuery + ")",
		Desc: queryDesc, Headers: queryHeaderDocs,
		Body: api.QueryRequest{}, OK: ok(api.QueryResponse{}, "the episodes the statement returned, with their aggregate confidence"),
		Errors:  queryErrors,
		Example: example{Body: `{"query":"SPREAD FROM b1 MAX_HOPS 2 DECAY 0.1 THRESHOLD 0.01"}`}},
	{Pattern: "GET " + api.PathProbabilistic, Tag: "cognitive", Summary: "Recall with a confidence interval", Space: true,
		Desc: "The recall of GET " + api.PathRecall + " (its parameters), answered as one list with the 95% interval of the results' confidences and, when asked for, " +
			"the evidence the results rest on (direct_match, vector_similarity, spreading_activation, temporal_decay) and the sources of uncertainty " +
			"(measurement_error, temporal_decay_unknown, spreading_activation_noise, system_pressure); every figure comes from this recall's scores.",
		Query: append(slices.Clone(recallParamDocs),
			paramDoc{"include_evidence", "boolean", "add evidence_chain", false},
			paramDoc{"include_uncertainty", "boolean", "add uncertainty_sources", false}),
		OK:      ok(api.ProbabilisticResponse{}, "the recalled memories with their confidence interval"),
		Errors:  errs(errsSpace, []int{503}),
		Example: example{Path: api.PathProbabilistic + "?query=powerhouse+cell&max_results=5&include_evidence=true&include_uncertainty=true"}},
	{Pattern: "POST " + api.PathReplay, Tag: "cognitive", Summary: "Run a consolidation pass", Space: true,
		Desc: fmt.Sprintf("Groups the space's episodes (episodic memories with an embedding; the last %d in id order) by embedding: each joins the group whose centroid "+
			"is most similar, at least min_similarity (default %g, -1..1), or starts one. Each group of at least min_episodes (default %d, 2..%d) becomes one semantic "+
			"memory (a belief, tagged %s) with %s associations to the episodes it cites, written atomically; a later pass updates the same belief. "+
			"Errors: 400 INVALID_THRESHOLD (min_similarity), 400 INVALID_PARAMETER (min_episodes), 503 CANCELLED (the client left; nothing was written).",
			maxReplayEpisodes, defaultMinSimilarity, defaultMinEpisodes, maxCitations, consolidatedTag, citationKind),
		Body: api.ReplayRequest{}, OK: ok(api.ReplayResponse{}, "the pass's summary and the beliefs it wrote"),
		Errors:  errs(errsBody, errsSpace, errsWrite),
		Example: example{Body: `{"min_similarity":0.5,"min_episodes":2}`}},
	{Pattern: "GET " + api.PathConsolidations, Tag: "cognitive", Summary: "List the beliefs consolidation wrote", Space: true,
		Desc: "The space's beliefs, strongest first (strength = stored confidence × retrievability), each with the episodes it cites, and this server's pass statistics since it started.",
		Query: []paramDoc{
			{"max_episodes", "integer", "at most this many citations over all beliefs (default 256)", false},
			{"max_patterns", "integer", "at most this many beliefs (default 0: all)", false}},
		OK:      ok(api.ConsolidationsResponse{}, "the beliefs and the pass statistics"),
		Errors:  errs(errsSpace, []int{503}),
		Example: example{Path: api.PathConsolidations + "?max_episodes=10&max_patterns=5"}},
	{Pattern: "GET " + api.PathConsolidation, Tag: "cognitive", Summary: "Get a belief", Space: true,
		Desc:    fmt.Sprintf("One belief with up to %d of the episodes it cites (episodes forgotten since are left out). Errors: 404 CONSOLIDATION_NOT_FOUND (no belief has this id in the space).", maxCitations),
		OK:      ok(api.Belief{}, "the belief"),
		Errors:  errs(errsSpace, []int{503}),
		Example: example{Path: "/api/v1/consolidations/BELIEF_ID"}},
	{Pattern: "GET " + api.PathIntrospect, Tag: "cognitive", Summary: "The server's own figures",
		Desc: "Memories per space and tier, associations, index backlog, dimension and embedder per space; per engine operation the count and mean, p50, p90 and p99 latency " +
			"since start; storage, runtime and the last minute's requests. A key limited to spaces sees only its spaces, and totals over them.",
		OK: ok(api.Introspection{}, "the figures"), Errors: []int{400, 503}},
	{Pattern: "GET " + api.PathHealthSpreading, Tag: "health", Summary: "Spreading activation probe",
		Desc: fmt.Sprintf("Runs spreading activation (2 hops) from up to %d memories of the first space holding associations, until one reaches another memory: "+
			"above %s is degraded, an engine failure unhealthy. With no associations anywhere it is healthy and says there is nothing to spread over. Names no space or memory.",
			spreadProbeSources, spreadProbeDegraded),
		OK: []respDoc{{Status: 200, Body: api.SpreadingHealth{}, Desc: "healthy or degraded"},
			{Status: 503, Body: api.SpreadingHealth{}, Desc: "unhealthy: message says why"}},
		Errors: []int{400}},
}

// refineCognitiveSchemas makes the reflected schemas as precise as the
// handlers are: a query body needs query_text or its alias query, and a
// completion's field_confidence and field_sources have one key per
// episode field it provided or filled, no other.
func refineCognitiveSchemas(schemas map[string]*openapi.Schema) {
	// query is Engram's name of query_text: one of them is required.
	qr := schemas["QueryRequest"]
	qr.Required = nil
	qr.AnyOf = []*openapi.Schema{{Required: []string{"query_text"}}, {Required: []string{"query"}}}
	cr := schemas["CompleteResponse"]
	keys := "one key per episode field (" + strings.Join(completionFields, ", ") + ") provided or filled: "
	for name, value := range map[string]*openapi.Schema{
		"field_confidence": {Type: "number", Format: "double", Description: keys + "1 for a provided field, else the score of the memory it was filled from"},
		"field_sources":    {Type: "string", Description: keys + `"provided", or the id of the memory it was filled from`},
	} {
		s := &openapi.Schema{Type: "object", Description: value.Description, Properties: map[string]*openapi.Schema{}, AdditionalProperties: false}
		for _, f := range completionFields {
			s.Properties[f] = &openapi.Schema{Type: value.Type, Format: value.Format}
		}
		cr.Properties[name] = s
	}
}
