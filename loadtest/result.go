package loadtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// Result schema identity. Bump SchemaVersion on any incompatible change and
// document it in docs/loadtest.md; readers refuse versions they do not know.
const (
	SchemaName    = "engram-ops/loadtest-result"
	SchemaVersion = 1
)

// Histogram geometry: microseconds from 1 µs to 1 hour, 3 significant
// digits (0.1% value resolution), the same for every histogram so that
// results from different runs and machines merge exactly.
const (
	histLowest  = 1
	histHighest = int64(time.Hour / time.Microsecond)
	histSigFigs = 3
)

func newHist() *hdr.Histogram { return hdr.New(histLowest, histHighest, histSigFigs) }

// NewHistogram returns an empty latency histogram of the geometry every
// result uses (values in microseconds), for tools that build results.
func NewHistogram() *hdr.Histogram { return newHist() }

// Summarize turns a latency histogram (microseconds) into its summary
// with the encoded histogram.
func Summarize(h *hdr.Histogram) HistSummary { return summarize(h) }

func recordDur(h *hdr.Histogram, d time.Duration) {
	us := d.Microseconds()
	if us < histLowest {
		us = histLowest
	}
	if us > histHighest {
		us = histHighest
	}
	_ = h.RecordValue(us)
}

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

// Audit is the generator's account of itself.
type Audit struct {
	LateAfterMS float64 `json:"late_after_ms"`
	DropAfterMS float64 `json:"drop_after_ms"`
	// LateSends started more than late_after_ms after their intended time;
	// LateNoWorker of them waited for a free worker (the pool was at
	// max_workers), the rest were late because the generator's own
	// goroutines did not run in time: LateDispatch of them because the
	// pacer woke late, the others because a free worker did.
	LateSends     int64   `json:"late_sends"`
	LateNoWorker  int64   `json:"late_no_worker"`
	LateDispatch  int64   `json:"late_dispatch"`
	LateFraction  float64 `json:"late_fraction"`
	DroppedSends  int64   `json:"dropped_sends"`
	MaxWorkers    int     `json:"max_workers"`
	PeakWorkers   int     `json:"peak_workers"`
	PoolExhausted int64   `json:"pool_exhausted"`
	// SchedulingLag is the distribution of (actual − intended) send time.
	SchedulingLag HistSummary `json:"scheduling_lag"`
	CPUUserSec    float64     `json:"cpu_user_seconds"`
	CPUSystemSec  float64     `json:"cpu_system_seconds"`
	// CPUCores is (user+system)/wall: cores the process used on average.
	CPUCores float64 `json:"cpu_cores"`
	// CPUWaitSec is how long the process's threads were runnable but
	// waited for a CPU (Linux run-queue delay); nil where unknown.
	CPUWaitSec *float64 `json:"cpu_wait_seconds,omitempty"`
	// CPUIncludesServer is true when the server ran in the same process.
	CPUIncludesServer bool `json:"cpu_includes_server"`
	// LimitedBy is "server" when requests waited on the server,
	// "generator" when the generator could not offer the requested load
	// by itself (CPU-bound, or its scheduler fell behind), "machine" when
	// it was late for want of a CPU something else on the host took, and
	// "" when the load was offered as requested and the server kept up.
	LimitedBy string   `json:"limited_by"`
	Findings  []string `json:"findings"`
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

// HistSummary is a latency distribution: percentiles in milliseconds for
// reading, and the full HDR histogram (values in microseconds, V2
// compressed, base64) as the source of truth for merge and compare.
type HistSummary struct {
	Count  int64   `json:"count"`
	MinMS  float64 `json:"min_ms"`
	MeanMS float64 `json:"mean_ms"`
	P50MS  float64 `json:"p50_ms"`
	P90MS  float64 `json:"p90_ms"`
	P95MS  float64 `json:"p95_ms"`
	P99MS  float64 `json:"p99_ms"`
	P999MS float64 `json:"p999_ms"`
	MaxMS  float64 `json:"max_ms"`
	HDR    string  `json:"hdr"`
}

func summarize(h *hdr.Histogram) HistSummary {
	ms := func(us int64) float64 { return float64(us) / 1000 }
	s := HistSummary{Count: h.TotalCount()}
	if s.Count > 0 {
		s.MinMS, s.MeanMS, s.MaxMS = ms(h.Min()), h.Mean()/1000, ms(h.Max())
		s.P50MS, s.P90MS, s.P95MS = ms(h.ValueAtQuantile(50)), ms(h.ValueAtQuantile(90)), ms(h.ValueAtQuantile(95))
		s.P99MS, s.P999MS = ms(h.ValueAtQuantile(99)), ms(h.ValueAtQuantile(99.9))
	}
	b, err := h.Encode(hdr.V2CompressedEncodingCookieBase)
	if err == nil {
		s.HDR = string(b)
	}
	return s
}

// Histogram decodes the full histogram.
func (s HistSummary) Histogram() (*hdr.Histogram, error) {
	if s.HDR == "" {
		return newHist(), nil
	}
	h, err := hdr.Decode([]byte(s.HDR))
	if err != nil {
		return nil, fmt.Errorf("decode histogram: %w", err)
	}
	return h, nil
}

// opRecorder accumulates one operation's figures. One mutex per operation:
// recording is a few hundred nanoseconds, far below request latency, so
// contention does not limit the generator at the rates one machine offers.
type opRecorder struct {
	mu          sync.Mutex
	corrected   *hdr.Histogram
	uncorrected *hdr.Histogram
	ok, errs    int64
	errKinds    map[string]int64
	checked     int64
	expected    int64
	found       int64
}

func newOpRecorder() *opRecorder {
	return &opRecorder{corrected: newHist(), uncorrected: newHist(), errKinds: map[string]int64{}}
}

func (r *opRecorder) record(corrected, service time.Duration, errKind string, expected, found int) {
	r.mu.Lock()
	recordDur(r.corrected, corrected)
	recordDur(r.uncorrected, service)
	if errKind != "" {
		r.errs++
		r.errKinds[errKind]++
	} else {
		r.ok++
		if expected > 0 {
			r.checked++
			r.expected += int64(expected)
			r.found += int64(found)
		}
	}
	r.mu.Unlock()
}

func (r *opRecorder) result(name string, seconds float64, k int) OpResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	o := OpResult{Name: name, OK: r.ok, Errors: r.errs, Count: r.ok + r.errs, ErrorsByKind: map[string]int64{},
		Corrected: summarize(r.corrected), Uncorrected: summarize(r.uncorrected)}
	for k, v := range r.errKinds {
		o.ErrorsByKind[k] = v
	}
	if seconds > 0 {
		o.Rate = float64(o.Count) / seconds
	}
	if r.checked > 0 {
		o.Recall = &RecallStat{K: k, Checked: r.checked, Expected: r.expected, Found: r.found, AtK: float64(r.found) / float64(r.expected)}
	}
	return o
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
	lag := newHist()
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
				x = &acc{o: OpResult{Name: o.Name, ErrorsByKind: map[string]int64{}}, c: newHist(), u: newHist()}
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
		x.o.Corrected, x.o.Uncorrected = summarize(x.c), summarize(x.u)
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
	out.Audit.SchedulingLag = summarize(lag)
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
