package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/engram-ops/engram-ops/core"
)

// RestoreOptions choose what to restore and where.
type RestoreOptions struct {
	DataDir    string
	ToTime     time.Time // zero: no time bound
	ToSequence uint64    // 0: no sequence bound
	SnapshotID string    // "" picks the newest snapshot at or before the target
	Force      bool      // move a non-empty DataDir aside (DataDir.old-<timestamp>) instead of refusing
	// DryRun plans and predicts without writing: the snapshot's files are
	// not downloaded, the segments are read and checked to count the
	// changes a restore would replay and the sequence it would reach.
	DryRun bool
	// SnapshotOnly restores the snapshot without replaying any segment.
	SnapshotOnly bool
}

// RestoreReport is what a restore did. Its JSON form is the stable output
// of `engram-ops restore --output json`.
type RestoreReport struct {
	Target           string    `json:"target"`
	DataDir          string    `json:"data_dir"`
	DryRun           bool      `json:"dry_run"`
	Snapshot         string    `json:"snapshot"`
	SnapshotSequence uint64    `json:"snapshot_sequence"`
	Files            int       `json:"files"`
	DownloadedBytes  int64     `json:"downloaded_bytes"`
	Segments         []string  `json:"segments"`
	ChangesApplied   int       `json:"changes_applied"`
	Sequence         uint64    `json:"sequence"`                  // last sequence in the restored data
	LastChangeTime   time.Time `json:"last_change_time,omitzero"` // commit time of that change
	NewestShipped    uint64    `json:"newest_shipped_sequence"`   // per head.json, or the newest on the target without one
	MovedAside       string    `json:"moved_aside,omitempty"`     // where --force moved the old directory
	Seconds          float64   `json:"seconds"`                   // measured restore time
	Spaces           []Space   `json:"spaces,omitempty"`          // counts after restore
	// Warnings name what the restore passed over, e.g. a newer snapshot
	// whose manifest could not be read.
	Warnings []string `json:"warnings,omitempty"`
}

// restorePlan is the snapshot and segments a restore needs.
type restorePlan struct {
	manifest *Manifest
	segments []SegmentInfo
	newest   uint64
	warnings []string // newer snapshots passed over, and why
	// read is the segment the manifest's cross-check already downloaded
	// and decoded (nil if none), which the replay then need not read again.
	read *readSegment
}

// readSegment is a segment downloaded and decoded by ReadSegment.
type readSegment struct {
	key     string
	changes []core.Change
}

func (o RestoreOptions) describeTarget() string {
	var parts []string
	if !o.ToTime.IsZero() {
		parts = append(parts, "time "+o.ToTime.UTC().Format(time.RFC3339Nano))
	}
	if o.ToSequence > 0 {
		parts = append(parts, fmt.Sprintf("sequence %d", o.ToSequence))
	}
	if len(parts) == 0 {
		return "the newest shipped change"
	}
	return strings.Join(parts, " and ")
}

