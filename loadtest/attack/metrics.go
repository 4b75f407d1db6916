package attack

import (
	"fmt"
	"sync"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram geometry: microseconds from 1 µs to 1 hour, 3 significant
// digits (0.1% value resolution), the same for every histogram so that
// histograms from different runs and machines merge exactly.
const (
	histLowest  = 1
	histHighest = int64(time.Hour / time.Microsecond)
	histSigFigs = 3
)

// NewHistogram returns an empty latency histogram (values in
// microseconds) of the geometry every histogram of this package uses.
func NewHistogram() *hdr.Histogram { return hdr.New(histLowest, histHighest, histSigFigs) }

// RecordDuration records d in h, clamped to the histogram's range.
func RecordDuration(h *hdr.Histogram, d time.Duration) {
	us := d.Microseconds()
	if us < histLowest {
		us = histLowest
	}
	if us > histHighest {
		us = histHighest
	}
	_ = h.RecordValue(us)
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

// Summarize turns a latency histogram (microseconds) into its summary
// with the encoded histogram.
func Summarize(h *hdr.Histogram) HistSummary {
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
		return NewHistogram(), nil
	}
	h, err := hdr.Decode([]byte(s.HDR))
	if err != nil {
		return nil, fmt.Errorf("decode histogram: %w", err)
	}
	return h, nil
}

// OpStats are one operation's figures over the measured phase.
type OpStats struct {
	Name         string
	Count        int64 // completed: OK + Errors
	OK, Errors   int64
	ErrorsByKind map[string]int64
	Rate         float64 // completed per second of the measured phase
	// Corrected latency is measured from the intended send time
	// (coordinated-omission corrected); Uncorrected from the actual send.
	Corrected, Uncorrected HistSummary
	// Checked successful answers carried an Outcome with Expected > 0;
	// Found of their Expected relevant items were in them.
	Checked, Expected, Found int64
}

// Metrics accumulates one operation's results. One mutex per operation:
// recording is a few hundred nanoseconds, far below request latency, so
// contention does not limit the generator at the rates one machine offers.
type Metrics struct {
	mu          sync.Mutex
	corrected   *hdr.Histogram
	uncorrected *hdr.Histogram
	ok, errs    int64
	errKinds    map[string]int64
	checked     int64
	expected    int64
	found       int64
}

// NewMetrics returns empty metrics.
func NewMetrics() *Metrics {
	return &Metrics{corrected: NewHistogram(), uncorrected: NewHistogram(), errKinds: map[string]int64{}}
}

// Add records one result: its latency from the intended send time and its
// service time, its error kind ("" for success) and its outcome.
func (m *Metrics) Add(corrected, service time.Duration, errKind string, o Outcome) {
	m.mu.Lock()
	RecordDuration(m.corrected, corrected)
	RecordDuration(m.uncorrected, service)
	if errKind != "" {
		m.errs++
		m.errKinds[errKind]++
	} else {
		m.ok++
		if o.Expected > 0 {
			m.checked++
			m.expected += int64(o.Expected)
			m.found += int64(o.Found)
		}
	}
	m.mu.Unlock()
}

// worstP99 is the corrected p99 in milliseconds, 0 when empty.
func (m *Metrics) worstP99() float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.corrected.TotalCount() == 0 {
		return 0
	}
	return float64(m.corrected.ValueAtQuantile(99)) / 1000
}

// Stats summarises the metrics over seconds of measured time.
func (m *Metrics) Stats(name string, seconds float64) OpStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	o := OpStats{Name: name, OK: m.ok, Errors: m.errs, Count: m.ok + m.errs, ErrorsByKind: map[string]int64{},
		Corrected: Summarize(m.corrected), Uncorrected: Summarize(m.uncorrected),
		Checked: m.checked, Expected: m.expected, Found: m.found}
	for k, v := range m.errKinds {
		o.ErrorsByKind[k] = v
	}
	if seconds > 0 {
		o.Rate = float64(o.Count) / seconds
	}
	return o
}
