package core

import (
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
)

// RestoreAdvice is what to do about on-disk corruption, for every message
// that reports it.
const RestoreAdvice = "Restore the data directory from a backup: engram-ops runbook show disaster-recovery (Corruption)"

// corruptionLog records the on-disk corruption the storage engine reports (a
// block failing its checksum on a read or in a compaction) instead of letting
// Pebble's default end the process. The read that met it fails with
// STORAGE_CORRUPT and no data from the damaged block is returned; everything
// else is still served, and health, metrics and one log line per damaged
// file tell the operator to restore from a backup.
type corruptionLog struct {
	events atomic.Int64
	log    *slog.Logger

	mu    sync.Mutex
	files []string // damaged files, in the order they were found
}

// report is Pebble's DataCorruption callback. It runs on the read path, so
// it only counts and logs a file the first time.
func (c *corruptionLog) report(info pebble.DataCorruptionInfo) {
	c.events.Add(1)
	c.mu.Lock()
	for _, f := range c.files {
		if f == info.Path {
			c.mu.Unlock()
			return
		}
	}
	c.files = append(c.files, info.Path)
	c.mu.Unlock()
	c.log.Error("on-disk corruption: a storage file failed its checksum, and what needs its damaged part cannot be read (STORAGE_CORRUPT). "+RestoreAdvice,
		"file", info.Path, "detail", info.Details)
}

func (c *corruptionLog) stats() CorruptionStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return CorruptionStats{Events: c.events.Load(), Files: append([]string(nil), c.files...)}
}
