package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/engram-ops/engram-ops/runbooks"
)

// runbookCmd is `engram-ops runbook …`: the runbooks compiled into the
// binary, readable where only the binary is.
type runbookCmd struct {
	app *app
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
		Short: "Print one runbook (Markdown)",
		Example: `  engram-ops runbook show disaster-recovery
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
	if r.app.global.output == "json" {
		return r.app.printJSON(map[string]string{"name": rb.Name, "title": rb.Title, "body": rb.Body})
	}
	_, err = fmt.Fprint(r.app.stdout, rb.Body)
	return err
}
