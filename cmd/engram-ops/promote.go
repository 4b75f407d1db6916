package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/engram-ops/engram-ops/backup"
)

// promoteCmd is `engram-ops promote`: a stopped follower's data directory
// becomes the primary of its backup target (backup.Archive.PromoteDataDir).
type promoteCmd struct {
	app   *app
	flags backupFlags

	dataDir string
	yes     bool
	dryRun  bool
	force   bool
}

func newPromoteCmd(a *app) *promoteCmd { return &promoteCmd{app: a} }

func (p *promoteCmd) command() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "promote",
		Short: "Make a stopped follower's data directory the primary of a backup target (fenced)",
		Long: `Promote a follower: its data directory becomes the primary of the archive at --target, and
the previous primary is fenced.

With the follower stopped (the data directory is locked as a server locks it), promote applies
the change-log segments it has not applied yet, up to the newest shipped change that head.json
on the target names, then claims the archive's next generation: head.json is rewritten with a
conditional write (If-Match on the version read), naming the generation and the first
sequence it owns. The generation is recorded in DIR/backup-generation.json, so a server
started on DIR with --backup-to the same target ships as that generation.

From then on the previous primary's next head.json write fails: it stops shipping for good,
reports "fenced" (status, the backup_fencing health check, engram_backup_fenced), and every
reader (restore, verify, followers) ignores what it wrote after the promotion.

A follower that cannot catch up to head.json (a segment is missing) is refused, because
promoting it would discard shipped changes; --force promotes it where it is and discards
them from the archive's history. --dry-run reports the sequence the follower would reach, the
newest shipped sequence and the generation it would claim, writing nothing. Without
--dry-run, --yes is required.`,
		Example: `  # What a promotion would do
  engram-ops promote --data-dir /var/lib/engram --target s3://my-bucket/engram --dry-run

  # Promote, then start the new primary
  engram-ops promote --data-dir /var/lib/engram --target s3://my-bucket/engram --yes
  engram-ops serve --data-dir /var/lib/engram --backup-to s3://my-bucket/engram`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return p.run(cmd.Context()) },
	}
	f := cmd.Flags()
	p.flags.addTarget(cmd, "target", "backup target the follower follows")
	f.StringVar(&p.dataDir, "data-dir", "", "the stopped follower's data directory")
	_ = cmd.MarkFlagRequired("data-dir")
	f.BoolVar(&p.yes, "yes", false, "confirm the promotion (it fences the current primary)")
	f.BoolVar(&p.dryRun, "dry-run", false, "show the sequence reached, the newest shipped and the generation to claim; write nothing")
	f.BoolVar(&p.force, "force", false, "promote even if the follower cannot catch up with head.json (its missing shipped changes are discarded)")
	p.flags.addIdentity(cmd)
	return cmd
}

func (p *promoteCmd) run(ctx context.Context) error {
	a := p.app
	if !p.yes && !p.dryRun {
		return usagef("promote fences the current primary of %s: add --yes to confirm (or --dry-run to see what it would do)", p.flags.url)
	}
	ar, err := a.archive(ctx, &p.flags, nil)
	if err != nil {
		return err
	}
	res, err := ar.PromoteDataDir(ctx, p.dataDir, backup.PromoteOptions{Force: p.force, DryRun: p.dryRun})
	if err != nil {
		if errors.Is(err, backup.ErrNotCaughtUp) {
			return &checkFailed{msg: err.Error()}
		}
		return fmt.Errorf("promote failed: %w", err)
	}
	if a.global.output == "json" {
		return a.printJSON(res)
	}
	if a.global.quiet {
		return nil
	}
	reached := res.EngineSequence + uint64(res.Replayed)
	verb := map[bool]string{true: "would promote", false: "promoted"}[res.DryRun]
	fmt.Fprintf(a.stdout, "%s %s on %s\n", verb, res.DataDir, res.Target)
	fmt.Fprintf(a.stdout, "  applied     sequence %d + %d changes from the archive = %d\n", res.EngineSequence, res.Replayed, reached)
	fmt.Fprintf(a.stdout, "  head        sequence %d (generation %d)\n", res.HeadSequence, res.PreviousGeneration)
	fmt.Fprintf(a.stdout, "  generation  %d, from sequence %d\n", res.Generation, res.FirstSequence)
	if res.Discarded > 0 {
		fmt.Fprintf(a.stdout, "  discarded   %d shipped changes after sequence %d (--force)\n", res.Discarded, res.AppliedSequence)
	}
	if res.Recorded != "" {
		fmt.Fprintf(a.stdout, "  recorded    %s\n", res.Recorded)
		fmt.Fprintf(a.stdout, "next: engram-ops serve --data-dir %s --backup-to %s\n", res.DataDir, p.flags.url)
	}
	return nil
}
