package core

import (
	"context"
	"slices"
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
//
// Waiting writes queue in arrival order and are admitted one at a time as
// the indexer makes room: signalRoom reserves the room on the first
// waiter's behalf and wakes it alone. Waking every waiter on each insert
// would put all of them on the run queue for one slot, ahead of the
// recalls the bound exists for.
func (e *Engine) admit(ctx context.Context, sp *space, n int) (release func(), err error) {
	limit := e.backlogLimit()
	if limit <= 0 || n == 0 {
		return func() {}, nil
	}
	release = func() {
		sp.mu.Lock()
		sp.reserved -= n
		sp.signalRoom(limit)
		sp.mu.Unlock()
	}
	sp.mu.Lock()
	backlog := len(sp.pending) + sp.reserved
	if len(sp.waiters) == 0 && (backlog+n <= limit || backlog == 0) {
		sp.reserved += n
		sp.mu.Unlock()
		return release, nil
	}
	if backlog >= 2*limit {
		sp.mu.Unlock()
		return nil, e.backlogFull(sp, backlog, "")
	}
	w := &roomWaiter{n: n, ready: make(chan struct{})}
	sp.waiters = append(sp.waiters, w)
	sp.mu.Unlock()
	start := time.Now()
	timer := time.NewTimer(e.opts.Index.PendingWait)
	defer timer.Stop()
	e.kickIndexer()
	waited := func() {
		e.backlog.waits.Add(1)
		e.backlog.waitNanos.Add(int64(time.Since(start)))
	}
	select {
	case <-w.ready:
		waited()
		return release, nil
	case <-timer.C:
		sp.mu.Lock()
		if !sp.dropWaiter(w, limit) { // admitted as the timer fired
			sp.mu.Unlock()
			waited()
			return release, nil
		}
		backlog := len(sp.pending) + sp.reserved
		sp.mu.Unlock()
		waited()
		return nil, e.backlogFull(sp, backlog, e.opts.Index.PendingWait.String())
	case <-ctx.Done():
		sp.mu.Lock()
		if !sp.dropWaiter(w, limit) {
			sp.reserved -= n
			sp.signalRoom(limit)
		}
		sp.mu.Unlock()
		return nil, ctx.Err()
	}
}

// roomWaiter is a write waiting for room in its space's backlog; ready is
// closed once signalRoom has reserved its n vectors.
type roomWaiter struct {
	n     int
	ready chan struct{}
}

// dropWaiter removes w from the queue, false if it was already admitted
// (caller holds sp.mu). Writes queued behind w may fit now.
func (sp *space) dropWaiter(w *roomWaiter, limit int) bool {
	i := slices.Index(sp.waiters, w)
	if i < 0 {
		return false
	}
	sp.waiters = slices.Delete(sp.waiters, i, i+1)
	sp.signalRoom(limit)
	return true
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

// signalRoom admits waiting writes in arrival order while the backlog has
// room for the first of them, reserving its vectors before waking it
// (caller holds sp.mu). Waiters are admitted once a chunk of the bound is
// free, not one per insert, so they commit together: one durable commit
// for the group instead of one each.
func (sp *space) signalRoom(limit int) {
	if len(sp.waiters) == 0 {
		return
	}
	backlog := len(sp.pending) + sp.reserved
	if backlog > 0 && limit-backlog < max(admitChunk(limit), sp.waiters[0].n) {
		return
	}
	for len(sp.waiters) > 0 {
		w := sp.waiters[0]
		backlog := len(sp.pending) + sp.reserved
		if backlog+w.n > limit && backlog > 0 {
			return
		}
		sp.reserved += w.n
		close(w.ready)
		sp.waiters[0] = nil
		sp.waiters = sp.waiters[1:]
	}
}

// admitChunk is how much of the bound must be free before waiting writes
// are admitted.
func admitChunk(limit int) int { return max(1, limit/64) }
