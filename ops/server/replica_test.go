package server

import (
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/ops/api"
)

// fakeReplica is a follower's figures, set by the test.
type fakeReplica struct{ st api.ReplicaState }

func (f *fakeReplica) State() api.ReplicaState { return f.st }

// On a follower, writes answer 421 READ_ONLY_REPLICA naming the primary
// while reads are served, and readiness and health follow the replica's
// lag, its last poll and whether applying stopped.
func TestFollowerRefusesWritesAndJudgesReadiness(t *testing.T) {
	cfg := testConfig()
	cfg.Replica.Follow = "file:///archive"
	cfg.Replica.PrimaryURL = "http://primary:7432"
	cfg.Replica.MaxLag.Duration = 5 * time.Second
	eng := openEngine(t, cfg)
	if _, err := eng.Remember(t.Context(), "default", core.RememberInput{ID: "m1", Content: "applied from the primary"}); err != nil {
		t.Fatal(err)
	}
	eng.SetWriteBarrier(core.ReadOnlyReplica(cfg.Replica.PrimaryURL))
	now := time.Now()
	rep := &fakeReplica{st: api.ReplicaState{Archive: "file:///archive", AppliedSequence: 7, HeadSequence: 7, LastPoll: &now}}
	s, err := New(cfg, eng, slog.New(slog.DiscardHandler), nil, WithReplica(rep))
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler()

	w := do(t, h, request{method: "POST", path: api.PathRemember, body: `{"content":"a write sent to a follower"}`})
	if body := decodeEnvelope(t, w); w.Code != http.StatusMisdirectedRequest || body.Code != "READ_ONLY_REPLICA" || body.Details["primary"] != "http://primary:7432" {
		t.Fatalf("write on a follower: %d %+v", w.Code, body)
	}
	if w := do(t, h, request{method: "GET", path: "/api/v1/memories/m1"}); w.Code != http.StatusOK {
		t.Fatalf("read on a follower: %d %s", w.Code, w.Body.String())
	}

	ready := func(want int, code string) {
		t.Helper()
		w := do(t, h, request{method: "GET", path: api.PathHealthReady})
		if w.Code != want {
			t.Fatalf("ready with %+v: %d %s, want %d", rep.st, w.Code, w.Body.String(), want)
		}
		p := decodeJSONBody[api.Probe](t, w)
		if code != "" && (p.Error == nil || p.Error.Code != code) {
			t.Fatalf("ready: %s, want %s", w.Body.String(), code)
		}
		hw := do(t, h, request{method: "GET", path: api.PathHealth})
		hb := decodeJSONBody[api.Health](t, hw)
		if hw.Code != want || hb.Replica == nil || hb.Replica.Role != "follower" || hb.Replica.Primary != "http://primary:7432" || hb.Replica.Ready != (want == http.StatusOK) {
			t.Fatalf("/health with %+v: %d %s", rep.st, hw.Code, hw.Body.String())
		}
		sw := do(t, h, request{method: "GET", path: api.PathSystemHealth})
		sb := decodeJSONBody[api.SystemHealth](t, sw)
		if sb.Replica == nil || sb.Replica.AppliedSequence != rep.st.AppliedSequence || (want == http.StatusOK) != (sw.Code == http.StatusOK) {
			t.Fatalf("system health with %+v: %d %s", rep.st, sw.Code, sw.Body.String())
		}
	}
	ready(http.StatusOK, "")
	rep.st.HeadSequence, rep.st.LagSeconds = 9, 6
	ready(http.StatusServiceUnavailable, "REPLICA_NOT_READY")
	rep.st.LagSeconds, rep.st.Error, rep.st.ErrorSequence = 1, "segment missing", 8
	ready(http.StatusServiceUnavailable, "REPLICA_NOT_READY")
	old := now.Add(-time.Minute)
	rep.st.ErrorSequence, rep.st.LastPoll = 0, &old
	ready(http.StatusServiceUnavailable, "REPLICA_NOT_READY")
	rep.st.Error, rep.st.LastPoll = "", &now
	ready(http.StatusOK, "")
}
