package server

import (
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/ops/api"
)

// cognitiveServer is a server over a real engine holding facts, with
// their ids.
func cognitiveServer(t *testing.T, facts ...string) (http.Handler, []string) {
	t.Helper()
	cfg := testConfig()
	h := newTestServer(t, cfg, openEngine(t, cfg)).Handler()
	ids := make([]string, len(facts))
	for i, f := range facts {
		w := do(t, h, request{method: "POST", path: api.PathRemember, body: `{"content":` + strconv.Quote(f) + `,"confidence":0.9}`})
		if w.Code != http.StatusCreated {
			t.Fatalf("remember: %d %s", w.Code, w.Body)
		}
		ids[i] = decodeJSONBody[api.RememberResponse](t, w).MemoryID
	}
	return h, ids
}

func TestRecognizeJudgesTheStore(t *testing.T) {
	h, ids := cognitiveServer(t, "The mitochondria is the powerhouse of the cell", "Paris is the capital of France")
	recognize := func(body string) api.RecognizeResponse {
		t.Helper()
		w := do(t, h, request{method: "POST", path: api.PathRecognize, body: body})
		if w.Code != http.StatusOK {
			t.Fatalf("recognize %s: %d %s", body, w.Code, w.Body)
		}
		return decodeJSONBody[api.RecognizeResponse](t, w)
	}
	known := recognize(`{"input":"The mitochondria is the powerhouse of the cell"}`)
	if !known.Recognized || known.SimilarPatterns[0].ID != ids[0] || known.RecognitionConfidence.Value < 0.99 {
		t.Fatalf("a stored memory was not recognized: %+v", known)
	}
	// Engram recognizes any input longer than 10 bytes; this one is long
	// and unrelated to the store.
	unknown := recognize(`{"input":"qwxz vbnm plok jhgf tyur"}`)
	if unknown.Recognized || unknown.RecognitionConfidence.Value >= api.DefaultRecognizeThreshold {
		t.Fatalf("a random input was recognized: %+v", unknown)
	}
	if len(unknown.SimilarPatterns) == 0 || unknown.SimilarPatterns[0].AboveThreshold {
		t.Fatalf("closest memories not reported: %+v", unknown)
	}
	// The threshold decides: the exact content passes any threshold up to 1.
	if strict := recognize(`{"input":"Paris is the capital of France","threshold":0.999}`); !strict.Recognized || strict.SimilarPatterns[0].ID != ids[1] {
		t.Fatalf("threshold 0.999: %+v", strict)
	}
	if env := decodeEnvelope(t, do(t, h, request{method: "POST", path: api.PathRecognize, body: `{"input":"x","threshold":2}`})); env.Code != "INVALID_THRESHOLD" {
		t.Fatalf("threshold 2: %+v", env)
	}
	if env := decodeEnvelope(t, do(t, h, request{method: "POST", path: api.PathRecognize, body: `{"input":"  "}`})); env.Code != "MISSING_CUE" {
		t.Fatalf("blank input: %+v", env)
	}
	// A recognition reads: it does not reinforce what it compares with.
	m := decodeJSONBody[api.Memory](t, do(t, h, request{method: "GET", path: "/api/v1/memories/" + ids[0]}))
	if m.AccessCount != 0 {
		t.Fatalf("recognize reinforced the memory: access count %d", m.AccessCount)
	}
}

func associate(t *testing.T, h http.Handler, from, to string, weight float64) {
	t.Helper()
	w := do(t, h, request{method: "POST", path: api.PathAssociations,
		body: `{"from":"` + from + `","to":"` + to + `","weight":` + strconv.FormatFloat(weight, 'g', -1, 64) + `}`})
	if w.Code != http.StatusCreated {
		t.Fatalf("associate: %d %s", w.Code, w.Body)
	}
}

func runQuery(t *testing.T, h http.Handler, path, body string) api.QueryResponse {
	t.Helper()
	w := do(t, h, request{method: "POST", path: path, body: body})
	if w.Code != http.StatusOK {
		t.Fatalf("query %s: %d %s", body, w.Code, w.Body)
	}
	return decodeJSONBody[api.QueryResponse](t, w)
}

func episodeIDs(r api.QueryResponse) []string {
	ids := make([]string, len(r.Episodes))
	for i, e := range r.Episodes {
		ids[i] = e.ID
	}
	return ids
}

