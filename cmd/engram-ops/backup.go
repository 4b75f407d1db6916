package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"filippo.io/age"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/engram-ops/engram-ops/backup"
	"github.com/engram-ops/engram-ops/backup/target"
	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/ops/api"
	"github.com/engram-ops/engram-ops/ops/client"
	"github.com/engram-ops/engram-ops/ops/config"
	"github.com/engram-ops/engram-ops/ops/server"
)

// backupFlags are the flags every backup and restore command shares.
type backupFlags struct {
	url                  string
	encryptRecipient     []string
	encryptRecipientFile string
	identityFile         string
	minFree              *config.ByteSize // --min-free-space, on commands that open an engine; nil: the default
}

// addReserve adds --min-free-space to a command that opens an engine on
// disk (restore, a snapshot of a data directory, a verify's scratch copy).
func (f *backupFlags) addReserve(cmd *cobra.Command) {
	v := config.Default().MinFreeSpace
	f.minFree = &v
	cmd.Flags().Var(byteSizeFlag{f.minFree}, "min-free-space",
		"free space kept on the filesystem where the engine is opened, as serve's min_free_space: below it the command stops before writing, e.g. 64MiB; 0 = no check")
}

// byteSizeFlag is an config.ByteSize as a flag ("256MiB", "1GB", bytes).
type byteSizeFlag struct{ p *config.ByteSize }

func (b byteSizeFlag) Set(s string) error { return b.p.UnmarshalText([]byte(s)) }
func (b byteSizeFlag) String() string {
	if b.p == nil {
		return ""
	}
	return b.p.String()
}
func (b byteSizeFlag) Type() string { return "size" }

func (f *backupFlags) addTarget(cmd *cobra.Command, name, help string) {
	cmd.Flags().StringVar(&f.url, name, "", help+": s3://bucket/prefix or file:///dir")
	_ = cmd.MarkFlagRequired(name)
}

func (f *backupFlags) addEncrypt(cmd *cobra.Command) {
	cmd.Flags().StringArrayVar(&f.encryptRecipient, "encrypt-recipient", nil, "age public key (age1...) to encrypt to (repeatable)")
	cmd.Flags().StringVar(&f.encryptRecipientFile, "encrypt-recipient-file", "", "file of age public keys, one per line")
}

func (f *backupFlags) addIdentity(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.identityFile, "identity-file", "", "age identity file (from age-keygen) to decrypt an encrypted backup")
}

// archive opens the target with the codec the flags describe.
func (a *app) archive(ctx context.Context, f *backupFlags, progress func(backup.Event)) (*backup.Archive, error) {
	recipients := append([]string(nil), f.encryptRecipient...)
	if f.encryptRecipientFile != "" {
		fh, err := os.Open(f.encryptRecipientFile)
		if err != nil {
			return nil, fmt.Errorf("--encrypt-recipient-file: %w", err)
		}
		rs, err := backup.ParseRecipientsFile(fh)
		fh.Close()
		if err != nil {
			return nil, fmt.Errorf("--encrypt-recipient-file %s: %w", f.encryptRecipientFile, err)
		}
		recipients = append(recipients, rs...)
	}
	var ids []age.Identity
	if f.identityFile != "" {
		fh, err := os.Open(f.identityFile)
		if err != nil {
			return nil, fmt.Errorf("--identity-file: %w", err)
		}
		ids, err = backup.ParseIdentities(fh)
		fh.Close()
		if err != nil {
			return nil, fmt.Errorf("--identity-file %s: %w", f.identityFile, err)
		}
	}
	codec, err := backup.NewCodec(recipients, ids)
	if err != nil {
		return nil, err
	}
	store, err := a.openTarget(ctx, f.url)
	if err != nil {
		return nil, err
	}
	cfg := config.Default()
	if f.minFree != nil {
		cfg.MinFreeSpace = *f.minFree
	}
	return backup.New(store, backup.Options{Codec: codec, Progress: progress,
		EngineOptions: cfg.EngineOptions(nil, cfg.EmbedderFactory(a.getenv))})
}

// openTarget opens file:///dir or s3://bucket/prefix through backup/target
// (S3 settings from ENGRAM_S3_* / AWS_* environment variables).
func (a *app) openTarget(ctx context.Context, raw string) (backup.ObjectStore, error) {
	return target.Open(ctx, raw, target.Options{}, a.getenv)
}

