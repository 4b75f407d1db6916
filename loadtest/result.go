package loadtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/engram-ops/engram-ops/loadtest/attack"
)

// Result schema identity. Bump SchemaVersion on any incompatible change and
// document it in docs/loadtest.md; readers refuse versions they do not know.
const (
	SchemaName    = "engram-ops/loadtest-result"
	SchemaVersion = 1
)

// NewHistogram returns an empty latency histogram of the geometry every
// result uses (values in microseconds), for tools that build results.
func NewHistogram() *hdr.Histogram { return attack.NewHistogram() }

// Summarize turns a latency histogram (microseconds) into its summary
// with the encoded histogram.
func Summarize(h *hdr.Histogram) HistSummary { return attack.Summarize(h) }

// HistSummary is a latency distribution with its full histogram, and
// Audit the generator's account of itself: the attack engine's, as they
// appear in a result.
type (
	HistSummary = attack.HistSummary
	Audit       = attack.Audit
)

// Result is one load-test run (or several merged). Its JSON form is the
// documented contract of docs/loadtest.md.
type Result struct {
	Schema        string `json:"schema"`
	SchemaVersion int    `json:"schema_version"`

	Scenario  ScenarioInfo  `json:"scenario"`
	Target    TargetInfo    `json:"target"`
	Generator GeneratorInfo `json:"generator"`

	StartedAt       time.Time `json:"started_at"`
	EndedAt         time.Time `json:"ended_at"`
	DurationSeconds float64   `json:"duration_seconds"` // measured phase, as run
	WarmupSeconds   float64   `json:"warmup_seconds"`
	Interrupted     bool      `json:"interrupted"`

	// RequestedRate is the operations per second the scenario asked for
	// in the measured phase; AchievedRate is what completed (ok or error).
	RequestedRate float64 `json:"requested_rate"`
	AchievedRate  float64 `json:"achieved_rate"`
	Scheduled     int64   `json:"scheduled"`
	Completed     int64   `json:"completed"`
	Errors        int64   `json:"errors"`
	ErrorRate     float64 `json:"error_rate"`

	Setup      SetupInfo         `json:"setup"`
	Audit      Audit             `json:"audit"`
	Operations []OpResult        `json:"operations"`
	Validation *ValidationResult `json:"validation,omitempty"`
}

// ScenarioInfo records what was run.
type ScenarioInfo struct {
	Name             string  `json:"name"`
	Description      string  `json:"description"`
	Pattern          string  `json:"pattern"`
	Source           string  `json:"source"` // the TOML as given (before --rate/--duration)
	RateOverride     float64 `json:"rate_override,omitempty"`
	DurationOverride float64 `json:"duration_override_seconds,omitempty"`
}

// TargetInfo records the server.
type TargetInfo struct {
	URL      string `json:"url"`
	Embedded bool   `json:"embedded"`
	Version  string `json:"version,omitempty"`
	// Kind is the target kind the run drove (engram-ops or engram);
	// results older than this field have none.
	Kind string `json:"kind,omitempty"`
}

// GeneratorInfo records the machine(s) that generated load.
type GeneratorInfo struct {
	Version    string   `json:"version"`
	GoVersion  string   `json:"go_version"`
	Hosts      []string `json:"hosts"`
	NumCPU     int      `json:"num_cpu"`
	GOMAXPROCS int      `json:"gomaxprocs"`
	OS         string   `json:"os"`
	Arch       string   `json:"arch"`
}

// SetupInfo describes the preload.
type SetupInfo struct {
	Spaces         []string `json:"spaces"`
	Preloaded      int      `json:"preloaded"`
	PreloadSeconds float64  `json:"preload_seconds"`
	// IndexSettleSeconds is how long the run waited after the preload for
	// the server to index it; IndexPending is what was still not indexed
	// when the load started (0: settled). Results older than these fields
	// read as 0.
	IndexSettleSeconds float64 `json:"index_settle_seconds"`
	IndexPending       int     `json:"index_pending"`
}

// OpResult is one operation's figures.
type OpResult struct {
	Name         string           `json:"name"`
	Count        int64            `json:"count"` // completed: ok + errors
	OK           int64            `json:"ok"`
	Errors       int64            `json:"errors"`
	ErrorsByKind map[string]int64 `json:"errors_by_kind"`
	Rate         float64          `json:"rate"`
	// Corrected latency is measured from the intended send time
	// (coordinated-omission corrected); Uncorrected from the actual send.
	Corrected   HistSummary `json:"corrected"`
	Uncorrected HistSummary `json:"uncorrected"`
	Recall      *RecallStat `json:"recall,omitempty"`
}

