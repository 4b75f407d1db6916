package core

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// tierClock is a settable clock for the tier tests.
type tierClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *tierClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *tierClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// openTierTest opens dir with small vectors, a one-hour initial stability
// (so ten hours on clk take a memory cold), and no background sweep or
// reinforcement flush: the test runs them.
func openTierTest(t *testing.T, dir string, clk *tierClock, mod ...func(*Options)) *Engine {
	t.Helper()
	o := DefaultOptions()
	o.DefaultDimension = 16
	o.Durability = DurabilityRelaxed
	o.Now = clk.now
	o.Tiers.SweepInterval = 0
	o.Tiers.InitialStability = time.Hour
	o.TouchFlushInterval = time.Hour
	for _, m := range mod {
		m(&o)
	}
	e, err := Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// tierRecount counts a space's memories and their stored bytes (record plus
// vector) per tier from what Pebble holds.
func tierRecount(t *testing.T, e *Engine, name string) (n, b [numTiers]int64) {
	t.Helper()
	tiers := map[string]Tier{}
	prefix := spacePrefix(famMemory, name)
	it, err := e.db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	for ok := it.SeekGE(prefix); ok && string(it.Key()) < string(prefixEnd(prefix)); ok = it.Next() {
		id, _ := splitMember(it.Key(), len(name))
		r, err := decodeRecord(it.Value(), name, id)
		if err != nil {
			t.Fatalf("record %s: %v", id, err)
		}
		tier := r.Tier
		if tier == TierHot {
			tier = TierWarm
		}
		tiers[id] = tier
		n[tier]++
		b[tier] += int64(len(it.Value()))
	}
	prefix = spacePrefix(famVector, name)
	for ok := it.SeekGE(prefix); ok && string(it.Key()) < string(prefixEnd(prefix)); ok = it.Next() {
		id, _ := splitMember(it.Key(), len(name))
		tier, ok := tiers[id]
		if !ok {
			t.Fatalf("vector of %s has no record", id)
		}
		b[tier] += int64(len(it.Value()))
	}
	return n, b
}

// checkTiers asserts a space's tier figures: none negative, summing to the
// total, equal to a recount from the stored records, and every hot entry a
// live warm memory of the space.
func checkTiers(t *testing.T, e *Engine, name, step string) SpaceStats {
	t.Helper()
	st, err := e.Space(name)
	if err != nil {
		t.Fatalf("%s: %v", step, err)
	}
	n, b := tierRecount(t, e, name)
	for tier, c := range st.Memories {
		if c < 0 {
			t.Fatalf("%s: %v count is negative: %v", step, Tier(tier), st.Memories)
		}
	}
	if st.Total() != n[TierWarm]+n[TierCold] || st.Memories[TierHot]+st.Memories[TierWarm] != n[TierWarm] || st.Memories[TierCold] != n[TierCold] {
		t.Fatalf("%s: tiers %v (total %d); stored records: warm %d cold %d", step, st.Memories, st.Total(), n[TierWarm], n[TierCold])
	}
	sp := e.lookupSpace(name)
	sp.mu.RLock()
	counts, bytes := sp.counts, sp.bytes
	var live [numTiers]int64
	var liveBytes [numTiers]int64
	for i := range sp.slots {
		if sl := &sp.slots[i]; sl.live {
			live[sl.tier]++
			liveBytes[sl.tier] += sl.bytes
		}
	}
	byID := len(sp.byID)
	e.cache.mu.Lock()
	var stale []uint32
	for k := range e.cache.index {
		if uint32(k>>32) != sp.num {
			continue
		}
		s := uint32(k)
		if int(s) >= len(sp.slots) || !sp.slots[s].live || sp.slots[s].tier != TierWarm {
			stale = append(stale, s)
		}
	}
	e.cache.mu.Unlock()
	sp.mu.RUnlock()
	if len(stale) > 0 {
		t.Fatalf("%s: hot tier holds slots %v that are not live warm memories", step, stale)
	}
	if counts != n || live != n || int64(byID) != n[TierWarm]+n[TierCold] {
		t.Fatalf("%s: counts %v, live slots %v, ids %d; stored records %v", step, counts, live, byID, n)
	}
	for tier := range b {
		if bytes[tier] < 0 {
			t.Fatalf("%s: %v bytes are negative: %v", step, Tier(tier), bytes)
		}
	}
	if bytes != b || liveBytes != b {
		t.Fatalf("%s: bytes per tier %v, of live slots %v; stored %v", step, bytes, liveBytes, b)
	}
	return st
}

// tierMemory is a memory with a client-chosen id (so a second write of it
// replaces the first).
func tierMemory(id, content string) RememberInput {
	return RememberInput{ID: id, Content: content}
}

func tierRemember(t *testing.T, e *Engine, space, id, content string) RememberResult {
	t.Helper()
	r, err := e.Remember(context.Background(), space, tierMemory(id, content))
	if err != nil {
		t.Fatalf("remember %s: %v", id, err)
	}
	return r
}

// freezeAll takes every memory written more than ten hours before clk's new
// time to the cold tier.
func freezeAll(t *testing.T, e *Engine, clk *tierClock) {
	t.Helper()
	clk.advance(10 * time.Hour)
	if err := e.WaitIndexed(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := e.Sweep(); err != nil {
		t.Fatal(err)
	}
}

// TestReplaceKeepsTierCounts: writing an id that exists replaces the memory
// in every tier's figures, whichever tier it was in; forgetting it then
// leaves nothing behind, and a reopen rebuilds the same figures.
func TestReplaceKeepsTierCounts(t *testing.T) {
	ctx := context.Background()
	for _, hot := range []bool{true, false} {
		t.Run(fmt.Sprintf("hot=%v", hot), func(t *testing.T) {
			clk := &tierClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
			dir := t.TempDir()
			mod := func(o *Options) {
				if !hot {
					o.Tiers.HotCapacityBytes = -1
				}
			}
			e := openTierTest(t, dir, clk, mod)
			const sp = "default"

			tierRemember(t, e, sp, "a", "lighthouses guide ships")
			checkTiers(t, e, sp, "first write")
			if r := tierRemember(t, e, sp, "a", "lighthouses guide ships home"); r.Created {
				t.Fatal("a replace reported a new memory")
			}
			st := checkTiers(t, e, sp, "replace")
			if st.Total() != 1 {
				t.Fatalf("one memory after a replace, stats %v", st.Memories)
			}
			if _, err := e.Get(ctx, sp, "a", false); err != nil {
				t.Fatal(err)
			}
			tierRemember(t, e, sp, "a", "lighthouses guide ships to harbour")
			checkTiers(t, e, sp, "replace twice, read between")
			if _, err := e.Forget(ctx, sp, "a"); err != nil {
				t.Fatal(err)
			}
			if st := checkTiers(t, e, sp, "forget after replace"); st.Total() != 0 {
				t.Fatalf("nothing after forget, stats %v", st.Memories)
			}

			// A cold memory replaced comes back warm.
			tierRemember(t, e, sp, "c", "an old memory about canals")
			freezeAll(t, e, clk)
			if st := checkTiers(t, e, sp, "freeze"); st.Memories[TierCold] != 1 {
				t.Fatalf("sweep did not freeze: %v", st.Memories)
			}
			tierRemember(t, e, sp, "c", "a new memory about canals")
			if st := checkTiers(t, e, sp, "replace cold"); st.Memories[TierCold] != 0 || st.Total() != 1 {
				t.Fatalf("replaced cold memory: %v", st.Memories)
			}

			// A batch replacing some ids and adding others.
			tierRemember(t, e, sp, "b", "bridges span rivers")
			if _, err := e.Batch(ctx, sp, BatchInput{Memories: []RememberInput{
				tierMemory("b", "bridges span wide rivers"),
				tierMemory("c", "canals carry barges"),
				tierMemory("d", "docks hold ships"),
			}}); err != nil {
				t.Fatal(err)
			}
			if st := checkTiers(t, e, sp, "batch replace"); st.Total() != 3 {
				t.Fatalf("three memories after the batch: %v", st.Memories)
			}
			// A batch naming one id twice is refused and changes nothing.
			if _, err := e.Batch(ctx, sp, BatchInput{Memories: []RememberInput{
				tierMemory("b", "one"), tierMemory("b", "two"),
			}}); CodeOf(err) != "DUPLICATE_ID" {
				t.Fatalf("batch with an id twice: %v", err)
			}
			checkTiers(t, e, sp, "refused batch")
			freezeAll(t, e, clk)
			tierRemember(t, e, sp, "e", "estuaries meet the sea")
			if _, err := e.Get(ctx, sp, "e", false); err != nil {
				t.Fatal(err)
			}
			before := checkTiers(t, e, sp, "before reopen")

			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
			e = openTierTest(t, dir, clk, mod)
			after := checkTiers(t, e, sp, "reopen")
			if after.Memories[TierHot]+after.Memories[TierWarm] != before.Memories[TierHot]+before.Memories[TierWarm] || after.Memories[TierCold] != before.Memories[TierCold] {
				t.Fatalf("reopen rebuilt %v; live figures were %v", after.Memories, before.Memories)
			}
		})
	}
}

// TestReplayOfReplaceKeepsTierCounts: restoring a change log that replaces,
// reinforces and forgets memories gives the figures the source had.
func TestReplayOfReplaceKeepsTierCounts(t *testing.T) {
	ctx := context.Background()
	clk := &tierClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	// Sync durability: the change log is read up to the durable sequence.
	src := openTierTest(t, t.TempDir(), clk, func(o *Options) { o.Durability = DurabilitySync })
	const sp = "default"
	tierRemember(t, src, sp, "a", "alpha")
	tierRemember(t, src, sp, "b", "beta")
	tierRemember(t, src, sp, "a", "alpha again")
	if _, err := src.Batch(ctx, sp, BatchInput{Memories: []RememberInput{tierMemory("a", "alpha thrice"), tierMemory("c", "gamma")}}); err != nil {
		t.Fatal(err)
	}
	for range 130 { // reinforcement that lengthens a's record
		if _, err := src.Recall(ctx, sp, RecallQuery{Text: "alpha thrice"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := src.flushTouches(); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Forget(ctx, sp, "b"); err != nil {
		t.Fatal(err)
	}
	want := checkTiers(t, src, sp, "source")
	changes, err := src.ChangesSince(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	dst := openTierTest(t, t.TempDir(), clk)
	if err := dst.ApplyChanges(ctx, changes); err != nil {
		t.Fatal(err)
	}
	got := checkTiers(t, dst, sp, "replayed")
	if got.Total() != want.Total() || got.Memories[TierCold] != want.Memories[TierCold] {
		t.Fatalf("replay gave %v; source has %v", got.Memories, want.Memories)
	}
}

// TestTierCountsUnderRandomOperations runs a seeded mix of every operation
// that adds, replaces, moves or drops a memory (remember, batch, forget,
// reads that promote to hot, recalls whose reinforcement re-warms cold
// memories, sweeps that freeze, reopens) and checks the tier figures after
// each.
func TestTierCountsUnderRandomOperations(t *testing.T) {
	ctx := context.Background()
	for seed := uint64(1); seed <= 3; seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			clk := &tierClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
			dir := t.TempDir()
			// A hot tier of a few chunks, so promotion evicts too.
			mod := func(o *Options) { o.Tiers.HotCapacityBytes = 16 << 10 }
			e := openTierTest(t, dir, clk, mod)
			const sp = "default"
			words := []string{"harbour", "lighthouse", "canal", "bridge", "river", "dock", "estuary", "ship"}
			content := func() string {
				return fmt.Sprintf("%s %s %d", words[rng.IntN(len(words))], words[rng.IntN(len(words))], rng.IntN(1000))
			}
			id := func() string { return fmt.Sprintf("m%d", rng.IntN(12)) }
			for step := range 300 {
				var op string
				switch k := rng.IntN(100); {
				case k < 35:
					op = "remember"
					tierRemember(t, e, sp, id(), content())
				case k < 45:
					op = "batch"
					var in BatchInput
					seen := map[string]bool{}
					for range 1 + rng.IntN(4) {
						if i := id(); !seen[i] {
							seen[i] = true
							in.Memories = append(in.Memories, tierMemory(i, content()))
						}
					}
					if _, err := e.Batch(ctx, sp, in); err != nil {
						t.Fatal(err)
					}
				case k < 55:
					op = "forget"
					if _, err := e.Forget(ctx, sp, id()); err != nil && KindOf(err) != KindNotFound {
						t.Fatal(err)
					}
				case k < 70:
					op = "get"
					if _, err := e.Get(ctx, sp, id(), false); err != nil && KindOf(err) != KindNotFound {
						t.Fatal(err)
					}
				case k < 85:
					op = "recall"
					if _, err := e.Recall(ctx, sp, RecallQuery{Text: content(), Deep: rng.IntN(2) == 0}); err != nil && KindOf(err) != KindNotFound {
						t.Fatal(err)
					}
					if rng.IntN(2) == 0 {
						if err := e.flushTouches(); err != nil {
							t.Fatal(err)
						}
					}
				case k < 95:
					op = "sweep"
					clk.advance(time.Duration(rng.IntN(12)) * time.Hour)
					if err := e.WaitIndexed(ctx); err != nil {
						t.Fatal(err)
					}
					if err := e.Sweep(); err != nil {
						t.Fatal(err)
					}
				default:
					op = "reopen"
					if err := e.Close(); err != nil {
						t.Fatal(err)
					}
					e = openTierTest(t, dir, clk, mod)
				}
				if e.lookupSpace(sp) != nil {
					checkTiers(t, e, sp, fmt.Sprintf("step %d (%s)", step, op))
				}
			}
		})
	}
}

// TestReinforcementKeepsTierBytes: reinforcement rewrites a record whose
// access count may take another byte; the tier's bytes follow it.
func TestReinforcementKeepsTierBytes(t *testing.T) {
	ctx := context.Background()
	clk := &tierClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	e := openTierTest(t, t.TempDir(), clk)
	const sp = "default"
	tierRemember(t, e, sp, "a", "lighthouses guide ships")
	for range 130 { // an access count of 128 and up takes two bytes
		if _, err := e.Recall(ctx, sp, RecallQuery{Text: "lighthouses"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.flushTouches(); err != nil {
		t.Fatal(err)
	}
	checkTiers(t, e, sp, "reinforced")
}
