package core

import (
	"errors"
	"time"

	"github.com/engram-ops/engram-ops/core/vector"
)

// touch reinforces a recall's memories in memory; flushTouches persists
// it. Nothing is reinforced while the write barrier is up (barrier.go).
// One exclusive hold of the space's lock covers the whole recall:
// taking it once per memory would queue every concurrent recall's readers
// behind each of its writers in turn (docs/benchmarks.md, "Recall
// reinforcement").
func (e *Engine) touch(sp *space, lists [][]Recalled, now time.Time) {
	if e.barrier.Load() != nil {
		return
	}
	var buf [32]uint32
	slots := buf[:0]
	sp.mu.Lock()
	for _, list := range lists {
		for i := range list {
			s, ok := sp.byID[list[i].Memory.ID]
			if !ok {
				continue
			}
			sl := &sp.slots[s]
			r := sl.retrievability(now)
			sl.stability = int64(reinforce(time.Duration(sl.stability), r))
			sl.lastAccess = now.UnixNano()
			sl.accessCount++
			slots = append(slots, s)
		}
	}
	sp.mu.Unlock()
	if len(slots) == 0 {
		return
	}
	e.touchMu.Lock()
	m := e.touched[sp]
	if m == nil {
		m = map[uint32]struct{}{}
		e.touched[sp] = m
	}
	for _, s := range slots {
		m[s] = struct{}{}
	}
	e.touchMu.Unlock()
}

// flushTouches writes accumulated reinforcement (one OpTouch change per
// space) and re-warms cold memories that recall reached. Reinforcement not
// yet flushed is lost on a crash; it is access statistics, not acknowledged
// data.
func (e *Engine) flushTouches() error { return e.flushTouchesPaced(false) }

// touchChunk is how many records one reinforcement write re-encodes.
const touchChunk = 128

