// Package events is the server's event hub: the engine's operations
// (core.Event, from the engine's observer hook) numbered per space, kept in
// a bounded ring per space for Last-Event-ID resume, and fanned out to
// subscribers through bounded queues. A subscriber that does not keep up
// loses events, never slows the engine: Publish never blocks, and the
// subscription counts what it dropped so the stream can say so.
//
// The hub knows nothing of HTTP; ops/server turns subscriptions into
// server-sent event streams.
package events

import (
	"sync"
	"sync/atomic"

	"github.com/engram-ops/engram-ops/core"
)

// DefaultBuffer is how many events of each space are kept for resume.
const DefaultBuffer = 1024

// maxRecalled bounds the results a recall event keeps (the stream shows
// the first ones and the total).
const maxRecalled = 16

// Event is an engine event with its place in its space's sequence.
type Event struct {
	// EventID numbers the space's events from 1, without gaps (the
	// stream's id).
	EventID uint64
	core.Event
	// Results is how many memories a recall returned (Recalled keeps at
	// most the first maxRecalled).
	Results int
}

// Hub fans events out per space. The zero value is not usable; call New.
type Hub struct {
	buffer int
	spaces sync.Map // space name → *spaceLog
	done   chan struct{}
	once   sync.Once
	subs   atomic.Int64
}

// New returns a hub keeping buffer events of each space for resume
// (DefaultBuffer when buffer <= 0).
func New(buffer int) *Hub {
	if buffer <= 0 {
		buffer = DefaultBuffer
	}
	return &Hub{buffer: buffer, done: make(chan struct{})}
}

// spaceLog is one space's numbered events and subscribers.
type spaceLog struct {
	mu    sync.Mutex
	last  uint64  // ID of the newest event (0: none yet)
	ring  []Event // the newest events, oldest at start once full
	start int
	subs  map[*Subscription]struct{}
	// dead: removed from the hub (no events and no subscribers left);
	// a publisher that loaded it looks the space up again.
	dead bool
}

func (h *Hub) log(space string) *spaceLog {
	if l, ok := h.spaces.Load(space); ok {
		return l.(*spaceLog)
	}
	l, _ := h.spaces.LoadOrStore(space, &spaceLog{subs: map[*Subscription]struct{}{}})
	return l.(*spaceLog)
}

// Publish numbers ev in its space, keeps it for resume and queues it for
// the space's subscribers whose filter takes it. It never blocks: a full
// queue drops the event and the subscription counts it.
func (h *Hub) Publish(ev core.Event) {
	select {
	case <-h.done:
		return
	default:
	}
	e := Event{Event: ev, Results: len(ev.Recalled)}
	if len(e.Recalled) > maxRecalled {
		e.Recalled = e.Recalled[:maxRecalled:maxRecalled]
	}
	l := h.log(ev.Space)
	l.mu.Lock()
	for l.dead {
		l.mu.Unlock()
		l = h.log(ev.Space)
		l.mu.Lock()
	}
	defer l.mu.Unlock()
	l.last++
	e.EventID = l.last
	if len(l.ring) < h.buffer {
		l.ring = append(l.ring, e)
	} else {
		l.ring[l.start] = e
		l.start = (l.start + 1) % len(l.ring)
	}
	for s := range l.subs {
		if s.filter != nil && !s.filter(&e) {
			continue
		}
		select {
		case s.ch <- e:
		default:
			s.drop(e.EventID)
		}
	}
}

// Resume says what a subscription found of the events after the id it
// resumed from.
type Resume struct {
	// Replay are the kept events after the id that pass the filter, in
	// order; the stream sends them before the live ones.
	Replay []Event
	// Missed counts the events after the id that are no longer kept
	// (they fell out of the buffer); 0 when none were lost.
	Missed uint64
	// Ahead is set when the id is newer than the space's newest event
	// (an id from before a restart): nothing can be replayed.
	Ahead bool
	// Latest is the ID of the space's newest event.
	Latest uint64
}