// plan picks the snapshot and the segments.
func (a *Archive) plan(ctx context.Context, o RestoreOptions) (*restorePlan, error) {
	snaps, err := a.Snapshots(ctx)
	if err != nil {
		return nil, err
	}
	if len(snaps) == 0 {
		return nil, fmt.Errorf("no snapshot on %s. Try: engram-ops backup list --from %s (is the URL right?)", a.Target(), a.Target())
	}
	fits := func(m *Manifest) bool {
		if o.ToSequence > 0 && m.Sequence > o.ToSequence {
			return false
		}
		// A snapshot holds the state as of its last change; an empty one
		// (sequence 0) as of its creation.
		asOf := m.LastChange
		if m.Sequence == 0 {
			asOf = m.Created
		}
		if !o.ToTime.IsZero() && asOf.After(o.ToTime) {
			return false
		}
		return true
	}
	p := &restorePlan{}
	lc := &lastChangeCheck{a: a}
	if o.SnapshotID != "" {
		m, err := a.Manifest(ctx, o.SnapshotID)
		if err == nil {
			err = lc.check(ctx, m)
		}
		if err != nil {
			return nil, err
		}
		if !fits(m) {
			return nil, fmt.Errorf("snapshot %s (sequence %d, last change %s) is after the restore target %s. Try: an older --snapshot, or omit --snapshot",
				m.ID, m.Sequence, m.LastChange.Format(time.RFC3339), o.describeTarget())
		}
		p.manifest = m
	} else {
		type unreadable struct {
			id  string
			err error
		}
		var bad []unreadable
		for i := len(snaps) - 1; i >= 0; i-- {
			s := snaps[i]
			if s.Err != nil {
				if errors.Is(s.Err, ErrNewerFormat) {
					return nil, s.Err
				}
				bad = append(bad, unreadable{s.ID, s.Err})
				continue
			}
			if fits(s.Manifest) {
				if err := lc.check(ctx, s.Manifest); err != nil {
					bad = append(bad, unreadable{s.ID, err})
					continue
				}
				p.manifest = s.Manifest
				break
			}
		}
		if p.manifest != nil {
			for _, b := range bad {
				p.warnings = append(p.warnings, fmt.Sprintf("snapshot %s was skipped: its manifest is unreadable or contradicts the change log (%v); restoring from the older snapshot %s", b.id, b.err, p.manifest.ID))
			}
		}
		if p.manifest == nil {
			oldest := snaps[0]
			msg := fmt.Sprintf("no snapshot at or before %s on %s; the oldest snapshot is %s (sequence %d)", o.describeTarget(), a.Target(), oldest.ID, oldest.Sequence)
			if oldest.Manifest != nil && !oldest.Manifest.LastChange.IsZero() {
				msg += fmt.Sprintf(", last change %s", oldest.Manifest.LastChange.Format(time.RFC3339))
			}
			if len(bad) > 0 {
				var names []string
				for _, b := range bad {
					names = append(names, fmt.Sprintf("%s (%v)", b.id, b.err))
				}
				msg += "; unreadable: " + strings.Join(names, "; ")
			}
			return nil, errors.New(msg + ". Try: a later --to-time / --to-sequence")
		}
	}
	segs, err := lc.segs, error(nil)
	if !lc.listed {
		if segs, err = a.Segments(ctx); err != nil {
			return nil, err
		}
	}
	if lc.readFor == p.manifest {
		p.read = &lc.read
	}
	if o.SnapshotOnly {
		p.newest = p.manifest.Sequence
		return p, nil
	}
	if n := len(segs); n > 0 {
		p.newest = segs[n-1].End()
	}
	if p.newest < p.manifest.Sequence {
		p.newest = p.manifest.Sequence
	}
	if o.ToSequence > 0 && o.ToSequence > p.newest {
		return nil, fmt.Errorf("target sequence %d is beyond the newest shipped change %d on %s", o.ToSequence, p.newest, a.Target())
	}
	next := p.manifest.Sequence + 1
	for _, s := range segs {
		if o.ToSequence > 0 && next > o.ToSequence {
			break
		}
		if s.End() < next {
			continue // covered by the snapshot or an earlier segment
		}
		if s.First > next {
			return nil, fmt.Errorf("change-log segment missing: sequences %d-%d are not on %s (needed to replay from snapshot %s). Try: restore to a time before the gap with --to-sequence %d, or from a later snapshot",
				next, s.First-1, a.Target(), p.manifest.ID, next-1)
		}
		p.segments = append(p.segments, s)
		next = s.End() + 1
	}
	if o.ToSequence > 0 && next <= o.ToSequence {
		return nil, fmt.Errorf("change-log segment missing: sequences %d-%d are not on %s", next, o.ToSequence, a.Target())
	}
	return p, nil
}

// lastChangeCheck cross-checks manifests' LastChange against the change
// log while planning: when a segment on the target holds change
// m.Sequence, it must have been committed at m.LastChange. A manifest whose
// LastChange were earlier than the truth would be picked for a --to-time
// its snapshot does not fit, restoring changes made after that time.
type lastChangeCheck struct {
	a      *Archive
	segs   []SegmentInfo
	listed bool
	// read is the segment the last successful check read, readFor the
	// manifest it confirmed.
	read    readSegment
	readFor *Manifest
}

