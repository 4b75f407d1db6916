package main

import (
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/charmbracelet/glamour"
	"github.com/spf13/cobra"

	"github.com/engram-ops/engram-ops/runbooks"
)

// runbookCmd is `engram-ops runbook …`: the runbooks compiled into the
// binary, readable where only the binary is.
type runbookCmd struct {
	app     *app
	section string
}

func newRunbookCmd(a *app) *runbookCmd { return &runbookCmd{app: a} }

func (r *runbookCmd) command() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "runbook",
		Short: "Read the operational runbooks compiled into the binary",
		Long: `The runbooks (disaster recovery, serving, capacity testing, and one per alert
under alerts/) are Markdown compiled into engram-ops, so they are at hand on any
host that has the binary. Every alert's runbook_url names one of them.`,
		Example: `  engram-ops runbook list
  engram-ops runbook show disaster-recovery
  engram-ops runbook show alerts/HighRecallLatency`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List the runbooks by name and title",
		Example: `  engram-ops runbook list
  engram-ops runbook list --output json`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return r.list() },
	}
	show := &cobra.Command{
		Use:   "show NAME",
		Short: "Print one runbook, or one section of it (--section)",
		Long: `Print a runbook: rendered for a colour terminal when standard output is one (and
NO_COLOR is unset), Markdown otherwise. --section prints only the part under that
heading (any level, exact title); an unknown runbook or section lists the valid
ones (exit 2).`,
		Example: `  engram-ops runbook show disaster-recovery
  engram-ops runbook show disaster-recovery --section "Offline integrity check"
  engram-ops runbook show alerts/BackupStale | less`,
		Args: cobra.ExactArgs(1),
		ValidArgsFunction: func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			var names []string
			for _, rb := range runbooks.List() {
				names = append(names, rb.Name)
			}
			return names, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(_ *cobra.Command, args []string) error { return r.show(args[0]) },
	}
	show.Flags().StringVar(&r.section, "section", "", "print only the section under this heading")
	cmd.AddCommand(list, show)
	return cmd
}

func (r *runbookCmd) list() error {
	all := runbooks.List()
	if r.app.global.output == "json" {
		type entry struct {
			Name  string `json:"name"`
			Title string `json:"title"`
		}
		out := make([]entry, 0, len(all))
		for _, rb := range all {
			out = append(out, entry{rb.Name, rb.Title})
		}
		return r.app.printJSON(out)
	}
	tw := tabwriter.NewWriter(r.app.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tTITLE")
	for _, rb := range all {
		fmt.Fprintf(tw, "%s\t%s\n", rb.Name, rb.Title)
	}
	return tw.Flush()
}

func (r *runbookCmd) show(name string) error {
	rb, err := runbooks.Get(name)
	if err != nil {
		return usagef("%v", err)
	}
	body := rb.Body
	if r.section != "" {
		sec, ok := rb.Section(r.section)
		if !ok {
			return usagef("runbook %s has no section %q; its sections: %s", rb.Name, r.section, strings.Join(quoteAll(rb.Headings()), ", "))
		}
		body = "## " + r.section + "\n\n" + sec + "\n"
	}
	if r.app.global.output == "json" {
		out := map[string]string{"name": rb.Name, "title": rb.Title, "body": body}
		if r.section != "" {
			out["section"] = r.section
		}
		return r.app.printJSON(out)
	}
	if r.app.useColor(r.app.stdout) {
		if tr, err := glamour.NewTermRenderer(glamour.WithStandardStyle("dark"), glamour.WithWordWrap(100)); err == nil {
			if out, err := tr.Render(body); err == nil {
				body = out
			}
		}
	}
	_, err = fmt.Fprint(r.app.stdout, body)
	return err
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strconv.Quote(s)
	}
	return out
}
