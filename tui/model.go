package tui

import (
	"context"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	"github.com/charmbracelet/bubbles/viewport"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/glamour"
)

// Poller produces snapshots; *Scraper is one.
type Poller interface {
	Poll(ctx context.Context) Snapshot
	Failures() int
}

// Config configures the board.
type Config struct {
	Refresh time.Duration // poll interval while the server answers
	// MaxBackoff caps the poll interval while it does not (it doubles per
	// failed poll, starting from Refresh).
	MaxBackoff time.Duration
	// Runbook returns a runbook's title and Markdown by name.
	Runbook func(name string) (title, body string, err error)
	Styles  Styles
	// Timeout bounds one poll.
	Timeout time.Duration
}

// panels that tab moves between.
const (
	panelOps = iota
	panelSpaces
	panelAlerts
	numPanels
)

var panelNames = [numPanels]string{"Operations", "Spaces", "Alerts"}

// historyLen is how many polls the sparklines show.
const historyLen = 120

// Model is the board. Update changes it; View draws it, recomputing the
// screen only when something changed since the last draw.
type Model struct {
	poller Poller
	cfg    Config
	keys   keyMap
	help   help.Model
	st     Styles

	snap     *Snapshot
	rate     map[string][]float64 // per operation: throughput history
	errs     map[string][]float64 // per operation: error ratio history
	width    int
	height   int
	paused   bool
	polling  bool
	gen      int // the current tick chain; older ticks are dropped
	next     time.Duration
	panel    int
	alertSel int
	spaceOff int
	showHelp bool
	status   string // one-line message (unknown runbook, …)

	filter    string
	input     textinput.Model
	inputMode int // 0 none, 1 filter, 2 command

	runbook      *viewport.Model
	runbookTitle string

	dirty bool
	cache string
}

const (
	inputNone = iota
	inputFilter
	inputCommand
)

// New returns a board reading from p.
func New(p Poller, cfg Config) *Model {
	if cfg.Refresh <= 0 {
		cfg.Refresh = 2 * time.Second
	}
	if cfg.MaxBackoff < cfg.Refresh {
		cfg.MaxBackoff = max(30*time.Second, cfg.Refresh)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = max(5*time.Second, cfg.Refresh)
	}
	ti := textinput.New()
	ti.Prompt = ""
	ti.CharLimit = 128
	h := help.New()
	h.ShortSeparator = "  "
	h.Styles.ShortKey = cfg.Styles.Title
	h.Styles.FullKey = cfg.Styles.Title
	h.Styles.ShortDesc = cfg.Styles.Help
	h.Styles.FullDesc = cfg.Styles.Help
	h.Styles.ShortSeparator = cfg.Styles.Help
	h.Styles.FullSeparator = cfg.Styles.Help
	return &Model{
		poller: p, cfg: cfg, keys: newKeyMap(), help: h, st: cfg.Styles,
		rate: map[string][]float64{}, errs: map[string][]float64{},
		width: 80, height: 24, input: ti, dirty: true, next: cfg.Refresh,
	}
}

// snapshotMsg carries one poll's result.
type snapshotMsg struct{ snap Snapshot }

// tickMsg asks for the next poll of chain gen.
type tickMsg struct{ gen int }

// Init starts the first poll.
func (m *Model) Init() tea.Cmd { return m.poll() }

func (m *Model) poll() tea.Cmd {
	if m.polling {
		return nil
	}
	m.polling = true
	p, timeout := m.poller, m.cfg.Timeout
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		return snapshotMsg{p.Poll(ctx)}
	}
}

// delay is the wait before the next poll: Refresh while the server
// answers, doubling per consecutive failure up to MaxBackoff.
func (m *Model) delay() time.Duration {
	d := m.cfg.Refresh
	for i := 1; i < m.poller.Failures() && d < m.cfg.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, m.cfg.MaxBackoff)
}

func (m *Model) schedule() tea.Cmd {
	m.gen++
	gen := m.gen
	m.next = m.delay()
	return tea.Tick(m.next, func(time.Time) tea.Msg { return tickMsg{gen} })
}

// Update handles one message.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case snapshotMsg:
		m.polling = false
		m.apply(msg.snap)
		m.dirty = true
		if m.paused {
			return m, nil
		}
		return m, m.schedule()
	case tickMsg:
		if msg.gen != m.gen || m.paused {
			return m, nil
		}
		return m, m.poll()
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		if m.runbook != nil {
			m.runbook.Width, m.runbook.Height = msg.Width, max(msg.Height-2, 1)
		}
		m.dirty = true
		return m, nil
	case tea.KeyMsg:
		return m.key(msg)
	}
	return m, nil
}

