package core

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Mutations are committed by one goroutine (the committer) in arrival
// order: it runs each one's build, commits its batch without syncing and
// applies its in-memory updates, a whole queue at a time, then hands the
// group to the syncer goroutine, which makes it durable with one WAL fsync
// and wakes its writers. Builds and fsyncs overlap, and no writer waits on
// a lock another writer holds: with a mutex, hundreds of concurrent writers
// on two cores formed a convoy (each hand-off waited for the scheduler),
// which capped durable remembers at a few thousand a second with the CPU
// half idle.

// commitReq is one mutation waiting to be committed.
type commitReq struct {
	build func(t *txn) error
	seq   uint64
	err   error
	done  chan struct{}
}

// commitQueue holds the mutations not yet taken by the committer.
type commitQueue struct {
	mu     sync.Mutex
	reqs   []*commitReq
	closed bool
	wake   chan struct{} // capacity 1: "the queue is not empty"
}

var reqPool = sync.Pool{New: func() any { return &commitReq{done: make(chan struct{}, 1)} }}

// mutate is commit's acknowledged mode: it queues build for the committer
// (which runs it through commitLocked) and, with sync durability, returns
// once the WAL holding it is fsynced.
func (e *Engine) mutate(build func(t *txn) error) (uint64, error) {
	if err := e.checkOpen(); err != nil {
		return 0, err
	}
	if e.diskLow() {
		return 0, e.errDiskLow()
	}
	e.enterForeground()
	defer e.exitForeground()
	r := reqPool.Get().(*commitReq)
	r.build, r.seq, r.err = build, 0, nil
	q := &e.commitQ
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		reqPool.Put(r)
		return 0, ErrClosed
	}
	q.reqs = append(q.reqs, r)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	<-r.done
	seq, err := r.seq, r.err
	r.build = nil
	reqPool.Put(r)
	return seq, err
}

// runCommitter commits queued mutations until Close, then commits what is
// left and stops the syncer.
func (e *Engine) runCommitter(synced chan<- []*commitReq) {
	defer close(synced)
	q := &e.commitQ
	var reqs []*commitReq
	for {
		stopping := false
		select {
		case <-q.wake:
		case <-e.stop:
			stopping = true
		}
		q.mu.Lock()
		reqs, q.reqs = q.reqs, reqs[:0]
		if stopping {
			q.closed = true
		}
		q.mu.Unlock()
		if len(reqs) > 0 {
			group := e.commitGroup(reqs)
			if len(group) > 0 {
				synced <- group
			}
		}
		if stopping {
			return
		}
	}
}

// commitGroup commits reqs in order and returns those that still wait for
// durability (none with relaxed durability: they are answered at once).
func (e *Engine) commitGroup(reqs []*commitReq) []*commitReq {
	var waiting []*commitReq
	e.commitMu.Lock()
	for _, r := range reqs {
		r.seq, r.err = e.commitLocked(r.build, false)
		if r.err != nil || e.opts.Durability != DurabilitySync {
			r.done <- struct{}{}
			continue
		}
		waiting = append(waiting, r)
	}
	e.commitMu.Unlock()
	return waiting
}

// commitMode says how a mutation reaches the log; every mode goes through
// commitLocked, the one place that builds, commits and applies a txn.
type commitMode int

const (
	// commitAcked: an acknowledged write (remember, forget, ...), queued
	// for the committer and, with sync durability, returned once fsynced.
	commitAcked commitMode = iota
	// commitBackground: bookkeeping that is not acknowledged data
	// (reinforcement, tier moves): committed at once without waiting for
	// the WAL fsync; it also runs during Close's final flush.
	commitBackground
	// commitReplay: a change-log entry replayed from a backup, keeping
	// its original sequence and time (ApplyChanges syncs at the end).
	commitReplay
)

