package server

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/engram-ops/engram-ops/ops/api"
	"github.com/engram-ops/engram-ops/ops/config"
)

// sse is one server-sent event as a client reads it.
type sse struct {
	id, name string
	data     map[string]any
	comment  string
}

// sseStream reads a stream over a real connection.
type sseStream struct {
	t      *testing.T
	resp   *http.Response
	events chan sse
	cancel context.CancelFunc
}

// openStream GETs a stream at url and reads its events in the
// background; the stream is closed when the test ends.
func openStream(t *testing.T, url string, headers map[string]string) *sseStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	st := &sseStream{t: t, resp: resp, events: make(chan sse, 4096), cancel: cancel}
	t.Cleanup(func() { cancel(); resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		return st
	}
	go func() {
		defer close(st.events)
		sc := bufio.NewScanner(resp.Body)
		var cur sse
		var data string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if data != "" {
					_ = json.Unmarshal([]byte(data), &cur.data)
				}
				st.events <- cur
				cur, data = sse{}, ""
			case strings.HasPrefix(line, ": "):
				cur.comment = line[2:]
			case strings.HasPrefix(line, "id: "):
				cur.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				cur.name = line[7:]
			case strings.HasPrefix(line, "data: "):
				data = line[6:]
			}
		}
	}()
	// The first comment says the subscription is in place.
	if first := st.next(); first.comment == "" {
		t.Fatalf("stream began with %+v, want its opening comment", first)
	}
	return st
}

// next returns the next event or comment; it fails the test after 5s.
func (s *sseStream) next() sse { return s.until(time.Now().Add(5*time.Second), true) }

// nextEvent skips comments; it fails the test after 5s without an event.
func (s *sseStream) nextEvent() sse { return s.until(time.Now().Add(5*time.Second), false) }

func (s *sseStream) until(deadline time.Time, comments bool) sse {
	s.t.Helper()
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		select {
		case e, ok := <-s.events:
			if !ok {
				s.t.Fatal("the stream ended")
			}
			if comments || e.comment == "" {
				return e
			}
		case <-timer.C:
			s.t.Fatal("no event within 5s")
			return sse{}
		}
	}
}

func streamServer(t *testing.T, mod func(*config.Config)) (*Server, string) {
	t.Helper()
	cfg := testConfig()
	cfg.Streams.Heartbeat = config.Duration{Duration: 50 * time.Millisecond}
	if mod != nil {
		mod(&cfg)
	}
	srv := newTestServer(t, cfg, openEngine(t, cfg))
	return srv, "http://" + runTestServer(t, srv)
}

func streamPost(t *testing.T, url, space, body string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(api.HeaderSpace, space)
	return streamSend(t, req)
}

func streamGet(t *testing.T, url, space string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set(api.HeaderSpace, space)
	return streamSend(t, req)
}