func (l *lastChangeCheck) check(ctx context.Context, m *Manifest) error {
	if m.Sequence == 0 {
		return nil
	}
	if !l.listed {
		// A listing that fails leaves the check undone; the plan lists
		// the segments again and reports the failure.
		segs, err := l.a.Segments(ctx)
		if err != nil {
			return nil
		}
		l.segs, l.listed = segs, true
	}
	for _, s := range l.segs {
		if s.First > m.Sequence || s.End() < m.Sequence {
			continue
		}
		// An unreadable segment is reported by the replay that needs it
		// (and by verify); it cannot confirm or refute the manifest.
		_, changes, err := l.a.ReadSegment(ctx, s)
		if err != nil {
			l.a.log.Warn("cannot cross-check a manifest's last change", "snapshot", m.ID, "segment", s.Key, "err", err)
			return nil
		}
		if c := changes[m.Sequence-s.First]; !c.Time.Equal(m.LastChange) {
			return fmt.Errorf("%w: snapshot %s: the manifest says change %d was committed at %s, but %s holds it committed at %s",
				ErrCorrupt, m.ID, m.Sequence, m.LastChange.UTC().Format(time.RFC3339Nano), s.Key, c.Time.UTC().Format(time.RFC3339Nano))
		}
		l.read, l.readFor = readSegment{s.Key, changes}, m
		return nil
	}
	return nil
}

// IncompleteRestoreError is returned, with the report, by a restore that
// wrote the newest state the target holds when that is short of what
// head.json says was shipped (or head.json is unreadable, so it cannot
// tell): the data directory is restored, but changes are missing from
// the target. The CLI exits 3 with it.
type IncompleteRestoreError struct {
	Reached uint64 // sequence restored
	Shipped uint64 // newest shipped sequence per head.json (0 with HeadErr)
	HeadErr error  // head.json could not be read
}

func (e *IncompleteRestoreError) Error() string {
	if e.HeadErr != nil {
		return fmt.Sprintf("restore reached sequence %d, but whether that is the newest shipped change is unknown: %v", e.Reached, e.HeadErr)
	}
	return fmt.Sprintf("restore incomplete: reached %d, shipped %d (%s): changes %d-%d are not on the target; the data directory holds the newest state the target has",
		e.Reached, e.Shipped, headKey, e.Reached+1, e.Shipped)
}

// Restore restores into o.DataDir: download and verify the snapshot into a
// temporary sibling directory, replay segments up to the target, then rename
// into place. Any failure removes the temporary directory and leaves
// DataDir untouched. A DataDir holding an engine is locked as a server
// locks it, from before it is inspected until it was moved aside, so a
// restore never replaces the directory of a running server
// (DATA_DIR_IN_USE); a dry run takes the lock too, to predict that refusal.
func (a *Archive) Restore(ctx context.Context, o RestoreOptions) (rep *RestoreReport, err error) {
	start := time.Now()
	if o.DataDir == "" {
		return nil, errors.New("no data directory given. Try: --data-dir DIR")
	}
	dest, err := filepath.Abs(o.DataDir)
	if err != nil {
		return nil, err
	}
	if st, serr := os.Stat(filepath.Join(dest, "db")); serr == nil && st.IsDir() {
		release, err := core.LockDataDir(dest)
		if err != nil {
			return nil, err
		}
		defer func() {
			if rerr := release(); rerr != nil && err == nil {
				err = fmt.Errorf("unlock %s: %w", dest, rerr)
			}
		}()
	}
	nonEmpty, err := dirNonEmpty(dest)
	if err != nil {
		return nil, err
	}
	if nonEmpty && !o.Force {
		return nil, fmt.Errorf("data directory %s is not empty; restore only writes into an empty directory. Try: another --data-dir, or --force to move it aside to %s.old-<timestamp>", dest, dest)
	}
	p, err := a.plan(ctx, o)
	if err != nil {
		a.obs.Error("restore")
		return nil, err
	}
	rep = &RestoreReport{Target: a.Target(), DataDir: dest, DryRun: o.DryRun, Snapshot: p.manifest.ID,
		SnapshotSequence: p.manifest.Sequence, Files: len(p.manifest.Files), NewestShipped: p.newest,
		Sequence: p.manifest.Sequence, LastChangeTime: p.manifest.LastChange, Segments: []string{},
		Warnings: p.warnings}
	for _, s := range p.segments {
		rep.Segments = append(rep.Segments, s.Key)
	}
	for _, w := range p.warnings {
		a.log.Warn("restore passes over a snapshot", "target", a.Target(), "warning", w)
		a.progress(Event{Op: "restore", Stage: "warning", Message: w})
	}
	var (
		head    *Head
		headErr error
	)
	if !o.SnapshotOnly {
		if head, headErr = a.Head(ctx); head != nil && head.Sequence > rep.NewestShipped {
			rep.NewestShipped = head.Sequence
		}
	}
	if o.DryRun {
		// The same segment walk as the replay, applying nothing: the
		// changes and sequence predicted are the ones a restore reaches.
		if err := a.walkSegments(ctx, p, o, rep, nil); err != nil {
			a.obs.Error("restore")
			return nil, err
		}
		rep.Spaces = p.manifest.Spaces
		rep.Seconds = time.Since(start).Seconds()
		return rep, a.shortOf(o, p, rep.Sequence, head, headErr)
	}
	// The snapshot and the engine's reserve must fit: say so before
	// downloading rather than after.
	if err := core.CheckFreeSpace(dest, p.manifest.PlainBytes(), a.engineOptions()); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dest), filepath.Base(dest)+".restore-tmp-")
	if err != nil {
		return nil, fmt.Errorf("create temporary directory next to %s: %w", dest, err)
	}
	ok := false
	defer func() {
		if !ok {
			_ = os.RemoveAll(tmp)
		}
	}()
	if err := a.download(ctx, p.manifest, tmp, rep); err != nil {
		a.obs.Error("restore")
		return nil, err
	}
	if err := a.replay(ctx, tmp, p, o, rep); err != nil {
		a.obs.Error("restore")
		return nil, err
	}
	// Into place.
	if nonEmpty {
		aside := fmt.Sprintf("%s.old-%s", dest, time.Now().UTC().Format("20060102T150405Z"))
		if err := os.Rename(dest, aside); err != nil {
			return nil, fmt.Errorf("move %s aside: %w", dest, err)
		}
		rep.MovedAside = aside
	} else if _, err := os.Stat(dest); err == nil {
		if err := os.Remove(dest); err != nil {
			return nil, fmt.Errorf("replace empty %s: %w", dest, err)
		}
	}
	if err := os.Rename(tmp, dest); err != nil {
		if rep.MovedAside != "" {
			_ = os.Rename(rep.MovedAside, dest)
			rep.MovedAside = ""
		}
		return nil, fmt.Errorf("move restored data into %s: %w", dest, err)
	}
	ok = true
	rep.Seconds = time.Since(start).Seconds()
	a.progress(Event{Op: "restore", Stage: "done", Message: fmt.Sprintf("restored %s to sequence %d in %.2fs", dest, rep.Sequence, rep.Seconds)})
	return rep, a.shortOf(o, p, rep.Sequence, head, headErr)
}