// progressPrinter renders progress events as plain log lines on stderr
// (at most one per second per stage) unless --quiet or --output json.
func (a *app) progressPrinter() func(backup.Event) {
	if a.global.quiet {
		return nil
	}
	last := map[string]time.Time{}
	return func(e backup.Event) {
		k := e.Op + "/" + e.Stage
		if e.Total == 0 || e.Done < e.Total {
			if time.Since(last[k]) < time.Second {
				return
			}
		}
		last[k] = time.Now()
		line := fmt.Sprintf("%s %s: %s", e.Op, e.Stage, e.Message)
		if e.Total > 0 {
			line += fmt.Sprintf(" (%d/%d)", e.Done, e.Total)
		}
		fmt.Fprintln(a.stderr, line)
	}
}

type backupCmd struct {
	app   *app
	flags backupFlags

	dataDir string
	server  string
	level   int
	cache   bool
	noCache bool

	serverTLS tlsClientFlags // of --server

	keep   backup.Retention
	dryRun bool
	yes    bool
}

func newBackupCmd(a *app) *backupCmd { return &backupCmd{app: a} }

func (b *backupCmd) command() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "backup",
		Short: "Snapshots, change-log shipping, verification of backups",
		Long: `Backups live under a target (s3://bucket/prefix or file:///dir): content-addressed engine
files shared between snapshots, one manifest per snapshot, and change-log segments shipped
continuously by "engram-ops serve --backup-to URL". Restore with "engram-ops restore".`,
		Example: `  engram-ops backup create --to file:///backups/engram --data-dir ./engram-data
  engram-ops backup create --server http://127.0.0.1:7432
  engram-ops backup list --from s3://my-bucket/engram
  engram-ops backup verify --from s3://my-bucket/engram --level 2
  engram-ops backup prune --from s3://my-bucket/engram --keep-daily 7 --keep-weekly 4 --keep-monthly 12 --yes`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(b.createCmd(), b.listCmd(), b.inspectCmd(), b.verifyCmd(), b.pruneCmd())
	return cmd
}

func (b *backupCmd) createCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Take a snapshot of a stopped data directory or a running server",
		Long: `Take a snapshot. Of a stopped data directory: --to URL --data-dir DIR (the engine is opened,
checkpointed and closed). Of a running server: --server URL asks the server to snapshot to
its configured --backup-to target (POST /api/v1/admin/backup). Only engine files not yet
stored are uploaded, so every snapshot after the first is incremental. The manifest is
written last: an interrupted snapshot is never listed.`,
		Example: `  engram-ops backup create --to file:///backups/engram --data-dir ./engram-data
  engram-ops backup create --to s3://bucket/engram --data-dir /var/lib/engram --encrypt-recipient age1...
  engram-ops backup create --server http://127.0.0.1:7432
  engram-ops backup create --server https://engram.internal:7432 --ca-file /etc/engram/ca.pem`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return b.create(cmd.Context()) },
	}
	cmd.Flags().StringVar(&b.flags.url, "to", "", "target: s3://bucket/prefix or file:///dir (with --data-dir)")
	cmd.Flags().StringVar(&b.dataDir, "data-dir", "", "stopped data directory to snapshot")
	cmd.Flags().StringVar(&b.server, "server", "", "running server to snapshot through its admin endpoint")
	b.serverTLS.add(cmd.Flags())
	b.flags.addEncrypt(cmd)
	b.flags.addReserve(cmd)
	return cmd
}

func (b *backupCmd) create(ctx context.Context) error {
	a := b.app
	switch {
	case b.server != "" && (b.dataDir != "" || b.flags.url != ""):
		return usagef("--server snapshots to the server's own --backup-to target; do not combine it with --to or --data-dir")
	case b.server != "":
		return b.createRemote(ctx)
	case b.dataDir == "" || b.flags.url == "":
		return usagef("give --to URL and --data-dir DIR (stopped server), or --server URL (running server)")
	}
	ar, err := a.archive(ctx, &b.flags, a.progressPrinter())
	if err != nil {
		return err
	}
	res, err := ar.SnapshotDataDir(ctx, b.dataDir)
	if err != nil {
		return err
	}
	out := snapshotResponse(res, ar.Target())
	return a.printSnapshot(out)
}

