// Package core is the Engram memory engine on Pebble: spaces, memories,
// associations, recall with spreading activation, decay and tiers, and the
// change log that backup and point-in-time restore build on.
//
// It imports Pebble, its own sub-packages and the standard library only —
// never net/http, Prometheus, cobra, S3 clients or database drivers (a test
// enforces this). Transports adapt it; it knows nothing of them.
//
// Write path: every mutation is validated and embedded outside any lock, then
// under one commit mutex it gets the next change-log sequence, is written to
// Pebble together with its change-log entry in one batch (NoSync), and the
// in-memory state is updated in sequence order. Outside the mutex the writer
// waits for a WAL fsync (Pebble's commit pipeline groups concurrent syncs into
// one), so durable throughput is bounded by the disk, and ANN insertion runs
// behind the write path: vectors not yet in the index are searched exactly.
package core

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"

	"github.com/engram-ops/engram-ops/core/embed"
)

const formatMarker = "engram-ops/1"

// DataFormat is the format marker a data directory records at creation:
// a binary opens only a directory of its own format (UNSUPPORTED_FORMAT
// otherwise), and memory records and change-log entries carry their own
// version byte, which a binary older than the writer refuses.
const DataFormat = formatMarker

// Engine is an open data directory. It is safe for concurrent use.
type Engine struct {
	dir   string
	opts  Options
	db    *pebble.DB
	log   *slog.Logger
	now   func() time.Time
	cache *hotCache
	vecs  vecArena // the vectors the indexes keep
	// spaceNums numbers spaces for the hot tier's keys; a number is never
	// reused within a process.
	spaceNums atomic.Uint32
	ids       idGen
	closed    atomic.Bool

	// commitMu orders mutations: sequence assignment, the Pebble batch and
	// the in-memory state change happen together under it.
	commitMu sync.Mutex
	seq      uint64 // last assigned sequence (guarded by commitMu)
	durable  atomic.Uint64
	commitQ  commitQueue
	logFirst atomic.Uint64 // lowest retained change-log sequence (0: log empty)
	logHold  atomic.Uint64 // retention keeps entries at or after this (0: no hold)

	spacesMu sync.RWMutex
	spaces   map[string]*space

	touchMu sync.Mutex
	touched map[*space]map[uint32]struct{}

	migrations [numTiers][numTiers]atomic.Uint64

	inFlight atomic.Int64 // foreground writes and recalls in progress
	// lastForeground is when the last foreground write or recall ended
	// (Unix nanoseconds, wall clock), so the indexer can tell a pause
	// between requests from an idle server.
	lastForeground atomic.Int64

	kick   chan struct{} // wakes the indexer
	saveMu sync.Mutex    // serialises index saves (the periodic one, BuildIndex's)
	stop   chan struct{}
	wg     sync.WaitGroup
	bgErrs atomic.Uint64
	// backlog counts writes held or refused by Index.MaxPending.
	backlog backlogStats
	// walSyncs times the fsyncs that make writes durable.
	walSyncs syncHistogram
	// The disk guard (diskspace.go): the last measured free bytes of the
	// data directory's filesystem, and whether they are under the reserve.
	diskFree         atomic.Int64
	corruption       *corruptionLog
	lowDisk          atomic.Bool
	diskCheckFailing atomic.Bool // the last measurement failed (logged once)
	// obs are told of operations that took effect (observe.go).
	obs observers
	// barrier, when set, refuses every write but replay (barrier.go).
	barrier atomic.Pointer[writeBarrier]
}

