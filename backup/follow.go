package backup

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/engram-ops/engram-ops/core"
)

// A follower is a read-only replica of a shipping server: its engine
// (write barrier up, see core.Engine.SetWriteBarrier) is seeded from the
// newest snapshot and then applies the change-log segments the primary
// ships, in order, through core.Engine.ApplyChanges, up to the sequence
// head.json names (the archive's commit point: a segment the head does not
// cover yet is not applied). A gap in the segments, a segment that fails
// its checks, or a change the engine refuses stops applying at that
// sequence: nothing past it is applied, the status says why, and each
// later poll tries again (a repaired archive or a late segment resumes
// it). An archive whose head is behind what the follower applied (rewound
// or replaced) stops the follower for good: its data is another history.

// FollowerOptions tune a follower.
type FollowerOptions struct {
	// Interval between polls of head.json; default 1s. After a failed
	// poll the next waits twice as long, up to MaxBackoff.
	Interval time.Duration
	// MaxBackoff caps the wait after failed polls; default 30s.
	MaxBackoff time.Duration
	// Observer receives the engram_replica_* figures; nil: none.
	Observer FollowerObserver
	// Applied, if set, is called after each batch of changes is applied
	// (the server reloads what it caches of system records).
	Applied func([]core.Change)
}

// FollowerObserver receives what a follower measures; ops/metrics
// implements it with the engram_replica_* metrics. Every method must be
// safe for concurrent use.
type FollowerObserver interface {
	AppliedSequence(seq uint64)
	HeadSequence(seq uint64)
	Generation(gen uint64)
	Lag(seconds float64)
	ApplyError()
}

// FollowerStatus is a follower's state.
//
// LagSeconds is 0 when the applied sequence equals the head's; otherwise it
// is the time since the commit (on the primary) of the first change not
// applied yet. When that change has not been read (it is in a segment not
// downloaded yet, or missing), the commit time of the last applied change
// stands in for it, which overstates the lag by at most the time between
// the two. The head is as of the last poll, so a change committed since
// shows up in the lag one poll interval later at most.
type FollowerStatus struct {
	Target          string    `json:"target"`
	AppliedSequence uint64    `json:"applied_sequence"`
	HeadSequence    uint64    `json:"head_sequence"`
	Generation      uint64    `json:"generation"` // the head's generation at the last poll (0 before one)
	LagSeconds      float64   `json:"lag_seconds"`
	LastPoll        time.Time `json:"last_poll,omitzero"` // last poll that read the head
	// LastError is why the last poll did not reach the head; empty after
	// one that did. ErrorSequence is the first change it could not apply
	// because of the archive (a missing or damaged segment, a change the
	// engine refused); 0 when the archive could not be reached.
	LastError     string `json:"last_error,omitempty"`
	ErrorSequence uint64 `json:"error_sequence,omitempty"`
	// Stopped: the archive's head went behind the applied sequence, so
	// the follower applies nothing more until it is seeded again.
	Stopped     bool   `json:"stopped"`
	ApplyErrors uint64 `json:"apply_errors"` // failed polls since start
}

// Follower applies an archive's shipped change log to a read-only engine.
type Follower struct {
	a   *Archive
	eng *core.Engine
	o   FollowerOptions

	mu     sync.Mutex
	status FollowerStatus
	// pendingSince is the commit time of the first change not applied (or
	// its stand-in, see FollowerStatus); lastTime that of the last applied.
	pendingSince time.Time
	lastTime     time.Time
}

// ErrArchiveRewound: the archive's head is behind the follower; it holds
// another history than the one applied.
var ErrArchiveRewound = errors.New("archive rewound")

// SeedFollower prepares dataDir for a follower of a: an empty (or missing)
// directory gets the newest snapshot (the follower applies the segments
// after it); a directory holding data is left as it is, and the follower
// resumes after its last sequence. It returns the restore's report, nil
// when it resumed.
func (a *Archive) SeedFollower(ctx context.Context, dataDir string) (*RestoreReport, error) {
	nonEmpty, err := dirNonEmpty(dataDir)
	if err != nil {
		return nil, err
	}
	if nonEmpty {
		return nil, nil
	}
	rep, err := a.Restore(ctx, RestoreOptions{DataDir: dataDir, SnapshotOnly: true})
	if err != nil {
		return nil, fmt.Errorf("seed the follower's data directory %s from %s: %w", dataDir, a.Target(), err)
	}
	return rep, nil
}

