package tui

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/charmbracelet/lipgloss"
)

// unknownMark stands for a figure the board does not have; the reason is
// printed next to it or in the section's note.
const unknownMark = "—"

// Render draws one snapshot as plain or styled text, width columns wide
// and as tall as it needs (for --once).
func Render(s Snapshot, width int, st Styles) string {
	m := New(staticPoller{}, Config{Styles: st})
	m.apply(s)
	m.width, m.height = width, 1000
	return strings.TrimRight(m.body(1000), "\n") + "\n"
}

// staticPoller backs a Model that only draws a given snapshot.
type staticPoller struct{}

func (staticPoller) Poll(context.Context) Snapshot { return Snapshot{} }
func (staticPoller) Failures() int                 { return 0 }

func (m *Model) render() string {
	if m.width <= 0 || m.height <= 0 {
		return ""
	}
	if m.runbook != nil {
		title := m.st.Title.Render("Runbook: "+m.runbookTitle) + m.st.Dim.Render(fmt.Sprintf("  %3.0f%%", m.runbook.ScrollPercent()*100))
		foot := m.st.Help.Render("↑/↓ pgup/pgdn scroll  esc back  q quit")
		return clip(title, m.width) + "\n" + m.runbook.View() + "\n" + clip(foot, m.width)
	}
	footer := m.footer()
	body := m.body(m.height - 1)
	return body + footer
}

func (m *Model) footer() string {
	switch m.inputMode {
	case inputFilter:
		return clip(m.st.Title.Render("filter spaces: ")+m.input.View()+m.st.Help.Render("  enter apply  esc clear"), m.width)
	case inputCommand:
		return clip(m.st.Title.Render(":")+m.input.View()+m.st.Help.Render("  enter run  esc cancel"), m.width)
	}
	if m.status != "" {
		return clip(m.st.Warn.Render(m.status), m.width)
	}
	m.help.Width = m.width
	return clip(m.help.View(m.keys), m.width)
}

// body draws the header and panels in at most rows lines, each ending in
// a newline.
func (m *Model) body(rows int) string {
	var lines []string
	add := func(s ...string) { lines = append(lines, s...) }
	add(m.header()...)
	if m.showHelp {
		m.help.ShowAll = true
		m.help.Width = m.width
		add("", m.st.Section.Render("Keys"))
		add(strings.Split(m.help.View(m.keys), "\n")...)
		m.help.ShowAll = false
		add("", m.st.Dim.Render("Figures are deltas between the last two scrapes of /metrics; "+unknownMark+" marks what the board"),
			m.st.Dim.Render("does not know, with the reason. Alerts use the thresholds of the shipped rules"),
			m.st.Dim.Render("(engram-ops dashboards export) over the last interval, or Prometheus' with --prometheus."))
		return fit(lines, rows, m.width)
	}
	if m.snap == nil {
		add("", m.st.Dim.Render("waiting for the first scrape…"))
		return fit(lines, rows, m.width)
	}
	s := m.snap
	add(m.opsPanel()...)
	add(m.storagePanel()...)
	add(m.backupPanel()...)
	if s.Migration != nil || s.LoadTest != nil {
		add(m.activityLines()...)
	}
	alerts := m.alertsPanel()
	remaining := rows - len(lines) - len(alerts)
	spaces := m.spacesPanel(max(remaining, 3))
	if remaining < 3 && m.panel != panelSpaces {
		spaces = spaces[:min(1, len(spaces))]
	}
	add(alerts...)
	add(spaces...)
	return fit(lines, rows, m.width)
}

// fit clips every line to width and the block to rows lines.
func fit(lines []string, rows, width int) string {
	if len(lines) > rows {
		lines = lines[:rows]
	}
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(clip(l, width))
		b.WriteByte('\n')
	}
	return b.String()
}

// clip truncates a (possibly styled) line to width cells.
func clip(s string, width int) string {
	if lipgloss.Width(s) <= width {
		return s
	}
	return lipgloss.NewStyle().MaxWidth(width).Render(s)
}

