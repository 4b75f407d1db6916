package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/engram-ops/engram-ops/core"
)

// ShipperOptions tune continuous shipping.
type ShipperOptions struct {
	// Interval is the recovery point the shipper aims for: a round ships
	// every pending change at least once per Interval, and earlier when the
	// oldest pending change would otherwise be older than Interval by the
	// time the round has stored it (judged by the last round's duration).
	// Default 1s.
	Interval time.Duration
	// SnapshotInterval between automatic snapshots; 0 disables them.
	SnapshotInterval time.Duration
	// MaxChanges per segment; a round ships early once this many are
	// pending. Default 10_000.
	MaxChanges int
	// MaxBackoff caps the retry delay during target outages; default 30s.
	MaxBackoff time.Duration
	// AttemptTimeout bounds one segment upload (a segment holds at most
	// MaxChanges changes): an upload still running after it, e.g. against
	// a target that stopped answering, is abandoned, counted as a failed
	// attempt and retried with backoff. Default 10s, negative disables it.
	AttemptTimeout time.Duration
	// FinalFlush bounds the last shipping round after the context is
	// cancelled (server shutdown); default 10s, negative disables it.
	FinalFlush time.Duration
	// VerifyPoll is how often the shipper reads verify/last.json (written
	// by `engram-ops backup verify`, which runs outside the server) to
	// export the last passed verification and restore drill; default 1m,
	// negative disables it.
	VerifyPoll time.Duration
	// Generation is the primary's generation (see "Generations and
	// fencing" in the package doc): 0 or 1 for a data directory never
	// promoted, else what ReadGeneration finds for the target.
	Generation uint64
	// OnFenced is called once, from the shipping goroutine, when the
	// shipper finds the archive at a later generation (another primary was
	// promoted) and stops for good; err is a *FencedError. The server stops
	// accepting writes and reports it.
	OnFenced func(err error)
	// OnStarted, if set, is called once, from the shipping goroutine,
	// when the shipper has read the target's head and found this
	// primary's generation current (Resume succeeded).
	OnStarted func()
}

// ShipperStatus is the shipper's state, for GET /api/v1/admin/backup.
type ShipperStatus struct {
	Target          string    `json:"target"`
	Running         bool      `json:"running"`
	ShippedSequence uint64    `json:"shipped_sequence"`
	EngineSequence  uint64    `json:"engine_sequence"`
	RPOSeconds      float64   `json:"rpo_seconds"`
	LastLogSuccess  time.Time `json:"last_log_success,omitzero"`
	LastSnapshot    string    `json:"last_snapshot,omitempty"`
	LastSnapshotAt  time.Time `json:"last_snapshot_at,omitzero"`
	LastError       string    `json:"last_error,omitempty"`
	LastErrorAt     time.Time `json:"last_error_at,omitzero"`
	// Generation is the one this primary ships as; Fenced is set when the
	// archive moved on to CurrentGeneration and shipping stopped for good.
	Generation        uint64 `json:"generation"`
	Fenced            bool   `json:"fenced,omitempty"`
	CurrentGeneration uint64 `json:"current_generation,omitempty"`
}

// Shipper ships an engine's change log to an archive as segments and takes
// periodic snapshots. The engine's durable change log is the buffer during
// outages, so nothing is dropped; RPO grows until the target is back.
type Shipper struct {
	a   *Archive
	eng *core.Engine
	o   ShipperOptions

	snapMu sync.Mutex // one snapshot at a time
	rpoMu  sync.Mutex // orders RPO exports: each reads the shipped sequence it reports on

	mu     sync.Mutex
	status ShipperStatus

	// headPending is the head record a failed write left to write again
	// (used only by the shipping goroutine, through shipAll).
	headPending *Head

	fenceOnce sync.Once
}

