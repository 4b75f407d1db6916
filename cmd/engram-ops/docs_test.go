package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

const cliReferencePath = "../../docs/cli.md"

// cliReference renders the whole command tree as one Markdown document:
// one section per command, cross-links as anchors within the document.
func cliReference(root *cobra.Command) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString(`# engram-ops command reference

Every command and subcommand of engram-ops with its usage, description, flags
and examples. This file is generated from the command tree: do not edit it, run
` + "`make docs`" + ` after changing a command. ` + "`engram-ops docs man --dir DIR`" + ` writes the
same reference as man pages; ` + "`engram-ops COMMAND --help`" + ` prints one section.

`)
	// cobra/doc links each command to a per-command file
	// (engram-ops_backup_create.md); here it is the section's anchor.
	link := func(name string) string {
		return "#" + strings.ReplaceAll(strings.TrimSuffix(name, ".md"), "_", "-")
	}
	var err error
	walkDocCommands(root, func(c *cobra.Command) bool {
		c.Long = demoteHeadings(c.Long)
		err = doc.GenMarkdownCustom(c, &buf, link)
		return err == nil
	})
	return buf.Bytes(), err
}

// demoteHeadings moves the headings of a long description (a runbook
// section quoted in the help) below the command's own "### Synopsis", so
// they do not read as commands in the document's outline.
func demoteHeadings(long string) string {
	lines := strings.Split(long, "\n")
	var code codeBlocks
	for i, l := range lines {
		if code.skip(l) || !strings.HasPrefix(l, "#") {
			continue
		}
		text := strings.TrimLeft(l, "#")
		if level := len(l) - len(text); level <= 6 && strings.HasPrefix(text, " ") {
			lines[i] = strings.Repeat("#", min(level+3, 6)) + text
		}
	}
	return strings.Join(lines, "\n")
}

// docs/cli.md is what the command tree generates: a command or flag
// change without `make docs` fails here.
func TestCLIReferenceUpToDate(t *testing.T) {
	root := newApp(strings.NewReader(""), &syncBuffer{}, &syncBuffer{}, func(string) string { return "" }).rootCommand()
	got, err := cliReference(root)
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(cliReferencePath, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(cliReferencePath)
	if err != nil {
		t.Fatalf("%v (run make docs to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("docs/cli.md is stale: run make docs and commit the result\n%s", firstDifference(string(want), string(got)))
	}
	// Every command is in it, and it carries nothing that varies by
	// machine or day.
	walkDocCommands(root, func(c *cobra.Command) bool {
		if !bytes.Contains(got, []byte("\n## "+c.CommandPath()+"\n")) {
			t.Errorf("no section for %q", c.CommandPath())
		}
		return true
	})
	tree, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	for _, volatile := range []string{"Auto generated", os.TempDir(), tree} {
		if bytes.Contains(got, []byte(volatile)) {
			t.Errorf("docs/cli.md contains %q", volatile)
		}
	}
}

// firstDifference names the first line where want and got differ.
func firstDifference(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return fmt.Sprintf("line %d:\n  committed: %q\n  generated: %q", i+1, wl, gl)
		}
	}
	return "(no line differs)"
}

func TestDocsManWritesPages(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "man") // created by the command
	code, out, errOut := runCLI(t, nil, "docs", "man", "--dir", dir)
	if code != exitOK {
		t.Fatalf("exit %d, stderr %s", code, errOut)
	}
	root := newApp(strings.NewReader(""), &syncBuffer{}, &syncBuffer{}, func(string) string { return "" }).rootCommand()
	var want []string
	walkDocCommands(root, func(c *cobra.Command) bool {
		want = append(want, strings.ReplaceAll(c.CommandPath(), " ", "-")+".1")
		return true
	})
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(want) || len(want) < 40 {
		t.Errorf("wrote %d files for %d commands", len(entries), len(want))
	}
	if !strings.Contains(out, fmt.Sprintf("wrote %d man pages", len(want))) {
		t.Errorf("stdout %q", out)
	}
	first := map[string][]byte{}
	for _, name := range want {
		page, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Error(err)
			continue
		}
		first[name] = page
		checkManPage(t, name, string(page))
	}
	// A second run writes the same bytes: no date, no path.
	if code, _, errOut := runCLI(t, nil, "docs", "man", "--dir", dir, "--quiet"); code != exitOK {
		t.Fatalf("second run: exit %d, stderr %s", code, errOut)
	}
	for name, page := range first {
		again, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || !bytes.Equal(page, again) {
			t.Errorf("%s differs between two runs (%v)", name, err)
		}
	}
}

// checkManPage is a basic troff check: the preamble, a .TH line with
// title and section, the NAME and SYNOPSIS sections, and only requests
// (lines starting with a dot) the man macro package and tbl know.
func checkManPage(t *testing.T, name, page string) {
	t.Helper()
	lines := strings.Split(page, "\n")
	if lines[0] == `'\" t` { // the preprocessor hint of a page with a table
		lines = lines[1:]
	}
	if len(lines) < 2 || lines[0] != ".nh" || !strings.HasPrefix(lines[1], ".TH ") {
		t.Errorf("%s does not start with .nh and .TH: %q", name, page[:min(len(page), 80)])
		return
	}
	title := strings.ToUpper(strings.TrimSuffix(name, ".1"))
	if want := `.TH "` + title + `" "1" "" "engram-ops" "engram-ops manual"`; lines[1] != want {
		t.Errorf("%s: header %q, want %q", name, lines[1], want)
	}
	known := map[string]bool{".nh": true, ".TH": true, ".SH": true, ".SS": true, ".PP": true, ".RS": true, ".RE": true,
		".EX": true, ".TS": true, ".TE": true, ".EE": true, ".TP": true, ".IP": true, ".B": true, ".I": true, ".br": true, ".sp": true}
	for i, l := range lines {
		if !strings.HasPrefix(l, ".") {
			continue
		}
		req, _, _ := strings.Cut(l, " ")
		if !known[req] {
			t.Errorf("%s:%d: unknown request %q", name, i+1, l)
		}
	}
	for _, section := range []string{"\n.SH NAME\n", "\n.SH SYNOPSIS\n", "\n.SH DESCRIPTION\n"} {
		if !strings.Contains(page, section) {
			t.Errorf("%s lacks %q", name, strings.TrimSpace(section))
		}
	}
}

func TestDocsManNeedsDir(t *testing.T) {
	code, _, errOut := runCLI(t, nil, "docs", "man")
	if code != exitUsage || !strings.Contains(errOut, "--dir is required") || !strings.Contains(errOut, "Try: engram-ops docs man --help") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}
