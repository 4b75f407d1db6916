package loadtest

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// WriteTable renders a result for a terminal: the run, one block per
// operation (corrected and uncorrected latency), errors by kind, the
// generator's audit and the validation. The output depends only on r, so
// a stored result re-renders identically.
func WriteTable(w io.Writer, r *Result) error {
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	desc := ""
	if r.Scenario.Description != "" {
		desc = " — " + r.Scenario.Description
	}
	line("Scenario    %s%s", r.Scenario.Name, desc)
	tgt := r.Target.URL
	var notes []string
	if r.Target.Embedded {
		notes = append(notes, "embedded")
	}
	if r.Target.Version != "" {
		notes = append(notes, "server "+r.Target.Version)
	}
	if r.Target.Kind == TargetEngram {
		notes = append(notes, "Engram routes only")
	}
	if len(notes) > 0 {
		tgt += " (" + strings.Join(notes, ", ") + ")"
	}
	line("Target      %s", tgt)
	status := ""
	if r.Interrupted {
		status = "   INTERRUPTED: partial result"
	}
	settle := ""
	switch s := r.Setup; {
	case s.IndexPending > 0:
		settle = fmt.Sprintf(", index NOT settled (%d pending after %.2fs)", s.IndexPending, s.IndexSettleSeconds)
	case s.IndexSettleSeconds > 0:
		settle = fmt.Sprintf(", index settled in %.2fs", s.IndexSettleSeconds)
	}
	line("Run         %s, measured %.2fs after %.2fs warm-up, %d space(s), %d memories preloaded in %.2fs%s%s",
		r.StartedAt.UTC().Format(time.RFC3339), r.DurationSeconds, r.WarmupSeconds, len(r.Setup.Spaces), r.Setup.Preloaded,
		r.Setup.PreloadSeconds, settle, status)
	line("Load        requested %.1f ops/s (%s), achieved %.1f ops/s: %d operations, %d errors (%.2f%%)",
		r.RequestedRate, r.Scenario.Pattern, r.AchievedRate, r.Completed, r.Errors, r.ErrorRate*100)
	line("")
	k := 0
	for _, o := range r.Operations {
		if o.Recall != nil {
			k = o.Recall.K
		}
	}
	recallHdr := ""
	if k > 0 {
		recallHdr = fmt.Sprintf("  RECALL@%d", k)
	}
	line("%-19s %-12s %8s %8s %6s %8s %8s %8s %8s %8s %8s%s", "OPERATION", "LATENCY (ms)", "COUNT", "RATE/S", "ERRORS",
		"P50", "P90", "P95", "P99", "P99.9", "MAX", recallHdr)
	for _, o := range r.Operations {
		rec := ""
		if o.Recall != nil {
			rec = fmt.Sprintf("  %8.3f", o.Recall.AtK)
		} else if k > 0 {
			rec = fmt.Sprintf("  %8s", "-")
		}
		c, u := o.Corrected, o.Uncorrected
		line("%-19s %-12s %8d %8.1f %6d %8.2f %8.2f %8.2f %8.2f %8.2f %8.2f%s", o.Name, "corrected", o.Count, o.Rate, o.Errors,
			c.P50MS, c.P90MS, c.P95MS, c.P99MS, c.P999MS, c.MaxMS, rec)
		line("%-19s %-12s %8s %8s %6s %8.2f %8.2f %8.2f %8.2f %8.2f %8.2f", "", "uncorrected", "", "", "",
			u.P50MS, u.P90MS, u.P95MS, u.P99MS, u.P999MS, u.MaxMS)
	}
	var errLines []string
	for _, o := range r.Operations {
		if len(o.ErrorsByKind) == 0 {
			continue
		}
		kinds := make([]string, 0, len(o.ErrorsByKind))
		for kind := range o.ErrorsByKind {
			kinds = append(kinds, kind)
		}
		sort.Strings(kinds)
		var parts []string
		for _, kind := range kinds {
			parts = append(parts, fmt.Sprintf("%s ×%d", kind, o.ErrorsByKind[kind]))
		}
		errLines = append(errLines, fmt.Sprintf("  %-18s %s", o.Name, strings.Join(parts, ", ")))
	}
	if len(errLines) > 0 {
		line("")
		line("Errors by kind")
		for _, l := range errLines {
			line("%s", l)
		}
	}
	a := r.Audit
	line("")
	lag := a.SchedulingLag
	line("Generator   late sends %d (%.2f%% started > %gms late; %d waited for a worker), dropped %d",
		a.LateSends, a.LateFraction*100, a.LateAfterMS, a.LateNoWorker, a.DroppedSends)
	line("            scheduling lag p50 %.3fms, p99 %.3fms, max %.3fms; workers peak %d of %d, pool exhausted %d times",
		lag.P50MS, lag.P99MS, lag.MaxMS, a.PeakWorkers, a.MaxWorkers, a.PoolExhausted)
	cpuNote := ""
	if a.CPUIncludesServer {
		cpuNote = " (includes the embedded server)"
	}
	wait := ""
	if a.CPUWaitSec != nil {
		wait = fmt.Sprintf(", waited %.2fs for a CPU", *a.CPUWaitSec)
	}
	line("            CPU %.2f cores (user %.2fs, system %.2fs%s)%s", a.CPUCores, a.CPUUserSec, a.CPUSystemSec, wait, cpuNote)
	switch a.LimitedBy {
	case LimitedByGenerator:
		line("Verdict     the GENERATOR limited this run, not the server")
	case LimitedByMachine:
		line("Verdict     MACHINE CONTENTION limited this run: the generator did not get the CPU to send on time")
	case LimitedByServer:
		line("Verdict     the SERVER limited this run: requests waited on it")
	default:
		line("Verdict     the load was offered as requested and the server kept up")
	}
	for _, f := range a.Findings {
		line("            - %s", f)
	}
	if v := r.Validation; v != nil && len(v.Checks) > 0 {
		line("")
		verdict := "PASSED"
		if !v.Passed {
			verdict = "FAILED"
		}
		line("Validation  %s", verdict)
		for _, c := range v.Checks {
			line("            %s", c)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// ProgressLine renders a live progress snapshot on one line.
func ProgressLine(p Progress) string {
	return fmt.Sprintf("%-7s %5.1fs/%-5.1fs  sent %d  done %d  errors %d  in-flight %d  rate %.0f/s (target %.0f/s)  late %d  dropped %d  worst p99 %.2fms",
		p.Phase, p.Elapsed.Seconds(), p.Total.Seconds(), p.Sent, p.Completed, p.Errors, p.InFlight, p.Rate, p.Target, p.Late, p.Dropped, p.WorstP99MS)
}
