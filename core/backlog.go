package core

import (
	"context"
	"sync/atomic"
	"time"
)

// The index backlog (a space's acknowledged vectors not yet in the ANN
// index) is scanned exactly by every recall of the space, so its size is a
// recall's largest cost when it grows. Index.MaxPending bounds it: a write
// is admitted only while the backlog, counting writes admitted and not yet
// committed, has room for its vectors; otherwise it waits for the indexer.
// The bound is a bound on recall's cost, and the write rate a space
// sustains becomes the indexer's rate, which is the rate it could sustain
// anyway: past it the backlog would only grow.

// backlogStats counts admissions that had to wait or were refused.
type backlogStats struct {
	waits     atomic.Uint64 // writes that waited for room
	waitNanos atomic.Int64  // total time they waited
	refused   atomic.Uint64 // writes refused with INDEX_BACKLOG
}

// BacklogStats describes Index.MaxPending's effect since Open.
type BacklogStats struct {
	Limit       int     // Index.MaxPending; 0 when the bound is off or deferred
	Waits       uint64  // writes that waited for the indexer
	WaitSeconds float64 // the time they spent waiting, summed
	Refused     uint64  // writes refused with INDEX_BACKLOG
}

func (e *Engine) backlogStats() BacklogStats {
	return BacklogStats{
		Limit:       e.backlogLimit(),
		Waits:       e.backlog.waits.Load(),
		WaitSeconds: time.Duration(e.backlog.waitNanos.Load()).Seconds(),
		Refused:     e.backlog.refused.Load(),
	}
}

// backlogLimit is the bound admit applies: 0 when off or deferred.
func (e *Engine) backlogLimit() int {
	if e.opts.Index.Defer {
		return 0
	}
	return max(e.opts.Index.MaxPending, 0)
}

// admit reserves room for n vectors in sp's backlog, waiting for the
// indexer while there is none (up to Index.PendingWait or ctx). The
// returned release must be called once the write has committed or failed.
// A write larger than the bound is admitted alone, into an empty backlog.
func (e *Engine) admit(ctx context.Context, sp *space, n int) (release func(), err error) {
	limit := e.backlogLimit()
	if limit <= 0 || n == 0 {
		return func() {}, nil
	}
	var (
		timer *time.Timer
		start time.Time
	)
	sp.mu.Lock()
	for {
		backlog := len(sp.pending) + sp.reserved
		if backlog+n <= limit || backlog == 0 {
			sp.reserved += n
			sp.mu.Unlock()
			if timer != nil {
				timer.Stop()
				e.backlog.waits.Add(1)
				e.backlog.waitNanos.Add(int64(time.Since(start)))
			}
			return func() {
				sp.mu.Lock()
				sp.reserved -= n
				sp.signalRoom(limit)
				sp.mu.Unlock()
			}, nil
		}
		if backlog >= 2*limit {
			sp.mu.Unlock()
			return nil, e.backlogFull(sp, backlog, "")
		}
		if sp.room == nil {
			sp.room = make(chan struct{})
		}
		room := sp.room
		sp.mu.Unlock()
		if timer == nil {
			start = time.Now()
			timer = time.NewTimer(e.opts.Index.PendingWait)
			e.kickIndexer()
		}
		select {
		case <-room:
		case <-timer.C:
			sp.mu.Lock()
			backlog := len(sp.pending) + sp.reserved
			sp.mu.Unlock()
			e.backlog.waits.Add(1)
			e.backlog.waitNanos.Add(int64(time.Since(start)))
			return nil, e.backlogFull(sp, backlog, e.opts.Index.PendingWait.String())
		case <-ctx.Done():
			timer.Stop()
			return nil, ctx.Err()
		}
		sp.mu.Lock()
	}
}

func (e *Engine) backlogFull(sp *space, backlog int, waited string) error {
	e.backlog.refused.Add(1)
	msg := "space %q has %d memories waiting for the index, over its bound of %d (index.max_pending); retry once the indexer catches up"
	args := []any{sp.info.Name, backlog, e.opts.Index.MaxPending}
	if waited != "" {
		msg = "space %q still had %d memories waiting for the index after this write waited %s (index.max_pending %d, index.pending_wait); retry once the indexer catches up"
		args = []any{sp.info.Name, backlog, waited, e.opts.Index.MaxPending}
	}
	return Errorf(KindUnavailable, "INDEX_BACKLOG", msg, args...).
		WithDetails("space", sp.info.Name, "pending", backlog, "limit", e.opts.Index.MaxPending)
}

// signalRoom wakes the writes waiting for room once the backlog is under
// the bound (caller holds sp.mu).
func (sp *space) signalRoom(limit int) {
	if sp.room != nil && len(sp.pending)+sp.reserved < limit {
		close(sp.room)
		sp.room = nil
	}
}
