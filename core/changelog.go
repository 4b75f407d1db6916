package core

import (
	"encoding/binary"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// HoldChangeLog keeps change-log entries at or after seq from retention
// (0 releases the hold). Backup shipping holds the first sequence it has
// not shipped yet, so retention never removes what a backup still needs.
func (e *Engine) HoldChangeLog(seq uint64) { e.logHold.Store(seq) }

// ChangeLogRange returns the oldest and newest retained sequences (0, 0
// when the log is empty).
func (e *Engine) ChangeLogRange() (first, last uint64) {
	last = e.durable.Load()
	if last == 0 {
		return 0, 0
	}
	return max(e.logFirst.Load(), 1), last
}

// ApplyChangeLogRetention removes entries older than the configured
// retention, keeping the newest entry and everything at or after the hold.
// It returns how many entries it removed. It removes nothing while the
// write barrier is up: a follower keeps the log it applied, which it ships
// from if it becomes the primary.
func (e *Engine) ApplyChangeLogRetention() (int, error) {
	if e.opts.ChangeLog.Retention <= 0 || e.barrier.Load() != nil {
		return 0, nil
	}
	return e.TruncateChangeLogBefore(e.now().Add(-e.opts.ChangeLog.Retention))
}

// TruncateChangeLogBefore removes the entries committed before cutoff,
// within the same limits as ApplyChangeLogRetention. One range deletion
// removes them, so the cost does not grow with their number beyond the
// scan that finds the boundary.
func (e *Engine) TruncateChangeLogBefore(cutoff time.Time) (int, error) {
	if err := e.checkOpen(); err != nil {
		return 0, err
	}
	first, last := e.ChangeLogRange()
	limit := last // never the newest entry
	if h := e.logHold.Load(); h > 0 && h < limit {
		limit = h
	}
	if first == 0 || first >= limit {
		return 0, nil
	}
	it, err := e.db.NewIter(&pebble.IterOptions{LowerBound: logKey(first), UpperBound: logKey(limit)})
	if err != nil {
		return 0, internalf(err, "read change log")
	}
	end := first // entries [first, end) go
	for ok := it.First(); ok; ok = it.Next() {
		c, err := DecodeChange(it.Value())
		if err != nil {
			it.Close()
			return 0, internalf(err, "decode change-log entry %x", it.Key())
		}
		if !c.Time.Before(cutoff) {
			break
		}
		end = binary.BigEndian.Uint64(it.Key()[1:]) + 1
	}
	if err := it.Close(); err != nil {
		return 0, internalf(err, "read change log")
	}
	if end == first {
		return 0, nil
	}
	// Readers check logFirst before they iterate: raise it first, so none
	// starts on entries being removed.
	e.logFirst.Store(end)
	if err := e.db.DeleteRange(logKey(first), logKey(end), pebble.NoSync); err != nil {
		return 0, internalf(err, "truncate change log")
	}
	return int(end - first), nil
}
