package server

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/ops/api"
)

// TestEngramNamesReachTheEngine: the field and parameter names Engram's
// README, quickstart, demo and docs send are accepted with their meaning:
// aliases arrive at the engine as our field.
func TestEngramNamesReachTheEngine(t *testing.T) {
	cases := []struct {
		name  string
		req   request
		space string
		check func(t *testing.T, in any)
	}{
		{"quickstart episode where and confidence", request{method: "POST", path: api.PathEpisodes,
			body: `{"what":"Learned about cellular biology","when":"2024-01-15T10:30:00Z","where":"Biology 101 lecture hall",` +
				`"who":["Professor Smith"],"why":"Preparing for exam","how":"Taking detailed notes","confidence":0.85}`}, "default",
			func(t *testing.T, in any) {
				ri := in.(core.RememberInput)
				if ri.Episode.Where != "Biology 101 lecture hall" || ri.Confidence == nil || *ri.Confidence != 0.85 || *ri.Episode.Importance != 0.85 {
					t.Errorf("where %q, confidence %v", ri.Episode.Where, ri.Confidence)
				}
			}},
		{"episode where equal to where_location", request{method: "POST", path: api.PathEpisodes,
			body: `{"what":"x","when":"2024-01-15T10:30:00Z","where":"hall","where_location":"hall"}`}, "default",
			func(t *testing.T, in any) {
				if w := in.(core.RememberInput).Episode.Where; w != "hall" {
					t.Errorf("where %q", w)
				}
			}},
		{"memory_space body field", request{method: "POST", path: api.PathRemember,
			body: `{"content":"x","memory_space":"tenant-a"}`}, "tenant-a", nil},
		{"memory_space on an episode", request{method: "POST", path: api.PathEpisodes,
			body: `{"what":"x","when":"2024-01-15T10:30:00Z","memory_space":"tenant-b"}`}, "tenant-b", nil},
		{"confidence_threshold query parameter", request{method: "GET", path: api.PathRecall + "?query=x&confidence_threshold=0.35"}, "default",
			func(t *testing.T, in any) {
				if th := in.(core.RecallQuery).Threshold; th != 0.35 {
					t.Errorf("threshold %v", th)
				}
			}},
		{"confidence_threshold in a recall body", request{method: "POST", path: api.PathRecall, body: `{"query":"x","confidence_threshold":0.4}`}, "default",
			func(t *testing.T, in any) {
				if th := in.(core.RecallQuery).Threshold; th != 0.4 {
					t.Errorf("threshold %v", th)
				}
			}},
		{"excluded_tags and location accepted", request{method: "GET", path: api.PathRecall + "?query=x&excluded_tags=a,b&location=home"}, "default", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			h := newTestServer(t, testConfig(), f).Handler()
			w := do(t, h, tc.req)
			if w.Code >= 300 {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			if s := f.lastSpace(); s != tc.space {
				t.Errorf("space %q, want %q", s, tc.space)
			}
			if tc.check != nil {
				tc.check(t, f.last)
			}
		})
	}
}

// TestEngramIgnoredNamesAreSaid: a name accepted and not applied is said
// in the answer, never silently dropped.
func TestEngramIgnoredNamesAreSaid(t *testing.T) {
	cfg := testConfig()
	h := newTestServer(t, cfg, openEngine(t, cfg)).Handler()
	do(t, h, request{method: "POST", path: api.PathRemember, body: `{"content":"kitchen sink"}`})
	w := do(t, h, request{method: "GET", path: api.PathRecall + "?query=kitchen&excluded_tags=a&location=home"})
	if w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	resp := decodeJSONBody[api.RecallResponse](t, w)
	s := strings.Join(resp.QueryAnalysis.Suggestions, "\n")
	for _, name := range []string{"excluded_tags", "location"} {
		if !strings.Contains(s, name+" is accepted for Engram compatibility and not applied") {
			t.Errorf("suggestions do not say %s was not applied: %q", name, s)
		}
	}
}

// TestRememberClampsConfidence: Engram clamps confidence to 0..1; so do
// we, and the reasoning says so.
func TestRememberClampsConfidence(t *testing.T) {
	cfg := testConfig()
	h := newTestServer(t, cfg, openEngine(t, cfg)).Handler()
	for _, tc := range []struct {
		path, body string
		want       float64
		says       string
	}{
		{api.PathRemember, `{"content":"x","confidence":1.5}`, 1, "confidence 1.5 is outside 0..1 and was clamped to 1"},
		{api.PathMemories, `{"content":"x","confidence":-0.1}`, 0, "confidence -0.1 is outside 0..1 and was clamped to 0"},
		{api.PathEpisodes, `{"what":"x","when":"2025-01-02T15:04:05Z","confidence":2}`, 1, "2 is outside 0..1 and was clamped to 1"},
	} {
		w := do(t, h, request{method: "POST", path: tc.path, body: tc.body})
		if w.Code != 201 {
			t.Fatalf("%s: status %d: %s", tc.body, w.Code, w.Body)
		}
		resp := decodeJSONBody[api.RememberResponse](t, w)
		if resp.StorageConfidence.Value != tc.want || !strings.Contains(resp.StorageConfidence.Reasoning, tc.says) {
			t.Errorf("%s: storage_confidence %+v, want %v saying %q", tc.body, resp.StorageConfidence, tc.want, tc.says)
		}
	}
}

// TestEngramTableNamesFields: every name of the table is a JSON field of
// its wire type, and every alias names one of ours.
func TestEngramTableNamesFields(t *testing.T) {
	for typ, names := range engramBody {
		known := knownFields(typ)
		for _, n := range names {
			if !slices.Contains(known, n.Name) {
				t.Errorf("%s: %q is not a field", typ, n.Name)
			}
			if n.Alias != "" && !slices.Contains(known, n.Alias) {
				t.Errorf("%s: alias %q of %q is not a field", typ, n.Alias, n.Name)
			}
			if n.Alias != "" {
				v := reflect.New(typ).Elem()
				if a, f := jsonField(v, n.Name), jsonField(v, n.Alias); a.Type() != f.Type() {
					t.Errorf("%s: %q is %s, its field %q %s", typ, n.Name, a.Type(), n.Alias, f.Type())
				}
			}
			if n.Why == "" {
				t.Errorf("%s: %q has no reason", typ, n.Name)
			}
		}
	}
}