func TestQuerySpreadFollowsAssociations(t *testing.T) {
	h, ids := cognitiveServer(t, "the red fox jumps over the fence", "quarterly revenue grew by eight percent",
		"the bakery opens at seven", "the red fox jumps over the wall")
	associate(t, h, ids[0], ids[1], 0.9)
	associate(t, h, ids[1], ids[2], 0.9)
	r := runQuery(t, h, api.PathQuery, `{"query_text":"SPREAD FROM `+ids[0]+` MAX_HOPS 3 DECAY 0.1 THRESHOLD 0.01"}`)
	got := episodeIDs(r)
	if len(got) != 2 || got[0] != ids[1] || got[1] != ids[2] {
		t.Fatalf("SPREAD reached %v, want %v then %v (and not the similar, unassociated %v)", got, ids[1], ids[2], ids[3])
	}
	if e := r.Episodes[0]; e.ActivationLevel != 0.9*0.9 || len(e.Path) != 2 || e.ConfidenceCategory == "" {
		t.Fatalf("first hop: %+v", e)
	}
	if a := r.AggregateConfidence; a.LowerBound > a.Mean || a.Mean > a.UpperBound || a.Width != a.UpperBound-a.LowerBound || a.Mean == 0 {
		t.Fatalf("aggregate: %+v", a)
	}
	// One hop reaches only the direct neighbour; a high threshold stops
	// spreading before the second hop.
	if got := episodeIDs(runQuery(t, h, api.PathQuery, `{"query_text":"spread from `+ids[0]+` max_hops 1"}`)); len(got) != 1 || got[0] != ids[1] {
		t.Fatalf("one hop: %v", got)
	}
	if got := episodeIDs(runQuery(t, h, api.PathQuery, `{"query_text":"SPREAD FROM `+ids[0]+` THRESHOLD 0.7"}`)); len(got) != 1 {
		t.Fatalf("threshold 0.7: %v", got)
	}
	// The quickstart's form: a text source and HOPS, on the quickstart's path.
	if got := episodeIDs(runQuery(t, h, api.PathQueryExecute, `{"query":"SPREAD FROM what=\"red fox fence\" HOPS 1"}`)); len(got) != 1 || got[0] != ids[1] {
		t.Fatalf("text source: %v", got)
	}
	if env := decodeEnvelope(t, do(t, h, request{method: "POST", path: api.PathQuery, body: `{"query_text":"SPREAD FROM nope"}`})); env.Code != "MEMORY_NOT_FOUND" {
		t.Fatalf("unknown source: %+v", env)
	}
}

func TestQueryRecallConditions(t *testing.T) {
	h, ids := cognitiveServer(t, "the red fox jumps over the fence", "the red fox sleeps in the den")
	w := do(t, h, request{method: "POST", path: api.PathRemember,
		body: `{"content":"the red fox hunts at night","confidence":0.3,"timestamp":"2020-01-01T00:00:00Z","tags":["night"]}`})
	if w.Code != http.StatusCreated {
		t.Fatal(w.Body)
	}
	old := decodeJSONBody[api.RememberResponse](t, w).MemoryID
	all := episodeIDs(runQuery(t, h, api.PathQuery, `{"query_text":"RECALL \"red fox\""}`))
	if len(all) != 3 {
		t.Fatalf("RECALL \"red fox\": %v", all)
	}
	for _, c := range []struct {
		stmt string
		want []string
	}{
		{`RECALL "red fox" WHERE content CONTAINS "DEN"`, []string{ids[1]}},
		{`RECALL "red fox" WHERE created BEFORE "2021-01-01"`, []string{old}},
		{`RECALL "red fox" WHERE created AFTER "2021-01-01" AND confidence > 0.5 LIMIT 1`, all[:1]},
		{`RECALL "red fox" WHERE tags CONTAINS "night"`, []string{old}},
		{`RECALL "red fox" WHERE confidence < 0.5`, []string{old}},
		{`RECALL ` + ids[0], []string{ids[0]}},
		{`RECALL nope`, []string{}},
		{`RECALL * WHERE content CONTAINS "fence"`, []string{ids[0]}},
	} {
		r := runQuery(t, h, api.PathQuery, `{"query_text":`+strconv.Quote(c.stmt)+`}`)
		if got := episodeIDs(r); strings.Join(got, ",") != strings.Join(c.want, ",") {
			t.Errorf("%s: got %v, want %v", c.stmt, got, c.want)
		}
	}
	// CONFIDENCE filters the answer's confidence: above the best one, nothing.
	best := runQuery(t, h, api.PathQuery, `{"query_text":"RECALL \"red fox\""}`).Episodes[0].Confidence
	r := runQuery(t, h, api.PathQuery, `{"query_text":"RECALL \"red fox\" CONFIDENCE > `+strconv.FormatFloat(min(best+0.001, 1), 'f', 4, 64)+`"}`)
	if r.TotalCount != 0 {
		t.Fatalf("CONFIDENCE above the best: %+v", r.Episodes)
	}
}