func (m *Model) key(msg tea.KeyMsg) (tea.Model, tea.Cmd) {
	m.dirty = true
	if msg.Type == tea.KeyCtrlC {
		return m, tea.Quit
	}
	if m.inputMode != inputNone {
		switch msg.Type {
		case tea.KeyEsc:
			if m.inputMode == inputFilter {
				m.filter = ""
			}
			m.inputMode = inputNone
			m.input.Blur()
			return m, nil
		case tea.KeyEnter:
			v := strings.TrimSpace(m.input.Value())
			mode := m.inputMode
			m.inputMode = inputNone
			m.input.Blur()
			if mode == inputFilter {
				m.filter = v
				m.spaceOff = 0
				return m, nil
			}
			return m, m.command(v)
		}
		var cmd tea.Cmd
		m.input, cmd = m.input.Update(msg)
		if m.inputMode == inputFilter {
			m.filter = strings.TrimSpace(m.input.Value())
			m.spaceOff = 0
		}
		return m, cmd
	}
	if m.runbook != nil {
		switch {
		case key.Matches(msg, m.keys.Back):
			m.runbook = nil
			return m, nil
		case key.Matches(msg, m.keys.Quit):
			return m, tea.Quit
		}
		vp, cmd := m.runbook.Update(msg)
		m.runbook = &vp
		return m, cmd
	}
	switch {
	case key.Matches(msg, m.keys.Quit):
		return m, tea.Quit
	case key.Matches(msg, m.keys.Help):
		m.showHelp = !m.showHelp
	case key.Matches(msg, m.keys.Back):
		m.showHelp = false
		m.status = ""
	case key.Matches(msg, m.keys.Filter):
		m.inputMode = inputFilter
		m.input.SetValue(m.filter)
		m.input.CursorEnd()
		return m, m.input.Focus()
	case key.Matches(msg, m.keys.Command):
		m.inputMode = inputCommand
		m.input.SetValue("")
		return m, m.input.Focus()
	case key.Matches(msg, m.keys.Panel):
		if msg.String() == "shift+tab" {
			m.panel = (m.panel + numPanels - 1) % numPanels
		} else {
			m.panel = (m.panel + 1) % numPanels
		}
	case key.Matches(msg, m.keys.Refresh):
		m.gen++ // drop the pending tick; the poll's answer schedules anew
		return m, m.poll()
	case key.Matches(msg, m.keys.Pause):
		m.paused = !m.paused
		if !m.paused {
			m.gen++
			return m, m.poll()
		}
	case key.Matches(msg, m.keys.Up):
		switch m.panel {
		case panelAlerts:
			m.alertSel = max(m.alertSel-1, 0)
		case panelSpaces:
			m.spaceOff = max(m.spaceOff-1, 0)
		}
	case key.Matches(msg, m.keys.Down):
		switch m.panel {
		case panelAlerts:
			if m.snap != nil {
				m.alertSel = min(m.alertSel+1, max(len(m.snap.Alerts)-1, 0))
			}
		case panelSpaces:
			m.spaceOff = min(m.spaceOff+1, max(len(m.filteredSpaces())-1, 0))
		}
	case key.Matches(msg, m.keys.Open):
		if m.snap != nil && m.alertSel < len(m.snap.Alerts) {
			m.openRunbook(m.snap.Alerts[m.alertSel].Runbook)
		} else {
			m.status = "no alert selected: tab to the Alerts panel, or :runbook NAME"
		}
	default:
		m.dirty = false
	}
	return m, nil
}

// command runs a ":" command line.
func (m *Model) command(line string) tea.Cmd {
	f := strings.Fields(line)
	switch {
	case len(f) == 2 && f[0] == "runbook":
		m.openRunbook(f[1])
	case len(f) == 0:
	default:
		m.status = "unknown command :" + line + " (try :runbook NAME, e.g. :runbook alerts/EngramDown)"
	}
	return nil
}

func (m *Model) openRunbook(name string) {
	if m.cfg.Runbook == nil {
		m.status = "no runbooks available"
		return
	}
	title, body, err := m.cfg.Runbook(name)
	if err != nil && !strings.Contains(name, "/") {
		title, body, err = m.cfg.Runbook("alerts/" + name)
	}
	if err != nil {
		m.status = err.Error()
		return
	}
	vp := viewport.New(m.width, max(m.height-2, 1))
	vp.SetContent(m.renderMarkdown(body))
	m.runbook = &vp
	m.runbookTitle = title
	m.status = ""
}

// renderMarkdown renders a runbook with glamour: its dark style on a
// colour terminal, plain (notty) otherwise.
func (m *Model) renderMarkdown(body string) string {
	style := "notty"
	if m.st.Color {
		style = "dark"
	}
	r, err := glamour.NewTermRenderer(glamour.WithStandardStyle(style), glamour.WithWordWrap(max(m.width-4, 20)))
	if err == nil {
		if out, err := r.Render(body); err == nil {
			return out
		}
	}
	return body
}

// apply takes in a snapshot and extends the sparkline histories.
func (m *Model) apply(s Snapshot) {
	m.snap = &s
	for _, op := range s.Operations {
		if op.PerSecond != nil {
			m.rate[op.Name] = push(m.rate[op.Name], *op.PerSecond)
		}
		if op.ErrorRatio != nil {
			m.errs[op.Name] = push(m.errs[op.Name], *op.ErrorRatio)
		} else if op.PerSecond != nil {
			m.errs[op.Name] = push(m.errs[op.Name], 0)
		}
	}
	if m.alertSel >= len(s.Alerts) {
		m.alertSel = max(len(s.Alerts)-1, 0)
	}
}

func push(h []float64, v float64) []float64 {
	h = append(h, v)
	if len(h) > historyLen {
		h = h[len(h)-historyLen:]
	}
	return h
}

func (m *Model) filteredSpaces() []Space {
	if m.snap == nil {
		return nil
	}
	if m.filter == "" {
		return m.snap.Spaces
	}
	var out []Space
	for _, s := range m.snap.Spaces {
		if strings.Contains(s.Name, m.filter) {
			out = append(out, s)
		}
	}
	return out
}

// View draws the board; the screen is recomputed only after a change.
func (m *Model) View() string {
	if !m.dirty {
		return m.cache
	}
	m.cache = m.render()
	m.dirty = false
	return m.cache
}

// Snapshot returns the last snapshot shown (nil before the first).
func (m *Model) Snapshot() *Snapshot { return m.snap }

// Paused reports whether polling is paused.
func (m *Model) Paused() bool { return m.paused }
