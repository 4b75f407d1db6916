package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/engram-ops/engram-ops/ops/server"
	"github.com/spf13/cobra"
)

// Exit codes.
const (
	exitOK        = 0
	exitFailed    = 1
	exitUsage     = 2
	exitNotPassed = 3
)

// Main runs engram-ops with args (without the program name) and returns the
// exit code. It never calls os.Exit; cancelling ctx stops long-running
// commands gracefully.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return newApp(stdin, stdout, stderr, os.Getenv).run(ctx, args)
}

// app holds what every command shares: I/O, the environment, build info and
// the global flags.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	build          server.BuildInfo
	global         globalFlags

	// onServing is called with the bound address once serve is serving
	// (in-process end-to-end tests use it to learn a :0 address).
	onServing func(addr net.Addr)
	// notifyReload subscribes ch to the reload signal (SIGHUP) and returns
	// what unsubscribes it; set by main, nil in tests.
	notifyReload func(ch chan<- os.Signal) (stop func())
}

type globalFlags struct {
	output string // table | json
	quiet  bool
}

func newApp(stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) *app {
	return &app{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv, build: buildInfo()}
}

// buildInfo reads the version from -ldflags -X (main.version,
// main.revision), else from the binary's embedded build information.
func buildInfo() server.BuildInfo {
	info := server.BuildInfo{Version: version, Revision: revision, GoVersion: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if info.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			info.Version = bi.Main.Version
		}
		var modified bool
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if info.Revision == "" {
					info.Revision = s.Value
				}
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if modified && info.Revision != "" && revision == "" {
			info.Revision += "-dirty"
		}
	}
	if info.Version == "" {
		info.Version = "dev"
	}
	if info.Revision == "" {
		info.Revision = "unknown"
	}
	return info
}

// run builds the command tree, executes it and maps the outcome to an exit
// code. It is the one exit point of every command.
func (a *app) run(ctx context.Context, args []string) int {
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	err := root.ExecuteContext(ctx)
	return a.exitCode(root, err)
}

// usageError is a mistake in how the command was invoked (exit 2).
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return &usageError{fmt.Errorf(format, args...)} }

// checkFailed means a check ran and did not pass (exit 3). Its details were
// already printed.
type checkFailed struct{ msg string }

func (e *checkFailed) Error() string { return e.msg }

func (a *app) exitCode(root *cobra.Command, err error) int {
	if err == nil {
		return exitOK
	}
	var cf *checkFailed
	if errors.As(err, &cf) {
		if !a.global.quiet {
			fmt.Fprintln(a.stderr, cf.msg)
		}
		return exitNotPassed
	}
	var ue *usageError
	if errors.As(err, &ue) || isCobraUsageError(err) {
		fmt.Fprintf(a.stderr, "Error: %v\nTry: %s --help\n", err, commandPath(root, err))
		return exitUsage
	}
	fmt.Fprintf(a.stderr, "Error: %v\n", err)
	return exitFailed
}

// isCobraUsageError recognises the usage errors cobra raises before any of
// our code runs (flag and argument errors are already wrapped as
// usageError by the flag error func and wrapErrors).
func isCobraUsageError(err error) bool {
	msg := err.Error()
	return strings.HasPrefix(msg, "unknown command ") || strings.HasPrefix(msg, "required flag(s) ")
}

// commandPath names the subcommand for the "Try:" hint.
func commandPath(root *cobra.Command, err error) string {
	var ce *cmdError
	if errors.As(err, &ce) {
		return ce.cmd.CommandPath()
	}
	return root.Name()
}

// cmdError remembers which command failed.
type cmdError struct {
	cmd *cobra.Command
	err error
}