// Open opens (creating if needed) the data directory dir.
func Open(dir string, opts Options) (*Engine, error) {
	opts = withDefaults(opts)
	if opts.Durability != DurabilitySync && opts.Durability != DurabilityRelaxed {
		return nil, Errorf(KindInvalid, "INVALID_OPTION", "durability %q is not one of sync, relaxed", opts.Durability)
	}
	if err := CheckFreeSpace(dir, 0, opts); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "index"), 0o755); err != nil {
		return nil, internalf(err, "create data directory %s", dir)
	}
	cache := pebble.NewCache(opts.CacheBytes)
	defer cache.Unref()
	corruption := &corruptionLog{log: opts.Logger}
	popts := &pebble.Options{
		Cache:         cache,
		MemTableSize:  32 << 20,
		Logger:        &quietLogger{l: opts.Logger},
		FS:            opts.FS,
		EventListener: &pebble.EventListener{DataCorruption: corruption.report},
	}
	// Bloom filters let a point read (a recalled memory's record) skip
	// the tables of every level that does not hold its key.
	for i := range popts.Levels {
		popts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
		popts.Levels[i].FilterType = pebble.TableFilter
	}
	dbDir := filepath.Join(dir, "db")
	db, err := pebble.Open(dbDir, popts)
	if err != nil {
		return nil, openError(dbDir, err)
	}
	e := &Engine{
		dir:        dir,
		opts:       opts,
		db:         db,
		log:        opts.Logger,
		now:        opts.Now,
		cache:      newHotCache(opts.Tiers.HotCapacityBytes),
		spaces:     map[string]*space{},
		touched:    map[*space]map[uint32]struct{}{},
		kick:       make(chan struct{}, 1),
		stop:       make(chan struct{}),
		commitQ:    commitQueue{wake: make(chan struct{}, 1)},
		corruption: corruption,
	}
	if err := e.load(); err != nil {
		_ = db.Close()
		if pebble.IsCorruptionError(err) {
			return nil, openError(dbDir, err)
		}
		return nil, err
	}
	e.checkDiskSpace()
	e.startBackground()
	return e, nil
}

// DefaultOptions are the engine's defaults, the one source of them:
// ops/config derives the server's configuration defaults from these.
//
// One convention for "off": a setting that switches a background job or a
// guard off (Tiers.SweepInterval, ChangeLog.Retention, MinFreeBytes,
// Limits.MaxSpaces, Index.MaxPending) is off at 0 (negative values count as
// 0). Every other field is required, and 0 there means its default here, so
// the zero Options are usable: required fields defaulted, those switches off.
func DefaultOptions() Options {
	return Options{
		Durability:       DurabilitySync,
		DefaultDimension: 768,
		DefaultEmbedder:  "hash",
		Limits: Limits{
			MaxContentBytes: 100_000,
			MaxDimension:    4096,
			MaxResults:      1000,
			MaxBatch:        10_000,
			MaxTags:         64,
			MaxMetadata:     64,
			MaxIDBytes:      128,
			MaxSpaces:       10_000,
		},
		Index: IndexOptions{ExactThreshold: 2_000, M: 16, EfConstruction: 128, EfSearch: 96, SaveInterval: time.Minute,
			MaxPending: 1_000, PendingWait: 2 * time.Second},
		Tiers: TierOptions{
			HotCapacityBytes:  64 << 20,
			ColdBelow:         0.05,
			SweepInterval:     time.Minute,
			InitialStability:  72 * time.Hour,
			WarmCapacityBytes: 8 << 30,
			ColdCapacityBytes: 64 << 30,
		},
		CacheBytes:         64 << 20,
		TouchFlushInterval: time.Second,
		ChangeLog:          ChangeLogOptions{Retention: 7 * 24 * time.Hour, CheckInterval: 10 * time.Minute},
		MinFreeBytes:       256 << 20,
	}
}

