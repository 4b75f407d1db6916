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

// headAt is the head record for sequence seq, earlier than cur's: the
// change-log segment holding it, or a snapshot at it.
func (a *Archive) headAt(ctx context.Context, cur *Head, seq uint64) (Head, error) {
	segs, err := a.Segments(ctx)
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
