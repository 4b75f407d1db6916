package backup

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/engram-ops/engram-ops/core"
)

// ErrNotCaughtUp is returned (wrapped) by Promote when the engine to be
// promoted has not applied every change head.json says was shipped.
var ErrNotCaughtUp = errors.New("not caught up with the archive")

// PromoteOptions tune Archive.Promote.
type PromoteOptions struct {
	// Force promotes an engine that is behind head.json: the changes it
	// lacks, shipped by the previous primary, are discarded from the
	// archive's change log.
	Force bool
	// DryRun checks and predicts without writing.
	DryRun bool
}

// PromoteResult is what a promotion did (or, dry, would do). Its JSON form
// is the output of `engram-ops promote --output json`.
type PromoteResult struct {
	Target             string `json:"target"`
	DryRun             bool   `json:"dry_run"`
	AppliedSequence    uint64 `json:"applied_sequence"`
	HeadSequence       uint64 `json:"head_sequence"`
	PreviousGeneration uint64 `json:"previous_generation"`
	Generation         uint64 `json:"generation"`
	FirstSequence      uint64 `json:"first_sequence"`
	// Discarded counts the shipped changes a forced promotion left out.
	Discarded uint64 `json:"discarded_changes,omitempty"`
}

// Promote claims the next generation of the archive for an engine that
// has applied the change log up to applied: head.json is rewritten, with
// If-Match on the version read, to name generation current+1 starting at
// sequence applied+1. From then on the previous primary's head writes
// fail and it stops shipping (FencedError), and readers ignore what it
// writes past applied. An engine behind head.json is refused
// (ErrNotCaughtUp) unless o.Force; one ahead of it holds changes the
// archive does not, and is refused always. On success the archive writes
// as the new generation.
func (a *Archive) Promote(ctx context.Context, applied uint64, o PromoteOptions) (*PromoteResult, error) {
	cs, ok := a.store.(ConditionalStore)
	if !ok {
		return nil, fmt.Errorf("promote: %s does not support conditional writes, which fencing needs", a.Target())
	}
	a.headMu.Lock()
	defer a.headMu.Unlock()
	if err := a.loadHead(ctx, cs); err != nil {
		return nil, err
	}
	cur := a.head.head
	switch {
	case a.head.err != nil:
		return nil, fmt.Errorf("promote: %w. Try: engram-ops backup verify --from %s", a.head.err, a.Target())
	case cur == nil:
		return nil, fmt.Errorf("promote: %s has no %s: nothing has been shipped there by this version's primary, so there is no generation to take over. Try: check --target", a.Target(), headKey)
	}
	res := &PromoteResult{Target: a.Target(), DryRun: o.DryRun, AppliedSequence: applied, HeadSequence: cur.Sequence,
		PreviousGeneration: cur.Gen(), Generation: cur.Gen() + 1, FirstSequence: applied + 1}
	if applied > cur.Sequence {
		return nil, fmt.Errorf("promote: this engine is at sequence %d, ahead of the newest change shipped to %s (%d): it holds changes the archive does not, so it cannot continue the archive's history. Try: restore the data directory from the archive, then promote",
			applied, a.Target(), cur.Sequence)
	}
	if applied < cur.Sequence {
		if !o.Force {
			return nil, fmt.Errorf("promote: %w: this engine has applied up to sequence %d but %s holds changes up to %d; promoting now would discard the %d shipped changes after %d. Try: let the follower catch up (or apply them: engram-ops promote applies the archive's segments itself), or --force to discard them",
				ErrNotCaughtUp, applied, a.Target(), cur.Sequence, cur.Sequence-applied, applied)
		}
		res.Discarded = cur.Sequence - applied
	}
	h := Head{Sequence: cur.Sequence, LastChange: cur.LastChange, Segment: cur.Segment, Snapshot: cur.Snapshot}
	if applied < cur.Sequence {
		var err error
		if h, err = a.headAt(ctx, cur, applied); err != nil {
			return nil, err
		}
	}
	if o.DryRun {
		return res, nil
	}
	h.FormatVersion = 2
	h.Generation = res.Generation
	h.Generations = append(append([]GenStart(nil), cur.Generations...), GenStart{Generation: res.Generation, First: res.FirstSequence})
	h.Written = a.opts.Now().UTC()
	h.LastChange = h.LastChange.UTC()
	b, err := EncodeHead(&h)
	if err != nil {
		return nil, err
	}
	tag, err := cs.PutIfMatch(ctx, headKey, bytes.NewReader(b), int64(len(b)), a.head.tag)
	if err != nil {
		if errors.Is(err, ErrPrecondition) {
			return nil, fmt.Errorf("promote: %s changed while promoting (the primary shipped, or another promotion ran); nothing was claimed. Try: engram-ops promote again: %w", headKey, err)
		}
		return nil, fmt.Errorf("promote: write %s to %s: %w", headKey, a.Target(), err)
	}
	a.head = headState{loaded: true, tag: tag, raw: b, head: &h}
	a.gen, a.headSeq = res.Generation, h.Sequence
	return res, nil
}