// NewShipper builds a shipper; Run starts it.
func (a *Archive) NewShipper(eng *core.Engine, o ShipperOptions) *Shipper {
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.MaxChanges <= 0 {
		o.MaxChanges = 10_000
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 30 * time.Second
	}
	if o.AttemptTimeout == 0 {
		o.AttemptTimeout = 10 * time.Second
	}
	if o.FinalFlush == 0 {
		o.FinalFlush = 10 * time.Second
	}
	if o.VerifyPoll == 0 {
		o.VerifyPoll = time.Minute
	}
	// Change-log retention keeps everything until the shipper knows where
	// the target stands (Run), then everything not yet shipped.
	eng.HoldChangeLog(1)
	o.Generation = max(o.Generation, 1)
	a.SetGeneration(o.Generation)
	a.obs.Generation(o.Generation)
	return &Shipper{a: a, eng: eng, o: o, status: ShipperStatus{Target: a.Target(), Generation: o.Generation}}
}

// Fenced reports whether the shipper stopped because another generation
// took over the archive.
func (s *Shipper) Fenced() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status.Fenced
}

// fence stops shipping for good if err says the archive moved on to
// another generation, and reports whether it did.
func (s *Shipper) fence(err error) bool {
	var fe *FencedError
	if !errors.As(err, &fe) {
		return false
	}
	s.fenceOnce.Do(func() {
		s.a.log.Error("backup shipping fenced", "target", s.a.Target(), "generation", fe.Generation, "current_generation", fe.Current, "err", err)
		s.mu.Lock()
		s.status.Fenced, s.status.CurrentGeneration = true, fe.Current
		s.status.LastError, s.status.LastErrorAt = err.Error(), time.Now()
		s.mu.Unlock()
		s.a.obs.Fenced()
		if s.o.OnFenced != nil {
			s.o.OnFenced(err)
		}
	})
	return true
}

// Status reports the shipper's state.
func (s *Shipper) Status() ShipperStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.status
	st.EngineSequence = s.eng.LastSequence()
	return st
}

func (s *Shipper) fail(stage string, err error) {
	s.a.obs.Error(stage)
	s.a.log.Error("backup failed", "target", s.a.Target(), "stage", stage, "err", err)
	s.mu.Lock()
	s.status.LastError, s.status.LastErrorAt = fmt.Sprintf("%s: %v", stage, err), time.Now()
	s.mu.Unlock()
}

// Resume finds where shipping continues: after the highest segment of the
// change log (SelectSegments, plus this generation's segments past
// head.json, whose head write is then repeated); without segments, after
// the newest snapshot; with neither, it takes a first snapshot. A target
// that is ahead of the engine (another timeline, e.g. the data directory
// was restored) is refused, and so is an archive at a later generation
// (FencedError: another primary was promoted).
func (s *Shipper) Resume(ctx context.Context) (uint64, error) {
	head, herr := s.a.startHead(ctx)
	if herr != nil && !errors.Is(herr, ErrCorrupt) {
		return 0, fmt.Errorf("read %s: %w", headKey, herr)
	}
	if cur := head.Gen(); cur > s.o.Generation {
		return 0, &FencedError{Generation: s.o.Generation, Current: cur, Sequence: head.Sequence}
	} else if cur < s.o.Generation {
		return 0, fmt.Errorf("%w: this data directory was promoted to generation %d of %s, but the archive's %s says generation %d; shipping would fork the history. Try: engram-ops promote again, or --backup-to a new prefix",
			errFork, s.o.Generation, s.a.Target(), headKey, cur)
	}
	all, err := s.a.StoredSegments(ctx)
	if err != nil {
		return 0, err
	}
	segs := selectSegments(all, head, math.MaxUint64)
	var shipped uint64
	if n := len(segs); n > 0 {
		last := segs[n-1]
		shipped = last.End()
		if head != nil && shipped > head.Sequence && last.Generation == s.o.Generation && last.Limit == 0 {
			// Stored, but the head write after it did not happen.
			_, ch, err := s.a.ReadSegment(ctx, last)
			if err != nil {
				return 0, err
			}
			s.headPending = &Head{Sequence: last.Last, LastChange: ch[len(ch)-1].Time, Segment: last.Key}
		}
	} else {
		snaps, err := s.a.Snapshots(ctx)
		if err != nil {
			return 0, err
		}
		found := false
		for i := len(snaps) - 1; i >= 0; i-- {
			if snaps[i].Err == nil && snaps[i].Sequence <= s.eng.LastSequence() {
				shipped, found = snaps[i].Sequence, true
				break
			}
		}
		if !found {
			res, err := s.Snapshot(ctx)
			if err != nil {
				return 0, fmt.Errorf("first snapshot: %w", err)
			}
			shipped = res.Manifest.Sequence
		}
	}
	if head != nil && head.Gen() > 1 {
		// A promoted primary continues where its generation starts.
		shipped = max(shipped, head.History()[len(head.History())-1].First-1)
	}
	if last := s.eng.LastSequence(); shipped > last {
		return 0, fmt.Errorf("%w: target %s already holds changes up to sequence %d but this data directory is at %d (was it restored from this backup?); shipping would fork the history. Try: --backup-to a new prefix", errFork, s.a.Target(), shipped, last)
	}
	s.eng.HoldChangeLog(shipped + 1)
	return shipped, nil
}