func (m *Model) header() []string {
	s := m.snap
	st := m.st
	target, version, status := unknownMark, unknownMark, "connecting"
	uptime := unknownMark
	if s != nil {
		target = s.Target
		if s.Health.Version != "" {
			version = s.Health.Version
		}
		status = s.Health.Status
		if s.Health.UptimeSeconds != nil {
			uptime = dur(math.Floor(*s.Health.UptimeSeconds))
		}
	}
	var badge string
	switch status {
	case "ready":
		badge = st.Good.Render("● READY")
	case "degraded":
		badge = st.Warn.Render("▲ DEGRADED")
	default:
		badge = st.Bad.Render("✖ " + strings.ToUpper(status))
	}
	poll := "every " + m.cfg.Refresh.String()
	if m.paused {
		poll = st.Warn.Render("PAUSED") + " (p resumes)"
	} else if m.next > m.cfg.Refresh {
		poll = st.Warn.Render("retry in " + m.next.String())
	}
	when := ""
	if s != nil {
		when = s.Time.Local().Format("15:04:05")
	}
	line1 := fmt.Sprintf("%s  %s  %s  version %s  up %s  %s  %s",
		st.Title.Render("engram-ops"), target, badge, version, uptime, when, poll)
	out := []string{line1}
	if s != nil && s.Health.Error != "" {
		last := "never"
		if s.Health.LastSuccess != nil {
			last = s.Health.LastSuccess.Local().Format("15:04:05") + " (" + dur(math.Floor(s.Time.Sub(*s.Health.LastSuccess).Seconds())) + " ago)"
		}
		msg := lipgloss.NewStyle().Width(m.width).Render("error: " + s.Health.Error)
		errLines := strings.Split(msg, "\n")
		if len(errLines) > 3 {
			errLines = errLines[:3]
		}
		for _, l := range errLines {
			out = append(out, st.Bad.Render(strings.TrimRight(l, " ")))
		}
		out = append(out, st.Dim.Render("last success: "+last+"; the board keeps retrying"))
	} else if s != nil && len(s.Health.Checks) > 0 {
		out = append(out, st.Warn.Render("checks: ")+strings.Join(s.Health.Checks, "; "))
	}
	return out
}

func (m *Model) title(panel int, extra string) string {
	t := panelNames[panel]
	if m.panel == panel {
		return m.st.Focused.Render("▸ "+t) + m.st.Dim.Render(extra)
	}
	return m.st.Section.Render("  "+t) + m.st.Dim.Render(extra)
}

func (m *Model) opsPanel() []string {
	s := m.snap
	extra := ""
	if s.IntervalSeconds > 0 {
		extra = fmt.Sprintf("  over the last %s", dur(s.IntervalSeconds))
	}
	out := []string{m.title(panelOps, extra)}
	if len(s.Operations) == 0 {
		return append(out, "  "+unknownMark+" "+s.Unknown["operations"])
	}
	spark := max(m.width-64, 8)
	out = append(out, m.st.Dim.Render(fmt.Sprintf("  %-10s %9s %-*s %7s %9s %9s %9s", "operation", "ops/s", spark, "throughput", "errors", "p50", "p95", "p99")))
	for _, op := range s.Operations {
		rate, errs := unknownMark, unknownMark
		if op.PerSecond != nil {
			rate = num(*op.PerSecond)
		}
		if op.ErrorRatio != nil {
			errs = pct(*op.ErrorRatio)
		}
		errStyle := m.st.Label
		if op.ErrorRatio != nil && *op.ErrorRatio > 0 {
			errStyle = m.st.Bad
		}
		line := fmt.Sprintf("  %-10s %9s %s %s %9s %9s %9s", op.Name, rate,
			m.st.BarFull.Render(sparkline(m.rate[op.Name], spark)), errStyle.Render(fmt.Sprintf("%7s", errs)),
			optDur(op.P50), optDur(op.P95), optDur(op.P99))
		out = append(out, line)
	}
	if r := s.Unknown["operations.latency"]; r != "" {
		out = append(out, m.st.Dim.Render("  "+unknownMark+" latency: "+r))
	}
	return out
}

func (m *Model) storagePanel() []string {
	s := m.snap
	out := []string{m.st.Section.Render("  Storage")}
	bar := max(min(m.width-52, 40), 10)
	for _, t := range s.Tiers {
		u := unknownMark + " no capacity"
		frac := 0.0
		if t.Utilisation != nil {
			frac = *t.Utilisation
			u = pct(frac)
		}
		style := m.st.BarFull
		if frac > 0.9 {
			style = m.st.Bad
		}
		out = append(out, fmt.Sprintf("  %-5s %s %7s  %s / %s", t.Name, m.bar(frac, bar, style), u, bytesIEC(t.Bytes), bytesIEC(t.CapacityBytes)))
	}
	if len(s.Tiers) == 0 {
		out = append(out, "  tiers "+unknownMark+" "+orReason(s.Unknown["tiers"], "the server exports no engram_storage_tier_bytes"))
	}
	cache := unknownMark + " " + s.Unknown["cache_hit_ratio"]
	if s.CacheHitRatio != nil {
		cache = pct(*s.CacheHitRatio)
	}
	backlog := unknownMark
	if s.IndexBacklog != nil {
		backlog = num(*s.IndexBacklog)
	}
	out = append(out, fmt.Sprintf("  cache hits %s   index backlog %s", cache, backlog))
	d := s.Disk
	if d.FreeBytes != nil {
		line := "  disk free " + bytesIEC(*d.FreeBytes)
		if d.TotalBytes != nil && *d.TotalBytes > 0 {
			line += " of " + bytesIEC(*d.TotalBytes)
		}
		if d.ReserveBytes != nil {
			line += "   reserve " + bytesIEC(*d.ReserveBytes)
			if *d.ReserveBytes > 0 {
				line += fmt.Sprintf(" (%.1f× reserve)", *d.FreeBytes / *d.ReserveBytes)
			}
		}
		if d.DataBytes != nil {
			line += "   data " + bytesIEC(*d.DataBytes)
		}
		if d.WritesRefused {
			line += "   " + m.st.Bad.Render("WRITES REFUSED")
		}
		out = append(out, line)
	} else {
		out = append(out, "  disk "+unknownMark+" "+s.Unknown["disk"])
	}
	return out
}