// PromoteDataDirResult is what PromoteDataDir did: the promotion, and the
// change-log catch-up before it.
type PromoteDataDirResult struct {
	PromoteResult
	DataDir string `json:"data_dir"`
	// EngineSequence is the data directory's sequence before the catch-up,
	// Replayed the changes applied (or, dry, to apply) from the archive.
	EngineSequence uint64 `json:"engine_sequence"`
	Replayed       int    `json:"replayed_changes"`
	Recorded       string `json:"recorded,omitempty"` // the generation file written
}

// PromoteDataDir promotes a stopped follower's data directory: it opens
// the engine (which locks the directory: a running server's is refused),
// applies the change log's changes it lacks up to head.json, claims the
// next generation (Promote) and records it in the data directory, so
// that a server started on it ships as that generation. A dry run reads
// the segments it would apply and predicts the rest.
func (a *Archive) PromoteDataDir(ctx context.Context, dataDir string, o PromoteOptions) (res *PromoteDataDirResult, err error) {
	if st, err := os.Stat(filepath.Join(dataDir, "db")); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("%s holds no engine (no db directory). Try: --data-dir with the follower's data directory", dataDir)
	}
	eng, err := core.Open(dataDir, a.engineOptions())
	if core.CodeOf(err) == "DATA_DIR_IN_USE" {
		return nil, fmt.Errorf("open %s: %w. Try: stop the follower first", dataDir, err)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", dataDir, err)
	}
	defer func() {
		if cerr := eng.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close %s: %w", dataDir, cerr)
		}
	}()
	res = &PromoteDataDirResult{DataDir: dataDir, EngineSequence: eng.LastSequence()}
	apply := eng.ApplyChanges
	if o.DryRun {
		apply = nil
	}
	applied, n, err := a.catchUp(ctx, eng.LastSequence(), apply)
	res.Replayed = n
	var gap *gapError
	switch {
	case errors.As(err, &gap) && o.Force:
		// Promote where the change log ends for this engine.
	case errors.As(err, &gap):
		return res, fmt.Errorf("%w: %v. Try: --force to promote at sequence %d, discarding the shipped changes after it", ErrNotCaughtUp, err, applied)
	case err != nil:
		return res, err
	}
	pr, err := a.Promote(ctx, applied, o)
	if err != nil {
		return res, err
	}
	res.PromoteResult = *pr
	if o.DryRun {
		return res, nil
	}
	rec := GenerationRecord{Target: a.Target(), Generation: pr.Generation, FirstSequence: pr.FirstSequence, Promoted: a.opts.Now().UTC()}
	if err := WriteGeneration(dataDir, rec); err != nil {
		return res, fmt.Errorf("%s is at generation %d now, but %w; a server on %s would ship as generation 1 and be fenced. Try: engram-ops promote again (it claims the next generation)",
			a.Target(), pr.Generation, err, dataDir)
	}
	res.Recorded = filepath.Join(dataDir, generationFile)
	return res, nil
}

