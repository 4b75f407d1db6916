package server

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/ops/api"
	"github.com/engram-ops/engram-ops/ops/api/apijson"
	"github.com/engram-ops/engram-ops/ops/events"
)

// Server-sent event streams: Engram's /api/v1/stream/* and
// /api/v1/monitoring/events over the event hub (ops/events), which the
// engine's observer hook feeds. Every event is a real engine operation of
// the stream's space; a stream carries nothing else but heartbeat comments
// and warnings. The space is picked like a read's (X-Memory-Space, then
// ?space=) and checked against the API key's spaces.
//
// A stream holds its connection: it is not cut by server.write_timeout
// (each write gets its own deadline instead), it counts against
// streams.max_subscribers, and it ends when the server shuts down.

// Stream names: the metric label and the route's kind.
const (
	streamActivities    = "activities"
	streamMemories      = "memories"
	streamConsolidation = "consolidation"
	streamMonitoring    = "monitoring"
)

// Engram's buffer_size: the client's queue, default 32, at most 128.
const (
	defaultStreamQueue = 32
	maxStreamQueue     = 128
)

// activityTypes are the event_types of /stream/activities; forget is ours
// (Engram has no forget event).
var activityTypes = []string{"activation", "storage", "recall", "consolidation", "association", "decay", "forget"}

// monitorTypes are the event_types of /monitoring/events.
var monitorTypes = []string{"activation", "formation", "decay", "spreading"}

// sseEvent is one event as written: its name and JSON data.
type sseEvent struct {
	name string
	data map[string]any
}

// streamView is what one stream shows of the hub's events.
type streamView interface {
	// keep reports whether an event may render to anything (the hub's
	// filter, run on the publishing path).
	keep(e *events.Event) bool
	// render turns a kept event into the stream's events.
	render(e *events.Event, session string) []sseEvent
}

// streamRequest is a parsed stream request.
type streamRequest struct {
	view    streamView
	session string
	queue   int
	after   uint64
	resume  bool
}

func (s *Server) streamRoutes() {
	s.handle("GET "+api.PathStreamActivities, s.handleStream(streamActivities, parseActivities))
	s.handle("GET "+api.PathStreamMemories, s.handleStream(streamMemories, parseMemoriesStream))
	s.handle("GET "+api.PathStreamConsolidation, s.handleStream(streamConsolidation, parseConsolidation))
	s.handle("GET "+api.PathMonitoringEvents, s.handleStream(streamMonitoring, parseMonitoring))
	s.handle("GET "+api.PathMonitorEvents, s.handleStream(streamMonitoring, parseMonitoring))
}

// commonStream reads the parameters every stream takes: session_id,
// buffer_size and the resume point (Last-Event-ID header, else
// last_event_id, else Engram's monitoring last_sequence).
func commonStream(r *http.Request, p *params, view streamView) (streamRequest, error) {
	req := streamRequest{view: view, session: p.str("session_id"), queue: p.int("buffer_size", defaultStreamQueue)}
	if len(req.session) > 128 {
		p.fail("session_id", req.session, "must be at most 128 bytes")
	}
	if req.queue < 1 || req.queue > maxStreamQueue {
		p.fail("buffer_size", strconv.Itoa(req.queue), fmt.Sprintf("must be in 1..%d (the events queued for this client)", maxStreamQueue))
	}
	if err := p.check(); err != nil {
		return req, err
	}
	if req.session == "" {
		req.session = newSessionID()
	}
	hdr := r.Header.Values("Last-Event-ID")
	if len(hdr) > 1 {
		return req, httpErrorf(http.StatusBadRequest, "INVALID_PARAMETER", "the request has %d Last-Event-ID headers; send one", len(hdr)).
			with("parameter", "Last-Event-ID")
	}
	for _, src := range []struct{ name, v string }{{"Last-Event-ID", strings.Join(hdr, "")},
		{"last_event_id", p.str("last_event_id")}, {"last_sequence", p.str("last_sequence")}} {
		if strings.TrimSpace(src.v) == "" {
			continue
		}
		id, err := parseEventID(src.v)
		if err != nil {
			return req, httpErrorf(http.StatusBadRequest, "INVALID_PARAMETER", "%s %q: %v", src.name, echo(src.v), err).
				with("parameter", src.name)
		}
		req.after, req.resume = id, true
		break
	}
	return req, nil
}