func (e *cmdError) Error() string { return e.err.Error() }
func (e *cmdError) Unwrap() error { return e.err }

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "engram-ops",
		Short: "The Engram memory store and its operations toolkit",
		Long: `engram-ops is one binary that runs the Engram memory store for AI agents and
everything an operator needs around it.

An agent remembers text (with an optional embedding, confidence and tags) and later
recalls it by a cue, getting back the closest memories plus memories reached through
associations (spreading activation). Memories fade with time and can be forgotten.
Spaces (the X-Memory-Space header) isolate tenants.

With no configuration at all, "engram-ops serve" keeps its data in ./engram-data,
listens on 127.0.0.1:7432 and embeds text with the built-in hashing embedder.`,
		Example: `  # Serve with the defaults (./engram-data, http://127.0.0.1:7432)
  engram-ops serve

  # Check a configuration file
  engram-ops validate config engram.toml

  # Version as JSON
  engram-ops version --output json`,
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			switch a.global.output {
			case "table", "json":
			default:
				return &cmdError{cmd: cmd, err: usagef("invalid output format %q: --output must be table or json", a.global.output)}
			}
			return nil
		},
	}
	root.CompletionOptions.DisableDefaultCmd = true
	var showVersion bool
	root.Flags().BoolVar(&showVersion, "version", false, "print the version, as engram-ops version does")
	root.Args = cobra.NoArgs
	root.RunE = func(cmd *cobra.Command, _ []string) error {
		if showVersion {
			return newVersionCmd(a).print()
		}
		return cmd.Help()
	}
	pf := root.PersistentFlags()
	pf.StringVarP(&a.global.output, "output", "o", "table", "output format: table or json (json is a stable contract)")
	pf.BoolVarP(&a.global.quiet, "quiet", "q", false, "print only errors and requested data")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return &cmdError{cmd: cmd, err: &usageError{err}}
	})
	root.AddCommand(
		newServeCmd(a).command(),
		newVersionCmd(a).command(),
		newCompletionCmd(a, root).command(),
		newValidateCmd(a).command(),
		newDashboardsCmd(a).command(),
		newBackupCmd(a).command(),
		newRestoreCmd(a).command(),
		newPromoteCmd(a).command(),
		newLoadtestCmd(a).command(),
		newRunbookCmd(a).command(),
		newTuiCmd(a).command(),
		newMigrateCmd(a).command(),
		newApikeyCmd(a).command(),
		newStatusCmd(a).command(),
		newHealthCmd(a).command(),
		newDiagnoseCmd(a).command(),
		newConfigCmd(a).command(),
		newDocsCmd(a, root).command(),
		newCapacityCmd(a).command(),
		newPlacementCmd(a).command(),
		newSpaceCmd(a).command(),
	)
	wrapErrors(root)
	return root
}

// wrapErrors makes every command's error remember the command, for the
// "Try: engram-ops <command> --help" hint.
func wrapErrors(cmd *cobra.Command) {
	if run := cmd.RunE; run != nil {
		cmd.RunE = func(c *cobra.Command, args []string) error {
			if err := run(c, args); err != nil {
				return &cmdError{cmd: c, err: err}
			}
			return nil
		}
	}
	if args := cmd.Args; args != nil {
		cmd.Args = func(c *cobra.Command, a []string) error {
			if err := args(c, a); err != nil {
				return &cmdError{cmd: c, err: &usageError{err}}
			}
			return nil
		}
	}
	for _, c := range cmd.Commands() {
		wrapErrors(c)
	}
}

// printJSON writes v as indented JSON to stdout.
func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// useColor reports whether output to w may use colour: a terminal, and
// NO_COLOR (https://no-color.org) unset.
func (a *app) useColor(w io.Writer) bool {
	return a.getenv("NO_COLOR") == "" && isTerminal(w)
}

// paint wraps s in an ANSI colour when colour is allowed on w.
func (a *app) paint(w io.Writer, color, s string) string {
	if !a.useColor(w) {
		return s
	}
	codes := map[string]string{"red": "31", "green": "32", "yellow": "33", "bold": "1"}
	return "\x1b[" + codes[color] + "m" + s + "\x1b[0m"
}
