package loadtest

import (
	"strings"
	"testing"
)

// audited is a 10-second run on 2 cores at 1000/s that offered its load
// on time and whose server kept up; cases change what they need.
func audited(change func(r *Result)) *Result {
	r := &Result{Generator: GeneratorInfo{NumCPU: 2, GOMAXPROCS: 2}, DurationSeconds: 10,
		RequestedRate: 1000, AchievedRate: 1000, Scheduled: 10000, Completed: 10000}
	r.Audit = Audit{LateAfterMS: 1, DropAfterMS: 1000, MaxWorkers: 1024, PeakWorkers: 12,
		CPUUserSec: 1, CPUSystemSec: 0.5, CPUCores: 0.15, CPUWaitSec: ptrTo(0.05)}
	if change != nil {
		change(r)
	}
	if r.Scheduled > 0 {
		r.Audit.LateFraction = float64(r.Audit.LateSends) / float64(r.Scheduled)
	}
	return r
}

func ptrTo(f float64) *float64 { return &f }

// late makes n sends late for the generator's own reasons.
func late(r *Result, n int64) { r.Audit.LateSends += n; r.Audit.LateDispatch += n }

// cpu sets the generator's CPU use in cores over the run.
func cpu(r *Result, cores float64) {
	r.Audit.CPUCores = cores
	r.Audit.CPUUserSec, r.Audit.CPUSystemSec = cores*r.DurationSeconds, 0
}

func TestJudge(t *testing.T) {
	cases := []struct {
		name   string
		change func(r *Result)
		want   string
		// findings that must (or, prefixed "!", must not) appear
		say []string
	}{
		{"clean run", nil, "", []string{"!late", "!LIMITED"}},
		{"late exactly at 1% is not over the limit", func(r *Result) { late(r, 100) }, "", nil},
		{"just over 1%, CPU idle, no run-queue wait: the generator's own fault",
			func(r *Result) { late(r, 101); r.Audit.CPUWaitSec = ptrTo(0) }, LimitedByGenerator,
			[]string{"GENERATOR limited", "did not send on time", "1.01% of sends"}},
		{"the reported case: pool exhausted, generator at 0.28 cores, own sends late too",
			func(r *Result) {
				late(r, 2000)
				r.Audit.PoolExhausted, r.Audit.LateNoWorker = 301, 300
				r.Audit.LateSends += 300
				cpu(r, 0.28)
				r.Audit.CPUWaitSec = ptrTo(9)
				r.AchievedRate = 700
			}, LimitedByServer,
			[]string{"SERVER limited", "requests waited on it", "max_workers = 1024 301 times", "run the generator on another machine"}},
		{"CPU-bound generator", func(r *Result) { late(r, 500); cpu(r, 1.7) }, LimitedByGenerator,
			[]string{"1.70 of its 2 cores: it is CPU-bound", "GENERATOR limited"}},
		{"CPU-bound beats a full pool", func(r *Result) { late(r, 500); cpu(r, 1.9); r.Audit.PoolExhausted = 5 }, LimitedByGenerator, nil},
		{"CPU exactly at 80% of cores is busy", func(r *Result) { late(r, 500); cpu(r, 1.6) }, LimitedByGenerator, []string{"CPU-bound"}},
		{"late, CPU low, threads waited for a CPU: contention",
			func(r *Result) { late(r, 500); cpu(r, 0.3); r.Audit.CPUWaitSec = ptrTo(4) }, LimitedByMachine,
			[]string{"MACHINE CONTENTION", "something else on this host", "waited 4.00s for a CPU"}},
		{"run-queue wait below half the CPU time is not starvation",
			func(r *Result) { late(r, 500); cpu(r, 0.3); r.Audit.CPUWaitSec = ptrTo(1.4) }, LimitedByGenerator, []string{"!for a CPU while runnable"}},
		{"run-queue wait under 1% of the run is not starvation",
			func(r *Result) {
				late(r, 500)
				cpu(r, 0.001)
				r.Audit.CPUWaitSec = ptrTo(0.05)
			}, LimitedByGenerator, nil},
		{"late, no run-queue figure, CPU low: contention",
			func(r *Result) { late(r, 500); cpu(r, 0.3); r.Audit.CPUWaitSec = nil }, LimitedByMachine, []string{"MACHINE CONTENTION"}},
		{"late, no run-queue figure, CPU between low and busy: generator",
			func(r *Result) { late(r, 500); cpu(r, 1.2); r.Audit.CPUWaitSec = nil }, LimitedByGenerator, nil},
		{"embedded server: lateness is the shared process's",
			func(r *Result) { late(r, 500); cpu(r, 1.95); r.Audit.CPUIncludesServer = true }, LimitedByMachine,
			[]string{"embedded server", "!CPU-bound", "CPU figures include the embedded server"}},
		{"every late send waited for a worker: server",
			func(r *Result) {
				r.Audit.LateSends, r.Audit.LateNoWorker, r.Audit.PoolExhausted = 900, 900, 900
			}, LimitedByServer, []string{"900 waited for a worker", "!also late"}},
		{"pool reached its cap once, nothing late: server", func(r *Result) { r.Audit.PoolExhausted = 1 }, LimitedByServer, nil},
		{"in-flight grew to half the cap, own sends late too: server",
			func(r *Result) { r.Audit.PeakWorkers = 512; late(r, 500); cpu(r, 0.3); r.Audit.CPUWaitSec = ptrTo(4) }, LimitedByServer,
			[]string{"grew to 512, of max_workers = 1024", "also late"}},
		{"in-flight just under half the cap is not growth",
			func(r *Result) { r.Audit.PeakWorkers = 511; late(r, 500); cpu(r, 0.3); r.Audit.CPUWaitSec = ptrTo(4) }, LimitedByMachine, []string{"!grew"}},
		{"a tiny cap reached half-way is not growth", func(r *Result) { r.Audit.MaxWorkers, r.Audit.PeakWorkers = 8, 8 }, "", nil},
		{"server fell short without lateness", func(r *Result) { r.AchievedRate = 900 }, LimitedByServer, []string{"completed 900.0 of 1000.0"}},
		{"achieved 95% is not a shortfall", func(r *Result) { r.AchievedRate = 950 }, "", nil},
		{"interrupted runs fall short by design", func(r *Result) { r.AchievedRate = 100; r.Interrupted = true }, "", nil},
		{"drops without a full pool are the generator's lateness",
			func(r *Result) { r.Audit.DroppedSends = 3; r.Audit.CPUWaitSec = ptrTo(0) }, LimitedByGenerator, []string{"3 sends were dropped"}},
		{"drops with a full pool are the server's",
			func(r *Result) { r.Audit.DroppedSends = 3; r.Audit.PoolExhausted = 40 }, LimitedByServer, nil},
		{"nothing scheduled", func(r *Result) { r.Scheduled, r.Completed, r.RequestedRate, r.AchievedRate = 0, 0, 0, 0 }, "", nil},
		{"NumCPU below GOMAXPROCS bounds the cores", func(r *Result) {
			r.Generator.GOMAXPROCS, r.Generator.NumCPU = 8, 2
			late(r, 500)
			cpu(r, 1.7)
		}, LimitedByGenerator, []string{"of its 2 cores"}},
		{"unsettled index is reported", func(r *Result) { r.Setup.IndexPending, r.Setup.IndexSettleSeconds = 1234, 300 }, "",
			[]string{"1234 preloaded memories were still waiting to be indexed", "after 300s"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := audited(tc.change)
			judge(r)
			all := strings.Join(r.Audit.Findings, "\n")
			if r.Audit.LimitedBy != tc.want {
				t.Errorf("limited_by %q, want %q\nfindings:\n%s", r.Audit.LimitedBy, tc.want, all)
			}
			for _, s := range tc.say {
				if neg, ok := strings.CutPrefix(s, "!"); ok {
					if strings.Contains(all, neg) {
						t.Errorf("findings mention %q:\n%s", neg, all)
					}
				} else if !strings.Contains(all, s) {
					t.Errorf("findings lack %q:\n%s", s, all)
				}
			}
			// Judging again gives the same verdict and findings.
			before := all
			judge(r)
			if again := strings.Join(r.Audit.Findings, "\n"); again != before {
				t.Errorf("judge is not idempotent:\n%s\nthen\n%s", before, again)
			}
		})
	}
}

