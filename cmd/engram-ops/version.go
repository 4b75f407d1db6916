package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

// versionCmd is `engram-ops version`.
type versionCmd struct{ app *app }

func newVersionCmd(a *app) *versionCmd { return &versionCmd{app: a} }

func (v *versionCmd) command() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, revision and Go version",
		Long: `Print the version, VCS revision and Go version of this binary.

They come from -ldflags "-X main.version=... -X main.revision=..." when the binary
was built that way (make build does), else from the build information Go embeds.
With --output json the keys are version, revision and go_version.`,
		Example: `  engram-ops version
  engram-ops version --output json`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return v.print() },
	}
}

// print writes the version (engram-ops version, engram-ops --version).
func (v *versionCmd) print() error {
	b := v.app.build
	if v.app.global.output == "json" {
		return v.app.printJSON(b)
	}
	tw := tabwriter.NewWriter(v.app.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "version\t%s\n", b.Version)
	fmt.Fprintf(tw, "revision\t%s\n", b.Revision)
	fmt.Fprintf(tw, "go\t%s\n", b.GoVersion)
	return tw.Flush()
}
