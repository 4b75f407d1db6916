package core

import (
	"sync"
	"sync/atomic"
	"time"
)

// EventKind names an engine operation reported to observers.
type EventKind uint8

const (
	// EventStored: a memory was written (remember, episode, batch).
	EventStored EventKind = iota + 1
	// EventForgotten: a memory was deleted.
	EventForgotten
	// EventAssociated: an association was written.
	EventAssociated
	// EventRecalled: a recall answered (with or without results).
	EventRecalled
	// EventDecayed: the tier sweep moved memories whose retrievability
	// fell under the cold threshold to the cold tier.
	EventDecayed
)

func (k EventKind) String() string {
	switch k {
	case EventStored:
		return "stored"
	case EventForgotten:
		return "forgotten"
	case EventAssociated:
		return "associated"
	case EventRecalled:
		return "recalled"
	case EventDecayed:
		return "decayed"
	}
	return "unknown"
}

// Event is one operation that took effect, as observers see it. Events
// of mutations are reported once committed (visible to reads), in commit
// order. Replayed change-log entries (ApplyChanges) are reported too, so a
// follower's observers see its primary's writes as they are applied.
// An Event is a copy: observers may keep it.
type Event struct {
	Kind  EventKind
	Space string
	Time  time.Time
	// Seq is the change-log sequence of a mutation (0 for recalls and
	// tier moves, which are not logged as changes).
	Seq uint64
	// ID is the memory stored or forgotten.
	ID string
	// Confidence is the stored memory's confidence, or a recall's overall
	// confidence.
	Confidence float64
	// MemoryType is the stored memory's type.
	MemoryType MemoryType
	// Association is the association written.
	Association Association
	// Recalled are a recall's results in rank order (vivid, then
	// associated); Activated counts the memories spreading reached.
	Recalled  []RecalledRef
	Activated int
	// Decayed are the memories a tier sweep moved to the cold tier, with
	// the retrievability that moved them (the same order).
	Decayed        []string
	Retrievability []float64
}

// RecalledRef is one result of a recall, by id.
type RecalledRef struct {
	ID         string
	Similarity float64
	Activation float64
	Confidence float64
	Direct     bool
}

// observers are the functions Observe registered, read without a lock on
// the operation paths.
type observers struct {
	mu   sync.Mutex
	list atomic.Pointer[[]*observer]
}

type observer struct{ fn func(Event) }

// Observe registers fn to be called with every event from now on, until
// the returned cancel is called. fn runs on the operation's path (inside
// the commit order for mutations) and must not block or call the engine:
// hand the event to a queue and return.
func (e *Engine) Observe(fn func(Event)) (cancel func()) {
	o := &observer{fn: fn}
	e.obs.mu.Lock()
	defer e.obs.mu.Unlock()
	var cur []*observer
	if p := e.obs.list.Load(); p != nil {
		cur = *p
	}
	next := append(append([]*observer(nil), cur...), o)
	e.obs.list.Store(&next)
	return func() {
		e.obs.mu.Lock()
		defer e.obs.mu.Unlock()
		p := e.obs.list.Load()
		if p == nil {
			return
		}
		var kept []*observer
		for _, x := range *p {
			if x != o {
				kept = append(kept, x)
			}
		}
		e.obs.list.Store(&kept)
	}
}

// observed reports whether any observer is registered (so the operation
// paths build events only when someone listens).
func (o *observers) observed() bool {
	p := o.list.Load()
	return p != nil && len(*p) > 0
}

func (o *observers) emit(ev Event) {
	p := o.list.Load()
	if p == nil {
		return
	}
	for _, x := range *p {
		x.fn(ev)
	}
}

// emitChanges reports the memory and association changes of a committed
// txn.
func (o *observers) emitChanges(changes []Change) {
	if !o.observed() {
		return
	}
	for i := range changes {
		c := &changes[i]
		ev := Event{Space: c.Space, Time: c.Time, Seq: c.Seq}
		switch c.Op {
		case OpPutMemory:
			if c.Memory == nil {
				continue
			}
			ev.Kind, ev.ID, ev.Confidence, ev.MemoryType = EventStored, c.Memory.ID, c.Memory.Confidence, c.Memory.Type
		case OpDeleteMemory:
			ev.Kind, ev.ID = EventForgotten, c.ID
		case OpPutAssociation:
			if c.Association == nil {
				continue
			}
			ev.Kind, ev.Association = EventAssociated, *c.Association
		default:
			continue
		}
		o.emit(ev)
	}
}

// emitRecall reports a recall's answer.
func (o *observers) emitRecall(space string, now time.Time, res *RecallResult) {
	if !o.observed() {
		return
	}
	refs := make([]RecalledRef, 0, len(res.Vivid)+len(res.Associated))
	for _, list := range [][]Recalled{res.Vivid, res.Associated} {
		for i := range list {
			r := &list[i]
			refs = append(refs, RecalledRef{ID: r.Memory.ID, Similarity: r.Similarity, Activation: r.Activation,
				Confidence: r.Memory.Confidence, Direct: r.Direct})
		}
	}
	o.emit(Event{Kind: EventRecalled, Space: space, Time: now, Confidence: res.Confidence, Recalled: refs, Activated: res.Activated})
}
