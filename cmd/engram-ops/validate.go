package main

import (
	"fmt"

	"github.com/engram-ops/engram-ops/ops/config"
	"github.com/spf13/cobra"
)

// validateCmd is the `engram-ops validate` group.
type validateCmd struct {
	app *app

	// validate data
	dataDir    string
	configPath string
	repair     bool
	dryRun     bool
	yes        bool
}

func newValidateCmd(a *app) *validateCmd { return &validateCmd{app: a} }

func (v *validateCmd) command() *cobra.Command {
	group := &cobra.Command{
		Use:   "validate",
		Short: "Check configuration and other inputs without running anything",
		Example: `  engram-ops validate config engram.toml
  engram-ops validate data --data-dir /var/lib/engram`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	group.AddCommand(&cobra.Command{
		Use:   "config FILE",
		Short: "Check a TOML configuration file and print every problem at once",
		Long: `Check a configuration file as serve would read it: built-in defaults overlaid
with FILE (strictly: unknown keys are errors), then every value checked against
its allowed range. Every problem is printed, each naming the key, the bad value
and what is allowed. The environment and flags are not applied.

Exit status: 0 and "config OK" when the file is valid, 3 when it has problems,
1 when it cannot be read.`,
		Example: `  engram-ops validate config engram.toml
  engram-ops validate config engram.toml --output json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return v.config(args[0]) },
	})
	group.AddCommand(v.dataCommand(), v.deploymentCommand())
	return group
}

// configReport is the --output json shape of validate config.
type configReport struct {
	File     string   `json:"file"`
	OK       bool     `json:"ok"`
	Problems []string `json:"problems"`
}

func (v *validateCmd) config(path string) error {
	cfg := config.Default()
	var problems []error
	if err := cfg.LoadFile(path); err != nil {
		var cp *config.Problem
		ps := config.Problems(err)
		if len(ps) == 1 && !asProblem(ps[0], &cp) {
			return err // unreadable file: the operation failed (exit 1)
		}
		problems = append(problems, ps...)
	}
	problems = append(problems, config.Problems(cfg.Validate())...)
	rep := configReport{File: path, OK: len(problems) == 0, Problems: []string{}}
	for _, p := range problems {
		rep.Problems = append(rep.Problems, p.Error())
	}
	a := v.app
	if a.global.output == "json" {
		if err := a.printJSON(rep); err != nil {
			return err
		}
	} else if rep.OK {
		if !a.global.quiet {
			fmt.Fprintln(a.stdout, a.paint(a.stdout, "green", "config OK")+": "+path)
		}
	} else {
		for _, p := range rep.Problems {
			fmt.Fprintln(a.stdout, a.paint(a.stdout, "red", "problem")+": "+p)
		}
	}
	if !rep.OK {
		return &checkFailed{msg: fmt.Sprintf("%s: %d problem(s); fix them and run engram-ops validate config %s again", path, len(problems), path)}
	}
	return nil
}

func asProblem(err error, target **config.Problem) bool {
	p, ok := err.(*config.Problem)
	if ok {
		*target = p
	}
	return ok
}
