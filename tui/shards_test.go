package tui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/exp/golden"

	"github.com/engram-ops/engram-ops/ops/api"
)

// namedSource is a fakeSource at its own address.
type namedSource struct {
	fakeSource
	target string
}

func (n *namedSource) Target() string { return n.target }

// shardFixture is the /metrics of a primary at seq, or of a follower that
// applied seq lagging lag seconds behind its archive, at generation gen;
// fenced marks a primary whose archive was taken over.
func shardFixture(follower bool, seq int, lag float64, gen int, fenced bool) []byte {
	b := string(fixture{}.text())
	b += fmt.Sprintf("# TYPE engram_changelog_sequence gauge\nengram_changelog_sequence %d\n", seq)
	if follower {
		b += fmt.Sprintf("# TYPE engram_replica_applied_sequence gauge\nengram_replica_applied_sequence{target=\"s3://b/a\"} %d\n", seq)
		b += fmt.Sprintf("# TYPE engram_replica_lag_seconds gauge\nengram_replica_lag_seconds{target=\"s3://b/a\"} %g\n", lag)
		b += fmt.Sprintf("# TYPE engram_replica_generation gauge\nengram_replica_generation{target=\"s3://b/a\"} %d\n", gen)
		return []byte(b)
	}
	b += fmt.Sprintf("# TYPE engram_backup_generation gauge\nengram_backup_generation{target=\"s3://b/a\"} %d\n", gen)
	f := 0
	if fenced {
		f = 1
	}
	b += fmt.Sprintf("# TYPE engram_backup_fenced gauge\nengram_backup_fenced{target=\"s3://b/a\"} %d\n", f)
	return []byte(b)
}

// shardMembers are shard a's primary (generation 2) and two followers (one
// stuck on a damaged segment), shard b's primary, which is down, and shard
// a's old primary, fenced at generation 1.
func shardMembers() []Member {
	follower := func(h *api.SystemHealth, errMsg string) *api.SystemHealth {
		c := *h
		c.Replica = &api.ReplicaState{Role: "follower", Archive: "s3://b/a", Error: errMsg}
		return &c
	}
	degraded := healthy()
	degraded.Status = "degraded"
	return []Member{
		{Shard: "a", Role: "primary", Source: &namedSource{fakeSource{health: healthy(), body: shardFixture(false, 48213, 0, 2, false)}, "http://10.0.0.1:7432"}},
		{Shard: "a", Role: "follower", Source: &namedSource{fakeSource{health: follower(healthy(), ""), body: shardFixture(true, 48210, 0.8, 2, false)}, "http://10.0.0.2:7432"}},
		{Shard: "a", Role: "follower", Source: &namedSource{fakeSource{health: follower(degraded, "segment 000000000000b3c1: checksum mismatch"), body: shardFixture(true, 45905, 312, 2, false)}, "http://10.0.0.3:7432"}},
		{Shard: "b", Role: "primary", Source: &namedSource{fakeSource{herr: errors.New("dial tcp 10.0.1.1:7432: connect: connection refused")}, "http://10.0.1.1:7432"}},
		{Shard: "a", Role: "primary", Source: &namedSource{fakeSource{health: healthy(), body: shardFixture(false, 48190, 0, 1, true)}, "http://10.0.0.9:7432"}},
	}
}

