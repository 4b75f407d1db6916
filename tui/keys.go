package tui

import "github.com/charmbracelet/bubbles/key"

// keyMap is the board's one key map; the help footer and the ? screen
// are generated from it.
type keyMap struct {
	Help    key.Binding
	Filter  key.Binding
	Panel   key.Binding
	Refresh key.Binding
	Pause   key.Binding
	Up      key.Binding
	Down    key.Binding
	Open    key.Binding
	Command key.Binding
	Back    key.Binding
	Quit    key.Binding
}

func newKeyMap() keyMap {
	return keyMap{
		Help:    key.NewBinding(key.WithKeys("?"), key.WithHelp("?", "help")),
		Filter:  key.NewBinding(key.WithKeys("/"), key.WithHelp("/", "filter spaces")),
		Panel:   key.NewBinding(key.WithKeys("tab", "shift+tab"), key.WithHelp("tab", "next panel")),
		Refresh: key.NewBinding(key.WithKeys("r"), key.WithHelp("r", "refresh now")),
		Pause:   key.NewBinding(key.WithKeys("p"), key.WithHelp("p", "pause")),
		Up:      key.NewBinding(key.WithKeys("up", "k"), key.WithHelp("↑/k", "up")),
		Down:    key.NewBinding(key.WithKeys("down", "j"), key.WithHelp("↓/j", "down")),
		Open:    key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "alert's runbook")),
		Command: key.NewBinding(key.WithKeys(":"), key.WithHelp(":runbook NAME", "open a runbook")),
		Back:    key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "back")),
		Quit:    key.NewBinding(key.WithKeys("q", "ctrl+c"), key.WithHelp("q", "quit")),
	}
}

// ShortHelp is the footer.
func (k keyMap) ShortHelp() []key.Binding {
	return []key.Binding{k.Help, k.Filter, k.Panel, k.Refresh, k.Pause, k.Open, k.Quit}
}

// FullHelp is the ? screen.
func (k keyMap) FullHelp() [][]key.Binding {
	return [][]key.Binding{
		{k.Panel, k.Up, k.Down, k.Open},
		{k.Filter, k.Command, k.Back},
		{k.Refresh, k.Pause, k.Help, k.Quit},
	}
}