func streamSend(t *testing.T, req *http.Request) map[string]any {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		t.Fatalf("%s %s: %d %s", req.Method, req.URL, resp.StatusCode, b)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestStreamCarriesStorageAndRecallOfItsSpaceOnly(t *testing.T) {
	_, base := streamServer(t, nil)
	alpha := openStream(t, base+api.PathStreamActivities, map[string]string{api.HeaderSpace: "alpha"})
	beta := openStream(t, base+api.PathStreamActivities+"?space=beta", nil)
	mems := openStream(t, base+api.PathStreamMemories+"?space=alpha", nil)

	id := streamPost(t, base+api.PathRemember, "alpha", `{"content":"the mitochondria is the powerhouse of the cell","confidence":0.9}`)["memory_id"].(string)
	e := alpha.nextEvent()
	if e.name != "storage" || e.id != "1" || e.data["memory_id"] != id || e.data["memory_space_id"] != "alpha" || e.data["confidence"] != 0.9 {
		t.Fatalf("after remember: %+v, want storage event 1 of %s in alpha", e, id)
	}
	if f := mems.nextEvent(); f.name != "formation" || f.data["memory_id"] != id {
		t.Fatalf("memories stream: %+v, want formation of %s", f, id)
	}

	streamGet(t, base+api.PathRecall+"?query=mitochondria", "alpha")
	e = alpha.nextEvent()
	if e.name != "recall" || e.id != "2" || e.data["memory_id"] != id || e.data["results"] != 1.0 {
		t.Fatalf("after recall: %+v, want recall event 2 returning %s", e, id)
	}
	if f := mems.nextEvent(); f.name != "retrieval" || f.data["memory_id"] != id {
		t.Fatalf("memories stream: %+v, want retrieval of %s", f, id)
	}

	// beta's stream sees beta's memory first: none of alpha's events.
	bid := streamPost(t, base+api.PathRemember, "beta", `{"content":"beta's own memory"}`)["memory_id"].(string)
	if e := beta.nextEvent(); e.name != "storage" || e.data["memory_id"] != bid || e.id != "1" {
		t.Fatalf("beta stream: %+v, want only beta's storage event of %s (id 1)", e, bid)
	}
}

func TestStreamResumesAfterLastEventID(t *testing.T) {
	_, base := streamServer(t, func(c *config.Config) { c.Streams.Buffer = 4 })
	var ids []string
	for i := range 6 {
		ids = append(ids, streamPost(t, base+api.PathRemember, "gamma", fmt.Sprintf(`{"content":"memory number %d"}`, i))["memory_id"].(string))
	}
	url := base + api.PathStreamActivities + "?space=gamma"

	// Events 5 and 6 follow id 4, exactly.
	st := openStream(t, url, map[string]string{"Last-Event-ID": "4"})
	for n := 5; n <= 6; n++ {
		if e := st.nextEvent(); e.id != strconv.Itoa(n) || e.data["memory_id"] != ids[n-1] {
			t.Fatalf("resume after 4: %+v, want event %d (%s)", e, n, ids[n-1])
		}
	}
	id := streamPost(t, base+api.PathRemember, "gamma", `{"content":"after the resume"}`)["memory_id"].(string)
	if e := st.nextEvent(); e.id != "7" || e.data["memory_id"] != id {
		t.Fatalf("live after replay: %+v, want event 7 (%s)", e, id)
	}

	// The buffer keeps 4 events (4..7): resuming after 1 lost 2 and 3.
	st = openStream(t, base+api.PathStreamActivities+"?space=gamma&last_event_id=1", nil)
	w := st.nextEvent()
	if w.name != "warning" || w.data["missed"] != 2.0 || w.data["resumed_from_id"] != 4.0 || w.id != "" {
		t.Fatalf("resume after an id out of the buffer: %+v, want a warning of 2 missed events, resuming from 4", w)
	}
	if e := st.nextEvent(); e.id != "4" {
		t.Fatalf("after the warning: %+v, want event 4", e)
	}

	// An id the server never gave (from before a restart) says so.
	st = openStream(t, url, map[string]string{"Last-Event-ID": "99"})
	if w := st.nextEvent(); w.name != "warning" || w.data["latest_event_id"] != 7.0 {
		t.Fatalf("resume after an unknown id: %+v, want a warning naming the latest id 7", w)
	}
}

func TestStreamSlowReaderIsToldWhatItLost(t *testing.T) {
	srv, base := streamServer(t, nil)
	st := openStream(t, base+api.PathStreamMemories+"?space=delta&buffer_size=1&include_retrieval=false", nil)
	const n = 300
	var b strings.Builder
	b.WriteString(`{"memories":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"content":"batch memory %d","confidence":0.9}`, i)
	}
	b.WriteString(`]}`)
	streamPost(t, base+api.PathBatch, "delta", b.String())
	var got, dropped int
	for got+dropped < n {
		e := st.nextEvent()
		switch e.name {
		case "formation":
			got++
		case "warning":
			d, _ := e.data["dropped"].(float64)
			if d <= 0 || !strings.Contains(e.data["warning"].(string), "skipped") {
				t.Fatalf("warning %+v does not say how many events were dropped", e)
			}
			dropped += int(d)
		default:
			t.Fatalf("unexpected %+v", e)
		}
	}
	if dropped == 0 || got+dropped != n {
		t.Fatalf("received %d events and %d dropped, want some dropped and %d in all", got, dropped, n)
	}
	if v := metricValue(t, srv, `engram_stream_events_dropped_total{stream="memories"}`); v != float64(dropped) {
		t.Errorf("engram_stream_events_dropped_total = %v, want %d", v, dropped)
	}
	if v := metricValue(t, srv, `engram_stream_subscribers{stream="memories"}`); v != 1 {
		t.Errorf("engram_stream_subscribers = %v, want 1", v)
	}
}