// The shard board shows one line per server with its shard, the role the
// server reports, its applied sequence and lag from /metrics, "—" for the
// generation with the reason, and which servers are down, at 80 and 160
// columns; a follower's stuck replica says why.
func TestShardBoard(t *testing.T) {
	sc := NewShardScraper(shardMembers())
	snap := sc.Poll(context.Background())
	snap.Time = t0
	if sc.Down() != 1 {
		t.Errorf("Down() = %d, want 1 (shard b's primary)", sc.Down())
	}
	want := []struct {
		role    string
		up      bool
		applied float64
		lag     *float64
		gen     *float64
	}{
		{"primary", true, 48213, nil, ptr(2.0)},
		{"follower", true, 48210, ptr(0.8), ptr(2.0)},
		{"follower", true, 45905, ptr(312), ptr(2.0)},
		{"primary", false, 0, nil, nil},
		{"fenced primary", true, 48190, nil, ptr(1.0)},
	}
	for i, w := range want {
		sv := snap.Servers[i]
		if sv.Role != w.role || sv.Up != w.up || (w.up && (sv.AppliedSequence == nil || *sv.AppliedSequence != w.applied)) ||
			(w.lag == nil) != (sv.LagSeconds == nil) || w.lag != nil && *sv.LagSeconds != *w.lag ||
			(w.gen == nil) != (sv.Generation == nil) || w.gen != nil && *sv.Generation != *w.gen {
			t.Errorf("server %d: %+v, want role %s up %v applied %v lag %v generation %v", i, sv, w.role, w.up, w.applied, w.lag, w.gen)
		}
	}
	if !strings.Contains(snap.Servers[2].Error, "checksum mismatch") || !strings.Contains(snap.Servers[3].Error, "connection refused") {
		t.Errorf("errors: %q, %q", snap.Servers[2].Error, snap.Servers[3].Error)
	}
	for _, w := range []int{80, 160} {
		t.Run(fmt.Sprint(w), func(t *testing.T) {
			v := RenderShards(snap, w, NewStyles(nil, false))
			checkFits(t, v, w, 20)
			for _, s := range []string{"a        primary", "48213", "follower", "800.0ms", "down", "fenced primary", "GEN —: " + noGeneration} {
				if !strings.Contains(v, s) {
					t.Errorf("board lacks %q:\n%s", s, v)
				}
			}
			golden.RequireEqual(t, []byte(v))
		})
	}
}

// The JSON of the shard board has every server with its figures, null
// for what is unknown, and says why.
func TestShardBoardJSON(t *testing.T) {
	snap := NewShardScraper(shardMembers()).Poll(context.Background())
	b, err := json.Marshal(snap)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`{"shard":"a","target":"http://10.0.0.1:7432","role":"primary","up":true,"status":"ready","applied_sequence":48213,"lag_seconds":null,"generation":2}`,
		`{"shard":"a","target":"http://10.0.0.2:7432","role":"follower","up":true,"status":"ready","applied_sequence":48210,"lag_seconds":0.8,"generation":2}`,
		`"shard":"b","target":"http://10.0.1.1:7432","role":"primary","up":false,"status":"unreachable"`,
		`"servers.generation":"` + noGeneration + `"`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON lacks %s:\n%s", want, b)
		}
	}
}

// The live shard board draws the last poll at the terminal's width, polls
// again on r (dropping the answer of the poll it replaces) and quits on q.
func TestShardModel(t *testing.T) {
	m := NewShardModel(NewShardScraper(shardMembers()), time.Hour, NewStyles(nil, false))
	if v := m.View(); !strings.Contains(v, "waiting for the first scrape") {
		t.Errorf("before the first poll: %q", v)
	}
	first := m.Init()().(shardSnapMsg)
	m.Update(tea.WindowSizeMsg{Width: 160, Height: 20})
	if _, cmd := m.Update(first); cmd == nil {
		t.Error("no next poll scheduled after a poll")
	}
	v := m.View()
	checkFits(t, v, 160, 20)
	if !strings.Contains(v, "connection refused") || !strings.Contains(v, "r refresh  q quit") {
		t.Errorf("160 columns: no error column or keys:\n%s", v)
	}
	_, cmd := m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("r")})
	if cmd == nil {
		t.Fatal("r does not poll")
	}
	if _, next := m.Update(first); next != nil {
		t.Error("the answer of a replaced poll scheduled another")
	}
	if _, cmd := m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("q")}); cmd == nil || cmd() != tea.Quit() {
		t.Error("q does not quit")
	}
}
