package tui

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/engram-ops/engram-ops/ops/api"
)

// Member is one server of a sharded deployment: the shard it serves (from
// the placement file, or given by the operator), the role the placement
// gives it (shown while it is down) and where to read it.
type Member struct {
	Shard  string
	Role   string // primary or follower; "" when not known
	Source Source
}

// ShardSnapshot is the shard board at one moment: one line per server. It
// is also the JSON of `engram-ops tui --once --output json` with several
// servers: fields are only ever added; a figure the board cannot know is
// null and Unknown says why.
type ShardSnapshot struct {
	Time    time.Time     `json:"time"`
	Servers []ShardServer `json:"servers"`
	// Unknown maps a field (e.g. "servers.generation") to why it is null.
	Unknown map[string]string `json:"unknown"`
}

// ShardServer is one server's line.
type ShardServer struct {
	Shard  string `json:"shard"`
	Target string `json:"target"`
	// Role is what the server reports: follower (its health has a replica
	// block), primary, or fenced primary (engram_backup_fenced: another
	// primary was promoted over its archive); while it is down, the
	// placement's role.
	Role string `json:"role"`
	Up   bool   `json:"up"`
	// Status is the health verdict as on the single-server board: ready,
	// degraded, unhealthy, unreachable or error.
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
	// AppliedSequence is a follower's engram_replica_applied_sequence, a
	// primary's engram_changelog_sequence.
	AppliedSequence *float64 `json:"applied_sequence"`
	// LagSeconds is a follower's engram_replica_lag_seconds; null on a
	// primary.
	LagSeconds *float64 `json:"lag_seconds"`
	// Generation is the archive generation a primary ships as
	// (engram_backup_generation) or a follower last read in the archive's
	// head (engram_replica_generation); null without an archive.
	Generation *float64 `json:"generation"`
}

// Why figures are null on the shard board.
const (
	noGeneration = "down, or no archive (no backup target, not a follower)"
	primaryLag   = "a primary has no replication lag"
)

// ShardScraper polls every member, in parallel, with one Scraper each
// (the single-server board's health and /metrics reading).
type ShardScraper struct {
	members  []Member
	scrapers []*Scraper
	failures int
}

// NewShardScraper reads members, in the order given.
func NewShardScraper(members []Member) *ShardScraper {
	s := &ShardScraper{members: members}
	for _, m := range members {
		s.scrapers = append(s.scrapers, NewScraper(m.Source, nil, nil))
	}
	return s
}

// Down is the number of servers the last poll could not read.
func (s *ShardScraper) Down() int { return s.failures }

// Poll reads every member and returns the board.
func (s *ShardScraper) Poll(ctx context.Context) ShardSnapshot {
	snap := ShardSnapshot{Time: time.Now(), Servers: make([]ShardServer, len(s.members)), Unknown: map[string]string{}}
	var wg sync.WaitGroup
	for i, m := range s.members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h, herr := m.Source.Health(ctx)
			var exp Exposition
			var merr error
			if herr == nil || h != nil && h.Status != "" {
				exp, merr = m.Source.Metrics(ctx)
			}
			snap.Servers[i] = s.observe(i, h, herr, exp, merr)
		}()
	}
	wg.Wait()
	s.failures = 0
	for _, sv := range snap.Servers {
		if !sv.Up {
			s.failures++
		}
	}
	snap.Unknown["servers.generation"] = noGeneration
	snap.Unknown["servers.lag_seconds"] = primaryLag + "; null on a server that is down"
	return snap
}

// observe turns one member's answers into its line.
func (s *ShardScraper) observe(i int, h *api.SystemHealth, herr error, exp Exposition, merr error) ShardServer {
	m := s.members[i]
	out := ShardServer{Shard: m.Shard, Target: m.Source.Target(), Role: m.Role}
	out.Status = s.scrapers[i].health(time.Now(), h, herr).Status
	if herr != nil && (h == nil || h.Status == "") {
		out.Error = describe(herr)
		return out
	}
	if merr != nil {
		out.Status, out.Error = "error", "metrics: "+describe(merr)
		return out
	}
	fams, err := parseMetrics(exp)
	if err != nil {
		out.Status, out.Error = "error", "metrics: "+describe(err)
		return out
	}
	sc := &scrape{fams: fams}
	out.Up = true
	if applied, ok := sc.sum("engram_replica_applied_sequence", nil); ok || h != nil && h.Replica != nil {
		out.Role = "follower"
		if h != nil && h.Replica != nil && h.Replica.Role != "" {
			out.Role = h.Replica.Role
		}
		if ok {
			out.AppliedSequence = ptr(applied)
		}
		if lag, ok := sc.sum("engram_replica_lag_seconds", nil); ok {
			out.LagSeconds = ptr(lag)
		}
		if gen, ok := sc.sum("engram_replica_generation", nil); ok && gen > 0 {
			out.Generation = ptr(gen)
		}
		if h != nil && h.Replica != nil && h.Replica.Error != "" {
			out.Error = h.Replica.Error
		}
		return out
	}
	out.Role = "primary"
	if fenced, ok := sc.sum("engram_backup_fenced", nil); ok && fenced > 0 {
		out.Role = "fenced primary"
		out.Error = "fenced: another primary was promoted over its archive; it refuses writes"
	}
	if seq, ok := sc.sum("engram_changelog_sequence", nil); ok {
		out.AppliedSequence = ptr(seq)
	}
	if gen, ok := sc.sum("engram_backup_generation", nil); ok && gen > 0 {
		out.Generation = ptr(gen)
	}
	return out
}

