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

// Limits bound what one request may ask of the engine.
type Limits struct {
	MaxContentBytes int // default 100_000 (Engram's limit)
	MaxDimension    int // default 4096
	MaxResults      int // default 1000
	MaxBatch        int // memories+associations per batch; default 10_000
	MaxTags         int // default 64
	MaxMetadata     int // metadata entries; default 64
	MaxIDBytes      int // default 128
	// MaxSpaces caps how many spaces may exist: creating one more fails
	// with SPACE_LIMIT_REACHED (existing spaces keep working, and replaying
	// a change log or restore recreates every space it holds). Default
	// 10_000; negative: no cap.
	MaxSpaces int
}

// IndexOptions tune the ANN index.
type IndexOptions struct {
	ExactThreshold int           // spaces with fewer live vectors are searched exactly; default 2_000
	M              int           // HNSW neighbours per node; default 16
	EfConstruction int           // default 128
	EfSearch       int           // default 96
	SaveInterval   time.Duration // how often a changed index graph is persisted; default 1m
}

// TierOptions tune decay and tier migration.
type TierOptions struct {
	HotCapacityBytes  int64         // bytes of encoded records kept in memory (the hot tier); default 64 MiB
	ColdBelow         float64       // retrievability under which a memory goes cold; default 0.05
	SweepInterval     time.Duration // default 1m; negative disables the background sweeper
	InitialStability  time.Duration // S for a new memory at confidence 0.5; default 72h
	WarmCapacityBytes int64         // reported capacity of the warm tier; default 8 GiB
	ColdCapacityBytes int64         // reported capacity of the cold tier; default 64 GiB
}

// Options configure an Engine. The zero value is usable: sync durability,
// 768-dimension spaces with the built-in hashing embedder, auto-created spaces.
type Options struct {
	Durability         Durability
	DefaultDimension   int             // default 768
	DefaultEmbedder    string          // default "hash"
	NoAutoCreateSpaces bool            // when true, writes to an unknown space fail with SPACE_NOT_FOUND
	Embedders          EmbedderFactory // nil: only the built-in "hash" embedder
	Limits             Limits
	Index              IndexOptions
	Tiers              TierOptions
	CacheBytes         int64 // Pebble block cache; default 64 MiB
	Logger             *slog.Logger
	Now                func() time.Time // clock, for tests
	TouchFlushInterval time.Duration    // how often recall reinforcement is persisted; default 1s
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
	Retention     time.Duration // default 168h (7 days); negative keeps everything
	CheckInterval time.Duration // how often retention runs; default 10m
}