// parseEventID reads an event id as this server writes them: a decimal
// integer (Last-Event-ID is client-supplied; a browser repeats the last id
// it saw).
func parseEventID(v string) (uint64, error) {
	v = strings.TrimSpace(v)
	if v == "" || len(v) > 20 {
		return 0, fmt.Errorf("must be an event id this server sent (a decimal integer)")
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("must be an event id this server sent (a decimal integer)")
		}
	}
	id, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("must be an event id this server sent (a decimal integer at most %d)", uint64(1<<64-1))
	}
	return id, nil
}

// parseEventTypes reads a comma-separated event_types list against the
// names a stream knows; empty is all of them.
func parseEventTypes(v string, known []string) (map[string]bool, error) {
	set := map[string]bool{}
	for _, t := range strings.Split(v, ",") {
		t = strings.ToLower(strings.TrimSpace(t))
		if t == "" {
			continue
		}
		if !slices.Contains(known, t) {
			return nil, fmt.Errorf("unknown event type %q; known: %s", echo(t), strings.Join(known, ", "))
		}
		set[t] = true
	}
	if len(set) == 0 {
		for _, t := range known {
			set[t] = true
		}
	}
	return set, nil
}

// unit reads a 0..1 parameter with a default, clamped as Engram does.
func unit(p *params, name string, def float64) float64 {
	if p.str(name) == "" {
		return def
	}
	return min(max(p.float(name), 0), 1)
}

// boolDefault reads a boolean parameter with a default.
func boolDefault(p *params, name string, def bool) bool {
	if p.str(name) == "" {
		return def
	}
	return p.bool(name)
}

var streamCommon = []string{"session_id", "buffer_size", "last_event_id"}

func parseActivities(r *http.Request) (streamRequest, error) {
	p := newParams(r, append(streamCommon, "event_types", "min_importance")...)
	types, err := parseEventTypes(p.str("event_types"), activityTypes)
	if err != nil {
		p.fail("event_types", p.str("event_types"), err.Error())
	}
	return commonStream(r, p, &activityView{types: types, minImportance: unit(p, "min_importance", 0.1)})
}

func parseMemoriesStream(r *http.Request) (streamRequest, error) {
	p := newParams(r, append(streamCommon, "include_formation", "include_retrieval", "include_completion",
		"min_confidence", "memory_types")...)
	v := &memoryView{formation: boolDefault(p, "include_formation", true), retrieval: boolDefault(p, "include_retrieval", true),
		minConfidence: unit(p, "min_confidence", 0.3)}
	_ = boolDefault(p, "include_completion", false) // accepted: pattern completion publishes no events yet
	for _, t := range p.list("memory_types") {
		mt := core.MemoryType(strings.ToLower(t))
		if mt != core.Semantic && mt != core.Episodic && mt != core.Procedural {
			p.fail("memory_types", t, "must be semantic, episodic or procedural")
			continue
		}
		if v.types == nil {
			v.types = map[core.MemoryType]bool{}
		}
		v.types[mt] = true
	}
	return commonStream(r, p, v)
}

func parseConsolidation(r *http.Request) (streamRequest, error) {
	p := newParams(r, append(streamCommon, "include_replay", "include_insights", "include_progress", "min_novelty")...)
	for _, n := range []string{"include_replay", "include_insights", "include_progress"} {
		_ = boolDefault(p, n, false)
	}
	_ = unit(p, "min_novelty", 0.4)
	return commonStream(r, p, consolidationView{})
}

func parseMonitoring(r *http.Request) (streamRequest, error) {
	p := newParams(r, append(streamCommon, "level", "focus_id", "max_frequency", "include_causality", "event_types",
		"min_activation", "last_sequence")...)
	types, err := parseEventTypes(p.str("event_types"), monitorTypes)
	if err != nil {
		p.fail("event_types", p.str("event_types"), err.Error())
	}
	level := strings.ToLower(p.str("level"))
	switch level {
	case "":
		level = "global"
	case "global", "region", "node", "edge":
	default:
		p.fail("level", level, "must be global, region, node or edge")
	}
	_ = p.float("max_frequency")
	_ = boolDefault(p, "include_causality", true)
	return commonStream(r, p, &monitorView{types: types, level: level, focus: p.str("focus_id"),
		minActivation: unit(p, "min_activation", 0.1)})
}

