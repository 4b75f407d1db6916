package tui

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"go.yaml.in/yaml/v3"

	"github.com/engram-ops/engram-ops/dashboards"
)

// Rule is one shipped alert rule as the board evaluates it: the name,
// severity and for: duration from dashboards/prometheus/alerts.yml, and
// the threshold and quantile read from its expression, so the board and
// Prometheus judge by the same numbers.
type Rule struct {
	Name      string
	Severity  string
	For       time.Duration
	Expr      string
	Threshold float64 // the first comparison outside parentheses, e.g. "> 0.05"
	Quantile  float64 // histogram_quantile's φ, 0 when the rule has none
	// NotEvaluated says why the board cannot judge this rule (it needs a
	// window longer than the board keeps, or Prometheus' own view).
	NotEvaluated string
}

// needsHistory names rules whose expressions look back further than a
// board keeps, so only Prometheus can evaluate them.
var needsHistory = map[string]string{
	"DiskFillingUp":    "predict_linear over 6h of disk free space",
	"HighMemoryGrowth": "delta of resident memory over 1h",
}

// ShippedRules parses the alert rules compiled into the dashboards package.
func ShippedRules() ([]Rule, error) {
	files, err := dashboards.Rules()
	if err != nil {
		return nil, err
	}
	b, ok := files["alerts.yml"]
	if !ok {
		return nil, fmt.Errorf("dashboards: no alerts.yml among %d rule files", len(files))
	}
	return ParseRules(b)
}

