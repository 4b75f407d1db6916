package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/ops/config"
	"github.com/engram-ops/engram-ops/runbooks"
)

// dataCheckSection is the runbook section validate data's long help carries.
var dataCheckSection = runbookRef{"disaster-recovery", "Offline integrity check"}

func (v *validateCmd) dataCommand() *cobra.Command {
	long := `Check a stopped data directory offline: every memory record and vector decodes,
the persisted ANN index against the records (warm memories the index lacks are the
pending backlog the server indexes at start, not damage), every association joins
two memories of its space, the change log has no gap, and each space's next-slot
counter is above every slot in use. The directory's lock is taken first, so a
directory a running server holds is refused, naming the lock file.

--repair applies only the repairs that lose nothing an acknowledged write still
needs (each finding says which, if any); it needs --yes, and --dry-run prints
what it would do and changes nothing. A damaged record or a gap in the change log
has no safe repair: restore from a backup.

--output json prints {"data_dir", "format", "change_log_first", "change_log_last",
"change_log_entries", "spaces": [{"name", "dimension", "memories", "cold",
"vectors", "associations", "next_slot", "indexed", "index_pending", "index_stale",
"graph_file"}], "findings": [{"severity", "check", "space", "key", "problem",
"repair", "repaired"}]}.

Exit status: 0 when no damage is left, 3 when some is, 1 when the directory
cannot be checked (held by a server, not a data directory), 2 a bad flag.`
	if rb, err := runbooks.Get(dataCheckSection.name); err == nil {
		if sec, ok := rb.Section(dataCheckSection.section); ok {
			long += "\n\n" + sec
		}
	}
	cmd := &cobra.Command{
		Use:   "data",
		Short: "Check a stopped data directory's integrity offline, and repair what is safe",
		Long:  long,
		Example: `  engram-ops validate data --data-dir /var/lib/engram
  engram-ops validate data --data-dir /var/lib/engram --repair --dry-run
  engram-ops validate data --data-dir /var/lib/engram --repair --yes --output json`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return v.data() },
	}
	f := cmd.Flags()
	f.StringVar(&v.dataDir, "data-dir", "", "the data directory (default: data_dir of --config, else ./engram-data)")
	f.StringVar(&v.configPath, "config", "", "the server's configuration file, for its data_dir")
	f.BoolVar(&v.repair, "repair", false, "apply the safe repairs (needs --yes, or --dry-run to preview)")
	f.BoolVar(&v.dryRun, "dry-run", false, "with --repair: print what would be repaired; change nothing")
	f.BoolVar(&v.yes, "yes", false, "with --repair: really change the data directory")
	return cmd
}

func (v *validateCmd) data() error {
	a := v.app
	if v.repair && !v.yes && !v.dryRun {
		return usagef("--repair changes the data directory: pass --yes to repair, or --dry-run to see what it would do")
	}
	if (v.yes || v.dryRun) && !v.repair {
		return usagef("--yes and --dry-run go with --repair")
	}
	dir := v.dataDir
	if dir == "" {
		cfg, _, err := config.Load(v.configPath, a.getenv)
		if err != nil {
			return usagef("--config: %v (or give --data-dir)", err)
		}
		dir = cfg.DataDir
	}
	rep, err := core.CheckDataDir(dir, v.repair && !v.dryRun)
	if rep == nil {
		return err
	}
	if a.global.output == "json" {
		if perr := a.printJSON(rep); perr != nil {
			return perr
		}
	} else {
		v.renderData(rep)
	}
	if err != nil {
		return err
	}
	if n := rep.Damaged(); n > 0 {
		msg := fmt.Sprintf("validate data: %d problem(s) in %s", n, dir)
		if !v.repair {
			msg += "; engram-ops validate data --repair --dry-run shows which have a safe repair"
		}
		return &checkFailed{msg: msg + "; runbook: engram-ops runbook show " + dataCheckSection.name + " --section '" + dataCheckSection.section + "'"}
	}
	return nil
}

func (v *validateCmd) renderData(rep *core.DataReport) {
	a := v.app
	w := a.stdout
	if !a.global.quiet {
		fmt.Fprintf(w, "data directory %s (format %s), change log %d..%d (%d entries)\n", rep.Dir, rep.Format, rep.LogFirst, rep.LogLast, rep.LogEntries)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "SPACE\tDIM\tMEMORIES\tCOLD\tVECTORS\tASSOCIATIONS\tINDEXED\tPENDING\tSTALE")
		for _, s := range rep.Spaces {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n", s.Name, s.Dimension, s.Memories, s.Cold, s.Vectors, s.Associations, s.Indexed, s.IndexPending, s.IndexStale)
		}
		_ = tw.Flush()
	}
	for _, f := range rep.Findings {
		label, color := "DAMAGE", "red"
		if f.Severity != core.SeverityDamage {
			label, color = "NOTICE", "yellow"
		}
		where := f.Key
		if f.Space != "" {
			where = "space " + f.Space + ", key " + f.Key
		}
		fmt.Fprintf(w, "%s %s: %s (%s)\n", a.paint(w, color, label), f.Check, f.Problem, where)
		switch {
		case f.Repaired:
			fmt.Fprintf(w, "  %s: %s\n", a.paint(w, "green", "repaired"), f.Repair)
		case f.Repairable() && v.dryRun:
			fmt.Fprintf(w, "  would repair: %s\n", f.Repair)
		case f.Repairable():
			fmt.Fprintf(w, "  repair (--repair): %s\n", f.Repair)
		case f.Repair != "":
			fmt.Fprintf(w, "  repair: %s\n", f.Repair)
		}
	}
	if len(rep.Findings) == 0 && !a.global.quiet {
		fmt.Fprintln(w, a.paint(w, "green", "data OK"))
	}
	if v.dryRun && !a.global.quiet {
		fmt.Fprintln(w, "dry run: nothing was changed. To repair: the same command with --yes instead of --dry-run")
	}
}
