package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// docsCmd is `engram-ops docs …`: reference documentation generated from
// the command tree itself, so it cannot drift from the binary.
type docsCmd struct {
	app  *app
	root *cobra.Command

	dir string
}

func newDocsCmd(a *app, root *cobra.Command) *docsCmd { return &docsCmd{app: a, root: root} }

func (d *docsCmd) command() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "docs",
		Short: "Reference documentation generated from the command tree (man pages)",
		Long: `Reference documentation generated from this binary's command tree, so it always
matches the commands and flags the binary has. docs/cli.md in the source tree is
the same reference in Markdown (make docs regenerates it).`,
		Example: `  engram-ops docs man --dir ./man`,
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	man := &cobra.Command{
		Use:   "man",
		Short: "Write one man page per command into a directory",
		Long: `Write a man page (section 1, troff) for engram-ops and each of its subcommands into
--dir, named after the command path: engram-ops.1, engram-ops-serve.1,
engram-ops-backup-create.1, … The directory is created if missing; existing pages
of the same name are overwritten.

The pages carry no date, so the same binary always writes the same files.`,
		Example: `  # Write the pages and read one
  engram-ops docs man --dir ./man
  man ./man/engram-ops-serve.1

  # Install them for every user
  engram-ops docs man --dir /usr/local/share/man/man1 && mandb`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return d.man() },
	}
	man.Flags().StringVar(&d.dir, "dir", "", "directory to write the man pages into (required; created if missing)")
	cmd.AddCommand(man)
	return cmd
}

func (d *docsCmd) man() error {
	if d.dir == "" {
		return usagef("--dir is required: the directory to write the man pages into, e.g. --dir ./man")
	}
	if err := os.MkdirAll(d.dir, 0o755); err != nil {
		if errors.Is(err, os.ErrPermission) {
			return fmt.Errorf("%w\nTry: a directory you can write to, e.g. --dir ./man", err)
		}
		return err
	}
	written, err := writeManPages(d.root, d.dir)
	if err != nil {
		return err
	}
	return d.app.printWritten(d.dir, written, "man pages")
}

// printWritten reports the files a command wrote into dir (names relative
// to dir, slash-separated): each path and a count, or with --output json
// {"dir": ABS, "files": [...]}.
func (a *app) printWritten(dir string, files []string, what string) error {
	abs := dir
	if p, err := filepath.Abs(dir); err == nil {
		abs = p
	}
	if a.global.output == "json" {
		return a.printJSON(struct {
			Dir   string   `json:"dir"`
			Files []string `json:"files"`
		}{abs, files})
	}
	if !a.global.quiet {
		for _, f := range files {
			fmt.Fprintln(a.stdout, filepath.Join(dir, filepath.FromSlash(f)))
		}
		fmt.Fprintf(a.stdout, "wrote %d %s to %s\n", len(files), what, abs)
	}
	return nil
}

// writeManPages writes a page for cmd and each available descendant into
// dir and returns the file names, parents before children.
func writeManPages(cmd *cobra.Command, dir string) ([]string, error) {
	var written []string
	var err error
	walkDocCommands(cmd, func(c *cobra.Command) bool {
		var page bytes.Buffer
		header := &doc.GenManHeader{
			Section: "1",
			Date:    &time.Time{},
			Source:  "engram-ops",
			Manual:  "engram-ops manual",
		}
		if err = doc.GenMan(c, header, &page); err != nil {
			return false
		}
		name := strings.ReplaceAll(c.CommandPath(), " ", "-") + ".1"
		if err = os.WriteFile(filepath.Join(dir, name), undated(page.Bytes()), 0o644); err != nil {
			return false
		}
		written = append(written, name)
		return true
	})
	return written, err
}

// undated blanks the date field of the .TH line: cobra/doc always writes a
// date, and a generation time would make the pages differ on every run.
func undated(page []byte) []byte {
	zero := `"` + (time.Time{}).Format("Jan 2006") + `"`
	lines := strings.SplitAfter(string(page), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, ".TH ") {
			lines[i] = strings.Replace(l, zero, `""`, 1)
			break
		}
	}
	return []byte(strings.Join(lines, ""))
}

// walkDocCommands calls fn for cmd and each available descendant (not
// help, not hidden), depth first in name order, after turning off cobra's
// "Auto generated … on DATE" footer. It stops when fn returns false.
func walkDocCommands(cmd *cobra.Command, fn func(*cobra.Command) bool) bool {
	cmd.DisableAutoGenTag = true
	if !fn(cmd) {
		return false
	}
	for _, c := range cmd.Commands() {
		if !c.IsAvailableCommand() || c.IsAdditionalHelpTopicCommand() {
			continue
		}
		if !walkDocCommands(c, fn) {
			return false
		}
	}
	return true
}
