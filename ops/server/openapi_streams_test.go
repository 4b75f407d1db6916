package server

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/ops/api"
	"github.com/engram-ops/engram-ops/ops/api/openapi"
	"github.com/engram-ops/engram-ops/ops/events"
)

// TestOpenAPIStreamEvents: every event a stream writes (each engine
// operation through each stream's view, and the warnings) has a name the
// route's x-events lists, and its data matches the schema x-events names
// for it; every name x-events lists is written by some event.
func TestOpenAPIStreamEvents(t *testing.T) {
	doc := loadOpenAPI(t)
	now := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	ops := []events.Event{
		{EventID: 1, Event: core.Event{Kind: core.EventStored, Space: "default", Time: now, Seq: 1, ID: "m1", Confidence: 0.9, MemoryType: core.Semantic}},
		{EventID: 2, Event: core.Event{Kind: core.EventAssociated, Space: "default", Time: now, Seq: 2,
			Association: core.Association{From: "m1", To: "m2", Weight: 0.5, Kind: "related"}}},
		{EventID: 3, Results: 2, Event: core.Event{Kind: core.EventRecalled, Space: "default", Time: now, Confidence: 0.8, Activated: 1,
			Recalled: []core.RecalledRef{{ID: "m1", Activation: 0.9, Direct: true}, {ID: "m2", Activation: 0.6}}}},
		{EventID: 4, Event: core.Event{Kind: core.EventDecayed, Space: "default", Time: now, Decayed: []string{"m1"}, Retrievability: []float64{0.1}}},
		{EventID: 5, Event: core.Event{Kind: core.EventForgotten, Space: "default", Time: now, Seq: 3, ID: "m1"}},
	}
	all := func(names []string) map[string]bool {
		m := map[string]bool{}
		for _, n := range names {
			m[n] = true
		}
		return m
	}
	views := map[string][]streamView{
		api.PathStreamActivities:    {&activityView{types: all(activityTypes)}},
		api.PathStreamMemories:      {&memoryView{formation: true, retrieval: true}},
		api.PathStreamConsolidation: {consolidationView{}},
		api.PathMonitoringEvents:    {&monitorView{types: all(monitorTypes), level: "global"}, &monitorView{types: all(monitorTypes), level: "node", focus: "m1"}},
	}
	views[api.PathMonitorEvents] = views[api.PathMonitoringEvents]

	for _, rd := range streamRouteDocs {
		_, path, _ := strings.Cut(rd.Pattern, " ")
		op := doc.Paths.Find(path).Get
		mt := op.Responses.Status(200).Value.Content.Get("text/event-stream")
		if mt == nil {
			t.Fatalf("%s: the document's 200 answer has no text/event-stream body", rd.Pattern)
		}
		listed := map[string]*openapi3.Schema{}
		raw, _ := mt.Extensions["x-events"].(map[string]any)
		for name, v := range raw {
			ref, _ := v.(map[string]any)["$ref"].(string)
			s := doc.Components.Schemas[openapi.RefName(ref)]
			if s == nil {
				t.Fatalf("%s: x-events %q names %q, which is not a component schema", rd.Pattern, name, ref)
			}
			listed[name] = s.Value
		}
		if len(views[path]) == 0 {
			t.Fatalf("%s: no stream view to check: add it to this test", rd.Pattern)
		}

		rec := httptest.NewRecorder()
		sw := &sseWriter{w: rec, rc: http.NewResponseController(rec)}
		for _, v := range views[path] {
			req := streamRequest{view: v, session: "s1"}
			for i := range ops {
				if v.keep(&ops[i]) {
					sw.write(&ops[i], req)
				}
			}
		}
		sw.dropped(events.Drop{Count: 2, FirstID: 6, LastID: 7}, "s1")
		sw.resumed(streamRequest{session: "s1", after: 9}, events.Resume{Ahead: true, Latest: 7}, "default", 1024)
		sw.resumed(streamRequest{session: "s1", after: 1}, events.Resume{Missed: 3}, "default", 1024)
		if sw.err != nil {
			t.Fatal(sw.err)
		}

		written := map[string]bool{}
		sc := bufio.NewScanner(rec.Body)
		name := ""
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				name = line[len("event: "):]
			case strings.HasPrefix(line, "data: "):
				written[name] = true
				schema := listed[name]
				if schema == nil {
					t.Errorf("%s writes event %q, which its x-events (routeDocs, ops/server/openapi_streams.go) does not list", rd.Pattern, name)
					continue
				}
				var data any
				if err := json.Unmarshal([]byte(line[len("data: "):]), &data); err != nil {
					t.Fatalf("%s event %q: %v", rd.Pattern, name, err)
				}
				if err := schema.VisitJSON(data); err != nil {
					t.Errorf("%s event %q: the data does not match its schema (the ops/api type x-events names): %v\n%s", rd.Pattern, name, err, line)
				}
			}
		}
		for name := range listed {
			if !written[name] {
				t.Errorf("%s: x-events lists %q, which no event here wrote", rd.Pattern, name)
			}
		}
	}
}
