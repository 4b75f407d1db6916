package backup

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// Retention is a GFS (grandfather-father-son) retention policy. Each Keep*
// counts periods that hold a snapshot, newest first: KeepDaily 7 keeps the
// newest snapshot of each of the 7 most recent UTC days that have one (not
// "of the last 7 calendar days", so an archive whose server stopped
// snapshotting is not emptied by the passing of time). A snapshot kept by
// several rules lists every reason. The newest readable snapshot is always
// kept.
type Retention struct {
	KeepLast    int
	KeepDaily   int
	KeepWeekly  int // ISO weeks
	KeepMonthly int
}

// Empty reports whether the policy keeps nothing beyond the newest snapshot.
func (r Retention) Empty() bool {
	return r.KeepLast <= 0 && r.KeepDaily <= 0 && r.KeepWeekly <= 0 && r.KeepMonthly <= 0
}

// PruneSnapshot is one snapshot in a prune plan.
type PruneSnapshot struct {
	ID       string    `json:"id"`
	Created  time.Time `json:"created"`
	Sequence uint64    `json:"sequence"`
	Keep     bool      `json:"keep"`
	Reasons  []string  `json:"reasons"` // why kept (e.g. "daily 2026-11-27"), or why deleted
	Files    int       `json:"files"`
	// Unreadable is set for a manifest that could not be read: it is kept,
	// and no engine file is deleted while it exists (its references are unknown).
	Unreadable string `json:"unreadable,omitempty"`
}

// PruneObjects summarises the files or segments a prune keeps and deletes.
type PruneObjects struct {
	Kept         int      `json:"kept"`
	KeptBytes    int64    `json:"kept_bytes"`
	Deleted      int      `json:"deleted"`
	DeletedBytes int64    `json:"deleted_bytes"`
	Keys         []string `json:"deleted_keys"`
	Reason       string   `json:"reason,omitempty"`
}

// PrunePlan is what a prune keeps and deletes. Its JSON form is the stable
// output of `engram-ops backup prune --output json`.
type PrunePlan struct {
	Target    string          `json:"target"`
	DryRun    bool            `json:"dry_run"`
	Now       time.Time       `json:"now"`
	Policy    Retention       `json:"policy"`
	Snapshots []PruneSnapshot `json:"snapshots"`
	Files     PruneObjects    `json:"files"`
	Segments  PruneObjects    `json:"segments"`
	// OldestKeptSequence is where the kept PITR window starts: segments
	// holding any later change are kept.
	OldestKeptSequence uint64  `json:"oldest_kept_sequence"`
	Done               bool    `json:"done"` // every planned deletion happened
	Seconds            float64 `json:"seconds"`
}

// PruneOptions configure Prune.
type PruneOptions struct {
	Retention Retention
	DryRun    bool
	// OrphanGrace protects engine files that no manifest references (yet):
	// a snapshot being uploaded right now has stored its files but not its
	// manifest. Such a file is deleted only when older than OrphanGrace
	// (default 24h). Files referenced only by manifests this prune deletes
	// are deleted regardless.
	OrphanGrace time.Duration
}

// retain marks which snapshots the policy keeps. snaps are oldest first;
// the result has a reason list per index (empty: delete).
func (r Retention) retain(snaps []time.Time) [][]string {
	reasons := make([][]string, len(snaps))
	type rule struct {
		name   string
		n      int
		bucket func(time.Time) string
	}
	rules := []rule{
		{"last", r.KeepLast, func(t time.Time) string { return t.Format(time.RFC3339Nano) }},
		{"daily", r.KeepDaily, func(t time.Time) string { return t.Format("2006-01-02") }},
		{"weekly", r.KeepWeekly, func(t time.Time) string { y, w := t.ISOWeek(); return fmt.Sprintf("%04d-W%02d", y, w) }},
		{"monthly", r.KeepMonthly, func(t time.Time) string { return t.Format("2006-01") }},
	}
	for _, ru := range rules {
		if ru.n <= 0 {
			continue
		}
		seen := map[string]bool{}
		for i := len(snaps) - 1; i >= 0 && len(seen) < ru.n; i-- {
			b := ru.bucket(snaps[i].UTC())
			if seen[b] {
				continue
			}
			seen[b] = true
			if ru.name == "last" {
				reasons[i] = append(reasons[i], fmt.Sprintf("last %d", len(seen)))
			} else {
				reasons[i] = append(reasons[i], ru.name+" "+b)
			}
		}
	}
	return reasons
}

