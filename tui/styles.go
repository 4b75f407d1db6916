package tui

import (
	"io"

	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"
)

// Styles is every style the board uses, in one place.
type Styles struct {
	r *lipgloss.Renderer

	Title, Section, Focused, Dim, Label lipgloss.Style
	Good, Warn, Bad                     lipgloss.Style
	BarFull, BarEmpty                   lipgloss.Style
	Help                                lipgloss.Style
	Color                               bool
}

// NewStyles returns the board's styles for output w. color false (NO_COLOR,
// not a terminal) gives plain text with no escape sequences at all. color
// true is the caller's decision that w is a terminal, so termenv's own
// guesses (such as "no terminal when CI is set") do not override it; the
// profile (16, 256 or true colours) still comes from TERM and COLORTERM.
func NewStyles(w io.Writer, color bool) Styles {
	r := lipgloss.NewRenderer(w, termenv.WithTTY(color))
	if !color {
		r.SetColorProfile(termenv.Ascii)
	}
	s := Styles{r: r, Color: color}
	s.Title = r.NewStyle().Bold(true)
	s.Section = r.NewStyle().Bold(true).Foreground(lipgloss.Color("12"))
	s.Focused = r.NewStyle().Bold(true).Reverse(color)
	s.Dim = r.NewStyle().Foreground(lipgloss.Color("8"))
	s.Label = r.NewStyle().Foreground(lipgloss.Color("7"))
	s.Good = r.NewStyle().Foreground(lipgloss.Color("10"))
	s.Warn = r.NewStyle().Foreground(lipgloss.Color("11"))
	s.Bad = r.NewStyle().Foreground(lipgloss.Color("9")).Bold(true)
	s.BarFull = r.NewStyle().Foreground(lipgloss.Color("14"))
	s.BarEmpty = r.NewStyle().Foreground(lipgloss.Color("8"))
	s.Help = r.NewStyle().Foreground(lipgloss.Color("8"))
	return s
}