// handleStream serves one stream route.
func (s *Server) handleStream(stream string, parse func(*http.Request) (streamRequest, error)) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		req, err := parse(r)
		if err != nil {
			return err
		}
		space, err := s.readSpace(r)
		if err != nil {
			return err
		}
		if limit := s.cfg.Streams.MaxSubscribers; limit > 0 && s.hub.Subscribers() >= int64(limit) {
			s.streamMetrics.Refused()
			e := httpErrorf(http.StatusServiceUnavailable, "TOO_MANY_STREAMS",
				"the server has streams.max_subscribers (%d) event streams open; retry later or raise streams.max_subscribers", limit).
				with("limit", limit)
			e.header = map[string]string{"Retry-After": "5"}
			return e
		}
		sub, resume := s.hub.Subscribe(space, events.SubscribeOptions{Queue: req.queue, After: req.after, Resume: req.resume, Filter: req.view.keep})
		defer sub.Close()
		s.streamMetrics.Opened(stream)
		defer s.streamMetrics.Closed(stream)
		sw := &sseWriter{w: w, rc: http.NewResponseController(w), timeout: s.cfg.Server.WriteTimeout.Duration}
		h := w.Header()
		h.Set("Content-Type", "text/event-stream")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Accel-Buffering", "no") // a buffering proxy would hold events back
		_ = sw.rc.SetReadDeadline(time.Time{})
		sw.deadline()
		w.WriteHeader(http.StatusOK)
		sw.comment(fmt.Sprintf("%s stream of space %s, session %s", stream, space, req.session))
		if req.resume {
			sw.resumed(req, resume, space, s.cfg.Streams.Buffer)
			for i := range resume.Replay {
				sw.write(&resume.Replay[i], req)
			}
		}
		if sw.err != nil {
			return nil
		}
		counted := func() {
			if d := sub.TakeDropped(); d.Count > 0 {
				s.streamMetrics.Dropped(stream, d.Count)
				sw.dropped(d, req.session)
			}
		}
		defer func() {
			// Drops not yet reported are still counted.
			if d := sub.TakeDropped(); d.Count > 0 {
				s.streamMetrics.Dropped(stream, d.Count)
			}
		}()
		heartbeat := time.NewTicker(s.cfg.Streams.Heartbeat.Duration)
		defer heartbeat.Stop()
		for sw.err == nil {
			select {
			case e := <-sub.C():
				if d := sub.PeekDropped(); d.Count > 0 && d.FirstID < e.EventID {
					counted()
				}
				sw.write(&e, req)
				if len(sub.C()) == 0 {
					// Drops after the last queued event: say so now,
					// not when (if ever) the next event comes.
					counted()
				}
			case <-sub.Lost():
				if len(sub.C()) == 0 {
					counted()
				}
			case <-heartbeat.C:
				sw.comment("heartbeat")
			case <-s.hub.Done():
				sw.comment("server shutting down")
				return nil
			case <-r.Context().Done():
				return nil
			}
		}
		return nil // the client went away
	}
}

// sseWriter writes one stream; the first write error ends it.
type sseWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	buf     bytes.Buffer
	err     error
}

// deadline gives the next write server.write_timeout, instead of the
// deadline of the whole response.
func (sw *sseWriter) deadline() {
	if sw.timeout > 0 {
		_ = sw.rc.SetWriteDeadline(time.Now().Add(sw.timeout))
	}
}

func (sw *sseWriter) flush() {
	if sw.err != nil {
		return
	}
	sw.deadline()
	if _, err := sw.w.Write(sw.buf.Bytes()); err != nil {
		sw.err = err
	} else if err := sw.rc.Flush(); err != nil {
		sw.err = err
	}
	sw.buf.Reset()
}