func (m *Model) backupPanel() []string {
	s := m.snap
	if len(s.Backup) == 0 {
		return []string{m.st.Section.Render("  Backup") + "  " + unknownMark + " " + m.st.Dim.Render(s.Unknown["backup"])}
	}
	out := []string{m.st.Section.Render("  Backup")}
	for _, b := range s.Backup {
		rpo := unknownMark
		if b.RPOSeconds != nil {
			rpo = dur(*b.RPOSeconds)
		}
		seq := unknownMark
		if b.ShippedSequence != nil {
			seq = strconv.FormatFloat(*b.ShippedSequence, 'f', 0, 64)
			if b.LagSequences != nil {
				seq += " (lag " + strconv.FormatFloat(*b.LagSequences, 'f', 0, 64) + ")"
			}
		}
		drill := unknownMark
		if b.RestoreDrillSeconds != nil {
			drill = "took " + dur(*b.RestoreDrillSeconds)
		}
		out = append(out, fmt.Sprintf("  %s  RPO %s  shipped seq %s  errors %.0f", b.Target, rpo, seq, b.Errors))
		out = append(out, fmt.Sprintf("    last snapshot %s  last verified %s  restore drill %s",
			ago(b.LastSnapshot, s.Time), ago(b.LastVerified, s.Time), drill))
	}
	return out
}

func (m *Model) activityLines() []string {
	s := m.snap
	var out []string
	if mg := s.Migration; mg != nil {
		rate := unknownMark
		if mg.PerSecond != nil {
			rate = num(*mg.PerSecond) + "/s"
		}
		out = append(out, m.st.Warn.Render("  Migration in progress")+fmt.Sprintf("  from %s: %s records at %s, %s rejects", mg.Source, num(mg.Records), rate, num(mg.Rejects)))
	}
	if lt := s.LoadTest; lt != nil {
		out = append(out, m.st.Warn.Render("  Load test in progress")+fmt.Sprintf("  %s ops/s on %d loadtest spaces (%s)", num(lt.PerSecond), len(lt.Spaces), strings.Join(lt.Spaces, ",")))
	}
	return out
}

func (m *Model) alertsPanel() []string {
	s := m.snap
	firing := 0
	for _, a := range s.Alerts {
		if a.State == "firing" {
			firing++
		}
	}
	extra := fmt.Sprintf("  %d firing, %d pending", firing, len(s.Alerts)-firing)
	out := []string{m.title(panelAlerts, extra)}
	if r := s.Unknown["alerts"]; len(s.Alerts) > 0 && strings.HasPrefix(r, "prometheus: ") {
		lines := strings.Split(lipgloss.NewStyle().Width(max(m.width-2, 20)).Render(r), "\n")
		for _, l := range lines[:min(len(lines), 3)] {
			out = append(out, m.st.Warn.Render("  "+strings.TrimRight(l, " ")))
		}
	}
	if len(s.Alerts) == 0 {
		line := "  none"
		if r := s.Unknown["alerts"]; r != "" {
			line += m.st.Dim.Render("  (" + r + ")")
		}
		return append(out, line)
	}
	for i, a := range s.Alerts {
		style := m.st.Warn
		if a.State == "firing" && a.Severity == "critical" {
			style = m.st.Bad
		}
		cursor := "  "
		if m.panel == panelAlerts && i == m.alertSel {
			cursor = "▸ "
		}
		since := ""
		if a.Since != nil {
			since = " for " + dur(math.Floor(s.Time.Sub(*a.Since).Seconds()))
		}
		name := a.Name
		if a.Labels != "" {
			name += "{" + a.Labels + "}"
		}
		line := cursor + style.Render(fmt.Sprintf("%-7s %-8s %s", a.State, a.Severity, name)) + since
		rb := "runbook " + a.Runbook
		if lipgloss.Width(line)+2+len(rb) > m.width {
			// The runbook name must stay visible: it goes on a line of its
			// own, with the summary, rather than be clipped.
			out = append(out, line)
			line = "   "
		}
		out = append(out, line+"  "+m.st.Dim.Render(rb+"  "+a.Summary))
	}
	return out
}