// Snapshot takes a snapshot of the engine now (serialised with other snapshots).
func (s *Shipper) Snapshot(ctx context.Context) (*SnapshotResult, error) {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	res, err := s.a.SnapshotEngine(ctx, s.eng)
	if err != nil {
		if !s.fence(err) {
			s.fail("snapshot", err)
		}
		return nil, err
	}
	s.mu.Lock()
	s.status.LastSnapshot, s.status.LastSnapshotAt = res.Manifest.ID, res.Manifest.Created
	s.mu.Unlock()
	return res, nil
}

// Run ships until ctx is cancelled, then makes one last bounded attempt to
// ship what is left. It returns an error only when it cannot start.
func (s *Shipper) Run(ctx context.Context) error {
	var shipped uint64
	for backoff := time.Second; ; backoff = min(backoff*2, s.o.MaxBackoff) {
		var err error
		if shipped, err = s.Resume(ctx); err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		if s.fence(err) {
			return nil
		}
		s.fail("resume", err)
		if isFatalResume(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
	}
	s.mu.Lock()
	s.status.Running, s.status.ShippedSequence = true, shipped
	s.mu.Unlock()
	s.a.obs.ShippedSequence(shipped)
	if s.o.OnStarted != nil {
		s.o.OnStarted()
	}
	s.a.log.Info("backup shipping started", "target", s.a.Target(), "from_sequence", shipped+1, "generation", s.o.Generation)

	// A fenced shipper stops everything it runs, for good.
	ctx, stop := context.WithCancel(ctx)
	defer stop()

	var wg sync.WaitGroup
	if s.o.SnapshotInterval > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(s.o.SnapshotInterval)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					_, _ = s.Snapshot(ctx)
				}
			}
		}()
	}
	if s.o.VerifyPoll > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var seen time.Time
			t := time.NewTicker(s.o.VerifyPoll)
			defer t.Stop()
			for {
				seen = s.exportVerify(ctx, seen)
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		}()
	}
	poll := min(s.o.Interval, 100*time.Millisecond)
	// The RPO gauge follows the age of the oldest unshipped change on its
	// own ticker, so it keeps growing while a round is blocked in an
	// upload (a target that stopped answering), not only between rounds.
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(poll)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				s.reportRPO()
			}
		}
	}()
	defer func() {
		wg.Wait()
		s.mu.Lock()
		s.status.Running = false
		s.mu.Unlock()
	}()

	tick := time.NewTicker(poll)
	defer tick.Stop()
	var (
		lastRound time.Time
		lastTook  time.Duration // duration of the last successful round
		next      time.Time     // earliest retry after a failure
		backoff   time.Duration
	)
	for {
		select {
		case <-ctx.Done():
			if s.o.FinalFlush > 0 {
				fctx, cancel := context.WithTimeout(context.Background(), s.o.FinalFlush)
				// What this last round cannot ship stays in the engine's
				// log, and the next start ships it.
				_, err := s.shipAll(fctx, shipped)
				s.fence(err)
				cancel()
			}
			return nil
		case now := <-tick.C:
			if s.Fenced() { // found by a snapshot
				stop()
				wg.Wait()
				return nil
			}
			rpo := s.rpo(shipped)
			pending := s.eng.LastSequence() - shipped
			// Interval bounds the recovery point: a round starts early
			// enough that the oldest pending change is stored before it is
			// Interval old, given how long the last round took; two polls
			// of margin absorb a late tick and a slower round.
			due := now.Sub(lastRound) >= s.o.Interval || pending >= uint64(s.o.MaxChanges) ||
				(pending > 0 && time.Duration(rpo*float64(time.Second))+lastTook+2*poll >= s.o.Interval)
			if !due || now.Before(next) {
				continue
			}
			lastRound = now
			n, err := s.shipAll(ctx, shipped)
			shipped = n
			if s.fence(err) {
				stop()
				wg.Wait()
				return nil
			}
			if err != nil {
				if ctx.Err() != nil {
					continue
				}
				backoff = min(max(2*backoff, s.o.Interval), s.o.MaxBackoff)
				next = now.Add(backoff)
				s.fail("log", err)
			} else {
				backoff, next = 0, time.Time{}
				lastTook = time.Since(now)
			}
			s.reportRPO()
		}
	}
}

