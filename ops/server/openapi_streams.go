package server

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/engram-ops/engram-ops/ops/api"
)

// The OpenAPI description of the event streams (streams.go): their query
// parameters, the Last-Event-ID header, and the text/event-stream answer
// whose x-events name the data shape of each event.

// streamCommonDocs are the parameters every stream takes (streamCommon).
var streamCommonDocs = []paramDoc{
	{"session_id", "string", "echoed in every event's data (at most 128 bytes; default a random id)", false},
	{"buffer_size", "integer", fmt.Sprintf("events queued for this client before they are dropped with a warning (default %d, 1..%d)", defaultStreamQueue, maxStreamQueue), false},
	{"last_event_id", "string", "resume after this event id when no Last-Event-ID header is sent", false},
}

// streamHeaderDocs are the request headers every stream reads.
var streamHeaderDocs = []paramDoc{
	{"Last-Event-ID", "string", "resume: the kept events after this id are sent first, then live ones (wins over last_event_id)", false},
}

func streamQuery(extra ...paramDoc) []paramDoc {
	return append(append([]paramDoc{}, streamCommonDocs...), extra...)
}

// streamErrors: 400 a bad parameter or space name, 403 a space the key
// may not read, 503 TOO_MANY_STREAMS.
var streamErrors = []int{400, 403, 503}

// streamOK is a stream's 200 answer: events of the given names, each
// with its data's wire type; warning is every stream's.
func streamOK(desc string, events map[string]any) []respDoc {
	all := map[string]any{"warning": api.StreamWarning{}}
	for name, v := range events {
		all[name] = v
	}
	return []respDoc{{Status: 200, ContentType: "text/event-stream", Events: all,
		Desc: desc + "; `event: warning` (no id) when events were dropped or a resume cannot replay them all; a `: heartbeat` comment every streams.heartbeat. " +
			"Each event is `id:` (the space's event number), `event:` (its name) and one `data:` line of JSON whose shape x-events names per event"}}
}

const streamDesc = "A server-sent event stream of the engine operations that took effect in the space (picked like a read's). " +
	"It holds the connection until the client leaves or the server shuts down; at most streams.max_subscribers streams are open at once. "

func quoted(names []string) string { return "`" + strings.Join(names, "`, `") + "`" }

var streamRouteDocs = []routeDoc{
	{Pattern: "GET " + api.PathStreamActivities, Tag: "streams", Summary: "Stream the space's activities", Space: true,
		Desc: streamDesc + "Events: " + quoted(activityTypes) + " (consolidation is accepted and publishes nothing yet).",
		Query: streamQuery(
			paramDoc{"event_types", "list", "only these events: " + strings.Join(activityTypes, ", ") + " (default all)", false},
			paramDoc{"min_importance", "number", "only events of at least this importance, 0..1 (default 0.1)", false}),
		Headers: streamHeaderDocs,
		OK: streamOK("`storage` (a memory stored), `recall`, `activation` (spreading reached memories), `association`, `decay` (memories gone cold), `forget`", map[string]any{
			"storage": api.StorageActivity{}, "recall": api.RecallActivity{}, "activation": api.SpreadingActivity{},
			"association": api.AssociationActivity{}, "decay": api.DecayActivity{}, "forget": api.ForgetActivity{}}),
		Errors: streamErrors, Example: example{Path: api.PathStreamActivities + "?event_types=storage,recall&min_importance=0.2"}},
	{Pattern: "GET " + api.PathStreamMemories, Tag: "streams", Summary: "Stream memory formations and retrievals", Space: true,
		Desc: streamDesc + "Events: `formation` (a memory stored) and `retrieval` (a recall with results).",
		Query: streamQuery(
			paramDoc{"include_formation", "boolean", "send formations (default true)", false},
			paramDoc{"include_retrieval", "boolean", "send retrievals (default true)", false},
			paramDoc{"include_completion", "boolean", "accepted: pattern completion publishes no events", false},
			paramDoc{"min_confidence", "number", "only events of at least this confidence, 0..1 (default 0.3)", false},
			paramDoc{"memory_types", "list", "only formations of these types: semantic, episodic, procedural (default all)", false}),
		Headers: streamHeaderDocs,
		OK:      streamOK("`formation` and `retrieval`", map[string]any{"formation": api.MemoryFormation{}, "retrieval": api.MemoryRetrieval{}}),
		Errors:  streamErrors, Example: example{Path: api.PathStreamMemories + "?min_confidence=0.5&memory_types=semantic"}},
	{Pattern: "GET " + api.PathStreamConsolidation, Tag: "streams", Summary: "Stream consolidation events", Space: true,
		Desc: streamDesc + "No consolidation pass publishes events yet: the stream carries heartbeats (and warnings) only.",
		Query: streamQuery(
			paramDoc{"include_replay", "boolean", "accepted and not applied", false},
			paramDoc{"include_insights", "boolean", "accepted and not applied", false},
			paramDoc{"include_progress", "boolean", "accepted and not applied", false},
			paramDoc{"min_novelty", "number", "accepted and not applied, 0..1", false}),
		Headers: streamHeaderDocs,
		OK:      streamOK("heartbeats only", nil),
		Errors:  streamErrors, Example: example{Path: api.PathStreamConsolidation}},
	monitoringRouteDoc(api.PathMonitoringEvents, "Stream monitoring events"),
	monitoringRouteDoc(api.PathMonitorEvents, "Stream monitoring events (alias of GET "+api.PathMonitoringEvents+")"),
}

func monitoringRouteDoc(path, summary string) routeDoc {
	return routeDoc{Pattern: "GET " + path, Tag: "streams", Summary: summary, Space: true,
		Desc: streamDesc + "Events: `monitor`, whose event_type is " + quoted(monitorTypes) + ".",
		Query: streamQuery(
			paramDoc{"event_types", "list", "only these event_types: " + strings.Join(monitorTypes, ", ") + " (default all)", false},
			paramDoc{"min_activation", "number", "only activation and spreading events of at least this level, 0..1 (default 0.1)", false},
			paramDoc{"focus_id", "string", "only events touching this memory", false},
			paramDoc{"level", "string", "global (default), region, node or edge: echoed in each event", false},
			paramDoc{"last_sequence", "string", "Engram's name of last_event_id", false},
			paramDoc{"max_frequency", "number", "accepted and not applied", false},
			paramDoc{"include_causality", "boolean", "accepted and not applied", false}),
		Headers: streamHeaderDocs,
		OK:      streamOK("`monitor`", map[string]any{"monitor": api.MonitorEvent{}}),
		Errors:  streamErrors, Example: example{Path: path + "?event_types=formation,activation&level=node&buffer_size=" + strconv.Itoa(defaultStreamQueue)}}
}

// isStream reports whether rd answers an event stream.
func isStream(rd routeDoc) bool {
	for _, r := range rd.OK {
		if r.ContentType == "text/event-stream" {
			return true
		}
	}
	return false
}
