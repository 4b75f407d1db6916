package loadtest

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/engram-ops/engram-ops/loadtest/attack"
)

// synth builds a result whose operations' latencies are lognormal around
// medianMS, n samples each, from seed.
func synth(seed uint64, n int, medianMS float64) *Result {
	rng := rand.New(rand.NewPCG(seed, 1))
	r := &Result{Schema: SchemaName, SchemaVersion: SchemaVersion, Scenario: ScenarioInfo{Name: "synthetic"},
		DurationSeconds: 10, RequestedRate: float64(n) / 5, Generator: GeneratorInfo{Hosts: []string{"h"}}}
	for _, name := range []string{OpStore, OpRecall} {
		c, u := NewHistogram(), NewHistogram()
		for range n {
			v := time.Duration(medianMS * float64(time.Millisecond) * rng.ExpFloat64() * 1.4)
			attack.RecordDuration(c, v+200*time.Microsecond)
			attack.RecordDuration(u, v)
		}
		o := OpResult{Name: name, Count: int64(n), OK: int64(n), Rate: float64(n) / 10, ErrorsByKind: map[string]int64{},
			Corrected: Summarize(c), Uncorrected: Summarize(u)}
		r.Operations = append(r.Operations, o)
		r.Completed += int64(n)
	}
	r.Scheduled = r.Completed
	r.AchievedRate = float64(r.Completed) / r.DurationSeconds
	r.Audit.SchedulingLag = Summarize(NewHistogram())
	return r
}

func shifted(t *testing.T, r *Result, factor float64, add time.Duration) *Result {
	out := *r
	out.Operations = nil
	for _, o := range r.Operations {
		h, err := o.Corrected.Histogram()
		if err != nil {
			t.Fatal(err)
		}
		s := NewHistogram()
		for _, b := range h.Distribution() {
			if b.Count > 0 {
				v := time.Duration(float64(b.To)*factor)*time.Microsecond + add
				_ = s.RecordValues(max(v.Microseconds(), 1), b.Count)
			}
		}
		o.Corrected = Summarize(s)
		out.Operations = append(out.Operations, o)
	}
	return &out
}

func TestCompare(t *testing.T) {
	o := DefaultCompareOptions()
	base := synth(1, 20000, 3)
	same := synth(2, 20000, 3) // same distribution, other samples
	c, err := Compare(base, same, o)
	if err != nil {
		t.Fatal(err)
	}
	if c.Regressed {
		t.Errorf("two samples of one distribution flagged: %+v", c.Operations)
	}
	slow := shifted(t, base, 2, 5*time.Millisecond)
	c, err = Compare(base, slow, o)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Regressed || !c.Operations[0].Significant || len(c.Operations[0].Reasons) == 0 {
		t.Errorf("2x+5ms slowdown not flagged: %+v", c.Operations)
	}
	// Faster is never a regression.
	fast := shifted(t, base, 0.5, 0)
	if c, _ := Compare(base, fast, o); c.Regressed {
		t.Errorf("a speed-up was flagged: %+v", c.Operations)
	}
	// Tiny, significant shift within tolerance: not a regression.
	tiny := shifted(t, base, 1.05, 0)
	if c, _ := Compare(base, tiny, o); c.Regressed {
		t.Errorf("a 5%% shift was flagged: %+v", c.Operations)
	}
	// Throughput drop at the same requested rate.
	fewer := *base
	fewer.AchievedRate = base.AchievedRate * 0.5
	fewer.Completed = base.Completed / 2
	if c, _ := Compare(base, &fewer, o); !c.Regressed || !c.RateRegressed {
		t.Error("halved throughput not flagged")
	}
}

func TestKSExact(t *testing.T) {
	a, b := NewHistogram(), NewHistogram()
	for i := 1; i <= 100; i++ {
		_ = a.RecordValue(int64(i))
		_ = b.RecordValue(int64(i + 50))
	}
	d, p := ksSlower(a, b)
	if d < 0.49 || d > 0.51 {
		t.Errorf("D = %v, want 0.5", d)
	}
	if p > 1e-5 {
		t.Errorf("p = %v, want tiny", p)
	}
	if d, p := ksSlower(b, a); d != 0 || p != 1 {
		t.Errorf("reverse direction: D %v p %v, want 0 and 1", d, p)
	}
}

func TestMergeExact(t *testing.T) {
	a, b := synth(1, 5000, 2), synth(2, 7000, 4)
	a.Generator.Hosts, b.Generator.Hosts = []string{"gen1"}, []string{"gen2"}
	m, err := Merge(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if m.Completed != a.Completed+b.Completed || len(m.Generator.Hosts) != 2 {
		t.Errorf("merged completed %d hosts %v", m.Completed, m.Generator.Hosts)
	}
	for i, o := range m.Operations {
		want := NewHistogram()
		for _, r := range []*Result{a, b} {
			h, _ := r.Operations[i].Corrected.Histogram()
			want.Merge(h)
		}
		got, _ := o.Corrected.Histogram()
		if !got.Equals(want) || o.Count != 12000 {
			t.Errorf("%s: merged histogram differs from the exact merge", o.Name)
		}
		if o.Corrected.P99MS != float64(want.ValueAtQuantile(99))/1000 {
			t.Errorf("%s: p99 %v", o.Name, o.Corrected.P99MS)
		}
	}
	other := synth(3, 10, 1)
	other.Scenario.Name = "other"
	if _, err := Merge(a, other); err == nil {
		t.Error("merging different scenarios succeeded")
	}
}

func TestResultRoundTrip(t *testing.T) {
	r := synth(1, 1000, 2)
	path := t.TempDir() + "/r.json"
	if err := r.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	back, err := ReadResult(path)
	if err != nil {
		t.Fatal(err)
	}
	h1, _ := r.Operations[0].Corrected.Histogram()
	h2, _ := back.Operations[0].Corrected.Histogram()
	if !h1.Equals(h2) {
		t.Error("histogram changed in a JSON round trip")
	}
	if _, err := DecodeResult([]byte(`{"schema":"engram-ops/loadtest-result","schema_version":99}`)); err == nil {
		t.Error("unknown schema version accepted")
	}
}