// flushTouchesPaced is flushTouches; paced (the periodic flush) pauses
// 2 ms between writes of touchChunk records. A second's reinforcement
// under a recall load is thousands of records: written in one burst it
// would hold a core while recalls queue behind it, and flushing more often
// instead would rewrite a memory recalled several times in a second once
// per flush (docs/benchmarks.md, "Recall reinforcement").
func (e *Engine) flushTouchesPaced(paced bool) error {
	e.touchMu.Lock()
	touched := e.touched
	e.touched = map[*space]map[uint32]struct{}{}
	e.touchMu.Unlock()
	if e.barrier.Load() != nil {
		return nil // reinforcement from before the barrier went up is dropped
	}
	var errs []error
	for sp, slots := range touched {
		if err := e.flushSpaceTouches(sp, slots, paced); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (e *Engine) flushSpaceTouches(sp *space, slots map[uint32]struct{}, paced bool) error {
	name := sp.info.Name
	items := make([]touchedItem, 0, len(slots))
	// Read records outside the commit lock; the slot check inside it drops
	// any that changed meanwhile.
	for s := range slots {
		sp.mu.RLock()
		sl := sp.slots[s]
		sp.mu.RUnlock()
		if !sl.live {
			continue
		}
		r := e.cache.peek(sp.num, name, s)
		if r == nil {
			var err error
			r, err = e.storedRecord(name, sl.id)
			if KindOf(err) == KindNotFound {
				continue // forgotten meanwhile
			}
			if err != nil {
				return err
			}
		}
		if r.slot != s {
			continue
		}
		items = append(items, touchedItem{slot: s, rec: r, cold: sl.tier == TierCold})
	}
	var key, val []byte // reused: a batch copies what it is given
	for len(items) > 0 {
		chunk := items[:min(touchChunk, len(items))]
		items = items[len(chunk):]
		if err := e.writeTouches(sp, chunk, &key, &val); err != nil {
			return err
		}
		if paced && len(items) > 0 {
			select {
			case <-e.stop:
				paced = false
			case <-time.After(2 * time.Millisecond):
			}
		}
	}
	return nil
}

// touchedItem is a recalled memory's record whose decay fields are to be
// written.
type touchedItem struct {
	slot uint32
	rec  *record
	cold bool
}

// writeTouches writes one OpTouch change for items.
func (e *Engine) writeTouches(sp *space, items []touchedItem, key, val *[]byte) error {
	name := sp.info.Name
	_, err := e.commit(commitBackground, func(t *txn) error {
		touches := make([]Touch, 0, len(items))
		for _, it := range items {
			sp.mu.RLock()
			sl := sp.slots[it.slot]
			sp.mu.RUnlock()
			if !sl.live || sl.id != it.rec.ID {
				continue
			}
			tc := Touch{ID: sl.id, LastAccess: time.Unix(0, sl.lastAccess).UTC(), AccessCount: sl.accessCount, Stability: time.Duration(sl.stability)}
			touches = append(touches, tc)
			if it.cold {
				r := withTouch(it.rec, tc)
				if err := t.rewarm(sp, &r); err != nil {
					return err
				}
				continue
			}
			r := withTouch(it.rec, tc) // its own variable: the cold one escapes, this stays on the stack
			*key = appendMemberKey((*key)[:0], famMemory, name, r.ID)
			*val = appendRecord((*val)[:0], &r)
			_ = t.batch.Set(*key, *val, nil)
			if n := len(*val); n != int(sl.recBytes) { // a longer access count
				s, id := it.slot, sl.id
				t.after = append(t.after, func() {
					sp.mu.Lock()
					sp.resized(s, id, n)
					sp.mu.Unlock()
				})
			}
		}
		if len(touches) > 0 {
			t.logChange(Change{Op: OpTouch, Space: name, Touches: touches})
		}
		return nil
	})
	return err
}

// withTouch is a copy of rec with tc's decay fields.
func withTouch(rec *record, tc Touch) record {
	r := *rec
	r.LastAccess, r.AccessCount, r.Stability = tc.LastAccess, tc.AccessCount, tc.Stability
	return r
}

// applyTouches replays an OpTouch change.
func (t *txn) applyTouches(sp *space, touches []Touch, c *Change) error {
	name := sp.info.Name
	for _, tc := range touches {
		sp.mu.RLock()
		s, ok := sp.byID[tc.ID]
		sp.mu.RUnlock()
		if !ok {
			continue
		}
		r, err := t.e.storedRecord(name, tc.ID)
		if KindOf(err) == KindNotFound {
			continue
		}
		if err != nil {
			return err
		}
		r.LastAccess, r.AccessCount, r.Stability = tc.LastAccess, tc.AccessCount, tc.Stability
		rec := encodeRecord(r)
		_ = t.batch.Set(memberKey(famMemory, name, tc.ID), rec, nil)
		tc := tc
		t.after = append(t.after, func() {
			sp.mu.Lock()
			if sl := &sp.slots[s]; sl.live && sl.id == tc.ID {
				sl.lastAccess, sl.accessCount, sl.stability = tc.LastAccess.UnixNano(), tc.AccessCount, int64(tc.Stability)
			}
			sp.resized(s, tc.ID, len(rec))
			sp.mu.Unlock()
		})
	}
	t.logChange(*c)
	return nil
}

// checkOpenOrClosing lets Close's final flush run after closed is set.
func (e *Engine) checkOpenOrClosing() error {
	select {
	case <-e.stop:
		if e.db == nil {
			return ErrClosed
		}
	default:
	}
	return nil
}

// rewarm moves a cold memory back to the warm tier (vector restored from its
// quantised form) and queues it for indexing.
func (t *txn) rewarm(sp *space, r *record) error {
	name := sp.info.Name
	sp.mu.RLock()
	cv, ok := sp.cold[r.slot]
	sp.mu.RUnlock()
	if !ok {
		return nil
	}
	vec := vector.Dequantize(cv.q, cv.scale)
	r.Tier = TierWarm
	rec := encodeRecord(r)
	enc := encodeVector(vec)
	_ = t.batch.Set(memberKey(famMemory, name, r.ID), rec, nil)
	_ = t.batch.Set(memberKey(famVector, name, r.ID), enc, nil)
	e := t.e
	t.after = append(t.after, func() {
		sp.mu.Lock()
		sl := &sp.slots[r.slot]
		if sl.live && sl.tier == TierCold {
			sp.retier(r.slot, TierWarm, len(rec), len(enc))
			delete(sp.cold, r.slot)
			norm := vector.Normalize(vec)
			sp.pending[r.slot] = norm
			sp.queue = append(sp.queue, queued{r.slot, norm})
		}
		sp.mu.Unlock()
		e.migrations[TierCold][TierWarm].Add(1)
		e.kickIndexer()
	})
	return nil
}

// Sweep moves warm memories whose retrievability fell below the cold
// threshold to the cold tier: out of the ANN index, vector quantised to int8.
// It runs in the background every SweepInterval; tests call it directly.
// It moves nothing while the write barrier is up (barrier.go).
func (e *Engine) Sweep() error {
	if e.barrier.Load() != nil {
		return nil
	}
	var errs []error
	now := e.now()
	for _, sp := range e.spaceList() {
		var victims []uint32
		sp.mu.RLock()
		for s := range sp.slots {
			sl := &sp.slots[s]
			if sl.live && sl.tier == TierWarm && sl.retrievability(now) < e.opts.Tiers.ColdBelow {
				if _, p := sp.pending[uint32(s)]; !p {
					victims = append(victims, uint32(s))
				}
			}
		}
		sp.mu.RUnlock()
		for len(victims) > 0 {
			n := min(256, len(victims))
			if err := e.freeze(sp, victims[:n], now); err != nil {
				errs = append(errs, err)
				break
			}
			victims = victims[n:]
		}
	}
	return errors.Join(errs...)
}

func (e *Engine) freeze(sp *space, slots []uint32, now time.Time) error {
	name := sp.info.Name
	var decayed Event // the memories moved, for observers
	_, err := e.commit(commitBackground, func(t *txn) error {
		for _, s := range slots {
			sp.mu.RLock()
			sl := sp.slots[s]
			sp.mu.RUnlock()
			if !sl.live || sl.tier != TierWarm || sl.retrievability(now) >= e.opts.Tiers.ColdBelow {
				continue
			}
			norm, ok := sp.index.Vector(s)
			if !ok {
				continue
			}
			r, err := e.storedRecord(name, sl.id)
			if err != nil {
				return err
			}
			if r.slot != s {
				continue
			}
			r.Tier = TierCold
			r.LastAccess, r.AccessCount, r.Stability = time.Unix(0, sl.lastAccess).UTC(), sl.accessCount, time.Duration(sl.stability)
			q, scale := vector.Quantize(norm)
			rec := encodeRecord(r)
			enc := encodeQuantized(q, scale)
			_ = t.batch.Set(memberKey(famMemory, name, sl.id), rec, nil)
			_ = t.batch.Set(memberKey(famVector, name, sl.id), enc, nil)
			rv := sl.retrievability(now)
			t.after = append(t.after, func() {
				sp.mu.Lock()
				cur := &sp.slots[s]
				if cur.live && cur.tier == TierWarm {
					decayed.Decayed = append(decayed.Decayed, cur.id)
					decayed.Retrievability = append(decayed.Retrievability, rv)
					sp.retier(s, TierCold, len(rec), len(enc))
					sp.cold[s] = coldVector{q: q, scale: scale}
					sp.deletes = append(sp.deletes, s)
				}
				sp.mu.Unlock()
				e.migrations[TierWarm][TierCold].Add(1)
			})
		}
		return nil
	})
	if err == nil && len(decayed.Decayed) > 0 {
		decayed.Kind, decayed.Space, decayed.Time = EventDecayed, name, now
		e.obs.emit(decayed)
	}
	e.kickIndexer()
	return err
}
