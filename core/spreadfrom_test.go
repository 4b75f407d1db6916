package core_test

import (
	"testing"

	"github.com/engram-ops/engram-ops/core"
)

func TestSpreadFromReachesOnlyAssociatedMemories(t *testing.T) {
	e := open(t, t.TempDir())
	defer e.Close()
	a := remember(t, e, "default", "the red fox jumps over the fence").ID
	b := remember(t, e, "default", "quarterly revenue grew by eight percent").ID
	c := remember(t, e, "default", "the bakery opens at seven").ID
	// Similar to a in content, but not associated: spreading must not find it.
	d := remember(t, e, "default", "the red fox jumps over the wall").ID
	for _, as := range []core.Association{{From: a, To: b, Weight: 0.9}, {From: b, To: c, Weight: 0.9}} {
		if _, err := e.Associate(ctx, "default", as); err != nil {
			t.Fatal(err)
		}
	}
	res, err := e.SpreadFrom(ctx, "default", a, core.RecallQuery{MaxHops: 3, HopDecay: 0.9, ActivationThreshold: 0.01})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]core.Recalled{}
	for _, r := range res.Associated {
		got[r.Memory.ID] = r
	}
	if _, ok := got[d]; ok {
		t.Fatalf("an unassociated memory was reached: %+v", res.Associated)
	}
	if got[b].Activation != 0.9*0.9 || len(got[c].Path) != 3 || got[c].Activation >= got[b].Activation {
		t.Fatalf("spread: %+v", res.Associated)
	}
	if len(res.Vivid) != 1 || res.Vivid[0].Memory.ID != a {
		t.Fatalf("source: %+v", res.Vivid)
	}
	one, err := e.SpreadFrom(ctx, "default", a, core.RecallQuery{MaxHops: 1})
	if err != nil || len(one.Associated) != 1 || one.Associated[0].Memory.ID != b {
		t.Fatalf("one hop: %+v %v", one.Associated, err)
	}
	if _, err := e.SpreadFrom(ctx, "default", "missing", core.RecallQuery{}); core.KindOf(err) != core.KindNotFound {
		t.Fatalf("missing source: %v", err)
	}
	if _, err := e.SpreadFrom(ctx, "default", a, core.RecallQuery{MaxHops: 7}); core.CodeOf(err) != "INVALID_MAX_HOPS" {
		t.Fatalf("7 hops: %v", err)
	}
}