func (m *Model) spacesPanel(rows int) []string {
	s := m.snap
	all := m.filteredSpaces()
	extra := fmt.Sprintf("  %d of %d", len(all), len(s.Spaces))
	if m.filter != "" {
		extra += "  filter " + strconv.Quote(m.filter)
	}
	out := []string{m.title(panelSpaces, extra)}
	if len(s.Spaces) == 0 {
		return append(out, "  "+unknownMark+" "+orReason(s.Unknown["spaces"], "no spaces yet"))
	}
	nw := max(min(m.width-61, 32), 8)
	out = append(out, m.st.Dim.Render(fmt.Sprintf("  %-*s %9s %7s %7s %7s %6s %7s %7s", nw, "space", "memories", "hot", "warm", "cold", "assoc", "pending", "ops/s")))
	show := rows - 2
	off := min(m.spaceOff, max(len(all)-show, 0))
	for i := off; i < len(all) && i < off+show; i++ {
		sp := all[i]
		rate := unknownMark
		if sp.PerSecond != nil {
			rate = num(*sp.PerSecond)
		}
		out = append(out, fmt.Sprintf("  %-*s %9s %7s %7s %7s %6s %7s %7s", nw, trunc(sp.Name, nw), num(sp.Memories),
			num(sp.Tiers["hot"]), num(sp.Tiers["warm"]), num(sp.Tiers["cold"]), num(sp.Associations), num(sp.IndexPending), rate))
	}
	if last := off + show; last < len(all) && show > 0 {
		out[len(out)-1] = m.st.Dim.Render(fmt.Sprintf("  … %d more (tab to Spaces, ↑/↓ scroll, / filter)", len(all)-last+1))
	}
	return out
}

func (m *Model) bar(frac float64, width int, style lipgloss.Style) string {
	frac = math.Max(0, math.Min(frac, 1))
	full := int(math.Round(frac * float64(width)))
	if frac > 0 && full == 0 {
		full = 1
	}
	return style.Render(strings.Repeat("█", full)) + m.st.BarEmpty.Render(strings.Repeat("░", width-full))
}

var sparkRunes = []rune(" ▁▂▃▄▅▆▇█")

// sparkline draws the last width values scaled to their maximum.
func sparkline(h []float64, width int) string {
	if len(h) > width {
		h = h[len(h)-width:]
	}
	top := 0.0
	for _, v := range h {
		top = math.Max(top, v)
	}
	var b strings.Builder
	for i := 0; i < width-len(h); i++ {
		b.WriteRune(' ')
	}
	for _, v := range h {
		i := 0
		if top > 0 {
			i = int(math.Ceil(v / top * float64(len(sparkRunes)-1)))
		}
		b.WriteRune(sparkRunes[i])
	}
	return b.String()
}

func optDur(v *float64) string {
	if v == nil {
		return unknownMark
	}
	return dur(*v)
}

func ago(t *time.Time, now time.Time) string {
	if t == nil {
		return unknownMark + " never"
	}
	return dur(math.Floor(now.Sub(*t).Seconds())) + " ago"
}

func orReason(r, def string) string {
	if r != "" {
		return r
	}
	return def
}

func trunc(s string, n int) string {
	if len([]rune(s)) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// num formats a count or rate: 0, 12, 3.4, 12.3k, 4.5M.
func num(v float64) string {
	a := math.Abs(v)
	switch {
	case a == 0:
		return "0"
	case a < 10 && v != math.Trunc(v):
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a < 10000:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a < 1e6:
		return strconv.FormatFloat(v/1e3, 'f', 1, 64) + "k"
	case a < 1e9:
		return strconv.FormatFloat(v/1e6, 'f', 1, 64) + "M"
	}
	return strconv.FormatFloat(v/1e9, 'f', 1, 64) + "G"
}

// bytesIEC formats a byte count: 512B, 1.0MiB, 64GiB.
func bytesIEC(v float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if i == 0 || v >= 100 {
		return strconv.FormatFloat(v, 'f', 0, 64) + units[i]
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + units[i]
}
