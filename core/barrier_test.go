package core_test

import (
	"errors"
	"testing"
	"time"

	"github.com/engram-ops/engram-ops/core"
)

// A follower's engine refuses every client write and every bookkeeping
// write of its own with READ_ONLY_REPLICA while applying its primary's
// changes; lifting the barrier makes it writable again, continuing the
// applied sequence.
func TestWriteBarrierRefusesWritesButReplay(t *testing.T) {
	clk := &clock{t: time.Now().UTC()}
	src := open(t, t.TempDir(), func(o *core.Options) { o.Now = clk.Now; o.Tiers.InitialStability = time.Hour })
	a := remember(t, src, "default", "the primary remembers lighthouses").ID
	b := remember(t, src, "default", "the primary remembers harbours").ID
	if _, err := src.Associate(ctx, "default", core.Association{From: a, To: b, Weight: 0.5}); err != nil {
		t.Fatal(err)
	}
	changes, err := src.ChangesSince(0, 0)
	if err != nil {
		t.Fatal(err)
	}

	dst := open(t, t.TempDir(), func(o *core.Options) {
		o.Now = clk.Now
		o.Tiers.InitialStability = time.Hour
		o.TouchFlushInterval = time.Hour
		o.ChangeLog.Retention = time.Minute
	})
	defer dst.Close()
	const primary = "http://primary.example:7432"
	dst.SetWriteBarrier(core.ReadOnlyReplica(primary))
	var stored []string
	cancel := dst.Observe(func(ev core.Event) {
		if ev.Kind == core.EventStored {
			stored = append(stored, ev.ID)
		}
	})
	defer cancel()
	if err := dst.ApplyChanges(ctx, changes); err != nil {
		t.Fatalf("replay behind the barrier: %v", err)
	}
	applied := dst.LastSequence()
	if applied != src.LastSequence() {
		t.Fatalf("applied %d, primary at %d", applied, src.LastSequence())
	}
	if len(stored) != 2 {
		t.Fatalf("observers saw %v stored by the replay, want both memories", stored)
	}

	refused := func(what string, err error) {
		t.Helper()
		var ce *core.Error
		if !errors.As(err, &ce) || ce.Code != "READ_ONLY_REPLICA" || ce.Kind != core.KindReadOnly || ce.Details["primary"] != primary {
			t.Fatalf("%s on a replica: %v, want READ_ONLY_REPLICA naming %s", what, err, primary)
		}
	}
	_, err = dst.Remember(ctx, "default", core.RememberInput{Content: "a local write"})
	refused("remember", err)
	_, err = dst.Remember(ctx, "newspace", core.RememberInput{Content: "a write creating a space"})
	refused("remember into a new space", err)
	_, err = dst.Batch(ctx, "default", core.BatchInput{Memories: []core.RememberInput{{Content: "batched"}}})
	refused("batch", err)
	_, err = dst.Forget(ctx, "default", a)
	refused("forget", err)
	_, err = dst.Associate(ctx, "default", core.Association{From: b, To: a, Weight: 0.5})
	refused("associate", err)
	_, _, err = dst.CreateSpace(ctx, core.SpaceConfig{Name: "another"})
	refused("create space", err)
	_, err = dst.PutSystem(ctx, "apikey/x", []byte("1"))
	refused("put system", err)
	if got := dst.LastSequence(); got != applied {
		t.Fatalf("refused writes moved the sequence from %d to %d", applied, got)
	}
	if _, err := dst.Space("newspace"); core.CodeOf(err) != "SPACE_NOT_FOUND" {
		t.Fatalf("a refused remember created its space: %v", err)
	}

	// A recall reinforces nothing, the sweep moves nothing and retention
	// removes nothing: each would diverge from the primary.
	clk.Advance(10 * time.Hour)
	if _, err := dst.Recall(ctx, "default", core.RecallQuery{Text: "lighthouses"}); err != nil {
		t.Fatal(err)
	}
	if _, err := dst.Checkpoint(t.TempDir() + "/cp"); err != nil { // flushes reinforcement
		t.Fatal(err)
	}
	if m, err := dst.Get(ctx, "default", a, false); err != nil || m.AccessCount != 0 {
		t.Fatalf("recall on a replica reinforced: %+v %v", m, err)
	}
	if err := dst.Sweep(); err != nil {
		t.Fatal(err)
	}
	if st, _ := dst.Space("default"); st.Memories[core.TierCold] != 0 {
		t.Fatalf("the sweep moved memories on a replica: %+v", st.Memories)
	}
	if n, err := dst.ApplyChangeLogRetention(); err != nil || n != 0 {
		t.Fatalf("retention on a replica removed %d entries (%v)", n, err)
	}
	if got := dst.LastSequence(); got != applied {
		t.Fatalf("bookkeeping moved the sequence from %d to %d", applied, got)
	}

	// Promotion lifts the barrier: writes continue the applied sequence.
	dst.SetWriteBarrier(nil)
	if dst.WriteBarrier() != nil {
		t.Fatal("barrier still reported after lifting it")
	}
	r := remember(t, dst, "default", "the promoted replica writes")
	if r.Seq != applied+1 {
		t.Fatalf("first write after promotion got sequence %d, want %d", r.Seq, applied+1)
	}
}