func TestMergeKeepsTheWorstVerdict(t *testing.T) {
	for _, tc := range []struct{ a, b, want string }{
		{"", LimitedByServer, LimitedByServer},
		{LimitedByServer, LimitedByMachine, LimitedByMachine},
		{LimitedByMachine, LimitedByGenerator, LimitedByGenerator},
		{LimitedByGenerator, "", LimitedByGenerator},
		{"", "", ""},
	} {
		a, b := synth(1, 100, 1), synth(2, 100, 1)
		a.Audit.LimitedBy, b.Audit.LimitedBy = tc.a, tc.b
		m, err := Merge(a, b)
		if err != nil {
			t.Fatal(err)
		}
		if m.Audit.LimitedBy != tc.want {
			t.Errorf("merge of %q and %q: %q, want %q", tc.a, tc.b, m.Audit.LimitedBy, tc.want)
		}
	}
	// Run-queue wait adds up when every result has it, else is unknown.
	a, b := synth(1, 100, 1), synth(2, 100, 1)
	a.Audit.CPUWaitSec, b.Audit.CPUWaitSec = ptrTo(1), ptrTo(2)
	a.Setup.IndexPending, b.Setup.IndexPending = 3, 4
	m, _ := Merge(a, b)
	if m.Audit.CPUWaitSec == nil || *m.Audit.CPUWaitSec != 3 || m.Setup.IndexPending != 7 {
		t.Errorf("merged wait %v, index pending %d", m.Audit.CPUWaitSec, m.Setup.IndexPending)
	}
	b.Audit.CPUWaitSec = nil
	if m, _ := Merge(a, b); m.Audit.CPUWaitSec != nil {
		t.Errorf("merged wait %v, want unknown when one result lacks it", *m.Audit.CPUWaitSec)
	}
}

func TestRequireGeneratorOK(t *testing.T) {
	for v, ok := range map[string]bool{"": true, LimitedByServer: true, LimitedByGenerator: false, LimitedByMachine: false} {
		r := audited(func(r *Result) { r.Audit.LimitedBy = v })
		if got := Validate(r, Validation{RequireGeneratorOK: true}).Passed; got != ok {
			t.Errorf("limited_by %q: passed %v, want %v", v, got, ok)
		}
	}
}