// rpo is the age in seconds of the oldest durable change after shipped.
func (s *Shipper) rpo(shipped uint64) float64 {
	if s.eng.LastSequence() > shipped {
		if ch, err := s.eng.ChangesSince(shipped, 1); err == nil && len(ch) == 1 {
			return max(0, s.a.opts.Now().Sub(ch[0].Time).Seconds())
		}
	}
	return 0
}

// reportRPO exports the age of the oldest change not yet stored on the
// target, whatever the shipping loop is doing.
func (s *Shipper) reportRPO() {
	s.rpoMu.Lock()
	defer s.rpoMu.Unlock()
	s.mu.Lock()
	shipped := s.status.ShippedSequence
	s.mu.Unlock()
	rpo := s.rpo(shipped)
	s.a.obs.RPO(rpo)
	s.mu.Lock()
	s.status.RPOSeconds = rpo
	s.mu.Unlock()
}

// shipAll uploads every pending change as segments and returns the new
// shipped sequence (advanced only past segments that were stored).
func (s *Shipper) shipAll(ctx context.Context, shipped uint64) (uint64, error) {
	if h := s.headPending; h != nil {
		if err := s.a.writeHead(ctx, *h, false); err != nil {
			return shipped, err
		}
		s.headPending = nil
	}
	for {
		changes, err := s.eng.ChangesSince(shipped, s.o.MaxChanges)
		if err != nil {
			return shipped, fmt.Errorf("read change log: %w", err)
		}
		if len(changes) == 0 {
			return shipped, nil
		}
		if changes[0].Seq != shipped+1 {
			return shipped, fmt.Errorf("change log continues at %d after %d", changes[0].Seq, shipped)
		}
		if err := s.putSegment(ctx, changes); err != nil {
			return shipped, err
		}
		last := changes[len(changes)-1]
		h := Head{Sequence: last.Seq, LastChange: last.Time, Segment: genSegmentKey(changes[0].Seq, last.Seq, s.o.Generation)}
		headErr := s.a.writeHead(ctx, h, false)
		if errors.Is(headErr, ErrFenced) {
			// The segment just stored is an orphan: no reader takes it.
			return shipped, headErr
		}
		shipped = last.Seq
		s.eng.HoldChangeLog(shipped + 1)
		// The segment is stored; the head record says so (retried by the
		// next round when this write fails). The status is published after
		// that attempt, so a reader that sees a sequence shipped finds the
		// head naming it unless the write failed.
		s.a.obs.ShippedSequence(shipped)
		now := time.Now()
		s.a.obs.Success("log", now)
		s.mu.Lock()
		s.status.ShippedSequence, s.status.LastLogSuccess = shipped, now
		s.mu.Unlock()
		if headErr != nil {
			s.headPending = &h
			return shipped, headErr
		}
	}
}

