package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/engram-ops/engram-ops/backup"
	"github.com/engram-ops/engram-ops/runbooks"
)

// restoreCmd is `engram-ops restore`.
type restoreCmd struct {
	app   *app
	flags backupFlags

	dataDir    string
	toTime     string
	toSequence uint64
	snapshot   string
	force      bool
	dryRun     bool
}

func newRestoreCmd(a *app) *restoreCmd { return &restoreCmd{app: a} }

func (r *restoreCmd) command() *cobra.Command {
	long := `Restore a data directory from a backup target: the newest snapshot at or before the
target, then the change log replayed up to exactly --to-time (a change committed after it
is not applied) or --to-sequence. Without either, up to the newest shipped change.

Everything is downloaded, checksummed and replayed in DIR.restore-tmp-XXXX next to DIR and
renamed into place at the end; any failure removes the temporary directory and leaves DIR
untouched. DIR must be empty or absent; --force moves a non-empty DIR aside to
DIR.old-<timestamp> first. Restore the server's directory while the server is stopped: DIR is
locked as a server locks it, and a DIR a running server holds is refused (DATA_DIR_IN_USE).
--dry-run takes the same lock and reads the change-log segments, so it predicts the refusal,
the changes that would be replayed and the sequence the restore would reach.

A snapshot whose manifest fails its digest or its cross-checks is not used: restore falls
back to an older one. When restoring to the newest change (or to a --to-time after it) ends
short of the newest shipped sequence recorded in head.json on the target, the restore still
writes what the target holds, then exits 3 saying which sequence it reached and which was
shipped.`
	if rb, err := runbooks.Get("disaster-recovery"); err == nil {
		long += "\n\n" + rb.Body
	}
	cmd := &cobra.Command{
		Use:   "restore",
		Short: "Restore a data directory from a backup, to a point in time",
		Long:  long,
		Example: `  # Total loss: the newest state that was shipped
  engram-ops restore --from s3://my-bucket/engram --data-dir /var/lib/engram

  # Accidental deletion at 14:03:12: the second before it, into a new directory
  engram-ops restore --from s3://my-bucket/engram --data-dir /var/lib/engram-pitr --to-time 2026-11-27T14:03:11Z

  # What would be restored, without writing anything
  engram-ops restore --from file:///backups/engram --data-dir ./restored --to-sequence 1234 --dry-run --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return r.run(cmd.Context()) },
	}
	f := cmd.Flags()
	r.flags.addTarget(cmd, "from", "backup target")
	f.StringVar(&r.dataDir, "data-dir", "", "directory to restore into (must be empty or absent unless --force)")
	_ = cmd.MarkFlagRequired("data-dir")
	f.StringVar(&r.toTime, "to-time", "", "restore the state as of this instant (RFC 3339, e.g. 2026-11-27T14:03:11Z)")
	f.Uint64Var(&r.toSequence, "to-sequence", 0, "restore up to and including this change-log sequence")
	f.StringVar(&r.snapshot, "snapshot", "", "start from this snapshot id instead of the newest one before the target")
	f.BoolVar(&r.force, "force", false, "move a non-empty --data-dir aside (to DIR.old-<timestamp>) instead of refusing")
	f.BoolVar(&r.dryRun, "dry-run", false, "show the snapshot, segments, changes and sequence a restore would reach (reads the segments); write nothing")
	r.flags.addIdentity(cmd)
	r.flags.addReserve(cmd)
	return cmd
}

func (r *restoreCmd) run(ctx context.Context) error {
	a := r.app
	o := backup.RestoreOptions{DataDir: r.dataDir, ToSequence: r.toSequence, SnapshotID: r.snapshot, Force: r.force, DryRun: r.dryRun}
	if r.toTime != "" {
		t, err := time.Parse(time.RFC3339Nano, r.toTime)
		if err != nil {
			return usagef("--to-time %q: want RFC 3339, e.g. 2026-11-27T14:03:11Z", r.toTime)
		}
		o.ToTime = t
	}
	var progress func(backup.Event)
	if a.global.output != "json" {
		progress = a.progressPrinter()
	}
	ar, err := a.archive(ctx, &r.flags, progress)
	if err != nil {
		return err
	}
	rep, err := ar.Restore(ctx, o)
	// Short of what was shipped: the data is written (it is the best the
	// target holds), the report is printed, and the exit code is 3.
	var short *backup.IncompleteRestoreError
	if errors.As(err, &short) {
		err = &checkFailed{msg: short.Error()}
	} else if err != nil {
		return fmt.Errorf("restore failed; %s was not changed: %w", r.dataDir, err)
	}
	for _, w := range rep.Warnings {
		fmt.Fprintln(a.stderr, "warning: "+w)
	}
	if a.global.output == "json" {
		if perr := a.printJSON(rep); perr != nil {
			return perr
		}
		return err
	}
	if a.global.quiet {
		return err
	}
	last := "-"
	if !rep.LastChangeTime.IsZero() {
		last = rep.LastChangeTime.Format(time.RFC3339Nano)
	}
	if rep.DryRun {
		fmt.Fprintf(a.stdout, "would restore %s from %s\n", rep.DataDir, rep.Target)
		fmt.Fprintf(a.stdout, "  snapshot      %s (sequence %d, %d files)\n", rep.Snapshot, rep.SnapshotSequence, rep.Files)
		fmt.Fprintf(a.stdout, "  would replay  %d changes from %d segments\n", rep.ChangesApplied, len(rep.Segments))
		fmt.Fprintf(a.stdout, "  would reach   sequence %d (last change %s; newest shipped %d)\n", rep.Sequence, last, rep.NewestShipped)
	} else {
		fmt.Fprintf(a.stdout, "restored %s from %s\n", rep.DataDir, rep.Target)
		fmt.Fprintf(a.stdout, "  snapshot  %s (sequence %d, %d files, %d bytes downloaded)\n", rep.Snapshot, rep.SnapshotSequence, rep.Files, rep.DownloadedBytes)
		fmt.Fprintf(a.stdout, "  replayed  %d changes from %d segments\n", rep.ChangesApplied, len(rep.Segments))
		fmt.Fprintf(a.stdout, "  now at    sequence %d (last change %s; newest shipped %d)\n", rep.Sequence, last, rep.NewestShipped)
	}
	var spaces []string
	for _, s := range rep.Spaces {
		spaces = append(spaces, fmt.Sprintf("%s=%d", s.Name, s.Memories))
	}
	switch {
	case len(spaces) == 0:
	case rep.DryRun:
		// The snapshot's counts: the replay changes them.
		fmt.Fprintf(a.stdout, "  snapshot memories  %s\n", strings.Join(spaces, " "))
	default:
		fmt.Fprintf(a.stdout, "  memories  %s\n", strings.Join(spaces, " "))
	}
	if rep.MovedAside != "" {
		fmt.Fprintf(a.stdout, "  previous contents moved to %s\n", rep.MovedAside)
	}
	fmt.Fprintf(a.stdout, "  took      %.2fs\n", rep.Seconds)
	return err
}