// ParseRules reads a Prometheus alert rule file.
func ParseRules(b []byte) ([]Rule, error) {
	var doc struct {
		Groups []struct {
			Rules []struct {
				Alert  string            `yaml:"alert"`
				Expr   string            `yaml:"expr"`
				For    string            `yaml:"for"`
				Labels map[string]string `yaml:"labels"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("alert rules: %w", err)
	}
	var out []Rule
	for _, g := range doc.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			rule := Rule{Name: r.Alert, Severity: r.Labels["severity"], Expr: strings.TrimSpace(r.Expr)}
			if r.For != "" {
				d, err := parseDuration(r.For)
				if err != nil {
					return nil, fmt.Errorf("alert %s: for: %w", r.Alert, err)
				}
				rule.For = d
			}
			if why, ok := needsHistory[r.Alert]; ok {
				rule.NotEvaluated = "needs " + why + "; use --prometheus"
			} else if r.Alert != "EngramDown" {
				t, ok := threshold(rule.Expr)
				if !ok {
					return nil, fmt.Errorf("alert %s: no numeric comparison outside parentheses in %q", r.Alert, rule.Expr)
				}
				rule.Threshold = t
			}
			if i := strings.Index(rule.Expr, "histogram_quantile("); i >= 0 {
				rest := rule.Expr[i+len("histogram_quantile("):]
				if j := strings.IndexByte(rest, ','); j > 0 {
					q, err := strconv.ParseFloat(strings.TrimSpace(rest[:j]), 64)
					if err != nil {
						return nil, fmt.Errorf("alert %s: quantile: %w", r.Alert, err)
					}
					rule.Quantile = q
				}
			}
			if _, ok := evaluators[rule.Name]; !ok && rule.NotEvaluated == "" {
				rule.NotEvaluated = "the board has no evaluator for this rule; use --prometheus"
			}
			out = append(out, rule)
		}
	}
	return out, nil
}

// parseDuration reads a Prometheus duration (1m, 15m, 1h, 2d).
func parseDuration(s string) (time.Duration, error) {
	if strings.HasSuffix(s, "d") {
		n, err := strconv.Atoi(strings.TrimSuffix(s, "d"))
		return time.Duration(n) * 24 * time.Hour, err
	}
	return time.ParseDuration(s)
}

// threshold finds the first comparison at parenthesis depth 0 whose right
// side is a number or a product of numbers ("26 * 3600").
func threshold(expr string) (float64, bool) {
	depth := 0
	for i := 0; i < len(expr); i++ {
		c := expr[i]
		switch c {
		case '(', '{', '[':
			depth++
			continue
		case ')', '}', ']':
			depth--
			continue
		case '"':
			if j := strings.IndexByte(expr[i+1:], '"'); j >= 0 {
				i += j + 1
			}
			continue
		}
		if depth != 0 || (c != '>' && c != '<' && c != '=') {
			continue
		}
		j := i + 1
		if j < len(expr) && expr[j] == '=' {
			j++
		}
		if c == '=' && j == i+1 {
			continue
		}
		rhs := expr[j:]
		end := len(rhs)
		for k, r := range rhs {
			if !strings.ContainsRune("0123456789.eE+-* \t\n", r) {
				end = k
				break
			}
		}
		v, ok := product(rhs[:end])
		if ok {
			return v, true
		}
		i = j - 1
	}
	return 0, false
}

func product(s string) (float64, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, false
	}
	v := 1.0
	for _, f := range strings.Split(s, "*") {
		n, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil {
			return 0, false
		}
		v *= n
	}
	return v, true
}

// finding is one alert condition that holds now.
type finding struct {
	labels  string
	summary string
}

// evalInput is what an evaluator reads.
type evalInput struct {
	rule      Rule
	snap      *Snapshot
	prev, cur *scrape
	dt        float64
	now       time.Time
}

// evaluators judge the shipped rules over the board's last interval
// instead of the rules' 5m windows: what Prometheus will conclude once the
// condition has held for the window.
var evaluators = map[string]func(in evalInput) []finding{
	"EngramDown": func(in evalInput) []finding { return nil }, // judged in evaluate
	"HighErrorRate": func(in evalInput) []finding {
		if in.prev == nil {
			return nil
		}
		all := increase(in.prev, in.cur, "engram_http_requests_total", nil)
		bad := increase(in.prev, in.cur, "engram_http_requests_total", func(m *dto.Metric) bool {
			return strings.HasPrefix(label(m, "code"), "5")
		})
		if all > 0 && bad/all > in.rule.Threshold {
			return []finding{{summary: fmt.Sprintf("%s of requests answered 5xx (threshold %s)", pct(bad/all), pct(in.rule.Threshold))}}
		}
		return nil
	},
	"HighRecallLatency":   latencyRule("recall"),
	"HighRememberLatency": latencyRule("remember"),
	"StorageTierNearCapacity": func(in evalInput) []finding {
		var out []finding
		for _, t := range in.snap.Tiers {
			if t.Utilisation != nil && *t.Utilisation > in.rule.Threshold {
				out = append(out, finding{labels: "tier=" + t.Name, summary: fmt.Sprintf("the %s tier is %s full (threshold %s)", t.Name, pct(*t.Utilisation), pct(in.rule.Threshold))})
			}
		}
		return out
	},
	"WritesRefusedDiskFull": func(in evalInput) []finding {
		if v, ok := in.cur.sum("engram_storage_writes_refused", nil); ok && v == in.rule.Threshold {
			return []finding{{summary: "writes are refused: disk free is under the reserve"}}
		}
		return nil
	},
	"StorageCorruption": func(in evalInput) []finding {
		if v, ok := in.cur.sum("engram_storage_corruption_events_total", nil); ok && v > in.rule.Threshold {
			return []finding{{summary: fmt.Sprintf("%.0f corruption events since the server started", v)}}
		}
		return nil
	},
	"IndexBacklogGrowing": func(in evalInput) []finding {
		var out []finding
		for _, m := range in.cur.metrics("engram_index_pending_memories") {
			v := value(m)
			if v <= in.rule.Threshold || in.prev == nil {
				continue
			}
			sp := label(m, "space")
			before, ok := in.prev.sum("engram_index_pending_memories", eq("space", sp))
			if ok && v > before {
				out = append(out, finding{labels: "space=" + sp, summary: fmt.Sprintf("%.0f memories wait for the index in %s and the backlog grows", v, sp)})
			}
		}
		return out
	},
	"IndexBacklogRefusingWrites": func(in evalInput) []finding {
		if in.prev == nil {
			return nil
		}
		r := increase(in.prev, in.cur, "engram_index_backlog_refused_writes_total", nil) / in.dt
		if r > in.rule.Threshold {
			return []finding{{summary: fmt.Sprintf("%.1f/s writes refused: the index backlog is at index.max_pending", r)}}
		}
		return nil
	},
	"SlowWALSync": func(in evalInput) []finding {
		if in.prev == nil {
			return nil
		}
		h := histIncrease(in.prev, in.cur, "engram_storage_wal_sync_duration_seconds", nil)
		if v, ok := h.quantile(in.rule.Quantile); ok && v > in.rule.Threshold {
			return []finding{{summary: fmt.Sprintf("WAL fsync p%s is %s (threshold %s)", qname(in.rule.Quantile), dur(v), dur(in.rule.Threshold))}}
		}
		return nil
	},
	"BackupRPOHigh": func(in evalInput) []finding {
		var out []finding
		for _, b := range in.snap.Backup {
			if b.RPOSeconds != nil && *b.RPOSeconds > in.rule.Threshold {
				out = append(out, finding{labels: "target=" + b.Target, summary: fmt.Sprintf("RPO to %s is %s (threshold %s)", b.Target, dur(*b.RPOSeconds), dur(in.rule.Threshold))})
			}
		}
		return out
	},
	"BackupStale": func(in evalInput) []finding {
		var out []finding
		for _, b := range in.snap.Backup {
			if b.LastSnapshot != nil && in.now.Sub(*b.LastSnapshot).Seconds() > in.rule.Threshold {
				out = append(out, finding{labels: "target=" + b.Target, summary: fmt.Sprintf("last snapshot to %s was %s ago (threshold %s)", b.Target, dur(in.now.Sub(*b.LastSnapshot).Seconds()), dur(in.rule.Threshold))})
			}
		}
		return out
	},
	"BackupShippingErrors": func(in evalInput) []finding {
		if in.prev == nil {
			return nil
		}
		var out []finding
		for _, b := range in.snap.Backup {
			d := increase(in.prev, in.cur, "engram_backup_errors_total", eq("target", b.Target))
			if d/in.dt > in.rule.Threshold {
				out = append(out, finding{labels: "target=" + b.Target, summary: fmt.Sprintf("%.0f backup errors to %s in the last %s", d, b.Target, dur(in.dt))})
			}
		}
		return out
	},
	"RestoreDrillStale": func(in evalInput) []finding {
		var out []finding
		for _, b := range in.snap.Backup {
			if b.LastVerified != nil && in.now.Sub(*b.LastVerified).Seconds() > in.rule.Threshold {
				out = append(out, finding{labels: "target=" + b.Target, summary: fmt.Sprintf("last passed verification of %s was %s ago (threshold %s)", b.Target, dur(in.now.Sub(*b.LastVerified).Seconds()), dur(in.rule.Threshold))})
			}
		}
		return out
	},
	"TooManyRateLimited": func(in evalInput) []finding {
		if in.prev == nil {
			return nil
		}
		var out []finding
		for _, m := range in.cur.metrics("engram_rate_limited_total") {
			sp := label(m, "space")
			r := increase(in.prev, in.cur, "engram_rate_limited_total", eq("space", sp)) / in.dt
			if r > in.rule.Threshold {
				out = append(out, finding{labels: "space=" + sp, summary: fmt.Sprintf("%.1f/s requests to %s rate limited (threshold %g/s)", r, sp, in.rule.Threshold)})
			}
		}
		return out
	},
	"AuthFailuresSpike": func(in evalInput) []finding {
		if in.prev == nil {
			return nil
		}
		r := increase(in.prev, in.cur, "engram_auth_failures_total", nil) / in.dt
		if r > in.rule.Threshold {
			return []finding{{summary: fmt.Sprintf("%.1f/s authentication failures (threshold %g/s)", r, in.rule.Threshold)}}
		}
		return nil
	},
}

func latencyRule(op string) func(in evalInput) []finding {
	return func(in evalInput) []finding {
		if in.prev == nil {
			return nil
		}
		var out []finding
		spaces := map[string]bool{}
		for _, m := range in.cur.metrics("engram_memory_operation_duration_seconds") {
			if label(m, "operation") == op {
				spaces[label(m, "space")] = true
			}
		}
		for sp := range spaces {
			h := histIncrease(in.prev, in.cur, "engram_memory_operation_duration_seconds", func(m *dto.Metric) bool {
				return label(m, "operation") == op && label(m, "space") == sp
			})
			if v, ok := h.quantile(in.rule.Quantile); ok && v > in.rule.Threshold {
				out = append(out, finding{labels: "space=" + sp, summary: fmt.Sprintf("%s p%s in %s is %s (threshold %s)", op, qname(in.rule.Quantile), sp, dur(v), dur(in.rule.Threshold))})
			}
		}
		return out
	}
}

func qname(q float64) string { return strconv.FormatFloat(q*100, 'f', -1, 64) }

// evaluate judges every rule against the last two scrapes and tracks how
// long each condition has held: pending until the rule's for: duration,
// then firing.
func (s *Scraper) evaluate(snap *Snapshot, prev, cur *scrape) []Alert {
	in := evalInput{snap: snap, prev: prev, cur: cur, now: snap.Time}
	if prev != nil {
		in.dt = cur.at.Sub(prev.at).Seconds()
		if in.dt <= 0 {
			in.prev = nil
		}
	}
	var out []Alert
	holding := map[string]bool{}
	var skipped []string
	for _, r := range s.rules {
		ev := evaluators[r.Name]
		if r.NotEvaluated != "" || ev == nil {
			skipped = append(skipped, r.Name)
			continue
		}
		in.rule = r
		for _, f := range ev(in) {
			k := r.Name + "{" + f.labels + "}"
			holding[k] = true
			since, ok := s.active[k]
			if !ok {
				since = snap.Time
				s.active[k] = since
			}
			a := Alert{Name: r.Name, Severity: r.Severity, State: "pending", Labels: f.labels, Summary: f.summary,
				Source: "rules", Runbook: "alerts/" + r.Name}
			t := since
			a.Since = &t
			if snap.Time.Sub(since) >= r.For {
				a.State = "firing"
			}
			out = append(out, a)
		}
	}
	for k := range s.active {
		if !holding[k] && !strings.HasPrefix(k, "EngramDown{") {
			delete(s.active, k)
		}
	}
	delete(s.active, "EngramDown{}")
	if len(skipped) > 0 {
		sort.Strings(skipped)
		snap.Unknown["alerts"] = "not evaluated by the board (need Prometheus' history; use --prometheus): " + strings.Join(skipped, ", ")
	}
	sortAlerts(out)
	return out
}

// downAlert is EngramDown as the board sees it: polls have failed since
// since.
func (s *Scraper) downAlert(now time.Time, summary string) []Alert {
	var rule *Rule
	for i := range s.rules {
		if s.rules[i].Name == "EngramDown" {
			rule = &s.rules[i]
		}
	}
	if rule == nil {
		return nil
	}
	since, ok := s.active["EngramDown{}"]
	if !ok {
		since = now
		s.active["EngramDown{}"] = since
	}
	a := Alert{Name: rule.Name, Severity: rule.Severity, State: "pending", Summary: summary, Source: "rules", Runbook: "alerts/" + rule.Name, Since: &since}
	if now.Sub(since) >= rule.For {
		a.State = "firing"
	}
	return []Alert{a}
}

func sortAlerts(a []Alert) {
	rank := func(x Alert) int {
		r := 0
		if x.State != "firing" {
			r += 2
		}
		if x.Severity != "critical" {
			r++
		}
		return r
	}
	sort.SliceStable(a, func(i, j int) bool {
		if ri, rj := rank(a[i]), rank(a[j]); ri != rj {
			return ri < rj
		}
		if a[i].Name != a[j].Name {
			return a[i].Name < a[j].Name
		}
		return a[i].Labels < a[j].Labels
	})
}

func pct(v float64) string {
	if math.IsNaN(v) {
		return "—"
	}
	return strconv.FormatFloat(v*100, 'f', 1, 64) + "%"
}

// dur formats seconds compactly: 850µs, 12.3ms, 1.20s, 5m0s, 26h0m.
func dur(sec float64) string {
	switch {
	case sec == 0:
		return "0s"
	case sec < 0.001:
		return strconv.FormatFloat(sec*1e6, 'f', 0, 64) + "µs"
	case sec < 1:
		return strconv.FormatFloat(sec*1e3, 'f', 1, 64) + "ms"
	case sec < 60 && sec == math.Trunc(sec):
		return strconv.FormatFloat(sec, 'f', 0, 64) + "s"
	case sec < 60:
		return strconv.FormatFloat(sec, 'f', 2, 64) + "s"
	}
	d := time.Duration(sec * float64(time.Second)).Round(time.Second)
	if d >= time.Hour {
		d = d.Round(time.Minute)
		s := d.String()
		return strings.TrimSuffix(s, "0s")
	}
	return d.String()
}