// RenderShards draws the shard board, width columns wide: one line per
// server, the error (or health status) of each at widths of 120 and more,
// and the reasons for unknown figures.
func RenderShards(s ShardSnapshot, width int, st Styles) string {
	up := 0
	for _, sv := range s.Servers {
		if sv.Up {
			up++
		}
	}
	lines := []string{st.Title.Render("Engram shards") + st.Dim.Render(fmt.Sprintf("  %d servers, %d up", len(s.Servers), up)), ""}
	const shardW, roleW, upW, seqW, lagW, genW = 8, 15, 5, 11, 8, 5
	fixed := shardW + roleW + upW + seqW + lagW + genW + 6
	wide := width >= 120
	serverW := max(width-fixed, 12)
	noteW := 0
	if wide {
		serverW = min(serverW, 48)
		noteW = max(width-fixed-serverW-1, 0)
	}
	row := func(shard, role, server, upS, seq, lag, gen, note string) string {
		l := fmt.Sprintf("%-*s %-*s %-*s %-*s %*s %*s %*s", shardW, trunc(shard, shardW), roleW, trunc(role, roleW),
			serverW, trunc(server, serverW), upW, upS, seqW, seq, lagW, lag, genW, gen)
		if wide && note != "" {
			l += " " + trunc(note, noteW)
		}
		return l
	}
	head := row("SHARD", "ROLE", "SERVER", "UP", "APPLIED", "LAG", "GEN", "")
	if wide {
		head += " NOTE"
	}
	lines = append(lines, st.Section.Render(strings.TrimRight(head, " ")))
	opt := func(v *float64, f func(float64) string) string {
		if v == nil {
			return unknownMark
		}
		return f(*v)
	}
	seq := func(v float64) string { return fmt.Sprintf("%.0f", v) }
	for _, sv := range s.Servers {
		upS, style := "up", st.Good
		if !sv.Up {
			upS, style = "down", st.Bad
		}
		role := orReason(sv.Role, unknownMark)
		note := sv.Error
		if note == "" && sv.Status != "ready" {
			note = sv.Status
		}
		l := row(orReason(sv.Shard, unknownMark), role, sv.Target, upS, opt(sv.AppliedSequence, seq), opt(sv.LagSeconds, dur), opt(sv.Generation, seq), note)
		if !sv.Up || sv.Error != "" {
			l = style.Render(l)
		}
		lines = append(lines, l)
	}
	if r := s.Unknown["servers.generation"]; r != "" {
		lines = append(lines, "", st.Dim.Render("GEN "+unknownMark+": "+r))
	}
	if !wide {
		for _, sv := range s.Servers {
			if sv.Error != "" {
				lines = append(lines, st.Dim.Render(trunc(sv.Target, 40)+": "+sv.Error))
			}
		}
	}
	return fit(lines, len(lines), width)
}

// ShardModel is the live shard board: it polls every refresh and redraws;
// r polls now, q or ctrl+c quits.
type ShardModel struct {
	sc      *ShardScraper
	refresh time.Duration
	timeout time.Duration
	st      Styles
	snap    *ShardSnapshot
	width   int
	gen     int
}

// NewShardModel returns the live board over sc.
func NewShardModel(sc *ShardScraper, refresh time.Duration, st Styles) *ShardModel {
	return &ShardModel{sc: sc, refresh: refresh, timeout: max(5*time.Second, refresh), st: st, width: 80}
}

type shardSnapMsg struct {
	snap ShardSnapshot
	gen  int
}

type shardTickMsg struct{ gen int }

func (m *ShardModel) poll() tea.Cmd {
	gen := m.gen
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), m.timeout)
		defer cancel()
		return shardSnapMsg{m.sc.Poll(ctx), gen}
	}
}

// Init polls at once.
func (m *ShardModel) Init() tea.Cmd { return m.poll() }

// Update handles keys, sizes, polls and ticks.
func (m *ShardModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.KeyMsg:
		switch msg.String() {
		case "q", "ctrl+c":
			return m, tea.Quit
		case "r":
			m.gen++
			return m, m.poll()
		}
	case tea.WindowSizeMsg:
		m.width = msg.Width
	case shardSnapMsg:
		if msg.gen != m.gen {
			return m, nil
		}
		m.snap = &msg.snap
		gen := m.gen
		return m, tea.Tick(m.refresh, func(time.Time) tea.Msg { return shardTickMsg{gen} })
	case shardTickMsg:
		if msg.gen == m.gen {
			return m, m.poll()
		}
	}
	return m, nil
}

// View draws the last snapshot.
func (m *ShardModel) View() string {
	foot := m.st.Help.Render("r refresh  q quit")
	if m.snap == nil {
		return m.st.Dim.Render("waiting for the first scrape…") + "\n" + foot
	}
	return RenderShards(*m.snap, m.width, m.st) + "\n" + lipgloss.NewStyle().MaxWidth(m.width).Render(foot)
}
