package main

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

var (
	// inlineCommand matches `engram-ops a b …` in a Markdown code span.
	inlineCommand = regexp.MustCompile("`(?:\\./)?(?:bin/)?engram-ops((?: [a-z][a-z0-9-]*)+)")
	// blockCommand matches a command line in a fenced code block.
	blockCommand = regexp.MustCompile(`^\s*(?:\$ )?(?:\./)?(?:bin/)?engram-ops((?: [a-z][a-z0-9-]*)+)`)
)

// Every engram-ops command the runbooks, README, docs and alert rules tell
// an operator to run exists: a runbook naming a command the binary lacks
// is as useless as an alert on a metric nobody exports.
func TestDocumentedCommandsExist(t *testing.T) {
	root := newApp(strings.NewReader(""), &syncBuffer{}, &syncBuffer{}, func(string) string { return "" }).rootCommand()
	var files []string
	for _, pattern := range []string{"../../runbooks/*.md", "../../runbooks/alerts/*.md", "../../README.md",
		"../../docs/*.md", "../../dashboards/prometheus/*.yml"} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) < 10 {
		t.Fatalf("found only %d documents: %v", len(files), files)
	}
	checked := 0
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		inBlock := false
		for line := 1; sc.Scan(); line++ {
			text := sc.Text()
			if strings.HasPrefix(strings.TrimSpace(text), "```") {
				inBlock = !inBlock
				continue
			}
			var found [][]string
			if inBlock {
				if m := blockCommand.FindStringSubmatch(text); m != nil {
					found = append(found, m)
				}
			} else {
				found = inlineCommand.FindAllStringSubmatch(text, -1)
			}
			for _, m := range found {
				checked++
				if bad := missingCommand(root, strings.Fields(m[1])); bad != "" {
					t.Errorf("%s:%d: `engram-ops%s`: %s", f, line, m[1], bad)
				}
			}
		}
		fh.Close()
	}
	if checked < 20 {
		t.Fatalf("checked only %d command references", checked)
	}
}

// missingCommand walks words down the command tree while the current
// command has subcommands, and names the first word that is not one.
func missingCommand(root *cobra.Command, words []string) string {
	cmd := root
	for _, w := range words {
		if !cmd.HasSubCommands() {
			return ""
		}
		next, _, err := cmd.Find([]string{w})
		if err != nil || next == cmd {
			return "\"" + w + "\" is not a command of \"" + cmd.CommandPath() + "\""
		}
		cmd = next
	}
	return ""
}
