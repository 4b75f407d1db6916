package core

import (
	"fmt"
	"time"
)

// The write barrier turns an engine read-only at run time: a follower
// (a replica applying a primary's shipped change log) holds it from start,
// and a primary that has lost its right to write could hold it too. While
// it is up, every mutation but a replayed change (ApplyChanges) is refused
// in commitLocked, the one place that commits; so are the engine's own
// bookkeeping writes (reinforcement, tier sweeps, change-log retention),
// which would make a replica's data diverge from its primary's: the
// primary's reinforcement reaches it through the log (OpTouch), and a
// recall on a replica reinforces nothing.

// writeBarrier holds the error writes are refused with.
type writeBarrier struct{ err error }

// SetWriteBarrier refuses every write (remember, forget, associations,
// spaces, batches, system records, and the engine's own bookkeeping) with
// err from now on; ApplyChanges still applies. nil lifts the barrier. A
// write already committed is not undone, and one racing the call may
// still commit.
func (e *Engine) SetWriteBarrier(err error) {
	if err == nil {
		e.barrier.Store(nil)
		return
	}
	e.barrier.Store(&writeBarrier{err: err})
}

// WriteBarrier returns the error writes are refused with, nil when the
// engine is writable.
func (e *Engine) WriteBarrier() error {
	if b := e.barrier.Load(); b != nil {
		return b.err
	}
	return nil
}

// ReadOnlyReplica is the error a follower refuses writes with: READ_ONLY_REPLICA,
// naming primary (the URL writes should go to; "" when unknown) in the
// message and as the "primary" detail.
func ReadOnlyReplica(primary string) *Error {
	msg := "this server is a read-only follower: it applies the primary's shipped change log and refuses writes"
	if primary != "" {
		msg += fmt.Sprintf("; send writes to the primary at %s", primary)
	}
	return (&Error{Kind: KindReadOnly, Code: "READ_ONLY_REPLICA", Message: msg}).WithDetails("primary", primary)
}

// PrimaryFenced is the error a primary refuses writes with once another
// primary was promoted over its archive: PRIMARY_FENCED, carrying why
// (the fencing error) in the message. Its writes would never be shipped, so
// accepting them would acknowledge data the new primary never sees.
func PrimaryFenced(why error) *Error {
	return &Error{Kind: KindReadOnly, Code: "PRIMARY_FENCED",
		Message: "this server is no longer the primary and refuses writes: " + why.Error()}
}

// BackupStarting is the passing barrier a primary with a backup archive
// holds at start, until its shipper has confirmed on the archive that this
// server is still the primary: BACKUP_STARTING (503), hold being the most
// it waits. The server is not ready while it is up.
func BackupStarting(hold time.Duration) *Error {
	return &Error{Kind: KindUnavailable, Code: "BACKUP_STARTING",
		Message: fmt.Sprintf("writes wait until backup shipping has confirmed on its target that this server is still the primary (at most backup.start_hold, %s); retry shortly", hold)}
}