// NewFollower builds a follower applying a to eng from eng's last
// sequence; Run starts it. eng should hold its write barrier.
func (a *Archive) NewFollower(eng *core.Engine, o FollowerOptions) *Follower {
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 30 * time.Second
	}
	applied := eng.LastSequence()
	f := &Follower{a: a, eng: eng, o: o, status: FollowerStatus{Target: a.Target(), AppliedSequence: applied, HeadSequence: applied}}
	if applied > 0 {
		if ch, err := eng.ChangesSince(applied-1, 1); err == nil && len(ch) == 1 {
			f.lastTime = ch[0].Time
		}
	}
	return f
}

// Status reports the follower's state, with the lag as of now.
func (f *Follower) Status() FollowerStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.status
	st.LagSeconds = f.lagLocked(f.a.opts.Now())
	return st
}

func (f *Follower) lagLocked(now time.Time) float64 {
	if f.status.AppliedSequence >= f.status.HeadSequence || f.pendingSince.IsZero() {
		return 0
	}
	return max(0, now.Sub(f.pendingSince).Seconds())
}

// Run polls and applies until ctx is cancelled, or until the archive is
// found rewound (ErrArchiveRewound, also in the status).
func (f *Follower) Run(ctx context.Context) error {
	f.report()
	t := time.NewTicker(f.o.Interval)
	defer t.Stop()
	var (
		next    time.Time // earliest poll after a failure
		backoff time.Duration
	)
	for {
		now := time.Now()
		if !now.Before(next) {
			err := f.Poll(ctx)
			switch {
			case ctx.Err() != nil:
				return nil
			case errors.Is(err, ErrArchiveRewound):
				f.a.log.Error("follower stopped", "target", f.a.Target(), "err", err)
				f.report()
				return err
			case err != nil:
				backoff = min(max(2*backoff, f.o.Interval), f.o.MaxBackoff)
				next = now.Add(backoff)
				f.a.log.Warn("follower cannot apply the archive", "target", f.a.Target(), "err", err, "retry_in", backoff.String())
			default:
				backoff, next = 0, time.Time{}
			}
		}
		f.report()
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// report exports the status to the observer.
func (f *Follower) report() {
	if f.o.Observer == nil {
		return
	}
	st := f.Status()
	f.o.Observer.AppliedSequence(st.AppliedSequence)
	f.o.Observer.HeadSequence(st.HeadSequence)
	f.o.Observer.Generation(st.Generation)
	f.o.Observer.Lag(st.LagSeconds)
}

// Poll reads the head and applies every segment up to it. It returns what
// stopped it short of the head (also kept in the status until a poll
// reaches the head).
func (f *Follower) Poll(ctx context.Context) error {
	f.mu.Lock()
	stopped := f.status.Stopped
	f.mu.Unlock()
	if stopped {
		return fmt.Errorf("%w: the follower stopped applying; seed a new data directory", ErrArchiveRewound)
	}
	err := f.poll(ctx)
	if err != nil && ctx.Err() == nil {
		if f.o.Observer != nil {
			f.o.Observer.ApplyError()
		}
		f.mu.Lock()
		f.status.ApplyErrors++
		f.status.LastError = err.Error()
		f.mu.Unlock()
	}
	return err
}

func (f *Follower) poll(ctx context.Context) error {
	head, err := f.a.Head(ctx)
	if err != nil {
		return fmt.Errorf("read %s on %s: %w", headKey, f.a.Target(), err)
	}
	if head == nil {
		return fmt.Errorf("%s has no %s: a follower applies what a shipping server (serve --backup-to) has recorded there", f.a.Target(), headKey)
	}
	applied := f.eng.LastSequence()
	f.mu.Lock()
	f.status.LastPoll, f.status.HeadSequence, f.status.AppliedSequence = f.a.opts.Now(), head.Sequence, applied
	f.status.Generation = head.Gen()
	if head.Sequence < applied {
		f.status.Stopped, f.status.ErrorSequence = true, 0
		f.mu.Unlock()
		return fmt.Errorf("%w: %s names sequence %d but this follower already applied %d (was the archive replaced, or its primary restored to an earlier point?); it applies nothing more. Try: seed a new follower from the archive (an empty --data-dir)",
			ErrArchiveRewound, headKey, head.Sequence, applied)
	}
	if head.Sequence == applied {
		f.status.LastError, f.status.ErrorSequence, f.pendingSince = "", 0, time.Time{}
		f.mu.Unlock()
		return nil
	}
	if f.pendingSince.IsZero() {
		f.pendingSince = f.lastTime
		if f.pendingSince.IsZero() {
			f.pendingSince = head.LastChange // nothing applied yet: the newest change is all that is known
		}
	}
	f.mu.Unlock()
	segs, gap, err := f.a.segmentsToFollow(ctx, applied, head.Sequence)
	if err != nil {
		return f.stuck(applied+1, err, false)
	}
	for _, s := range segs {
		_, changes, err := f.a.ReadSegment(ctx, s)
		if err != nil {
			// A listed segment that is gone is missing, like a gap.
			return f.stuck(applied+1, err, errors.Is(err, ErrCorrupt) || errors.Is(err, ErrNotFound))
		}
		var batch []core.Change
		for _, c := range changes {
			// s.End(): a generation's segment may run past the sequence a
			// forced promotion cut its history at.
			if c.Seq > applied && c.Seq <= min(s.End(), head.Sequence) {
				batch = append(batch, c)
			}
		}
		if len(batch) == 0 {
			continue
		}
		f.mu.Lock()
		f.pendingSince = batch[0].Time
		f.mu.Unlock()
		if err := f.eng.ApplyChanges(ctx, batch); err != nil {
			return f.stuck(f.eng.LastSequence()+1, fmt.Errorf("apply %s: %w", s.Key, err), true)
		}
		applied = batch[len(batch)-1].Seq
		if f.o.Applied != nil {
			f.o.Applied(batch)
		}
		f.mu.Lock()
		f.status.AppliedSequence = applied
		f.lastTime = batch[len(batch)-1].Time
		f.pendingSince = f.lastTime // stand-in until the next segment is read
		if applied == head.Sequence {
			f.pendingSince = time.Time{}
		}
		f.mu.Unlock()
		f.report()
	}
	if gap != nil {
		return f.stuck(applied+1, gap, true)
	}
	if applied < head.Sequence {
		return f.stuck(applied+1, fmt.Errorf("%w: change-log segments end at sequence %d, but %s names %d", ErrCorrupt, applied, headKey, head.Sequence), true)
	}
	f.mu.Lock()
	f.status.LastError, f.status.ErrorSequence = "", 0
	f.mu.Unlock()
	return nil
}

// stuck records that applying stopped before change seq because of err;
// damaged says the archive itself is at fault (a gap, a segment that fails
// its checks, a change the engine refuses), which the status names with
// seq, rather than a failure to reach it, which the next poll may not meet.
func (f *Follower) stuck(seq uint64, err error, damaged bool) error {
	f.mu.Lock()
	f.status.AppliedSequence = f.eng.LastSequence()
	f.status.ErrorSequence = 0
	if damaged {
		f.status.ErrorSequence = seq
	}
	f.mu.Unlock()
	return fmt.Errorf("change %d not applied: %w", seq, err)
}

// segmentsToFollow lists the segments a follower at sequence applied reads
// to reach head, in order, up to the first sequence in applied+1..head that
// no listed segment holds: gap (ErrCorrupt) names that one. Segments after
// head are not returned: head.json is the commit point of what was shipped.
// err is a failed listing.
func (a *Archive) segmentsToFollow(ctx context.Context, applied, head uint64) (segs []SegmentInfo, gap, err error) {
	all, err := a.Segments(ctx)
	if err != nil {
		return nil, nil, err
	}
	next := applied + 1
	for _, s := range all {
		if next > head {
			break
		}
		if s.End() < next {
			continue // applied already
		}
		if s.First > next {
			return segs, fmt.Errorf("%w: change-log segment missing: sequences %d-%d are not on %s", ErrCorrupt, next, min(s.First-1, head), a.Target()), nil
		}
		segs = append(segs, s)
		next = s.End() + 1
	}
	if next <= head {
		return segs, fmt.Errorf("%w: change-log segment missing: sequences %d-%d are not on %s, though %s names %d", ErrCorrupt, next, head, a.Target(), headKey, head), nil
	}
	return segs, nil, nil
}