// Prune applies a retention policy: it deletes the manifests of expired
// snapshots first, then the engine files no remaining manifest references,
// then the change-log segments that end at or before the oldest kept
// snapshot's sequence. That order means an interruption at any point leaves
// every remaining manifest restorable (and a rerun finishes the job). The
// newest readable snapshot is never deleted, nor any segment holding a
// change after the oldest kept snapshot (its point-in-time window).
//
// A snapshot taken concurrently may reuse a file this prune deletes; the
// snapshot re-checks its reused files after writing its manifest and
// uploads any that vanished (see snapshotCheckpoint).
func (a *Archive) Prune(ctx context.Context, o PruneOptions) (*PrunePlan, error) {
	start := time.Now()
	if o.Retention.Empty() {
		return nil, errors.New("no retention rule given: pruning would keep only the newest snapshot. Try: --keep-daily 7 --keep-weekly 4 --keep-monthly 12 (or --keep-last N)")
	}
	if o.OrphanGrace <= 0 {
		o.OrphanGrace = 24 * time.Hour
	}
	now := a.opts.Now().UTC()
	plan := &PrunePlan{Target: a.Target(), DryRun: o.DryRun, Now: now, Policy: o.Retention, Snapshots: []PruneSnapshot{}}
	plan.Files.Keys, plan.Segments.Keys = []string{}, []string{}

	snaps, err := a.Snapshots(ctx)
	if err != nil {
		return nil, err
	}
	if len(snaps) == 0 {
		return nil, fmt.Errorf("no snapshot on %s: nothing to prune. Try: engram-ops backup list --from %s (is the URL right?)", a.Target(), a.Target())
	}
	// Readable snapshots go through the policy by creation time; the id's
	// time is the creation time to the second, used for unreadable ones.
	type goodSnap struct {
		i int
		t time.Time
	}
	var gs []goodSnap
	for i, s := range snaps {
		if s.Err == nil {
			gs = append(gs, goodSnap{i, s.Manifest.Created})
		}
	}
	if len(gs) == 0 {
		return nil, fmt.Errorf("no readable snapshot on %s; refusing to prune. Try: engram-ops backup verify --from %s", a.Target(), a.Target())
	}
	// By creation time (ids sort the same way, but a policy that deletes
	// data does not rely on it).
	sort.SliceStable(gs, func(x, y int) bool { return gs[x].t.Before(gs[y].t) })
	good := make([]int, len(gs))
	times := make([]time.Time, len(gs))
	for k, g := range gs {
		good[k], times[k] = g.i, g.t
	}
	reasons := o.Retention.retain(times)
	keep := make([][]string, len(snaps))
	for k, i := range good {
		keep[i] = reasons[k]
	}
	newest := good[len(good)-1]
	if len(keep[newest]) == 0 {
		keep[newest] = []string{"newest"}
	} else {
		keep[newest] = append([]string{"newest"}, keep[newest]...)
	}

	unreadable := false
	oldestKept := uint64(0)
	haveKept := false
	referenced := map[string]bool{}
	var doomedManifests []string
	doomedRefs := map[string]bool{}
	for i, s := range snaps {
		ps := PruneSnapshot{ID: s.ID, Sequence: s.Sequence, Reasons: keep[i]}
		if s.Err != nil {
			unreadable = true
			ps.Keep, ps.Unreadable = true, s.Err.Error()
			ps.Created, _, _ = parseSnapshotID(s.ID)
			ps.Reasons = []string{"unreadable manifest (kept; inspect it, delete it by hand if it is garbage)"}
		} else {
			ps.Created, ps.Files = s.Manifest.Created, len(s.Manifest.Files)
			ps.Keep = len(keep[i]) > 0
			if !ps.Keep {
				ps.Reasons = []string{"expired: outside every retention rule"}
				doomedManifests = append(doomedManifests, manifestKey(s.ID))
			}
			for _, f := range s.Manifest.Files {
				if ps.Keep {
					referenced[f.Key] = true
				} else {
					doomedRefs[f.Key] = true
				}
			}
		}
		if ps.Keep && (!haveKept || s.Sequence < oldestKept) {
			oldestKept, haveKept = s.Sequence, true
		}
		plan.Snapshots = append(plan.Snapshots, ps)
	}
	plan.OldestKeptSequence = oldestKept

	// Files.
	fileObjs, err := a.store.List(ctx, filesPrefix)
	if err != nil {
		return nil, fmt.Errorf("list files on %s: %w", a.Target(), err)
	}
	var doomedFiles []string
	for _, f := range fileObjs {
		del := !unreadable && !referenced[f.Key] && (doomedRefs[f.Key] || now.Sub(f.Modified) > o.OrphanGrace)
		if del {
			doomedFiles = append(doomedFiles, f.Key)
			plan.Files.Deleted++
			plan.Files.DeletedBytes += f.Size
			plan.Files.Keys = append(plan.Files.Keys, f.Key)
		} else {
			plan.Files.Kept++
			plan.Files.KeptBytes += f.Size
		}
	}
	switch {
	case unreadable:
		plan.Files.Reason = "an unreadable manifest exists: its files are unknown, so no engine file is deleted"
	default:
		plan.Files.Reason = fmt.Sprintf("deleted: referenced by no kept manifest (unreferenced files younger than %s are kept: a snapshot may be uploading them)", o.OrphanGrace)
	}

	// Segments: those holding only changes at or before the oldest kept
	// snapshot are outside every kept snapshot's PITR window.
	segs, err := a.StoredSegments(ctx)
	if err != nil {
		return nil, err
	}
	// Segments that no generation of the history owns (written by a
	// primary after it was fenced) are read by nobody. The head is read
	// after the listing, so every generation that wrote a listed segment
	// is in its history; without a readable head none is judged orphaned.
	owned := map[string]bool{}
	head, herr := a.Head(ctx)
	for _, s := range selectSegments(segs, head, math.MaxUint64) {
		owned[s.Key] = true
	}
	orphans := 0
	var doomedSegs []string
	for _, s := range segs {
		if orphan := herr == nil && head != nil && !owned[s.Key]; orphan || s.Last <= oldestKept {
			if orphan {
				orphans++
			}
			doomedSegs = append(doomedSegs, s.Key)
			plan.Segments.Deleted++
			plan.Segments.DeletedBytes += s.Size
			plan.Segments.Keys = append(plan.Segments.Keys, s.Key)
		} else {
			plan.Segments.Kept++
			plan.Segments.KeptBytes += s.Size
		}
	}
	plan.Segments.Reason = fmt.Sprintf("deleted: every change in them is at or before sequence %d, the oldest kept snapshot", oldestKept)
	if orphans > 0 {
		plan.Segments.Reason += fmt.Sprintf(", or (%d) written by a superseded generation after it was fenced", orphans)
	}

	if o.DryRun {
		plan.Seconds = time.Since(start).Seconds()
		return plan, nil
	}
	del := func(stage string, keys []string) error {
		for i, k := range keys {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := a.store.Delete(ctx, k); err != nil {
				return fmt.Errorf("prune: delete %s on %s: %w (rerun prune to finish; what remains is restorable)", k, a.Target(), err)
			}
			a.progress(Event{Op: "prune", Stage: stage, Message: k, Done: int64(i + 1), Total: int64(len(keys))})
		}
		return nil
	}
	if err := del("manifests", doomedManifests); err != nil {
		return plan, err
	}
	// A snapshot may have been written since the listing: never delete what
	// a manifest now on the target references.
	if len(doomedFiles) > 0 {
		now, err := a.Snapshots(ctx)
		if err != nil {
			return plan, err
		}
		live := map[string]bool{}
		for _, s := range now {
			if s.Err != nil {
				return plan, fmt.Errorf("prune: snapshot %s became unreadable during prune: %v; no engine file was deleted", s.ID, s.Err)
			}
			for _, f := range s.Manifest.Files {
				live[f.Key] = true
			}
		}
		kept := doomedFiles[:0]
		for _, k := range doomedFiles {
			if !live[k] {
				kept = append(kept, k)
			}
		}
		if len(kept) != len(doomedFiles) {
			plan.Files.Keys = append([]string(nil), kept...)
			plan.Files.Deleted = len(kept)
		}
		doomedFiles = kept
	}
	if err := del("files", doomedFiles); err != nil {
		return plan, err
	}
	if err := del("segments", doomedSegs); err != nil {
		return plan, err
	}
	plan.Done = true
	plan.Seconds = time.Since(start).Seconds()
	a.log.Info("backup pruned", "target", a.Target(), "snapshots_deleted", len(doomedManifests),
		"files_deleted", len(doomedFiles), "segments_deleted", len(doomedSegs))
	return plan, nil
}

// KeptIDs lists the ids of the snapshots the plan keeps.
func (p *PrunePlan) KeptIDs() []string {
	var out []string
	for _, s := range p.Snapshots {
		if s.Keep {
			out = append(out, s.ID)
		}
	}
	return out
}

// Summary is a one-line description of the plan.
func (p *PrunePlan) Summary() string {
	var kept, deleted int
	for _, s := range p.Snapshots {
		if s.Keep {
			kept++
		} else {
			deleted++
		}
	}
	verb := "deleted"
	if p.DryRun {
		verb = "would delete"
	}
	return strings.Join([]string{
		fmt.Sprintf("snapshots: %d kept, %d %s", kept, deleted, verb),
		fmt.Sprintf("files: %d kept (%d bytes), %d %s (%d bytes)", p.Files.Kept, p.Files.KeptBytes, p.Files.Deleted, verb, p.Files.DeletedBytes),
		fmt.Sprintf("segments: %d kept (%d bytes), %d %s (%d bytes); PITR from sequence %d", p.Segments.Kept, p.Segments.KeptBytes, p.Segments.Deleted, verb, p.Segments.DeletedBytes, p.OldestKeptSequence),
	}, "\n")
}