func (a *app) printSnapshot(out api.BackupSnapshotResponse) error {
	if a.global.output == "json" {
		return a.printJSON(out)
	}
	if !a.global.quiet {
		fmt.Fprintf(a.stdout, "snapshot %s stored on %s: sequence %d, %d memories, %d files (%d uploaded, %d bytes) in %.2fs\n",
			out.ID, out.Target, out.Sequence, out.Memories, out.Files, out.UploadedFiles, out.UploadedBytes, out.Seconds)
	}
	return nil
}

func (b *backupCmd) createRemote(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(b.server, "/")+api.PathAdminBackup, nil)
	if err != nil {
		return usagef("--server %q: %v", b.server, err)
	}
	hc, err := b.serverTLS.httpClient(b.app)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("ask %s for a snapshot: %w. Try: is the server running? (curl %s/health/ready)", b.server, err, strings.TrimRight(b.server, "/"))
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusCreated {
		var env struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(body, &env) == nil && env.Error.Message != "" {
			return fmt.Errorf("server refused the snapshot (%s): %s", env.Error.Code, env.Error.Message)
		}
		return fmt.Errorf("server answered %s", resp.Status)
	}
	var out api.BackupSnapshotResponse
	if err := json.Unmarshal(body, &out); err != nil {
		return fmt.Errorf("decode server answer: %w", err)
	}
	return b.app.printSnapshot(out)
}

// snapshotRow is one line of `backup list --output json` (a stable contract).
type snapshotRow struct {
	ID          string    `json:"id"`
	Sequence    uint64    `json:"sequence"`
	Created     time.Time `json:"created,omitzero"`
	LastChange  time.Time `json:"last_change,omitzero"`
	Memories    int64     `json:"memories"`
	Files       int       `json:"files"`
	PlainBytes  int64     `json:"plain_bytes"`
	StoredBytes int64     `json:"stored_bytes"`
	Encryption  string    `json:"encryption"`
	Error       string    `json:"error,omitempty"`
}

func (b *backupCmd) listCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List the snapshots and the change-log range of a target",
		Example: `  engram-ops backup list --from s3://my-bucket/engram --output json`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a := b.app
			ar, err := a.archive(cmd.Context(), &b.flags, nil)
			if err != nil {
				return err
			}
			snaps, err := ar.Snapshots(cmd.Context())
			if err != nil {
				return err
			}
			all, err := ar.StoredSegments(cmd.Context())
			if err != nil {
				return err
			}
			// The change log as readers take it (head.json's generations);
			// an unreadable head.json is verify's to report.
			head, _ := ar.Head(cmd.Context())
			segs := backup.SelectSegments(all, head)
			rows := []snapshotRow{}
			for _, s := range snaps {
				r := snapshotRow{ID: s.ID, Sequence: s.Sequence}
				if s.Err != nil {
					r.Error = s.Err.Error()
				} else {
					m := s.Manifest
					r.Created, r.LastChange, r.Memories, r.Files = m.Created, m.LastChange, m.Memories(), len(m.Files)
					r.PlainBytes, r.StoredBytes, r.Encryption = m.PlainBytes(), m.StoredBytes(), m.Encryption.Scheme
				}
				rows = append(rows, r)
			}
			var first, last uint64
			if len(segs) > 0 {
				first, last = segs[0].First, segs[len(segs)-1].End()
			}
			ignored := len(all) - len(segs)
			if a.global.output == "json" {
				return a.printJSON(map[string]any{"target": ar.Target(), "snapshots": rows, "generation": head.Gen(),
					"segments": map[string]any{"count": len(segs), "first_sequence": first, "last_sequence": last, "ignored": ignored}})
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 2, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSEQUENCE\tLAST CHANGE\tMEMORIES\tFILES\tSTORED\tENCRYPTION")
			for _, r := range rows {
				if r.Error != "" {
					fmt.Fprintf(tw, "%s\t%d\tUNREADABLE: %s\t\t\t\t\n", r.ID, r.Sequence, r.Error)
					continue
				}
				fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%d\t%s\n", r.ID, r.Sequence, timeOrDash(r.LastChange, time.RFC3339), r.Memories, r.Files, r.StoredBytes, r.Encryption)
			}
			_ = tw.Flush()
			fmt.Fprintf(a.stdout, "change log: %d segments, sequences %d-%d", len(segs), first, last)
			if g := head.Gen(); g > 1 {
				fmt.Fprintf(a.stdout, " (generation %d)", g)
			}
			if ignored > 0 {
				fmt.Fprintf(a.stdout, "; %d segments ignored (a superseded generation's, or past head.json)", ignored)
			}
			fmt.Fprintln(a.stdout)
			return nil
		},
	}
	b.flags.addTarget(cmd, "from", "target")
	return cmd
}