// shortOf returns an IncompleteRestoreError when a restore that ran out of
// changes at reached (the end of the target's change log) should have gone
// further: head.json names a later shipped change that the restore target
// admits, or head.json is unreadable while restoring to the newest change.
// A restore bounded by --to-sequence or --to-time below the head is not short.
func (a *Archive) shortOf(o RestoreOptions, p *restorePlan, reached uint64, head *Head, headErr error) error {
	if o.SnapshotOnly || reached < p.newest {
		return nil
	}
	if headErr != nil {
		if o.ToSequence == 0 && o.ToTime.IsZero() {
			a.obs.Error("restore")
			return &IncompleteRestoreError{Reached: reached, HeadErr: headErr}
		}
		return nil
	}
	if head == nil || head.Sequence <= reached ||
		(o.ToSequence > 0 && o.ToSequence < head.Sequence) || (!o.ToTime.IsZero() && head.LastChange.After(o.ToTime)) {
		return nil
	}
	a.obs.Error("restore")
	return &IncompleteRestoreError{Reached: reached, Shipped: head.Sequence}
}

// download fetches and verifies every file of m into dir.
func (a *Archive) download(ctx context.Context, m *Manifest, dir string, rep *RestoreReport) error {
	total := m.PlainBytes()
	var (
		mu   sync.Mutex
		done int64
	)
	all := make([]int, len(m.Files))
	for i := range all {
		all[i] = i
	}
	return forEachParallel(ctx, a.opts.Parallel, all, func(ctx context.Context, i int) error {
		f := &m.Files[i]
		n, err := a.fetchFile(ctx, m, f, filepath.Join(dir, filepath.FromSlash(f.Path)))
		mu.Lock()
		rep.DownloadedBytes += n
		done += f.Size
		d := done
		mu.Unlock()
		a.progress(Event{Op: "restore", Stage: "download", Message: f.Path, Done: d, Total: total})
		return err
	})
}

