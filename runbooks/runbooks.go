// Package runbooks holds the operational runbooks as Markdown, compiled into
// the binary with go:embed. The same text is the long help of the commands
// it concerns and what `engram-ops runbook show NAME` prints; alert rules
// link to them by name.
//
// It imports only the standard library.
package runbooks

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strings"
)

//go:embed *.md alerts
var files embed.FS

// Runbook is one Markdown document.
type Runbook struct {
	Name  string // path without ".md", e.g. "disaster-recovery" or "alerts/EngramDown"
	Title string // the first "# " heading
	Body  string
}

// List returns every runbook, by name.
func List() []Runbook {
	var out []Runbook
	_ = fs.WalkDir(files, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".md") || strings.HasSuffix(path, "README.md") {
			return err
		}
		rb, err := Get(strings.TrimSuffix(path, ".md"))
		if err == nil {
			out = append(out, rb)
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Get returns the runbook with the given name.
func Get(name string) (Runbook, error) {
	b, err := files.ReadFile(name + ".md")
	if err != nil {
		names := make([]string, 0)
		for _, r := range List() {
			names = append(names, r.Name)
		}
		return Runbook{}, fmt.Errorf("no runbook named %q; known: %s", name, strings.Join(names, ", "))
	}
	body := string(b)
	title := name
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "# ") {
			title = strings.TrimSpace(line[2:])
			break
		}
	}
	return Runbook{Name: name, Title: title, Body: body}, nil
}

// Section returns the text under the heading (any level) whose title is
// heading, up to the next heading of the same or a higher level.
func (r Runbook) Section(heading string) (string, bool) {
	lines := strings.Split(r.Body, "\n")
	for i, line := range lines {
		level := len(line) - len(strings.TrimLeft(line, "#"))
		if level == 0 || strings.TrimSpace(line[level:]) != heading {
			continue
		}
		end := len(lines)
		for j := i + 1; j < len(lines); j++ {
			l2 := len(lines[j]) - len(strings.TrimLeft(lines[j], "#"))
			if l2 > 0 && l2 <= level && strings.HasPrefix(lines[j][l2:], " ") {
				end = j
				break
			}
		}
		return strings.TrimSpace(strings.Join(lines[i+1:end], "\n")), true
	}
	return "", false
}

// Headings lists the titles of the runbook's headings below its title, in
// order: the names Section accepts.
func (r Runbook) Headings() []string {
	var out []string
	fence := false
	for _, line := range strings.Split(r.Body, "\n") {
		if strings.HasPrefix(line, "```") {
			fence = !fence
		}
		level := len(line) - len(strings.TrimLeft(line, "#"))
		if fence || level < 2 || !strings.HasPrefix(line[level:], " ") {
			continue
		}
		out = append(out, strings.TrimSpace(line[level:]))
	}
	return out
}
