package core

import (
	"log/slog"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Durability chooses what an acknowledged write means.
type Durability string

const (
	// DurabilitySync: a write is acknowledged only after the WAL is fsynced
	// (group commit shares one fsync among concurrent writers).
	DurabilitySync Durability = "sync"
	// DurabilityRelaxed: writes are acknowledged once in the memtable and the
	// WAL is synced in the background every second; a crash can lose them.
	DurabilityRelaxed Durability = "relaxed"
)

// Limits bound what one request may ask of the engine. Defaults are in
// DefaultOptions; 0 means the default, except for MaxSpaces.
type Limits struct {
	MaxContentBytes int
	MaxDimension    int
	MaxResults      int
	MaxBatch        int // memories+associations per batch
	MaxTags         int
	MaxMetadata     int // metadata entries
	MaxIDBytes      int
	// MaxSpaces caps how many spaces may exist: creating one more fails
	// with SPACE_LIMIT_REACHED (existing spaces keep working, and replaying
	// a change log or restore recreates every space it holds). 0: no cap.
	MaxSpaces int
}

// IndexOptions tune the ANN index (defaults in DefaultOptions).
type IndexOptions struct {
	ExactThreshold int // spaces with fewer live vectors are searched exactly
	M              int // HNSW neighbours per node
	EfConstruction int
	EfSearch       int
	SaveInterval   time.Duration // how often a changed index graph is persisted
	// MaxPending bounds a space's index backlog (acknowledged vectors not
	// yet in the ANN index, which every recall scans exactly): a write
	// that would take it past the bound waits for the indexer, up to
	// PendingWait, and is refused with INDEX_BACKLOG after that, or at once
	// when the backlog is already twice the bound. A switch: 0 is off.
	MaxPending  int
	PendingWait time.Duration // how long a write waits for room in the backlog
	// Defer is the bulk-load mode: the background indexer inserts nothing
	// and MaxPending does not apply, and Batch does not compute the vectors
	// a deterministic embedder derives from the content (nor holds them).
	// Writes stay durable and recall scans the backlog exactly (computing
	// those vectors first); BuildIndex (or the next open without Defer)
	// indexes it on every core.
	Defer bool
}

// TierOptions tune decay and tier migration (defaults in DefaultOptions).
type TierOptions struct {
	HotCapacityBytes  int64         // bytes of encoded records kept in memory (the hot tier)
	ColdBelow         float64       // retrievability under which a memory goes cold
	SweepInterval     time.Duration // how often the background sweeper runs; 0: no sweeper
	InitialStability  time.Duration // S for a new memory at confidence 0.5
	WarmCapacityBytes int64         // reported capacity of the warm tier
	ColdCapacityBytes int64         // reported capacity of the cold tier
}

// Options configure an Engine. DefaultOptions are the defaults; the zero
// value is usable too (sync durability, 768-dimension spaces with the
// built-in hashing embedder, auto-created spaces), with the switches that
// are off at 0 off: no tier sweeper, no change-log retention, no disk
// guard, no cap on spaces.
type Options struct {
	Durability         Durability
	DefaultDimension   int
	DefaultEmbedder    string
	NoAutoCreateSpaces bool            // when true, writes to an unknown space fail with SPACE_NOT_FOUND
	Embedders          EmbedderFactory // nil: only the built-in "hash" embedder
	Limits             Limits
	Index              IndexOptions
	Tiers              TierOptions
	CacheBytes         int64 // Pebble block cache
	Logger             *slog.Logger
	Now                func() time.Time // clock, for tests
	TouchFlushInterval time.Duration    // how often recall reinforcement is persisted
	// FS holds the Pebble store (the "db" directory); nil is the operating
	// system's. Crash tests pass a crashable in-memory FS and reopen a clone
	// that keeps only what was synced, which a kill -9 cannot show (the
	// page cache survives it).
	FS vfs.FS
	// ChangeLog bounds how long change-log entries are kept.
	ChangeLog ChangeLogOptions
	// MinFreeBytes is the free space kept on the data directory's
	// filesystem: below it writes fail with INSUFFICIENT_STORAGE and Open
	// refuses to start (see diskspace.go). 0 disables the guard.
	MinFreeBytes int64
	// DiskFree measures the free bytes of the filesystem holding a path;
	// nil is the operating system's (statfs). Tests substitute it.
	DiskFree func(path string) (int64, error)
}

// ChangeLogOptions set change-log retention. Entries are removed once
// older than Retention, but never the newest entry, nor any entry at or
// after the sequence a consumer holds (see Engine.HoldChangeLog), so
// backup shipping never loses what it has not shipped yet.
type ChangeLogOptions struct {
	Retention     time.Duration // 0: keep everything
	CheckInterval time.Duration // how often retention runs
}