// timeOrDash formats t, or "-" for the zero time (a snapshot holding no change).
func timeOrDash(t time.Time, layout string) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format(layout)
}

func (b *backupCmd) inspectCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "inspect ID",
		Short:   "Show one snapshot's manifest: counts per space, files, sequence and time covered",
		Example: `  engram-ops backup inspect 20261127T031500Z-00000000000000001234 --from file:///backups/engram`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a := b.app
			ar, err := a.archive(cmd.Context(), &b.flags, nil)
			if err != nil {
				return err
			}
			m, err := ar.Manifest(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if a.global.output == "json" {
				return a.printJSON(m)
			}
			fmt.Fprintf(a.stdout, "snapshot   %s\nsequence   %d\nlast change %s\ncreated    %s\nfiles      %d (%d bytes, %d stored)\ndigest     %s\nencryption %s %s\n",
				m.ID, m.Sequence, timeOrDash(m.LastChange, time.RFC3339Nano), m.Created.Format(time.RFC3339), len(m.Files), m.PlainBytes(), m.StoredBytes(),
				m.ContentDigest, m.Encryption.Scheme, strings.Join(m.Encryption.Recipients, ","))
			tw := tabwriter.NewWriter(a.stdout, 0, 2, 2, ' ', 0)
			fmt.Fprintln(tw, "SPACE\tMEMORIES\tASSOCIATIONS\tDIMENSION\tEMBEDDER")
			for _, s := range m.Spaces {
				fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\n", s.Name, s.Memories, s.Associations, s.Dimension, s.Fingerprint)
			}
			return tw.Flush()
		},
	}
	b.flags.addTarget(cmd, "from", "target")
	return cmd
}