// withDefaults fills the required fields o leaves at 0 from
// DefaultOptions; the switches (see DefaultOptions) stay as given.
func withDefaults(o Options) Options {
	d := DefaultOptions()
	orDefault(&o.Durability, d.Durability)
	orDefault(&o.DefaultDimension, d.DefaultDimension)
	orDefault(&o.DefaultEmbedder, d.DefaultEmbedder)
	l, dl := &o.Limits, d.Limits
	orDefault(&l.MaxContentBytes, dl.MaxContentBytes)
	orDefault(&l.MaxDimension, dl.MaxDimension)
	orDefault(&l.MaxResults, dl.MaxResults)
	orDefault(&l.MaxBatch, dl.MaxBatch)
	orDefault(&l.MaxTags, dl.MaxTags)
	orDefault(&l.MaxMetadata, dl.MaxMetadata)
	orDefault(&l.MaxIDBytes, dl.MaxIDBytes)
	x, dx := &o.Index, d.Index
	orDefault(&x.ExactThreshold, dx.ExactThreshold)
	orDefault(&x.M, dx.M)
	orDefault(&x.EfConstruction, dx.EfConstruction)
	orDefault(&x.EfSearch, dx.EfSearch)
	orDefault(&x.SaveInterval, dx.SaveInterval)
	orDefault(&x.PendingWait, dx.PendingWait)
	t, dt := &o.Tiers, d.Tiers
	orDefault(&t.HotCapacityBytes, dt.HotCapacityBytes)
	orDefault(&t.ColdBelow, dt.ColdBelow)
	orDefault(&t.InitialStability, dt.InitialStability)
	orDefault(&t.WarmCapacityBytes, dt.WarmCapacityBytes)
	orDefault(&t.ColdCapacityBytes, dt.ColdCapacityBytes)
	orDefault(&o.CacheBytes, d.CacheBytes)
	orDefault(&o.TouchFlushInterval, d.TouchFlushInterval)
	if o.ChangeLog.CheckInterval <= 0 {
		o.ChangeLog.CheckInterval = d.ChangeLog.CheckInterval
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Embedders == nil {
		o.Embedders = BuiltinEmbedders
	}
	if o.DiskFree == nil {
		o.DiskFree = filesystemFree
	}
	return o
}

func orDefault[T comparable](p *T, v T) {
	var zero T
	if *p == zero {
		*p = v
	}
}

// BuiltinEmbedders knows only the built-in hashing embedder ("hash").
func BuiltinEmbedders(name string, dim int) (Embedder, error) {
	if name != "hash" {
		return nil, Errorf(KindInvalid, "UNKNOWN_EMBEDDER", "embedder %q is not available; known: hash", truncate(name, 80))
	}
	h, err := embed.NewHashing(dim)
	if err != nil {
		return nil, Errorf(KindInvalid, "INVALID_DIMENSION", "%v", err)
	}
	return h, nil
}

// quietLogger routes Pebble's own logging into slog at debug/error level.
// Errors of one kind (one format string) are logged at most once per
// errorLogInterval, with a count of the ones left out: Pebble retries a
// failing flush at once, so on a full disk it would log identical lines
// as fast as it retries. Errors of another kind are not
// held back by them.
type quietLogger struct {
	l *slog.Logger

	mu     sync.Mutex
	errors map[string]*errorKind // by format string: a few constants in Pebble's code
}

type errorKind struct {
	last       time.Time
	suppressed int
}

const errorLogInterval = time.Second

func (q *quietLogger) Infof(format string, args ...any) {
	q.l.Debug(fmt.Sprintf(format, args...), "component", "pebble")
}
func (q *quietLogger) Errorf(format string, args ...any) {
	q.mu.Lock()
	k := q.errors[format]
	if k == nil {
		if q.errors == nil {
			q.errors = map[string]*errorKind{}
		}
		k = &errorKind{}
		q.errors[format] = k
	}
	now := time.Now()
	if now.Sub(k.last) < errorLogInterval {
		k.suppressed++
		q.mu.Unlock()
		return
	}
	left := k.suppressed
	k.last, k.suppressed = now, 0
	q.mu.Unlock()
	if left > 0 {
		q.l.Error(fmt.Sprintf(format, args...), "component", "pebble", "errors_not_logged_since_last", left)
		return
	}
	q.l.Error(fmt.Sprintf(format, args...), "component", "pebble")
}
func (q *quietLogger) Fatalf(format string, args ...any) {
	q.l.Error(fmt.Sprintf(format, args...), "component", "pebble")
	panic(fmt.Sprintf(format, args...))
}

// Ready reports whether the engine serves requests.
func (e *Engine) Ready() error {
	if e.closed.Load() {
		return ErrClosed
	}
	return nil
}

// Close flushes reinforcement, persists the ANN indexes, syncs and closes
// Pebble. Further calls return ErrClosed.
func (e *Engine) Close() error {
	if e.closed.Swap(true) {
		return nil
	}
	close(e.stop)
	e.wg.Wait()
	var errs []error
	if e.diskLow() {
		e.log.Warn("closing with the disk almost full: recent recall reinforcement and the ANN index are not saved; the next start indexes again what the saved index lacks",
			"data_dir", e.dir, "free_bytes", e.diskFree.Load(), "min_free_bytes", e.opts.MinFreeBytes)
	} else {
		if err := e.flushTouches(); err != nil {
			errs = append(errs, err)
		}
		if err := e.saveIndexes(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := e.db.LogData(nil, pebble.Sync); err != nil {
		errs = append(errs, err)
	}
	if err := e.db.Close(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (e *Engine) checkOpen() error {
	if e.closed.Load() {
		return ErrClosed
	}
	return nil
}

// LastSequence is the highest change-log sequence known durable.
func (e *Engine) LastSequence() uint64 { return e.durable.Load() }

// Dir is the data directory.
func (e *Engine) Dir() string { return e.dir }

// LockDataDir takes the lock a server holds on the data directory dir (the
// storage engine's lock file, dir/db/LOCK) without opening the engine, so
// that an operation which replaces or rewrites dir can keep a server from
// running on it meanwhile. It fails with DATA_DIR_IN_USE, naming the lock
// file, while an engine (in this or another process) has dir open. dir/db
// must exist; release unlocks.
func LockDataDir(dir string) (release func() error, err error) {
	l, err := lockDataDir(filepath.Join(dir, "db"))
	if err != nil {
		return nil, err
	}
	return l.Close, nil
}

// lockHeld reports whether err is the storage engine's lock being held.
// The lock is an fcntl lock: another process holding it makes the kernel
// answer EAGAIN; Pebble refuses a second open in the same process itself,
// with this message and no error value to test.
func lockHeld(err error) bool {
	return errors.Is(err, syscall.EAGAIN) || strings.Contains(err.Error(), "lock held by current process")
}

// dataDirInUse is DATA_DIR_IN_USE for the storage engine in db.
func dataDirInUse(db string, err error) *Error {
	return &Error{Kind: KindUnavailable, Code: "DATA_DIR_IN_USE", Err: err, Message: fmt.Sprintf(
		"another process, most likely an engram-ops server running on this data directory, holds the lock on %s", filepath.Join(db, "LOCK"))}
}

// openError says why the storage engine in db would not open: its files are
// damaged, another process holds them, or an I/O failure. A failed open
// changes nothing in db (Pebble replays its log in memory first).
func openError(db string, err error) *Error {
	switch {
	case pebble.IsCorruptionError(err):
		// The cause goes inside the message, before the advice.
		var cause any = err
		if info := pebble.ExtractDataCorruptionInfo(err); info != nil {
			cause = fmt.Sprintf("%s: %v", info.Path, info.Details)
		}
		return &Error{Kind: KindInternal, Code: "STORAGE_CORRUPT", Message: fmt.Sprintf(
			"the storage engine's files in %s are damaged (%v), so acknowledged data may be missing from them; the server did not start on them. %s",
			db, cause, RestoreAdvice)}
	case lockHeld(err):
		return dataDirInUse(db, err)
	}
	return internalf(err, "open the storage engine in %s", db)
}

// txn is one atomic mutation being built under commitMu.
type txn struct {
	e       *Engine
	batch   *pebble.Batch
	now     time.Time
	changes []Change
	after   []func() // in-memory updates, run after a successful commit
	// replay is set by ApplyChanges: the one change a replayed entry logs
	// keeps the original sequence (replaySeq) and time (now).
	replay    bool
	replaySeq uint64
	edges     map[string]bool // association keys written by this txn
	vectors   map[string]bool // vector keys written by this txn
	// nextSlots holds each space's next free slot as this txn leaves it,
	// written once before the commit (finish) rather than per memory.
	nextSlots []spaceSlot
}

type spaceSlot struct {
	sp   *space
	next uint32
}

// setNextSlot records next as sp's next free slot for finish.
func (t *txn) setNextSlot(sp *space, next uint32) {
	for i := range t.nextSlots {
		if t.nextSlots[i].sp == sp {
			t.nextSlots[i].next = next
			return
		}
	}
	t.nextSlots = append(t.nextSlots, spaceSlot{sp, next})
}

// reserve gives a build that knows it writes about n bytes a batch of
// that capacity, so the batch does not grow (copying what it holds) on
// the way. Only before the first write.
func (t *txn) reserve(n int) {
	if n <= 1<<16 || !t.batch.Empty() {
		return
	}
	t.batch.Close()
	t.batch = t.e.db.NewBatchWithSize(n)
}

// finish writes what the txn's build left to write once: each space's
// next free slot.
func (t *txn) finish() error {
	for _, s := range t.nextSlots {
		var nb [4]byte
		binary.BigEndian.PutUint32(nb[:], s.next)
		if err := t.batch.Set(spaceKey(famNextSlot, s.sp.info.Name), nb[:], nil); err != nil {
			return err
		}
	}
	return nil
}

// logChange appends c to the change log in this batch, assigning its
// sequence (unless replaying) and time.
func (t *txn) logChange(c Change) uint64 {
	if !t.replay {
		t.e.seq++
		c.Seq = t.e.seq
		c.Time = t.now
	} else {
		c.Seq, c.Time = t.replaySeq, t.now
		t.e.seq = c.Seq
	}
	_ = t.batch.Set(logKey(c.Seq), EncodeChange(&c), nil)
	t.changes = append(t.changes, c)
	return c.Seq
}

func (e *Engine) markDurable(seq uint64) {
	for {
		cur := e.durable.Load()
		if seq <= cur || e.durable.CompareAndSwap(cur, seq) {
			return
		}
	}
}

// Checkpoint writes a consistent copy of the engine to dir (which must not
// exist) and returns the change-log sequence it contains.
func (e *Engine) Checkpoint(dir string) (uint64, error) {
	if err := e.checkOpen(); err != nil {
		return 0, err
	}
	if err := e.flushTouches(); err != nil {
		return 0, err
	}
	// Memtable contents go into a table first: otherwise the checkpoint
	// carries them as a WAL copy, which differs in every checkpoint and so
	// is uploaded whole by every incremental snapshot (up to a memtable's
	// size), where a flushed table is shared by every later one. Writes
	// continue meanwhile, into a fresh WAL the checkpoint copies.
	if err := e.db.Flush(); err != nil {
		return 0, internalf(err, "flush before checkpoint")
	}
	e.commitMu.Lock()
	defer e.commitMu.Unlock()
	if err := e.db.LogData(nil, pebble.Sync); err != nil {
		return 0, internalf(err, "sync before checkpoint")
	}
	e.markDurable(e.seq)
	if err := e.db.Checkpoint(filepath.Join(dir, "db"), pebble.WithFlushedWAL()); err != nil {
		return 0, internalf(err, "checkpoint to %s", dir)
	}
	if err := os.MkdirAll(filepath.Join(dir, "index"), 0o755); err != nil {
		return 0, internalf(err, "checkpoint index dir")
	}
	for _, sp := range e.spaceList() {
		if !sp.graphWorthSaving() {
			continue // rebuilt from the vectors when the copy is opened
		}
		if err := writeIndexFile(sp, filepath.Join(dir, "index")); err != nil {
			return 0, err
		}
	}
	return e.seq, nil
}

func (e *Engine) startBackground() {
	synced := make(chan []*commitReq, 64)
	e.wg.Add(2)
	go func() { defer e.wg.Done(); e.runCommitter(synced) }()
	go func() { defer e.wg.Done(); e.runSyncer(synced) }()
	e.wg.Add(1)
	go func() { defer e.wg.Done(); e.runIndexer() }()
	if e.opts.MinFreeBytes > 0 {
		e.every(diskCheckInterval, "measure free disk space", func() error { e.checkDiskSpace(); return nil })
	}
	// Bookkeeping writes wait while the disk guard refuses writes: the
	// reinforcement stays queued, an unsaved index is completed by the next
	// start (what the saved graph lacks is indexed again), and tier moves
	// can wait.
	unlessDiskLow := func(f func() error) func() error {
		return func() error {
			if e.diskLow() {
				return nil
			}
			return f()
		}
	}
	e.every(e.opts.TouchFlushInterval, "flush reinforcement", unlessDiskLow(func() error { return e.flushTouchesPaced(true) }))
	e.every(e.opts.Index.SaveInterval, "save index", unlessDiskLow(e.saveIndexes))
	if e.opts.ChangeLog.Retention > 0 {
		e.every(e.opts.ChangeLog.CheckInterval, "change-log retention", func() error {
			_, err := e.ApplyChangeLogRetention()
			return err
		})
	}
	if e.opts.Tiers.SweepInterval > 0 {
		e.every(e.opts.Tiers.SweepInterval, "tier sweep", unlessDiskLow(e.Sweep))
	}
	if e.opts.Durability == DurabilityRelaxed {
		e.every(time.Second, "relaxed sync", func() error {
			e.commitMu.Lock()
			last := e.seq
			e.commitMu.Unlock()
			if err := e.syncWAL(0); err != nil {
				return err
			}
			e.markDurable(last)
			return nil
		})
	}
}

// every runs f every d until Close, logging failures.
func (e *Engine) every(d time.Duration, what string, f func() error) {
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-e.stop:
				return
			case <-t.C:
				if err := f(); err != nil {
					e.bgErrs.Add(1)
					e.log.Error("background task failed", "task", what, "err", err)
				}
			}
		}
	}()
}

// BackgroundErrors counts failed background tasks since Open.
func (e *Engine) BackgroundErrors() uint64 { return e.bgErrs.Load() }

// ChangesSince returns up to limit durable change-log entries with sequence
// greater than after, in order.
func (e *Engine) ChangesSince(after uint64, limit int) ([]Change, error) {
	if err := e.checkOpen(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = 1000
	}
	upto := e.durable.Load()
	if after >= upto {
		return nil, nil
	}
	if first := e.logFirst.Load(); first > 0 && after+1 < first {
		return nil, Errorf(KindConflict, "CHANGE_LOG_TRUNCATED",
			"change-log entries %d..%d were removed by retention (changelog.retention); the oldest kept is %d: start from a new snapshot", after+1, first-1, first).
			WithDetails("oldest_kept", first)
	}
	it, err := e.db.NewIter(&pebble.IterOptions{LowerBound: logKey(after + 1), UpperBound: logKey(upto + 1)})
	if err != nil {
		return nil, internalf(err, "read change log")
	}
	defer it.Close()
	var out []Change
	for ok := it.First(); ok && len(out) < limit; ok = it.Next() {
		c, err := DecodeChange(it.Value())
		if err != nil {
			return nil, internalf(err, "decode change-log entry %x", it.Key())
		}
		out = append(out, c)
	}
	if err := it.Error(); err != nil {
		return nil, internalf(err, "read change log")
	}
	return out, nil
}

// ctxErr maps a cancelled context to an engine error.
func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return &Error{Kind: KindUnavailable, Code: "CANCELLED", Message: "request cancelled", Err: err}
	}
	return nil
}

// enterForeground marks a write or recall in progress, for the indexer's
// idle test (shouldYield); exitForeground ends it.
func (e *Engine) enterForeground() { e.inFlight.Add(1) }

func (e *Engine) exitForeground() {
	e.lastForeground.Store(time.Now().UnixNano())
	e.inFlight.Add(-1)
}