func (sw *sseWriter) comment(text string) {
	sw.buf.WriteString(": ")
	sw.buf.WriteString(strings.ReplaceAll(text, "\n", " "))
	sw.buf.WriteString("\n\n")
	sw.flush()
}

// event writes one event; id 0 writes none (warnings carry no id, so a
// client's Last-Event-ID stays the last real event).
func (sw *sseWriter) event(id uint64, name string, data map[string]any) {
	if id > 0 {
		fmt.Fprintf(&sw.buf, "id: %d\n", id)
	}
	fmt.Fprintf(&sw.buf, "event: %s\ndata: ", name)
	var js bytes.Buffer
	if err := apijson.Encode(&js, data); err != nil {
		js.Reset()
		js.WriteString(`{"error":"could not encode the event"}`)
	}
	sw.buf.Write(bytes.TrimRight(js.Bytes(), "\n"))
	sw.buf.WriteString("\n\n")
}

func (sw *sseWriter) write(e *events.Event, req streamRequest) {
	for _, ev := range req.view.render(e, req.session) {
		sw.event(e.EventID, ev.name, ev.data)
	}
	sw.flush()
}

func (sw *sseWriter) dropped(d events.Drop, session string) {
	sw.event(0, "warning", map[string]any{
		"warning":          fmt.Sprintf("Lagged behind, %d events skipped (ids %d..%d): this client reads more slowly than events arrive", d.Count, d.FirstID, d.LastID),
		"dropped":          d.Count,
		"first_dropped_id": d.FirstID,
		"last_dropped_id":  d.LastID,
		"session_id":       session,
	})
	sw.flush()
}

// resumed says how a Last-Event-ID resume went when not every event
// after the id can be replayed.
func (sw *sseWriter) resumed(req streamRequest, res events.Resume, space string, buffer int) {
	switch {
	case res.Ahead:
		sw.event(0, "warning", map[string]any{
			"warning": fmt.Sprintf("Last-Event-ID %d is newer than space %s's newest event %d (ids restart with the server); nothing to replay, streaming new events",
				req.after, space, res.Latest),
			"last_event_id": req.after, "latest_event_id": res.Latest, "session_id": req.session,
		})
	case res.Missed > 0:
		sw.event(0, "warning", map[string]any{
			"warning": fmt.Sprintf("%d events after id %d are no longer kept (the server keeps the last %d of each space, streams.buffer); replaying from id %d",
				res.Missed, req.after, buffer, req.after+res.Missed+1),
			"missed": res.Missed, "last_event_id": req.after, "resumed_from_id": req.after + res.Missed + 1, "session_id": req.session,
		})
	default:
		return
	}
	sw.flush()
}