func (b *backupCmd) verifyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check a backup target (levels 1-4); exit 3 when a check fails",
		Long: `Verify a backup target:
  1  every manifest decodes, matches its digest and agrees with its id; every object it
     names is present with its stored size; the change log after the oldest snapshot has
     no gap; head.json (the newest shipped change) matches its digest and that change is
     on the target; verify/last.json matches its digest. Nothing large is downloaded
  2  level 1, plus every file's and segment's checksum (downloads everything), and each
     manifest's last-change time against the change in the segment holding it
  3  level 2, plus a restore of the newest snapshot into a temporary directory whose
     per-space counts, dimensions and embedders must match the manifest
  4  level 3, plus the restored content digest must equal the manifest's, and a restore
     drill: an in-process server is started on the restored data and, in every space, a
     recall over HTTP for a stored memory's content must return that memory (the drill's
     time is reported)
Level 2 reads and checksums every object, and says how many it read. With --cache it
remembers, in a local cache file ($XDG_CACHE_HOME/engram-ops/verify/), every object whose
checksum passed, keyed by key, stored size, modification time and sha256, and skips an
unchanged one for 7 days, saying how many it skipped: quicker for frequent routine runs, but
damage in place that keeps size and modification time passes until the entry expires.
--no-cache is accepted for older scripts and changes nothing. The restore drill of levels 3
and 4 always runs. The result is written to verify/last.json on the target, from
which a server shipping there exports engram_backup_last_verified_timestamp_seconds and
(level 4) engram_backup_last_restore_drill_seconds; with read-only credentials that write
fails with a warning.
Exit codes: 0 passed, 3 a check failed, 1 verification could not run.`,
		Example: `  engram-ops backup verify --from s3://my-bucket/engram --level 2
  engram-ops backup verify --from file:///backups/engram --level 4 --identity-file key.txt --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a := b.app
			if b.level < 1 || b.level > 4 {
				return usagef("--level %d: must be 1, 2, 3 or 4", b.level)
			}
			ar, err := a.archive(cmd.Context(), &b.flags, a.progressPrinter())
			if err != nil {
				return err
			}
			o := backup.VerifyOptions{Level: b.level, Record: true, Drill: serverDrill}
			if b.cache {
				path, err := backup.DefaultVerifyCachePath(ar.Target(), a.getenv)
				if err != nil {
					fmt.Fprintf(a.stderr, "warning: no verify cache (%v): every object is checksummed\n", err)
				} else {
					o.Cache = backup.OpenVerifyCache(path, 0)
				}
			}
			rep, err := ar.VerifyWith(cmd.Context(), o)
			if err != nil {
				return err
			}
			if o.Cache != nil {
				if err := o.Cache.Save(ar.Target()); err != nil {
					rep.Warnings = append(rep.Warnings, "could not save the verify cache: "+err.Error())
				}
			}
			if a.global.output == "json" {
				if err := a.printJSON(rep); err != nil {
					return err
				}
			} else if !a.global.quiet {
				fmt.Fprintf(a.stdout, "verified %s at level %d: %d snapshots, %d files, %d segments in %.2fs\n",
					rep.Target, rep.Level, rep.Snapshots, rep.Files, rep.Segments, rep.Seconds)
				switch {
				case rep.Level < 2:
					fmt.Fprintln(a.stdout, "checksums: no object read at level 1 (level 2 reads and checksums every object)")
				case o.Cache != nil:
					fmt.Fprintf(a.stdout, "checksums: %d objects read and checksummed, %d skipped by --cache (passed within 7 days, key, size and modification time unchanged)\n", rep.Checked, rep.Cached)
				default:
					fmt.Fprintf(a.stdout, "checksums: %d objects read and checksummed, 0 skipped\n", rep.Checked)
				}
				if rep.DrillSeconds > 0 {
					fmt.Fprintf(a.stdout, "restore drill: %.2fs\n", rep.DrillSeconds)
				}
				if rep.Recorded != "" {
					fmt.Fprintf(a.stdout, "result recorded in %s (servers shipping to this target export it)\n", rep.Recorded)
				}
				for _, w := range rep.Warnings {
					fmt.Fprintln(a.stderr, "warning: "+w)
				}
				for _, p := range rep.Problems {
					fmt.Fprintln(a.stdout, a.paint(a.stdout, "red", "FAIL")+" "+p)
				}
			}
			if !rep.OK() {
				return &checkFailed{msg: fmt.Sprintf("backup verification failed: %d problem(s)", len(rep.Problems))}
			}
			return nil
		},
	}
	b.flags.addTarget(cmd, "from", "target")
	b.flags.addIdentity(cmd)
	b.flags.addReserve(cmd)
	cmd.Flags().IntVar(&b.level, "level", 1, "1 presence and sizes, 2 checksums, 3 restore and invariants, 4 restore drill")
	cmd.Flags().BoolVar(&b.cache, "cache", false, "level 2: skip objects that passed within 7 days and are unchanged in key, size and modification time")
	cmd.Flags().BoolVar(&b.noCache, "no-cache", false, "accepted for older scripts: every object is checksummed unless --cache is given")
	cmd.MarkFlagsMutuallyExclusive("cache", "no-cache")
	return cmd
}

func (b *backupCmd) pruneCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "prune",
		Short: "Delete snapshots outside a GFS retention policy, and what only they need",
		Long: `Apply a grandfather-father-son retention policy to a backup target. Each --keep-* rule keeps
the newest snapshot of each of the N most recent periods (UTC days, ISO weeks, months) that
hold a snapshot; --keep-last N keeps the N newest snapshots. The newest readable snapshot is
always kept. Periods are counted among existing snapshots, not back from today, so an archive
whose server stopped snapshotting is not emptied by the passing of time.

What is deleted, in this order so that an interruption leaves every remaining snapshot
restorable (rerun prune to finish):
  1  the manifests of expired snapshots;
  2  engine files (files/<sha256>) no remaining manifest references (files no manifest ever
     referenced are kept for 24h: a snapshot may be uploading them);
  3  change-log segments whose changes are all at or before the oldest kept snapshot
     (the later ones are every kept snapshot's point-in-time window).
An unreadable manifest is kept, and while one exists no engine file is deleted.

Prints the plan (every snapshot, kept or deleted, and why). Deleting needs --yes;
--dry-run prints the plan and deletes nothing.
Exit codes: 0 done, 2 usage (e.g. neither --yes nor --dry-run), 1 failure.`,
		Example: `  engram-ops backup prune --from s3://my-bucket/engram --keep-daily 7 --keep-weekly 4 --keep-monthly 12 --dry-run
  engram-ops backup prune --from file:///backups/engram --keep-daily 7 --keep-weekly 4 --keep-monthly 12 --yes
  engram-ops backup prune --from file:///backups/engram --keep-last 3 --yes --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return b.prune(cmd.Context()) },
	}
	b.flags.addTarget(cmd, "from", "target")
	f := cmd.Flags()
	f.IntVar(&b.keep.KeepDaily, "keep-daily", 0, "keep the newest snapshot of each of the N most recent days that have one")
	f.IntVar(&b.keep.KeepWeekly, "keep-weekly", 0, "keep the newest snapshot of each of the N most recent ISO weeks that have one")
	f.IntVar(&b.keep.KeepMonthly, "keep-monthly", 0, "keep the newest snapshot of each of the N most recent months that have one")
	f.IntVar(&b.keep.KeepLast, "keep-last", 0, "keep the N newest snapshots")
	f.BoolVar(&b.dryRun, "dry-run", false, "print the plan; delete nothing")
	f.BoolVar(&b.yes, "yes", false, "really delete (prune is irreversible)")
	return cmd
}