// putSegment is PutSegment bounded by AttemptTimeout.
func (s *Shipper) putSegment(ctx context.Context, changes []core.Change) error {
	if s.o.AttemptTimeout <= 0 {
		return s.a.PutSegment(ctx, changes)
	}
	actx, cancel := context.WithTimeout(ctx, s.o.AttemptTimeout)
	defer cancel()
	err := s.a.PutSegment(actx, changes)
	if err != nil && ctx.Err() == nil && errors.Is(actx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("segment upload of sequences %d-%d did not finish within %s (the attempt timeout): %w",
			changes[0].Seq, changes[len(changes)-1].Seq, s.o.AttemptTimeout, err)
	}
	return err
}

// PutSegment encodes contiguous changes as one segment and stores it under
// the key of the archive's generation. On a ConditionalStore the segment is
// created only if absent: an existing object with other bytes is another
// writer's, so it is left alone and reported (a FencedError when head.json
// shows a later generation).
func (a *Archive) PutSegment(ctx context.Context, changes []core.Change) error {
	b, h, err := EncodeSegment(changes, a.codec)
	if err != nil {
		return err
	}
	key := genSegmentKey(h.FirstSeq, h.LastSeq, a.Generation())
	cs, ok := a.store.(ConditionalStore)
	if !ok {
		if err := a.store.Put(ctx, key, bytes.NewReader(b), int64(len(b))); err != nil {
			return fmt.Errorf("upload %s to %s: %w", key, a.Target(), err)
		}
		a.obs.Uploaded(int64(len(b)))
		return nil
	}
	if _, err := cs.PutIfAbsent(ctx, key, bytes.NewReader(b), int64(len(b))); err != nil {
		if !errors.Is(err, ErrPrecondition) {
			return fmt.Errorf("upload %s to %s: %w", key, a.Target(), err)
		}
		// A retried request whose first attempt was stored finds its own bytes.
		if have, rerr := a.readAll(ctx, key, maxSegmentPlain); rerr == nil && bytes.Equal(have, b) {
			return nil
		}
		mine := a.Generation()
		if head, herr := a.Head(ctx); herr == nil && head.Gen() > mine {
			return &FencedError{Generation: mine, Current: head.Gen(), Sequence: head.Sequence}
		}
		return fmt.Errorf("upload %s to %s: another object exists under this key (another writer of generation %d?): %w", key, a.Target(), a.Generation(), err)
	}
	a.obs.Uploaded(int64(len(b)))
	return nil
}

// errFork: the target is ahead of the engine; retrying cannot help.
var errFork = errors.New("backup history fork")

func isFatalResume(err error) bool {
	return errors.Is(err, errFork)
}

// exportVerify reports the verification recorded on the target if it is
// newer than seen, and returns the time of the one reported.
func (s *Shipper) exportVerify(ctx context.Context, seen time.Time) time.Time {
	r, err := s.a.LastVerify(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.a.log.Warn("cannot read the last verification result", "target", s.a.Target(), "err", err)
		}
		return seen
	}
	if r == nil || !r.At.After(seen) {
		return seen
	}
	if r.OK {
		s.a.obs.Verified(r.At)
		if r.Level >= 4 {
			s.a.obs.RestoreDrill(time.Duration(r.DrillSeconds * float64(time.Second)))
		}
	} else {
		s.a.obs.Error("verify")
	}
	return r.At
}