// RecallStat is the ground-truth recall@k of an operation's answers.
type RecallStat struct {
	K int `json:"k"`
	// Checked answers; Found of the Expected relevant memories were in
	// the top k. AtK = Found/Expected.
	Checked  int64   `json:"checked"`
	Expected int64   `json:"expected"`
	Found    int64   `json:"found"`
	AtK      float64 `json:"at_k"`
}

// opResult is one operation's figures as a result records them: the
// engine's, with recall@k where its answers were checked.
func opResult(o attack.OpStats, k int) OpResult {
	r := OpResult{Name: o.Name, Count: o.Count, OK: o.OK, Errors: o.Errors, ErrorsByKind: o.ErrorsByKind, Rate: o.Rate,
		Corrected: o.Corrected, Uncorrected: o.Uncorrected}
	if o.Checked > 0 {
		r.Recall = &RecallStat{K: k, Checked: o.Checked, Expected: o.Expected, Found: o.Found, AtK: float64(o.Found) / float64(o.Expected)}
	}
	return r
}

// WriteJSON writes the result as indented JSON.
func (r *Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteFile writes the result to path (atomically: temp file, rename).
func (r *Result) WriteFile(path string) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if err := r.WriteJSON(f); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}

// ErrSchema is returned when a file is not a result this version reads.
var ErrSchema = errors.New("not a loadtest result this version can read")

// ReadResult reads and checks a result file.
func ReadResult(path string) (*Result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return DecodeResult(b)
}

// DecodeResult parses a result and checks its schema and histograms.
func DecodeResult(b []byte) (*Result, error) {
	var r Result
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSchema, err)
	}
	if r.Schema != SchemaName {
		return nil, fmt.Errorf("%w: schema %q, want %q", ErrSchema, r.Schema, SchemaName)
	}
	if r.SchemaVersion != SchemaVersion {
		return nil, fmt.Errorf("%w: schema_version %d, this build reads %d", ErrSchema, r.SchemaVersion, SchemaVersion)
	}
	for _, o := range r.Operations {
		for _, s := range []HistSummary{o.Corrected, o.Uncorrected} {
			if _, err := s.Histogram(); err != nil {
				return nil, fmt.Errorf("%w: operation %s: %v", ErrSchema, o.Name, err)
			}
		}
	}
	return &r, nil
}

// Op returns the named operation's figures, or nil.
func (r *Result) Op(name string) *OpResult {
	for i := range r.Operations {
		if r.Operations[i].Name == name {
			return &r.Operations[i]
		}
	}
	return nil
}