// fetchFile downloads one file, checking stored size, plain size and sha256.
func (a *Archive) fetchFile(ctx context.Context, m *Manifest, f *File, dst string) (int64, error) {
	r, err := a.store.Get(ctx, f.Key)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return 0, fmt.Errorf("%w: snapshot %s: object %s (%s) is missing on %s", ErrCorrupt, m.ID, f.Key, f.Path, a.Target())
		}
		return 0, fmt.Errorf("download %s: %w", f.Key, err)
	}
	defer r.Close()
	cr := &countingReader{r: r}
	pr, err := a.codec.openReader(cr, m.Encryption)
	if err != nil {
		return 0, fmt.Errorf("snapshot %s: %s: %w", m.ID, f.Key, err)
	}
	defer pr.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return 0, err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return 0, err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, h), io.LimitReader(pr, f.Size+1))
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return cr.n, fmt.Errorf("%w: snapshot %s: %s (%s): %v", ErrCorrupt, m.ID, f.Key, f.Path, err)
	}
	if n != f.Size {
		return cr.n, fmt.Errorf("%w: snapshot %s: %s (%s) does not match its checksum (got %d bytes, want %d)", ErrCorrupt, m.ID, f.Key, f.Path, n, f.Size)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != f.SHA256 {
		return cr.n, fmt.Errorf("%w: snapshot %s: %s (%s) does not match its checksum (%d bytes as expected, but sha256 %.12s… instead of %.12s…)", ErrCorrupt, m.ID, f.Key, f.Path, n, got, f.SHA256)
	}
	return cr.n, nil
}

// replay opens the restored snapshot and applies segments up to the target.
func (a *Archive) replay(ctx context.Context, dir string, p *restorePlan, o RestoreOptions, rep *RestoreReport) (err error) {
	eng, err := core.Open(dir, a.engineOptions())
	if err != nil {
		return fmt.Errorf("open the restored snapshot %s: %w", p.manifest.ID, err)
	}
	defer func() {
		if cerr := eng.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("close restored engine: %w", cerr)
		}
	}()
	if got := eng.LastSequence(); got != p.manifest.Sequence {
		return fmt.Errorf("%w: snapshot %s holds sequence %d, its manifest says %d", ErrCorrupt, p.manifest.ID, got, p.manifest.Sequence)
	}
	if err := a.walkSegments(ctx, p, o, rep, eng.ApplyChanges); err != nil {
		return err
	}
	for _, st := range eng.Spaces() {
		rep.Spaces = append(rep.Spaces, Space{Name: st.Name, Dimension: st.Dimension, Fingerprint: st.Fingerprint,
			Memories: st.Total(), Associations: st.Associations})
	}
	return nil
}

// walkSegments reads p's segments in order and selects the changes up to
// the target, passing each segment's batch to apply (nil: a dry run, which
// only counts), and records in rep the changes, the sequence reached and
// the segments used.
func (a *Archive) walkSegments(ctx context.Context, p *restorePlan, o RestoreOptions, rep *RestoreReport,
	apply func(context.Context, []core.Change) error) error {
	applied := p.manifest.Sequence
	for i, s := range p.segments {
		var changes []core.Change
		if p.read != nil && p.read.key == s.Key {
			changes = p.read.changes
		} else {
			var err error
			if _, changes, err = a.ReadSegment(ctx, s); err != nil {
				return err
			}
		}
		var batch []core.Change
		stop := false
		for _, c := range changes {
			if c.Seq <= applied {
				continue
			}
			if (o.ToSequence > 0 && c.Seq > o.ToSequence) || (!o.ToTime.IsZero() && c.Time.After(o.ToTime)) {
				stop = true
				break
			}
			batch = append(batch, c)
		}
		if len(batch) > 0 {
			if apply != nil {
				if err := apply(ctx, batch); err != nil {
					return fmt.Errorf("replay %s: %w", s.Key, err)
				}
			}
			applied = batch[len(batch)-1].Seq
			rep.ChangesApplied += len(batch)
			rep.LastChangeTime = batch[len(batch)-1].Time.UTC()
		}
		if apply != nil {
			a.progress(Event{Op: "restore", Stage: "replay", Message: s.Key, Done: int64(i + 1), Total: int64(len(p.segments))})
		}
		if stop {
			rep.Segments = rep.Segments[:i+1]
			break
		}
	}
	rep.Sequence = applied
	return nil
}

func dirNonEmpty(dir string) (bool, error) {
	f, err := os.Open(dir)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return false, err
	}
	if !st.IsDir() {
		return true, fmt.Errorf("%s exists and is not a directory", dir)
	}
	names, err := f.Readdirnames(1)
	if err != nil && !errors.Is(err, io.EOF) {
		return false, err
	}
	return len(names) > 0, nil
}