func TestStreamOutlivesWriteTimeoutAndEndsOnShutdown(t *testing.T) {
	cfg := testConfig()
	cfg.Server.WriteTimeout = config.Duration{Duration: 200 * time.Millisecond}
	cfg.Server.ReadTimeout = config.Duration{Duration: 200 * time.Millisecond}
	cfg.Streams.Heartbeat = config.Duration{Duration: 50 * time.Millisecond}
	srv := newTestServer(t, cfg, openEngine(t, cfg))
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	st := openStream(t, "http://"+srv.Addr().String()+api.PathMonitoringEvents, nil)
	deadline := time.Now().Add(time.Second) // five write timeouts
	for time.Now().Before(deadline) {
		if e := st.next(); e.comment != "heartbeat" {
			t.Fatalf("idle stream sent %+v, want heartbeats", e)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v (a stream held the shutdown up)", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("shutdown did not end the stream")
	}
	for e := range st.events {
		if e.comment == "server shutting down" {
			return
		}
	}
	t.Fatal("the stream ended without saying the server is shutting down")
}

func TestStreamKeyScopedToAnotherSpaceIsRefused(t *testing.T) {
	k := newKeyedServer(t, nil)
	base := "http://" + runTestServer(t, k.s)
	st := openStream(t, base+api.PathStreamActivities+"?space=default", bearer(k.wrongSpace))
	if st.resp.StatusCode != http.StatusForbidden {
		t.Fatalf("wrong-space key: %d, want 403", st.resp.StatusCode)
	}
	st = openStream(t, base+api.PathStreamActivities+"?space=tenant-x", bearer(k.wrongSpace))
	if st.resp.StatusCode != http.StatusOK {
		t.Fatalf("key in its own space: %d, want 200", st.resp.StatusCode)
	}
}

func TestStreamParametersAreChecked(t *testing.T) {
	srv, _ := streamServer(t, nil)
	for _, q := range []string{
		api.PathStreamActivities + "?event_types=storage,telepathy",
		api.PathStreamActivities + "?buffer_size=500",
		api.PathStreamActivities + "?last_event_id=abc",
		api.PathStreamMemories + "?memory_types=dreams",
		api.PathMonitoringEvents + "?level=cosmic",
		api.PathStreamConsolidation + "?bogus=1",
	} {
		w := do(t, srv.Handler(), request{method: "GET", path: q})
		if w.Code != http.StatusBadRequest {
			t.Errorf("GET %s: %d, want 400", q, w.Code)
		}
	}
}

func TestStreamSubscriberCap(t *testing.T) {
	srv, base := streamServer(t, func(c *config.Config) { c.Streams.MaxSubscribers = 1 })
	openStream(t, base+api.PathStreamActivities, nil)
	st := openStream(t, base+api.PathStreamMemories, nil)
	if st.resp.StatusCode != http.StatusServiceUnavailable || st.resp.Header.Get("Retry-After") == "" {
		t.Fatalf("second stream over streams.max_subscribers = 1: %d, want 503 with Retry-After", st.resp.StatusCode)
	}
	if v := metricValue(t, srv, "engram_stream_refused_total"); v != 1 {
		t.Errorf("engram_stream_refused_total = %v, want 1", v)
	}
}

func FuzzStreamParameters(f *testing.F) {
	for _, s := range []string{"0", "42", "18446744073709551615", "18446744073709551616", " 7 ", "-1", "1e3", "", "storage, recall", "STORAGE,,decay", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if id, err := parseEventID(v); err == nil {
			if strconv.FormatUint(id, 10) != strings.TrimLeft(strings.TrimSpace(v), "0") && id != 0 {
				t.Fatalf("parseEventID(%q) = %d", v, id)
			}
		}
		types, err := parseEventTypes(v, activityTypes)
		if err != nil {
			return
		}
		if len(types) == 0 {
			t.Fatalf("parseEventTypes(%q) accepted no types", v)
		}
		for k := range types {
			if !strings.Contains(","+strings.Join(activityTypes, ",")+",", ","+k+",") {
				t.Fatalf("parseEventTypes(%q) accepted unknown %q", v, k)
			}
		}
	})
}