// newSessionID names a stream when the client gave no session_id.
func newSessionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// cognitiveLoad is Engram's metadata of an activity.
func cognitiveLoad(importance float64) map[string]any {
	load := "normal"
	if importance > 0.8 {
		load = "high"
	}
	return map[string]any{"cognitive_load": load, "attention_required": importance > 0.9}
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// recallTop is a recall's first result's id and activation, and the
// mean activation of the memories spreading reached.
func recallTop(e *events.Event) (id string, activation, spread float64) {
	var n int
	for i, r := range e.Recalled {
		if i == 0 {
			id, activation = r.ID, r.Activation
		}
		if !r.Direct {
			spread += r.Activation
			n++
		}
	}
	if n > 0 {
		spread /= float64(n)
	}
	return id, activation, spread
}

func recalledIDs(e *events.Event) []string {
	ids := make([]string, len(e.Recalled))
	for i, r := range e.Recalled {
		ids[i] = r.ID
	}
	return ids
}

func decayedRetrievability(e *events.Event) float64 {
	if len(e.Retrievability) == 0 {
		return 0
	}
	var sum float64
	for _, r := range e.Retrievability {
		sum += r
	}
	return sum / float64(len(e.Retrievability))
}

// activityView is /stream/activities.
type activityView struct {
	types         map[string]bool
	minImportance float64
}

// activityImportance is Engram's importance of an activity: a memory's
// confidence, a recall's midpoint of activation and confidence, an
// association's weight; a memory going cold matters as much as it faded,
// and a forget always shows.
func activityImportance(e *events.Event) float64 {
	switch e.Kind {
	case core.EventStored:
		return e.Confidence
	case core.EventRecalled:
		_, a, _ := recallTop(e)
		return (a + e.Confidence) / 2
	case core.EventAssociated:
		return e.Association.Weight
	case core.EventDecayed:
		return 1 - decayedRetrievability(e)
	}
	return 1
}

func (v *activityView) keep(e *events.Event) bool {
	if activityImportance(e) < v.minImportance && !(e.Kind == core.EventRecalled && v.types["activation"] && e.Activated > 0) {
		return false
	}
	switch e.Kind {
	case core.EventStored:
		return v.types["storage"]
	case core.EventRecalled:
		return v.types["recall"] || (v.types["activation"] && e.Activated > 0)
	case core.EventAssociated:
		return v.types["association"]
	case core.EventDecayed:
		return v.types["decay"]
	case core.EventForgotten:
		return v.types["forget"]
	}
	return false
}

func (v *activityView) render(e *events.Event, session string) []sseEvent {
	imp := activityImportance(e)
	base := func(kind, desc string, importance float64) map[string]any {
		return map[string]any{"event_type": kind, "description": desc, "memory_space_id": e.Space, "importance": importance,
			"timestamp": rfc3339(e.Time), "session_id": session, "metadata": cognitiveLoad(importance)}
	}
	var out []sseEvent
	switch e.Kind {
	case core.EventStored:
		d := base("storage", "New memory encoded", imp)
		d["memory_id"], d["confidence"], d["memory_type"], d["sequence"] = e.ID, e.Confidence, string(e.MemoryType), e.Seq
		// Engram's storage events carry the time as epoch seconds.
		d["timestamp"] = float64(e.Time.UnixNano()) / 1e9
		out = append(out, sseEvent{"storage", d})
	case core.EventRecalled:
		id, a, spread := recallTop(e)
		if v.types["recall"] && imp >= v.minImportance {
			d := base("recall", "Memory recalled", imp)
			d["memory_id"], d["activation"], d["confidence"] = id, a, e.Confidence
			d["memory_ids"], d["results"] = recalledIDs(e), e.Results
			out = append(out, sseEvent{"recall", d})
		}
		if v.types["activation"] && e.Activated > 0 && spread >= v.minImportance {
			d := base("activation", "Spreading activation across memory graph", spread)
			d["memories_activated"], d["avg_activation"] = e.Activated, spread
			out = append(out, sseEvent{"activation", d})
		}
	case core.EventAssociated:
		d := base("association", "Association formed", imp)
		d["from"], d["to"], d["weight"], d["kind"], d["sequence"] = e.Association.From, e.Association.To, e.Association.Weight, e.Association.Kind, e.Seq
		out = append(out, sseEvent{"association", d})
	case core.EventDecayed:
		d := base("decay", "Memories decayed into the cold tier", imp)
		d["memory_ids"], d["retrievability"] = e.Decayed, e.Retrievability
		out = append(out, sseEvent{"decay", d})
	case core.EventForgotten:
		d := base("forget", "Memory forgotten", imp)
		d["memory_id"], d["sequence"] = e.ID, e.Seq
		out = append(out, sseEvent{"forget", d})
	}
	return out
}

// memoryView is /stream/memories: formations and retrievals.
type memoryView struct {
	formation, retrieval bool
	minConfidence        float64
	types                map[core.MemoryType]bool // nil: all
}

func retrievalConfidence(e *events.Event) float64 {
	_, a, _ := recallTop(e)
	return (a + e.Confidence) / 2
}

func (v *memoryView) keep(e *events.Event) bool {
	switch e.Kind {
	case core.EventStored:
		return v.formation && e.Confidence >= v.minConfidence && (v.types == nil || v.types[e.MemoryType])
	case core.EventRecalled:
		return v.retrieval && len(e.Recalled) > 0 && retrievalConfidence(e) >= v.minConfidence
	}
	return false
}

func (v *memoryView) render(e *events.Event, session string) []sseEvent {
	switch e.Kind {
	case core.EventStored:
		state := "Recent"
		if e.Confidence > 0.8 {
			state = "Stable"
		}
		return []sseEvent{{"formation", map[string]any{"operation": "formation", "description": "New memory formation with encoding confidence",
			"memory_type": string(e.MemoryType), "confidence": e.Confidence, "timestamp": rfc3339(e.Time), "session_id": session,
			"memory_id": e.ID, "memory_space_id": e.Space, "consolidation_state": state, "sequence": e.Seq}}}
	case core.EventRecalled:
		id, a, _ := recallTop(e)
		return []sseEvent{{"retrieval", map[string]any{"operation": "retrieval", "description": "Memory retrieval with activation spreading",
			"confidence": retrievalConfidence(e), "activation": a, "timestamp": rfc3339(e.Time), "session_id": session,
			"memory_id": id, "memory_ids": recalledIDs(e), "results": e.Results, "memory_space_id": e.Space, "consolidation_state": "Retrieved"}}}
	}
	return nil
}

// consolidationView is /stream/consolidation. No engine operation
// publishes consolidation events yet, so the stream carries heartbeats
// only; it keeps nothing else.
type consolidationView struct{}

func (consolidationView) keep(*events.Event) bool                 { return false }
func (consolidationView) render(*events.Event, string) []sseEvent { return nil }

// monitorView is /monitoring/events: Engram's "monitor" events for
// formation (a memory stored), activation (a recall), spreading (a recall
// whose spreading reached memories) and decay (memories going cold).
type monitorView struct {
	types         map[string]bool
	level         string
	focus         string
	minActivation float64
}

// involves reports whether e touches memory id.
func involves(e *events.Event, id string) bool {
	switch e.Kind {
	case core.EventStored, core.EventForgotten:
		return e.ID == id
	case core.EventAssociated:
		return e.Association.From == id || e.Association.To == id
	case core.EventRecalled:
		return slices.ContainsFunc(e.Recalled, func(r core.RecalledRef) bool { return r.ID == id })
	case core.EventDecayed:
		return slices.Contains(e.Decayed, id)
	}
	return false
}

func (v *monitorView) keep(e *events.Event) bool {
	if v.focus != "" && !involves(e, v.focus) {
		return false
	}
	switch e.Kind {
	case core.EventStored:
		return v.types["formation"]
	case core.EventRecalled:
		_, _, spread := recallTop(e)
		return (v.types["activation"] && e.Confidence >= v.minActivation) ||
			(v.types["spreading"] && e.Activated > 0 && spread >= v.minActivation)
	case core.EventDecayed:
		return v.types["decay"]
	}
	return false
}

func (v *monitorView) render(e *events.Event, session string) []sseEvent {
	event := func(kind, desc string, level float64) sseEvent {
		d := map[string]any{"event_type": kind, "description": desc, "level": v.level, "activation_level": level,
			"timestamp": rfc3339(e.Time), "session_id": session, "sequence": e.EventID, "memory_space_id": e.Space,
			"debug_info": map[string]any{"cognitive_load": cognitiveLoad(level)["cognitive_load"], "hierarchy_level": v.level}}
		if v.focus != "" {
			d["focus_id"], d["focused"] = v.focus, true
		}
		return sseEvent{"monitor", d}
	}
	var out []sseEvent
	switch e.Kind {
	case core.EventStored:
		ev := event("formation", "Memory formed", e.Confidence)
		ev.data["memory_id"] = e.ID
		out = append(out, ev)
	case core.EventRecalled:
		_, _, spread := recallTop(e)
		if v.types["activation"] && e.Confidence >= v.minActivation {
			ev := event("activation", "Memories activated by a recall cue", e.Confidence)
			ev.data["memory_ids"], ev.data["results"] = recalledIDs(e), e.Results
			out = append(out, ev)
		}
		if v.types["spreading"] && e.Activated > 0 && spread >= v.minActivation {
			ev := event("spreading", "Activation spread along associations", spread)
			ev.data["memories_activated"] = e.Activated
			out = append(out, ev)
		}
	case core.EventDecayed:
		ev := event("decay", "Memories decayed into the cold tier", decayedRetrievability(e))
		ev.data["memory_ids"] = e.Decayed
		out = append(out, ev)
	}
	return out
}