// SubscribeOptions configure a subscription.
type SubscribeOptions struct {
	// Queue bounds the events waiting for the subscriber (at least 1).
	Queue int
	// After resumes after this event id (Last-Event-ID) when Resume is set.
	After  uint64
	Resume bool
	// Filter keeps the events the subscriber wants (nil: all). It runs
	// on the publishing path and must be quick.
	Filter func(*Event) bool
}

// Subscribe starts receiving space's events. Registration and the replay
// of kept events happen atomically: nothing is delivered twice or skipped
// between them.
func (h *Hub) Subscribe(space string, o SubscribeOptions) (*Subscription, Resume) {
	s := &Subscription{h: h, space: space, ch: make(chan Event, max(o.Queue, 1)), filter: o.Filter,
		lost: make(chan struct{}, 1)}
	l := h.log(space)
	l.mu.Lock()
	for l.dead {
		l.mu.Unlock()
		l = h.log(space)
		l.mu.Lock()
	}
	defer l.mu.Unlock()
	res := Resume{Latest: l.last}
	if o.Resume {
		oldest := l.last - uint64(len(l.ring)) + 1 // the oldest kept id
		switch {
		case o.After > l.last:
			res.Ahead = true
		case o.After+1 < oldest:
			res.Missed = oldest - (o.After + 1)
		}
		if !res.Ahead {
			for i := range l.ring {
				e := l.ring[(l.start+i)%len(l.ring)]
				if e.EventID > o.After && (s.filter == nil || s.filter(&e)) {
					res.Replay = append(res.Replay, e)
				}
			}
		}
	}
	l.subs[s] = struct{}{}
	s.l = l
	h.subs.Add(1)
	return s, res
}

// Subscribers is the number of open subscriptions.
func (h *Hub) Subscribers() int64 { return h.subs.Load() }

// Done is closed when the hub closes (server shutdown): streams end.
func (h *Hub) Done() <-chan struct{} { return h.done }

// Close ends every subscription's stream; later events are discarded.
func (h *Hub) Close() { h.once.Do(func() { close(h.done) }) }

// Subscription receives one space's events.
type Subscription struct {
	h      *Hub
	l      *spaceLog
	space  string
	ch     chan Event
	filter func(*Event) bool
	lost   chan struct{}
	once   sync.Once

	mu                  sync.Mutex
	dropped             uint64
	firstDrop, lastDrop uint64
	droppedTotal        atomic.Uint64
}

// C delivers the live events in order.
func (s *Subscription) C() <-chan Event { return s.ch }

// Lost is signalled when an event was dropped because the queue was full.
func (s *Subscription) Lost() <-chan struct{} { return s.lost }

func (s *Subscription) drop(id uint64) {
	s.mu.Lock()
	if s.dropped == 0 {
		s.firstDrop = id
	}
	s.dropped++
	s.lastDrop = id
	s.mu.Unlock()
	s.droppedTotal.Add(1)
	select {
	case s.lost <- struct{}{}:
	default:
	}
}

// Drop is a run of events a subscriber lost to a full queue.
type Drop struct {
	Count           uint64
	FirstID, LastID uint64
}

// TakeDropped returns the events dropped since the last call and resets
// the count.
func (s *Subscription) TakeDropped() Drop {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := Drop{Count: s.dropped, FirstID: s.firstDrop, LastID: s.lastDrop}
	s.dropped, s.firstDrop, s.lastDrop = 0, 0, 0
	return d
}

// PeekDropped returns the events dropped since the last TakeDropped,
// without resetting the count.
func (s *Subscription) PeekDropped() Drop {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Drop{Count: s.dropped, FirstID: s.firstDrop, LastID: s.lastDrop}
}

// DroppedTotal is every event the subscription dropped.
func (s *Subscription) DroppedTotal() uint64 { return s.droppedTotal.Load() }

// Close unsubscribes. It is safe to call more than once.
func (s *Subscription) Close() {
	s.once.Do(func() {
		l := s.l
		l.mu.Lock()
		delete(l.subs, s)
		if l.last == 0 && len(l.subs) == 0 {
			// A space nobody published to: forget it, so subscribing to
			// many names leaves nothing behind.
			l.dead = true
			s.h.spaces.CompareAndDelete(s.space, l)
		}
		l.mu.Unlock()
		s.h.subs.Add(-1)
	})
}