func TestQueryRefusals(t *testing.T) {
	h, _ := cognitiveServer(t, "a memory")
	for _, c := range []struct {
		body, code string
		status     int
		details    map[string]any
	}{
		{`{"query_text":"SPREAD FROM x MAX_HOPS 7"}`, "QUERY_TOO_COMPLEX", 400, map[string]any{"construct": "SPREAD"}},
		{`{"query_text":"RECALL \"x\"\nPREDICT"}`, "QUERY_NOT_SUPPORTED", 400, map[string]any{"construct": "PREDICT", "line": 2.0, "column": 1.0}},
		{`{"query_text":"IMAGINE x NOVELTY 0.3"}`, "QUERY_NOT_SUPPORTED", 400, map[string]any{"construct": "IMAGINE", "column": 1.0}},
		{`{"query_text":"RECALL x WHERE"}`, "QUERY_SYNTAX_ERROR", 400, map[string]any{"column": 15.0}},
		{`{"query_text":""}`, "QUERY_SYNTAX_ERROR", 400, nil},
		{`{"query_text":"RECALL x","memory_space_id":"nowhere"}`, "SPACE_NOT_FOUND", 404, nil},
		{`{"query_text":"RECALL x WHERE IN SPACE nowhere"}`, "SPACE_NOT_FOUND", 404, nil},
		{`{"query_text":"RECALL x","query":"RECALL y"}`, "CONFLICTING_FIELDS", 400, nil},
	} {
		w := do(t, h, request{method: "POST", path: api.PathQuery, body: c.body})
		env := decodeEnvelope(t, w)
		if w.Code != c.status || env.Code != c.code {
			t.Errorf("%s: %d %s, want %d %s", c.body, w.Code, env.Code, c.status, c.code)
		}
		for k, v := range c.details {
			if env.Details[k] != v {
				t.Errorf("%s: details[%s] = %v, want %v (%v)", c.body, k, env.Details[k], v, env.Details)
			}
		}
	}
	// The query never creates its space: the unknown space is still unknown.
	if w := do(t, h, request{method: "GET", path: "/api/v1/spaces/nowhere"}); w.Code != http.StatusNotFound {
		t.Fatalf("the query created its space: %d", w.Code)
	}
}

