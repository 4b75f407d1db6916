package loadtest

import (
	"fmt"
)

// ValidationResult is the outcome of a scenario's [validation] limits.
type ValidationResult struct {
	Passed bool    `json:"passed"`
	Checks []Check `json:"checks"`
}

// Check is one limit and what the run measured.
type Check struct {
	Name   string  `json:"name"`
	Limit  float64 `json:"limit"`
	Actual float64 `json:"actual"`
	Unit   string  `json:"unit"`
	Passed bool    `json:"passed"`
}

func (c Check) String() string {
	verdict := "ok  "
	if !c.Passed {
		verdict = "FAIL"
	}
	return fmt.Sprintf("%s %s: %s (limit %s)", verdict, c.Name, fmtUnit(c.Actual, c.Unit), fmtUnit(c.Limit, c.Unit))
}

func fmtUnit(v float64, unit string) string {
	switch unit {
	case "ms":
		return fmt.Sprintf("%.2f ms", v)
	case "ops/s":
		return fmt.Sprintf("%.1f ops/s", v)
	case "fraction":
		return fmt.Sprintf("%.3f%%", v*100)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}

// Validate checks a result against the scenario's [validation] limits,
// stores the outcome in r.Validation and returns it. Nothing to check
// passes. p99 is over all operations, coordinated-omission corrected.
func Validate(r *Result, v Validation) *ValidationResult {
	out := &ValidationResult{Passed: true, Checks: []Check{}}
	add := func(c Check) {
		out.Checks = append(out.Checks, c)
		out.Passed = out.Passed && c.Passed
	}
	if v.ExpectedP99LatencyMS != nil {
		all := NewHistogram()
		for _, o := range r.Operations {
			if h, err := o.Corrected.Histogram(); err == nil {
				all.Merge(h)
			}
		}
		p99 := float64(all.ValueAtQuantile(99)) / 1000
		add(Check{Name: "p99 latency, all operations (corrected)", Limit: *v.ExpectedP99LatencyMS, Actual: p99, Unit: "ms",
			Passed: p99 <= *v.ExpectedP99LatencyMS})
	}
	if v.ExpectedThroughputOpsSec != nil {
		add(Check{Name: "throughput", Limit: *v.ExpectedThroughputOpsSec, Actual: r.AchievedRate, Unit: "ops/s",
			Passed: r.AchievedRate >= *v.ExpectedThroughputOpsSec})
	}
	if v.MaxErrorRate != nil {
		add(Check{Name: "error rate", Limit: *v.MaxErrorRate, Actual: r.ErrorRate, Unit: "fraction",
			Passed: r.ErrorRate <= *v.MaxErrorRate})
	}
	if v.MinRecallAtK != nil {
		for _, o := range r.Operations {
			if o.Recall == nil {
				continue
			}
			add(Check{Name: fmt.Sprintf("%s recall@%d", o.Name, o.Recall.K), Limit: *v.MinRecallAtK, Actual: o.Recall.AtK,
				Unit: "ratio", Passed: o.Recall.AtK >= *v.MinRecallAtK})
		}
	}
	if v.RequireGeneratorOK {
		// Contention fails it too: either way the load was not offered
		// as requested.
		ok := r.Audit.LimitedBy != LimitedByGenerator && r.Audit.LimitedBy != LimitedByMachine
		actual := 1.0
		if !ok {
			actual = 0
		}
		add(Check{Name: "generator kept up (1 = yes)", Limit: 1, Actual: actual, Unit: "ratio", Passed: ok})
	}
	r.Validation = out
	return out
}
