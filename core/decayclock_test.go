package core_test

import (
	"math"
	"testing"
	"time"

	"github.com/engram-ops/engram-ops/core"
)

// TestDecayClockStartsAtObservation: a memory observed 30 days before it
// is stored has decayed for 30 days (it is not fresh), one observed now has
// not, and a first recall restarts the clock at the recall.
func TestDecayClockStartsAtObservation(t *testing.T) {
	now := time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC)
	clk := &clock{t: now}
	e := open(t, t.TempDir(), func(o *core.Options) {
		o.Now = clk.Now
		o.Tiers.InitialStability = 72 * time.Hour
	})
	conf := 0.5 // S = 72h × (0.5 + 0.5)
	old := remember(t, e, "default", "Berlin is the capital of Germany", func(in *core.RememberInput) {
		in.ObservedAt, in.Confidence = now.Add(-30*24*time.Hour), &conf
	}).ID
	day := remember(t, e, "default", "Paris is the capital of France", func(in *core.RememberInput) {
		in.ObservedAt, in.Confidence = now.Add(-24*time.Hour), &conf
	}).ID
	fresh := remember(t, e, "default", "Tokyo is the capital of Japan", func(in *core.RememberInput) { in.Confidence = &conf }).ID
	future := remember(t, e, "default", "Rome is the capital of Italy", func(in *core.RememberInput) {
		in.ObservedAt, in.Confidence = now.Add(time.Hour), &conf
	}).ID
	want := map[string]float64{
		old:    math.Exp(-30 * 24 / 72.0), // ≈ 0.00005
		day:    math.Exp(-24 / 72.0),      // ≈ 0.72
		fresh:  1,
		future: 1,
	}
	for id, r := range want {
		m, err := e.Get(ctx, "default", id, false)
		if err != nil {
			t.Fatal(err)
		}
		if got := m.Retrievability(clk.Now()); math.Abs(got-r) > 1e-6 {
			t.Errorf("%s (observed %s): retrievability %.6f, want %.6f", m.Content, m.ObservedAt, got, r)
		}
	}
	// Recall scores with the same clock: the day-old memory outranks the
	// month-old one at equal similarity.
	res, err := e.Recall(ctx, "default", core.RecallQuery{Text: "capital", Deep: true, Mode: core.ModeSimilarity})
	if err != nil {
		t.Fatal(err)
	}
	rank := map[string]int{}
	for i, r := range res.Vivid {
		rank[r.Memory.ID] = i + 1
		if w, ok := want[r.Memory.ID]; ok && math.Abs(r.Retrievability-w) > 1e-6 {
			t.Errorf("recall of %s: retrievability %.6f, want %.6f", r.Memory.Content, r.Retrievability, w)
		}
	}
	if rank[old] != 0 && rank[day] > rank[old] {
		t.Errorf("the month-old memory outranks the day-old one: %v", rank)
	}
	// A recall is a rehearsal: from then on the clock runs from it.
	clk.Advance(time.Hour)
	m, _ := e.Get(ctx, "default", day, false)
	if m.AccessCount == 0 {
		t.Fatalf("recall did not reinforce %s", m.Content)
	}
	if got, w := m.Retrievability(clk.Now()), math.Exp(-1/m.Stability.Hours()); math.Abs(got-w) > 1e-6 {
		t.Errorf("after a recall: retrievability %.6f, want %.6f (one hour since the recall)", got, w)
	}
}
