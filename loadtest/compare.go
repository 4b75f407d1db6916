package loadtest

import (
	"fmt"
	"io"
	"math"
	"strings"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// CompareOptions set how different a new result may be from a baseline
// before it counts as a regression. A latency regression needs both a
// statistically significant shift of the whole distribution (one-sided
// Kolmogorov–Smirnov test on the corrected histograms, p < Alpha) and an
// effect beyond tolerance (relative p50 or p99 growth, larger than MinAbsMS
// in absolute terms). Significance alone is not enough: with tens of
// thousands of samples, harmless sub-millisecond noise is "significant".
type CompareOptions struct {
	Alpha              float64 // significance level of the KS test (default 0.01)
	P50Tolerance       float64 // relative p50 growth allowed (default 0.25)
	P99Tolerance       float64 // relative p99 growth allowed (default 0.50)
	MinAbsMS           float64 // shifts below this many ms never count (default 1)
	RateTolerance      float64 // relative throughput drop allowed (default 0.10)
	ErrorRateTolerance float64 // absolute error-rate growth allowed (default 0.01)
	RecallTolerance    float64 // absolute recall@k drop allowed (default 0.05)
}

// DefaultCompareOptions are tolerances that pass two runs of one build on a
// noisy shared machine and catch a real slowdown.
func DefaultCompareOptions() CompareOptions {
	return CompareOptions{Alpha: 0.01, P50Tolerance: 0.25, P99Tolerance: 0.50, MinAbsMS: 1,
		RateTolerance: 0.10, ErrorRateTolerance: 0.01, RecallTolerance: 0.05}
}

// Comparison is the outcome of Compare.
type Comparison struct {
	Options       CompareOptions `json:"options"`
	Regressed     bool           `json:"regressed"`
	Operations    []OpComparison `json:"operations"`
	BaseRate      float64        `json:"base_achieved_rate"`
	NewRate       float64        `json:"new_achieved_rate"`
	RateChange    float64        `json:"rate_change"`
	RateRegressed bool           `json:"rate_regressed"`
	Notes         []string       `json:"notes"`
}

// OpComparison compares one operation.
type OpComparison struct {
	Name        string   `json:"name"`
	BaseCount   int64    `json:"base_count"`
	NewCount    int64    `json:"new_count"`
	BaseP50MS   float64  `json:"base_p50_ms"`
	NewP50MS    float64  `json:"new_p50_ms"`
	P50Change   float64  `json:"p50_change"`
	BaseP99MS   float64  `json:"base_p99_ms"`
	NewP99MS    float64  `json:"new_p99_ms"`
	P99Change   float64  `json:"p99_change"`
	KSD         float64  `json:"ks_d"`
	PValue      float64  `json:"p_value"`
	Significant bool     `json:"significant"`
	Regressed   bool     `json:"regressed"`
	Reasons     []string `json:"reasons"`
}

// Compare judges new against base.
func Compare(base, new *Result, o CompareOptions) (*Comparison, error) {
	c := &Comparison{Options: o, BaseRate: base.AchievedRate, NewRate: new.AchievedRate, Operations: []OpComparison{}, Notes: []string{}}
	if base.Scenario.Name != new.Scenario.Name {
		c.Notes = append(c.Notes, fmt.Sprintf("different scenarios: %q vs %q", base.Scenario.Name, new.Scenario.Name))
	}
	if base.AchievedRate > 0 {
		c.RateChange = new.AchievedRate/base.AchievedRate - 1
	}
	sameAsk := new.RequestedRate >= base.RequestedRate*(1-o.RateTolerance)
	if c.RateChange < -o.RateTolerance {
		if sameAsk && rateDropSignificant(base, new, o.Alpha) {
			c.RateRegressed = true
		} else if sameAsk {
			c.Notes = append(c.Notes, fmt.Sprintf("throughput fell %.1f%%, within the noise of %d and %d completions (Poisson test, alpha %g)",
				-c.RateChange*100, base.Completed, new.Completed, o.Alpha))
		} else {
			c.Notes = append(c.Notes, fmt.Sprintf("throughput fell %.1f%% but the new run requested less (%.1f vs %.1f ops/s)",
				-c.RateChange*100, new.RequestedRate, base.RequestedRate))
		}
	}
	for _, r := range []*Result{base, new} {
		switch r.Audit.LimitedBy {
		case LimitedByGenerator:
			c.Notes = append(c.Notes, fmt.Sprintf("the %s run was limited by the generator: its figures understate the load", which(r, base)))
		case LimitedByMachine:
			c.Notes = append(c.Notes, fmt.Sprintf("the %s run was limited by contention for the generator's CPU: its figures understate the load", which(r, base)))
		}
		if r.Interrupted {
			c.Notes = append(c.Notes, fmt.Sprintf("the %s run was interrupted", which(r, base)))
		}
	}
	for _, bo := range base.Operations {
		no := new.Op(bo.Name)
		if no == nil {
			c.Notes = append(c.Notes, fmt.Sprintf("operation %s is missing from the new result", bo.Name))
			continue
		}
		oc, err := compareOp(bo, *no, o)
		if err != nil {
			return nil, err
		}
		c.Operations = append(c.Operations, oc)
		c.Regressed = c.Regressed || oc.Regressed
	}
	c.Regressed = c.Regressed || c.RateRegressed
	return c, nil
}

// rateDropSignificant tests whether new completed fewer operations than
// base's completion ratio (achieved/requested) predicts at new's requested
// load, treating completions as Poisson counts (one-sided z-test).
func rateDropSignificant(base, new *Result, alpha float64) bool {
	if base.RequestedRate <= 0 || new.RequestedRate <= 0 || new.DurationSeconds <= 0 {
		return true
	}
	expected := base.AchievedRate / base.RequestedRate * new.RequestedRate * new.DurationSeconds
	if expected <= 0 {
		return false
	}
	z := (expected - float64(new.Completed)) / math.Sqrt(expected)
	// One-sided p = Φ(−z) = erfc(z/√2)/2.
	return math.Erfc(z/math.Sqrt2)/2 < alpha
}

func which(r, base *Result) string {
	if r == base {
		return "base"
	}
	return "new"
}

func rel(a, b float64) float64 {
	if a <= 0 {
		return 0
	}
	return b/a - 1
}

func compareOp(b, n OpResult, o CompareOptions) (OpComparison, error) {
	oc := OpComparison{Name: b.Name, BaseCount: b.Corrected.Count, NewCount: n.Corrected.Count,
		BaseP50MS: b.Corrected.P50MS, NewP50MS: n.Corrected.P50MS, BaseP99MS: b.Corrected.P99MS, NewP99MS: n.Corrected.P99MS,
		Reasons: []string{}}
	hb, err := b.Corrected.Histogram()
	if err != nil {
		return oc, err
	}
	hn, err := n.Corrected.Histogram()
	if err != nil {
		return oc, err
	}
	// Percentiles from the histograms, the source of truth.
	oc.BaseP50MS, oc.NewP50MS = float64(hb.ValueAtQuantile(50))/1000, float64(hn.ValueAtQuantile(50))/1000
	oc.BaseP99MS, oc.NewP99MS = float64(hb.ValueAtQuantile(99))/1000, float64(hn.ValueAtQuantile(99))/1000
	oc.P50Change, oc.P99Change = rel(oc.BaseP50MS, oc.NewP50MS), rel(oc.BaseP99MS, oc.NewP99MS)
	oc.KSD, oc.PValue = ksSlower(hb, hn)
	oc.Significant = oc.PValue < o.Alpha
	if oc.Significant {
		if oc.P50Change > o.P50Tolerance && oc.NewP50MS-oc.BaseP50MS > o.MinAbsMS {
			oc.Reasons = append(oc.Reasons, fmt.Sprintf("p50 %.2f → %.2f ms (+%.0f%%, tolerance %.0f%%)", oc.BaseP50MS, oc.NewP50MS, oc.P50Change*100, o.P50Tolerance*100))
		}
		if oc.P99Change > o.P99Tolerance && oc.NewP99MS-oc.BaseP99MS > o.MinAbsMS {
			oc.Reasons = append(oc.Reasons, fmt.Sprintf("p99 %.2f → %.2f ms (+%.0f%%, tolerance %.0f%%)", oc.BaseP99MS, oc.NewP99MS, oc.P99Change*100, o.P99Tolerance*100))
		}
	}
	be, ne := errRate(b), errRate(n)
	if ne-be > o.ErrorRateTolerance {
		oc.Reasons = append(oc.Reasons, fmt.Sprintf("error rate %.2f%% → %.2f%%", be*100, ne*100))
	}
	if b.Recall != nil && n.Recall != nil && b.Recall.AtK-n.Recall.AtK > o.RecallTolerance {
		oc.Reasons = append(oc.Reasons, fmt.Sprintf("recall@%d %.3f → %.3f", b.Recall.K, b.Recall.AtK, n.Recall.AtK))
	}
	oc.Regressed = len(oc.Reasons) > 0
	return oc, nil
}

func errRate(o OpResult) float64 {
	if o.Count == 0 {
		return 0
	}
	return float64(o.Errors) / float64(o.Count)
}

// ksSlower is the one-sided two-sample Kolmogorov–Smirnov test of "new is
// slower than base", computed exactly from the histograms' buckets:
// D+ = max over x of (F_base(x) − F_new(x)), and the asymptotic p-value
// exp(−2·n_e·D²) with n_e = n·m/(n+m).
func ksSlower(base, new *hdr.Histogram) (d, p float64) {
	nb, nn := base.TotalCount(), new.TotalCount()
	if nb == 0 || nn == 0 {
		return 0, 1
	}
	bb, bn := bars(base), bars(new)
	var cb, cn int64
	i, j := 0, 0
	for i < len(bb) || j < len(bn) {
		// Advance to the next bucket boundary of either histogram.
		var v int64
		switch {
		case j >= len(bn) || (i < len(bb) && bb[i].To <= bn[j].To):
			v = bb[i].To
		default:
			v = bn[j].To
		}
		for i < len(bb) && bb[i].To <= v {
			cb += bb[i].Count
			i++
		}
		for j < len(bn) && bn[j].To <= v {
			cn += bn[j].Count
			j++
		}
		d = math.Max(d, float64(cb)/float64(nb)-float64(cn)/float64(nn))
	}
	ne := float64(nb) * float64(nn) / float64(nb+nn)
	return d, math.Min(1, math.Exp(-2*ne*d*d))
}

func bars(h *hdr.Histogram) []hdr.Bar {
	var out []hdr.Bar
	for _, b := range h.Distribution() {
		if b.Count > 0 {
			out = append(out, b)
		}
	}
	return out
}

// WriteComparison renders a comparison for a terminal.
func WriteComparison(w io.Writer, c *Comparison) error {
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	line("%-19s %9s %9s %7s %9s %9s %7s %7s %9s  %s", "OPERATION", "BASE P50", "NEW P50", "Δ", "BASE P99", "NEW P99", "Δ", "KS D", "P-VALUE", "VERDICT")
	for _, o := range c.Operations {
		verdict := "ok"
		if o.Regressed {
			verdict = "REGRESSED: " + strings.Join(o.Reasons, "; ")
		} else if o.Significant {
			verdict = "ok (significant, within tolerance)"
		}
		line("%-19s %9.2f %9.2f %+6.0f%% %9.2f %9.2f %+6.0f%% %7.3f %9.2g  %s", o.Name, o.BaseP50MS, o.NewP50MS, o.P50Change*100,
			o.BaseP99MS, o.NewP99MS, o.P99Change*100, o.KSD, o.PValue, verdict)
	}
	rv := "ok"
	if c.RateRegressed {
		rv = fmt.Sprintf("REGRESSED (tolerance %.0f%%)", c.Options.RateTolerance*100)
	}
	line("%-19s %9.1f → %.1f ops/s (%+.1f%%)  %s", "throughput", c.BaseRate, c.NewRate, c.RateChange*100, rv)
	for _, n := range c.Notes {
		line("note: %s", n)
	}
	if c.Regressed {
		line("RESULT: regression beyond tolerance")
	} else {
		line("RESULT: no significant regression beyond tolerance")
	}
	_, err := io.WriteString(w, b.String())
	return err
}