// catchUp passes the change log's changes after sequence from, up to
// head.json, to apply in order (nil: only count them), and returns the
// sequence reached and the number of changes. A gap in the change log is
// an error.
func (a *Archive) catchUp(ctx context.Context, from uint64, apply func(context.Context, []core.Change) error) (uint64, int, error) {
	segs, _, err := a.ChangeLog(ctx)
	if err != nil {
		return from, 0, err
	}
	at, n := from, 0
	for _, s := range segs {
		if s.End() <= at {
			continue
		}
		if s.First > at+1 {
			return at, n, &gapError{from: at + 1, to: s.First - 1, target: a.Target()}
		}
		_, changes, err := a.ReadSegment(ctx, s)
		if err != nil {
			return at, n, err
		}
		batch := changes[at+1-s.First:]
		if apply != nil {
			if err := apply(ctx, batch); err != nil {
				return at, n, fmt.Errorf("apply %s: %w", s.Key, err)
			}
		}
		at, n = s.End(), n+len(batch)
	}
	return at, n, nil
}

// gapError: the change log lacks sequences from..to.
type gapError struct {
	from, to uint64
	target   string
}

func (e *gapError) Error() string {
	return fmt.Sprintf("change-log segment missing: sequences %d-%d are not on %s, so this engine cannot catch up past %d", e.from, e.to, e.target, e.from-1)
}

// headAt is the head record for sequence seq, earlier than cur's: the
// change-log segment holding it, or a snapshot at it.
func (a *Archive) headAt(ctx context.Context, cur *Head, seq uint64) (Head, error) {
	segs, err := a.StoredSegments(ctx)
	if err != nil {
		return Head{}, err
	}
	for _, s := range SelectSegments(segs, cur) {
		if s.First > seq || s.End() < seq {
			continue
		}
		_, ch, err := a.ReadSegment(ctx, s)
		if err != nil {
			return Head{}, err
		}
		return Head{Sequence: seq, LastChange: ch[seq-s.First].Time, Segment: s.Key}, nil
	}
	snaps, err := a.Snapshots(ctx)
	if err != nil {
		return Head{}, err
	}
	for _, s := range snaps {
		if s.Err == nil && s.Sequence == seq {
			return Head{Sequence: seq, LastChange: s.Manifest.LastChange, Snapshot: s.ID}, nil
		}
	}
	return Head{}, fmt.Errorf("promote: sequence %d is in no segment or snapshot on %s, so the archive cannot be cut there", seq, a.Target())
}

// generationFile, in a data directory, records the generation a promotion
// claimed for it, so that the server shipping from it writes as that
// generation.
const generationFile = "backup-generation.json"

// GenerationRecord is the content of a data directory's generation file.
type GenerationRecord struct {
	Target        string    `json:"target"`
	Generation    uint64    `json:"generation"`
	FirstSequence uint64    `json:"first_sequence"`
	Promoted      time.Time `json:"promoted"`
}

// ReadGeneration returns the generation the data directory ships to target
// as: the one a promotion recorded for that target, else 1.
func ReadGeneration(dataDir, target string) (uint64, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, generationFile))
	if errors.Is(err, os.ErrNotExist) {
		return 1, nil
	}
	if err != nil {
		return 0, err
	}
	var r GenerationRecord
	if err := json.Unmarshal(b, &r); err != nil || r.Generation < 1 {
		return 0, fmt.Errorf("%s in %s is unreadable (%v); it records the backup generation this data directory was promoted to. Try: engram-ops promote again", generationFile, dataDir, err)
	}
	if r.Target != target {
		return 1, nil
	}
	return r.Generation, nil
}

// WriteGeneration records r in the data directory (atomically, durably).
func WriteGeneration(dataDir string, r GenerationRecord) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dataDir, generationFile+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	f, err := os.Open(tmp)
	if err == nil {
		err = f.Sync()
		f.Close()
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dataDir, generationFile))
	}
	if err == nil {
		// The directory entry too: a lost record would ship as generation 1.
		if d, derr := os.Open(dataDir); derr == nil {
			err = d.Sync()
			d.Close()
		}
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("record the backup generation in %s: %w", dataDir, err)
	}
	return nil
}