// commit runs build as one atomic mutation in the given mode and returns
// the last sequence it assigned.
func (e *Engine) commit(mode commitMode, build func(t *txn) error) (uint64, error) {
	switch mode {
	case commitAcked:
		return e.mutate(build)
	case commitBackground:
		if err := e.checkOpenOrClosing(); err != nil {
			return 0, err
		}
	case commitReplay:
		if err := e.checkOpen(); err != nil {
			return 0, err
		}
	}
	if e.diskLow() {
		return 0, e.errDiskLow()
	}
	e.commitMu.Lock()
	seq, err := e.commitLocked(build, mode == commitReplay)
	e.commitMu.Unlock()
	if err == nil && mode == commitBackground && e.opts.Durability == DurabilityRelaxed {
		e.markDurable(seq)
	}
	return seq, err
}

// commitLocked builds one txn, commits its batch without syncing and runs
// its in-memory updates; on failure the sequences it assigned are given
// back. It returns the engine's last assigned sequence, 0 on failure.
// While the write barrier is up it refuses all but a replay. commitMu is
// held.
func (e *Engine) commitLocked(build func(t *txn) error, replay bool) (uint64, error) {
	if b := e.barrier.Load(); b != nil && !replay {
		return 0, b.err
	}
	t := &txn{e: e, batch: e.db.NewBatch(), replay: replay}
	if !replay {
		t.now = e.now().UTC()
	}
	defer func() { t.batch.Close() }() // reserve may replace it
	startSeq := e.seq
	err := build(t)
	if err == nil {
		err = t.finish()
	}
	if err == nil {
		if err = t.batch.Commit(pebble.NoSync); err != nil {
			err = internalf(err, "commit")
		}
	}
	if err != nil {
		e.seq = startSeq
		return 0, err
	}
	for _, f := range t.after {
		f()
	}
	e.obs.emitChanges(t.changes)
	return e.seq, nil
}

// runSyncer makes committed groups durable: one WAL fsync for every group
// that queued up while the previous fsync ran.
func (e *Engine) runSyncer(synced <-chan []*commitReq) {
	var batch []*commitReq
	for group := range synced {
		batch = append(batch[:0], group...)
	more:
		for {
			select {
			case g, ok := <-synced:
				if !ok {
					break more
				}
				batch = append(batch, g...)
			default:
				break more
			}
		}
		err := e.syncWAL(len(batch))
		var last uint64
		for _, r := range batch {
			last = max(last, r.seq)
		}
		if err == nil {
			e.markDurable(last)
		}
		for _, r := range batch {
			if err != nil {
				r.seq, r.err = 0, internalf(err, "sync write-ahead log")
			}
			r.done <- struct{}{}
		}
	}
}

// syncWAL fsyncs the write-ahead log, timing the fsync in e.walSyncs with
// the writes it makes durable (0 for relaxed durability's timed syncs).
func (e *Engine) syncWAL(writes int) error {
	start := time.Now()
	if err := e.db.LogData(nil, pebble.Sync); err != nil {
		return err
	}
	e.walSyncs.observe(time.Since(start), writes)
	return nil
}

// WALSyncBuckets are the upper bounds, in seconds, of Metrics.WALSync's
// buckets: 0.25 ms to 4 s, doubling, so a healthy SSD (well under a
// millisecond) and a stalling disk (hundreds) both land in the middle.
var WALSyncBuckets = [...]float64{0.00025, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096}

// syncHistogram counts WAL fsync durations in WALSyncBuckets (the last
// count is above the largest bound) and the writes they made durable.
type syncHistogram struct {
	counts   [len(WALSyncBuckets) + 1]atomic.Uint64
	sumNanos atomic.Uint64
	writes   atomic.Uint64
}

func (h *syncHistogram) observe(d time.Duration, writes int) {
	sec := d.Seconds()
	i := 0
	for i < len(WALSyncBuckets) && sec > WALSyncBuckets[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sumNanos.Add(uint64(d))
	h.writes.Add(uint64(writes))
}

// snapshot returns cumulative bucket counts, as Prometheus histograms keep.
func (h *syncHistogram) snapshot() WALSyncStats {
	s := WALSyncStats{Cumulative: make([]uint64, len(WALSyncBuckets))}
	var total uint64
	for i := range WALSyncBuckets {
		total += h.counts[i].Load()
		s.Cumulative[i] = total
	}
	s.Count = total + h.counts[len(WALSyncBuckets)].Load()
	s.Sum = time.Duration(h.sumNanos.Load()).Seconds()
	s.Writes = h.writes.Load()
	return s
}