func TestProbabilisticRecallFromRealScores(t *testing.T) {
	h, ids := cognitiveServer(t, "the red fox jumps over the fence", "the red fox sleeps in the den",
		"quarterly revenue grew by eight percent")
	associate(t, h, ids[0], ids[2], 0.8)
	w := do(t, h, request{method: "GET", path: api.PathProbabilistic + "?query=red+fox+fence&include_evidence=true&include_uncertainty=true"})
	if w.Code != http.StatusOK {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	r := decodeJSONBody[api.ProbabilisticResponse](t, w)
	if len(r.Memories) != 3 || r.Memories[0].ID != ids[0] {
		t.Fatalf("memories: %+v", r.Memories)
	}
	ci := r.ConfidenceInterval
	var sum float64
	for _, m := range r.Memories {
		sum += m.Confidence.Value
	}
	if mean := sum / 3; ci.Point != mean || ci.Lower > ci.Point || ci.Point > ci.Upper || ci.Width != ci.Upper-ci.Lower || ci.Width <= 0 {
		t.Fatalf("interval %+v around the mean %v", ci, mean)
	}
	ev := map[string]api.Evidence{}
	for _, e := range r.EvidenceChain {
		ev[e.SourceType] = e
	}
	if ev["direct_match"].Strength != r.Memories[0].Confidence.Value || ev["spreading_activation"].Strength != r.Memories[2].ActivationLevel ||
		ev["vector_similarity"].Strength <= 0 || ev["temporal_decay"].Strength <= 0.9 {
		t.Fatalf("evidence: %+v", r.EvidenceChain)
	}
	us := map[string]api.UncertaintySource{}
	for _, u := range r.UncertaintySources {
		if u.Impact < 0 || u.Impact > 1 {
			t.Fatalf("impact out of range: %+v", u)
		}
		us[u.SourceType] = u
	}
	if len(us) != 4 || us["measurement_error"].Impact != ci.Width/2 || us["spreading_activation_noise"].Impact <= 0 {
		t.Fatalf("uncertainty: %+v", r.UncertaintySources)
	}
	// Without the flags, only the interval.
	plain := decodeJSONBody[api.ProbabilisticResponse](t, do(t, h, request{method: "GET", path: api.PathProbabilistic + "?query=red+fox+fence&mode=similarity"}))
	if plain.EvidenceChain != nil || plain.UncertaintySources != nil || len(plain.Memories) != 2 {
		t.Fatalf("plain: %+v", plain)
	}
	if env := decodeEnvelope(t, do(t, h, request{method: "GET", path: api.PathProbabilistic + "?query=x&include_evidence=maybe"})); env.Code != "INVALID_PARAMETER" {
		t.Fatalf("bad flag: %+v", env)
	}
}

func TestIntrospectReportsRealFigures(t *testing.T) {
	h, ids := cognitiveServer(t, "the red fox jumps over the fence", "the bakery opens at seven")
	associate(t, h, ids[0], ids[1], 0.5)
	if w := do(t, h, request{method: "POST", path: api.PathRemember, body: `{"content":"elsewhere"}`, headers: map[string]string{api.HeaderSpace: "tenant-b"}}); w.Code != http.StatusCreated {
		t.Fatal(w.Body)
	}
	for i := 0; i < 5; i++ {
		do(t, h, request{method: "GET", path: api.PathRecall + "?query=fox"})
	}
	w := do(t, h, request{method: "GET", path: api.PathIntrospect})
	if w.Code != http.StatusOK {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	in := decodeJSONBody[api.Introspection](t, w)
	if in.TotalNodes != 3 || in.TotalEdges != 1 || len(in.Spaces) != 2 || in.UptimeSeconds <= 0 {
		t.Fatalf("counts: %+v", in)
	}
	for _, sp := range in.Spaces {
		if want := map[string]int64{"default": 2, "tenant-b": 1}[sp.Space]; sp.Memories.Total != want || sp.Dimension != 16 {
			t.Errorf("space %+v, want %d memories", sp, want)
		}
	}
	var recall api.OperationLatency
	for _, op := range in.Operations {
		if op.Operation == opRecall {
			recall = op
		}
	}
	if recall.Count != 5 || recall.AvgMS <= 0 || recall.AvgMS != in.AvgRecallTimeMS || recall.P50MS <= 0 || recall.P50MS > recall.P99MS {
		t.Fatalf("recall latency: %+v (avg_recall_time_ms %v)", recall, in.AvgRecallTimeMS)
	}
	if in.Requests.LastMinute < 8 || in.Runtime.Goroutines <= 0 || in.Storage.ChangelogSequence == 0 {
		t.Fatalf("requests, runtime, storage: %+v %+v %+v", in.Requests, in.Runtime, in.Storage)
	}
}

func TestSpreadingHealthProbe(t *testing.T) {
	h, ids := cognitiveServer(t, "the red fox jumps over the fence", "the bakery opens at seven")
	probe := func() (int, api.SpreadingHealth) {
		w := do(t, h, request{method: "GET", path: api.PathHealthSpreading})
		return w.Code, decodeJSONBody[api.SpreadingHealth](t, w)
	}
	if code, p := probe(); code != http.StatusOK || p.Status != "healthy" || p.Sources != 0 {
		t.Fatalf("no associations: %d %+v", code, p)
	}
	associate(t, h, ids[1], ids[0], 0.9)
	if code, p := probe(); code != http.StatusOK || p.Status != "healthy" || p.Sources < 1 || p.Reached != 1 || p.LatencyMS <= 0 {
		t.Fatalf("with an association: %d %+v", code, p)
	}
	// A failing engine makes the probe unhealthy.
	f := newFake()
	f.readyErr = core.Errorf(core.KindUnavailable, "ENGINE_CLOSED", "engine is closed")
	w := do(t, newTestServer(t, testConfig(), f).Handler(), request{method: "GET", path: api.PathHealthSpreading})
	if p := decodeJSONBody[api.SpreadingHealth](t, w); w.Code != http.StatusServiceUnavailable || p.Status != "unhealthy" {
		t.Fatalf("failing engine: %d %+v", w.Code, p)
	}
}

func TestCompleteFillsMissingFieldsFromMatches(t *testing.T) {
	cfg := testConfig()
	h := newTestServer(t, cfg, openEngine(t, cfg)).Handler()
	var ids []string
	for _, ep := range []string{
		`{"what":"Einstein published theory of relativity in 1915","when":"2024-01-05T10:00:00Z","where":"Physics lecture","who":["Professor Smith"],"confidence":0.9}`,
		`{"what":"the bakery opens at seven","when":"2024-02-01T07:00:00Z","where":"Main street","confidence":0.9}`,
	} {
		w := do(t, h, request{method: "POST", path: api.PathEpisodes, body: ep})
		if w.Code != http.StatusCreated {
			t.Fatal(w.Body)
		}
		ids = append(ids, decodeJSONBody[api.RememberResponse](t, w).MemoryID)
	}
	// The quickstart's call.
	w := do(t, h, request{method: "POST", path: api.PathComplete,
		body: `{"partial":{"what":"Einstein published theory","when":null,"where":"Physics lecture"},"params":{"ca3_sparsity":0.05,"ca1_threshold":0.7,"num_hypotheses":3}}`})
	if w.Code != http.StatusOK {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	r := decodeJSONBody[api.CompleteResponse](t, w)
	c := r.Completed
	if r.Source != "Reconstructed" || c.What != "Einstein published theory of relativity in 1915" || c.When == nil || c.When.Year() != 2024 ||
		c.Where != "Physics lecture" || len(c.Who) != 1 {
		t.Fatalf("completed: %+v", r)
	}
	if r.FieldSources["when"] != ids[0] || r.FieldSources["where"] != "provided" || r.FieldConfidence["where"] != 1 ||
		r.FieldConfidence["when"] <= 0 || r.FieldConfidence["when"] >= 1 || r.CompletionConfidence != c.Confidence || c.Confidence <= 0 {
		t.Fatalf("field confidence: %+v", r)
	}
	// why and how are in no match: they stay missing.
	if strings.Join(r.MissingFields, ",") != "why,how" {
		t.Fatalf("missing: %v", r.MissingFields)
	}
	if !strings.Contains(r.SystemMessage, "ca1_threshold") {
		t.Fatalf("ignored params not noted: %s", r.SystemMessage)
	}
	for _, a := range r.Alternatives {
		if a.ID == ids[0] {
			t.Fatalf("the best match is also an alternative: %+v", r.Alternatives)
		}
	}
	// Nothing to match (another space): nothing is invented.
	none := decodeJSONBody[api.CompleteResponse](t, do(t, h, request{method: "POST", path: api.PathComplete,
		body: `{"partial":{"what":"Einstein published theory"},"memory_space_id":"other-space"}`}))
	if none.Source != "Unmatched" || none.Completed.What != "Einstein published theory" || none.Completed.When != nil ||
		none.CompletionConfidence != 0 || len(none.MissingFields) != 5 || none.Space != "other-space" {
		t.Fatalf("unmatched: %+v", none)
	}
	if env := decodeEnvelope(t, do(t, h, request{method: "POST", path: api.PathComplete, body: `{"partial":{"when":"2024-01-01T00:00:00Z"}}`})); env.Code != "MISSING_CUE" {
		t.Fatalf("no text: %+v", env)
	}
}

// vec16 is a 16-dimension vector with 1 at the given positions, plus a
// small offset at jitter so vectors of one group differ.
func vec16(jitter int, at ...int) string {
	v := make([]string, 16)
	for i := range v {
		v[i] = "0"
	}
	for _, i := range at {
		v[i] = "1"
	}
	v[jitter] = "0.2"
	return "[" + strings.Join(v, ",") + "]"
}

func TestReplayConsolidatesSimilarEpisodes(t *testing.T) {
	cfg := testConfig()
	h := newTestServer(t, cfg, openEngine(t, cfg)).Handler()
	episode := func(what, emb string) string {
		w := do(t, h, request{method: "POST", path: api.PathEpisodes,
			body: `{"what":"` + what + `","when":"2024-01-05T10:00:00Z","confidence":0.8,"embedding":` + emb + `}`})
		if w.Code != http.StatusCreated {
			t.Fatal(w.Body)
		}
		return decodeJSONBody[api.RememberResponse](t, w).MemoryID
	}
	a := []string{episode("standup about the launch", vec16(10, 0, 1, 2)), episode("launch standup, day two", vec16(11, 0, 1, 2)),
		episode("launch standup, day three", vec16(12, 0, 1, 2))}
	b := []string{episode("gym session", vec16(13, 5, 6)), episode("gym again", vec16(14, 5, 6))}
	episode("a lone dentist visit", vec16(15, 8))
	// A plain (semantic) memory is not an episode: never consolidated.
	do(t, h, request{method: "POST", path: api.PathRemember, body: `{"content":"launch standup notes","embedding":` + vec16(10, 0, 1, 2) + `}`})

	replay := func() api.ReplayResponse {
		w := do(t, h, request{method: "POST", path: api.PathReplay, body: `{}`})
		if w.Code != http.StatusOK {
			t.Fatalf("replay: %d %s", w.Code, w.Body)
		}
		return decodeJSONBody[api.ReplayResponse](t, w)
	}
	r := replay()
	if r.EpisodesScanned != 6 || r.Groups != 2 || r.BeliefsWritten != 2 || len(r.Beliefs) != 2 {
		t.Fatalf("replay: %+v", r)
	}
	w := do(t, h, request{method: "GET", path: api.PathConsolidations})
	if w.Code != http.StatusOK {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	snap := decodeJSONBody[api.ConsolidationsResponse](t, w)
	if len(snap.Beliefs) != 2 || snap.Stats.TotalReplays != 1 || snap.Stats.TotalPatternsExtracted != 2 || snap.Stats.LastReplayTimestamp == nil {
		t.Fatalf("snapshot: %+v", snap)
	}
	cited := func(bl api.Belief) string {
		var ids []string
		for _, c := range bl.Citations {
			ids = append(ids, c.EpisodeID)
		}
		sort.Strings(ids)
		return strings.Join(ids, ",")
	}
	groups := map[string]bool{}
	for _, bl := range snap.Beliefs {
		groups[cited(bl)] = true
		if bl.Strength <= 0 || math.Abs(bl.Stats.AverageSourceConfidence-0.8) > 1e-9 || bl.SchemaConfidence.Value > 0.8 || bl.Stats.EpisodeCount != len(bl.Citations) {
			t.Errorf("belief: %+v", bl)
		}
	}
	sort.Strings(a)
	sort.Strings(b)
	if !groups[strings.Join(a, ",")] || !groups[strings.Join(b, ",")] {
		t.Fatalf("groups %v, want %v and %v", groups, a, b)
	}
	if snap.Beliefs[0].Strength < snap.Beliefs[1].Strength {
		t.Fatal("beliefs not strongest first")
	}
	// The belief is a memory linked to its episodes: SPREAD from it reaches them.
	q := runQuery(t, h, api.PathQuery, `{"query_text":"SPREAD FROM `+snap.Beliefs[0].ID+` MAX_HOPS 1"}`)
	if q.TotalCount != len(snap.Beliefs[0].Citations) {
		t.Fatalf("spread from the belief: %v", episodeIDs(q))
	}
	one := decodeJSONBody[api.Belief](t, do(t, h, request{method: "GET", path: "/api/v1/consolidations/" + snap.Beliefs[1].ID}))
	if one.ID != snap.Beliefs[1].ID || len(one.Citations) == 0 {
		t.Fatalf("by id: %+v", one)
	}
	if env := decodeEnvelope(t, do(t, h, request{method: "GET", path: "/api/v1/consolidations/" + a[0]})); env.Code != "CONSOLIDATION_NOT_FOUND" {
		t.Fatalf("an episode is not a belief: %+v", env)
	}
	// A second pass updates the same beliefs rather than adding more.
	if r2 := replay(); strings.Join(r2.Beliefs, ",") != strings.Join(r.Beliefs, ",") {
		t.Fatalf("second pass wrote %v, first %v", r2.Beliefs, r.Beliefs)
	}
	if n := len(decodeJSONBody[api.ConsolidationsResponse](t, do(t, h, request{method: "GET", path: api.PathConsolidations})).Beliefs); n != 2 {
		t.Fatalf("%d beliefs after two passes", n)
	}
	m := do(t, h, request{method: "GET", path: api.PathMetrics}).Body.String()
	if !strings.Contains(m, `engram_consolidation_runs_total{result="success"} 2`) || !strings.Contains(m, "engram_consolidation_beliefs_written_total 4") {
		t.Fatalf("metrics: %s", grepLines(m, "engram_consolidation"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