// Merge combines results of the same scenario run concurrently from
// several generator machines: counts add, histograms merge exactly (same
// geometry), rates add, the time span is the union. Validation is not
// carried over; re-check the merged result against the scenario.
func Merge(rs ...*Result) (*Result, error) {
	if len(rs) == 0 {
		return nil, errors.New("merge: no results")
	}
	out := *rs[0]
	out.Operations = nil
	out.Validation = nil
	out.Generator.Hosts = nil
	out.Audit = Audit{LateAfterMS: rs[0].Audit.LateAfterMS, DropAfterMS: rs[0].Audit.DropAfterMS}
	out.RequestedRate, out.AchievedRate, out.Scheduled, out.Completed, out.Errors = 0, 0, 0, 0, 0
	out.Setup.Preloaded, out.Setup.IndexPending, out.Setup.IndexSettleSeconds = 0, 0, 0
	waitKnown := true
	var wait float64
	lag := NewHistogram()
	type acc struct {
		o      OpResult
		c, u   *hdr.Histogram
		recall *RecallStat
	}
	ops := map[string]*acc{}
	var order []string
	var cpuWall float64
	for i, r := range rs {
		if r.Scenario.Name != out.Scenario.Name {
			return nil, fmt.Errorf("merge: result %d is scenario %q, the first is %q: merge runs of one scenario", i+1, r.Scenario.Name, out.Scenario.Name)
		}
		if r.StartedAt.Before(out.StartedAt) {
			out.StartedAt = r.StartedAt
		}
		if r.EndedAt.After(out.EndedAt) {
			out.EndedAt = r.EndedAt
		}
		if r.DurationSeconds > out.DurationSeconds {
			out.DurationSeconds = r.DurationSeconds
		}
		out.Interrupted = out.Interrupted || r.Interrupted
		out.RequestedRate += r.RequestedRate
		out.Scheduled += r.Scheduled
		out.Completed += r.Completed
		out.Errors += r.Errors
		out.Setup.Preloaded += r.Setup.Preloaded
		out.Setup.IndexPending += r.Setup.IndexPending
		out.Setup.IndexSettleSeconds = max(out.Setup.IndexSettleSeconds, r.Setup.IndexSettleSeconds)
		out.Generator.Hosts = append(out.Generator.Hosts, r.Generator.Hosts...)
		a := r.Audit
		out.Audit.LateSends += a.LateSends
		out.Audit.LateNoWorker += a.LateNoWorker
		out.Audit.LateDispatch += a.LateDispatch
		if a.CPUWaitSec == nil {
			waitKnown = false
		} else {
			wait += *a.CPUWaitSec
		}
		out.Audit.DroppedSends += a.DroppedSends
		out.Audit.MaxWorkers += a.MaxWorkers
		out.Audit.PeakWorkers += a.PeakWorkers
		out.Audit.PoolExhausted += a.PoolExhausted
		out.Audit.CPUUserSec += a.CPUUserSec
		out.Audit.CPUSystemSec += a.CPUSystemSec
		out.Audit.CPUIncludesServer = out.Audit.CPUIncludesServer || a.CPUIncludesServer
		cpuWall += r.DurationSeconds + r.WarmupSeconds
		for _, f := range a.Findings {
			out.Audit.Findings = append(out.Audit.Findings, fmt.Sprintf("[%s] %s", hostOf(r), f))
		}
		if limitRank(a.LimitedBy) > limitRank(out.Audit.LimitedBy) {
			out.Audit.LimitedBy = a.LimitedBy
		}
		h, err := a.SchedulingLag.Histogram()
		if err != nil {
			return nil, err
		}
		lag.Merge(h)
		for _, o := range r.Operations {
			x := ops[o.Name]
			if x == nil {
				x = &acc{o: OpResult{Name: o.Name, ErrorsByKind: map[string]int64{}}, c: NewHistogram(), u: NewHistogram()}
				ops[o.Name] = x
				order = append(order, o.Name)
			}
			x.o.Count += o.Count
			x.o.OK += o.OK
			x.o.Errors += o.Errors
			for k, v := range o.ErrorsByKind {
				x.o.ErrorsByKind[k] += v
			}
			for _, p := range []struct {
				dst *hdr.Histogram
				src HistSummary
			}{{x.c, o.Corrected}, {x.u, o.Uncorrected}} {
				h, err := p.src.Histogram()
				if err != nil {
					return nil, err
				}
				if dropped := p.dst.Merge(h); dropped > 0 {
					return nil, fmt.Errorf("merge: %d values of %s outside the histogram range", dropped, o.Name)
				}
			}
			if o.Recall != nil {
				if x.recall == nil {
					x.recall = &RecallStat{K: o.Recall.K}
				}
				x.recall.Checked += o.Recall.Checked
				x.recall.Expected += o.Recall.Expected
				x.recall.Found += o.Recall.Found
			}
		}
	}
	sort.SliceStable(order, func(i, j int) bool { return opIndex(order[i]) < opIndex(order[j]) })
	for _, name := range order {
		x := ops[name]
		x.o.Corrected, x.o.Uncorrected = Summarize(x.c), Summarize(x.u)
		if out.DurationSeconds > 0 {
			x.o.Rate = float64(x.o.Count) / out.DurationSeconds
		}
		if x.recall != nil && x.recall.Expected > 0 {
			x.recall.AtK = float64(x.recall.Found) / float64(x.recall.Expected)
			x.o.Recall = x.recall
		}
		out.Operations = append(out.Operations, x.o)
	}
	if out.DurationSeconds > 0 {
		out.AchievedRate = float64(out.Completed) / out.DurationSeconds
	}
	if out.Completed > 0 {
		out.ErrorRate = float64(out.Errors) / float64(out.Completed)
	}
	if out.Scheduled > 0 {
		out.Audit.LateFraction = float64(out.Audit.LateSends) / float64(out.Scheduled)
	}
	if cpuWall > 0 {
		out.Audit.CPUCores = (out.Audit.CPUUserSec + out.Audit.CPUSystemSec) / cpuWall * float64(len(rs))
	}
	if waitKnown {
		out.Audit.CPUWaitSec = &wait
	}
	out.Audit.SchedulingLag = Summarize(lag)
	return &out, nil
}

// limitRank orders verdicts for a merge: one generator machine that could
// not offer its share makes the whole load suspect.
func limitRank(v string) int {
	switch v {
	case LimitedByGenerator:
		return 3
	case LimitedByMachine:
		return 2
	case LimitedByServer:
		return 1
	}
	return 0
}

func hostOf(r *Result) string {
	if len(r.Generator.Hosts) > 0 {
		return r.Generator.Hosts[0]
	}
	return "?"
}

func opIndex(name string) int {
	for i, n := range OpNames {
		if n == name {
			return i
		}
	}
	return len(OpNames)
}
