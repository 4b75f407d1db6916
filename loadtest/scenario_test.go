package loadtest

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestBuiltinScenariosParse(t *testing.T) {
	names := Builtin()
	want := []string{"burst_traffic", "consolidation", "embeddings_search", "mixed_balanced", "multi_tenant", "read_heavy", "smoke", "write_heavy"}
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Fatalf("built-in scenarios %v, want %v", names, want)
	}
	for _, n := range names {
		sc, _, err := Load(n)
		if err != nil {
			t.Errorf("%s: %v", n, err)
			continue
		}
		if sc.Name != n {
			t.Errorf("%s: name = %q, want the file's name", n, sc.Name)
		}
	}
}

// Engram's own scenario files load unchanged (periodic_burst, underscores
// in integers, integer seconds).
func TestEngramScenarioCompatible(t *testing.T) {
	src, err := os.ReadFile("testdata/engram/burst_traffic.toml")
	if err != nil {
		t.Fatal(err)
	}
	sc, err := ParseScenario(src)
	if err != nil {
		t.Fatal(err)
	}
	if sc.Arrival.Pattern != "burst" || sc.Data.NumNodes != 500_000 {
		t.Errorf("parsed %+v %+v", sc.Arrival, sc.Data)
	}
	// 30 s of 15000/s and 270 s of 2000/s per 300 s period.
	if got, want := sc.MeanRate(), (30*15000.0+270*2000.0)/300; math.Abs(got-want) > 1e-6 {
		t.Errorf("mean rate %v, want %v", got, want)
	}
}

func TestBadScenarios(t *testing.T) {
	base := `name = "x"
[duration]
total_seconds = 1
[arrival]
pattern = "constant"
rate = 10.0
[operations]
store_weight = 1.0
[data]
num_nodes = 10
`
	cases := []struct{ name, src, want string }{
		{"unknown key", base + "[data.embedding_distribution]\ntype = \"uniform\"\nbogus = 1\n", `unknown key "data.embedding_distribution.bogus"`},
		{"unknown section", base + "[nope]\nx = 1\n", `unknown key "nope"`},
		{"zero rate", strings.Replace(base, "rate = 10.0", "rate = 0.0", 1), "rate = 0: must be > 0"},
		{"negative rate", strings.Replace(base, "rate = 10.0", "rate = -5.0", 1), "rate = -5: must be > 0"},
		{"weights sum to zero", strings.Replace(base, "store_weight = 1.0", "store_weight = 0.0", 1), "weights sum to 0"},
		{"negative weight", strings.Replace(base, "store_weight = 1.0", "store_weight = 1.0\nrecall_weight = -1.0", 1), "recall_weight = -1"},
		{"bad pattern", strings.Replace(base, `"constant"`, `"sine"`, 1), `pattern = "sine"`},
		{"chaos", base + "[chaos]\nenabled = true\n", "fault injection is not supported"},
		{"bad toml", "name = \n", "line 1"},
		{"no duration", strings.Replace(base, "total_seconds = 1", "", 1), "total_seconds = 0"},
		{"ramp without start", strings.Replace(base, `"constant"`, `"ramp"`, 1), "start_rate = 0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseScenario([]byte(tc.src))
			var se *ScenarioError
			if !errors.As(err, &se) {
				t.Fatalf("error %v, want a *ScenarioError", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
	if _, err := ParseScenario([]byte(base)); err != nil {
		t.Errorf("base scenario: %v", err)
	}
}

func TestUnknownScenarioName(t *testing.T) {
	_, _, err := Load("nosuchscenario")
	if !errors.Is(err, ErrUnknownScenario) || !strings.Contains(err.Error(), "smoke") {
		t.Errorf("error %v should be ErrUnknownScenario and list the built-ins", err)
	}
}

func TestSetRateKeepsShape(t *testing.T) {
	sc, _, err := Load("burst_traffic")
	if err != nil {
		t.Fatal(err)
	}
	ratio := sc.Arrival.BurstRate / sc.Arrival.BaseRate
	if err := sc.SetRate(1000); err != nil {
		t.Fatal(err)
	}
	if math.Abs(sc.MeanRate()-1000) > 1e-6 || math.Abs(sc.Arrival.BurstRate/sc.Arrival.BaseRate-ratio) > 1e-9 {
		t.Errorf("after SetRate: mean %v, arrival %+v", sc.MeanRate(), sc.Arrival)
	}
	if err := sc.SetRate(0); err == nil {
		t.Error("SetRate(0) accepted")
	}
}

func TestPacerPatterns(t *testing.T) {
	count := func(a Arrival, d time.Duration) int {
		p := NewPacer(a, 1)
		n := 0
		for p.Next() < d {
			n++
		}
		return n
	}
	if n := count(Arrival{Pattern: "constant", Rate: 5000}, time.Second); n != 5000 {
		t.Errorf("constant 5000/s: %d arrivals in 1s", n)
	}
	if n := count(Arrival{Pattern: "poisson", Rate: 5000}, 10*time.Second); math.Abs(float64(n)-50000) > 1000 {
		t.Errorf("poisson 5000/s: %d arrivals in 10s", n)
	}
	ramp := Arrival{Pattern: "ramp", StartRate: 100, Rate: 1100, RampSeconds: 10}
	if n := count(ramp, 10*time.Second); math.Abs(float64(n)-6000) > 60 {
		t.Errorf("ramp 100→1100 over 10s: %d arrivals, want ≈ 6000", n)
	}
	burst := Arrival{Pattern: "burst", BaseRate: 100, BurstRate: 1000, BurstDurationSec: 1, BurstPeriodSec: 5}
	if n := count(burst, 10*time.Second); math.Abs(float64(n)-2800) > 30 {
		t.Errorf("burst: %d arrivals in 10s, want ≈ 2800", n)
	}
	if m := NewPacer(burst, 0).MeanRate(10 * time.Second); math.Abs(m-280) > 1e-9 {
		t.Errorf("burst mean rate %v, want 280", m)
	}
}

// FuzzParseScenario: the parser never panics, and whatever it accepts
// validates and has a positive mean rate.
func FuzzParseScenario(f *testing.F) {
	for _, n := range Builtin() {
		src, _ := BuiltinSource(n)
		f.Add(src)
	}
	engram, _ := filepath.Glob("testdata/engram/*.toml")
	for _, name := range engram {
		if src, err := os.ReadFile(name); err == nil {
			f.Add(src)
		}
	}
	f.Add([]byte("name = \"x\"\n[arrival]\npattern = \"ramp\"\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		sc, err := ParseScenario(src)
		if err != nil {
			return
		}
		if err := sc.Validate(); err != nil {
			t.Fatalf("accepted scenario does not validate: %v", err)
		}
		if r := sc.MeanRate(); !(r > 0) || math.IsInf(r, 0) {
			t.Fatalf("accepted scenario has mean rate %v", r)
		}
	})
}