func (b *backupCmd) prune(ctx context.Context) error {
	a := b.app
	if b.keep.KeepDaily < 0 || b.keep.KeepWeekly < 0 || b.keep.KeepMonthly < 0 || b.keep.KeepLast < 0 {
		return usagef("--keep-* must not be negative")
	}
	if b.keep.Empty() {
		return usagef("give at least one retention rule, e.g. --keep-daily 7 --keep-weekly 4 --keep-monthly 12 (or --keep-last N)")
	}
	if !b.yes && !b.dryRun {
		return usagef("prune deletes backups irreversibly: pass --yes to delete, or --dry-run to see the plan first")
	}
	var progress func(backup.Event)
	if a.global.output != "json" {
		progress = a.progressPrinter()
	}
	ar, err := a.archive(ctx, &b.flags, progress)
	if err != nil {
		return err
	}
	plan, perr := ar.Prune(ctx, backup.PruneOptions{Retention: b.keep, DryRun: b.dryRun})
	if plan == nil {
		return perr
	}
	if a.global.output == "json" {
		if err := a.printJSON(plan); err != nil {
			return err
		}
	} else if !a.global.quiet {
		tw := tabwriter.NewWriter(a.stdout, 0, 2, 2, ' ', 0)
		fmt.Fprintln(tw, "SNAPSHOT\tCREATED\tSEQUENCE\tACTION\tWHY")
		for _, s := range plan.Snapshots {
			action := "keep"
			if !s.Keep {
				action = "delete"
				if plan.DryRun {
					action = "would delete"
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", s.ID, s.Created.Format(time.RFC3339), s.Sequence, action, strings.Join(s.Reasons, ", "))
		}
		_ = tw.Flush()
		fmt.Fprintln(a.stdout, plan.Summary())
		if plan.DryRun {
			fmt.Fprintln(a.stdout, "dry run: nothing was deleted. To delete: the same command with --yes instead of --dry-run")
		}
	}
	if perr != nil {
		return perr
	}
	return nil
}

// serverDrill is verify level 4's service check: an in-process server on
// the restored engine (loopback, ephemeral port, private metrics registry)
// and, per space, a recall over HTTP for one stored memory's content, which
// must return that memory.
func serverDrill(ctx context.Context, eng *core.Engine, m *backup.Manifest) error {
	srv, err := server.New(config.Default(), eng, nil, prometheus.NewRegistry())
	if err != nil {
		return fmt.Errorf("start an in-process server: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen for the drill server: %w", err)
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	defer hs.Close()
	c, err := client.New("http://" + ln.Addr().String())
	if err != nil {
		return err
	}
	for _, s := range m.Spaces {
		if s.Memories == 0 {
			continue
		}
		res, err := eng.List(ctx, s.Name, core.ListOptions{AllTiers: true, Limit: 1})
		if err != nil || len(res.Memories) == 0 {
			return fmt.Errorf("space %s lists no memory: %v", s.Name, err)
		}
		want := res.Memories[0]
		rec, err := c.WithSpace(s.Name).Recall(ctx, api.RecallRequest{Query: want.Content, Deep: true, MaxResults: 10})
		if err != nil {
			return fmt.Errorf("recall in space %s through the server: %w", s.Name, err)
		}
		found := false
		for _, r := range rec.Memories.Vivid {
			found = found || r.ID == want.ID
		}
		if !found {
			return fmt.Errorf("recall in space %s through the server did not return memory %s for its own content", s.Name, want.ID)
		}
	}
	return nil
}
