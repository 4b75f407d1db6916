// Package dashboardstest is test support for the observability files of
// package dashboards: it lists every PromQL expression of the dashboards
// and rules (with where it comes from), the metric names they use, and the
// metric names the alert runbooks mention. It is imported by tests only
// (dashboards and cmd/engram-ops), which keeps its YAML dependency out of
// the binary.
//
// Metric names are found lexically (identifiers with a known prefix, or a
// recording-rule name, outside label matchers and strings' label values)
// rather than with the Prometheus parser: importing
// github.com/prometheus/prometheus would pull a very large module graph
// into go.mod, while promtool — which the tests run anyway — is the
// parser of record for syntax (see dashboards' TestDashboardQueriesParse).
package dashboardstest

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/engram-ops/engram-ops/dashboards"
)

// Expr is one PromQL expression and where it lives.
type Expr struct {
	Source string // e.g. "grafana/storage-tiers.json: panel 12 \"Disk bytes\" A" or "prometheus/alerts.yml: alert EngramDown"
	Expr   string
	Record string // for recording rules, the recorded name
	Alert  string // for alert rules, the alert name
}

// RuleFile is the part of a Prometheus rule file the tests read.
type RuleFile struct {
	Groups []struct {
		Name     string `yaml:"name"`
		Interval string `yaml:"interval"`
		Rules    []Rule `yaml:"rules"`
	} `yaml:"groups"`
}

// Rule is one alerting or recording rule.
type Rule struct {
	Alert       string            `yaml:"alert"`
	Record      string            `yaml:"record"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// ParseRules parses a rule file.
func ParseRules(b []byte) (RuleFile, error) {
	var rf RuleFile
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	err := dec.Decode(&rf)
	return rf, err
}

// Rules returns every rule of the embedded rule files, by file name.
func Rules() (map[string][]Rule, error) {
	files, err := dashboards.Rules()
	if err != nil {
		return nil, err
	}
	out := map[string][]Rule{}
	for name, b := range files {
		rf, err := ParseRules(b)
		if err != nil {
			return nil, fmt.Errorf("prometheus/%s: %w", name, err)
		}
		for _, g := range rf.Groups {
			out[name] = append(out[name], g.Rules...)
		}
	}
	return out, nil
}

// dashboardJSON is the part of a dashboard the tests read.
type dashboardJSON struct {
	Panels []struct {
		ID      int    `json:"id"`
		Title   string `json:"title"`
		Type    string `json:"type"`
		Targets []struct {
			RefID string `json:"refId"`
			Expr  string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

// DashboardExprs returns every query of the embedded dashboards, including
// the label_values() selectors of query variables (as their metric
// selector).
func DashboardExprs() ([]Expr, error) {
	files, err := dashboards.Dashboards()
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []Expr
	for _, n := range names {
		var d dashboardJSON
		if err := json.Unmarshal(files[n], &d); err != nil {
			return nil, fmt.Errorf("grafana/%s: %w", n, err)
		}
		for _, p := range d.Panels {
			for _, t := range p.Targets {
				out = append(out, Expr{Source: fmt.Sprintf("grafana/%s: panel %d %q query %s", n, p.ID, p.Title, t.RefID), Expr: t.Expr})
			}
		}
		for _, v := range d.Templating.List {
			s, ok := v.Query.(string)
			if v.Type != "query" || !ok {
				continue
			}
			if m := labelValues.FindStringSubmatch(s); m != nil {
				out = append(out, Expr{Source: fmt.Sprintf("grafana/%s: variable %s", n, v.Name), Expr: m[1]})
			}
		}
	}
	return out, nil
}

var labelValues = regexp.MustCompile(`^label_values\((.*),\s*\w+\)$`)

// RuleExprs returns the expression of every embedded rule.
func RuleExprs() ([]Expr, error) {
	rules, err := Rules()
	if err != nil {
		return nil, err
	}
	var out []Expr
	for _, file := range []string{"alerts.yml", "recording.yml"} {
		for _, r := range rules[file] {
			name := "alert " + r.Alert
			if r.Record != "" {
				name = "record " + r.Record
			}
			out = append(out, Expr{Source: "prometheus/" + file + ": " + name, Expr: r.Expr, Alert: r.Alert, Record: r.Record})
		}
	}
	return out, nil
}

// Grafana's built-in interval variables, replaced before a dashboard query
// is parsed as PromQL.
var grafanaVars = strings.NewReplacer(
	"$__rate_interval", "5m", "$__interval", "1m", "${__rate_interval}", "5m", "${__interval}", "1m",
	"$instance", ".*", "$space", ".*", "${instance}", ".*", "${space}", ".*")

// AsPromQL replaces Grafana's variables so the query parses as PromQL.
func AsPromQL(expr string) string { return grafanaVars.Replace(expr) }

var (
	stringLit  = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	metricName = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	// recordedName is the level:metric:operations form of recording rules.
	recordedName = regexp.MustCompile(`^[a-z_]+:[a-z0-9_]+:[a-z0-9_]+$`)
)

// Synthetic are series Prometheus itself creates for every target; they
// never appear in a scrape.
var Synthetic = map[string]bool{"up": true, "scrape_duration_seconds": true, "scrape_samples_scraped": true}

// MetricNames returns the metric (or recorded series) names expr selects:
// identifiers starting with engram_, go_, process_ or promhttp_, the
// synthetic series in Synthetic, and recording-rule names (level:metric:op).
// Label names and values, functions and keywords never match these.
func MetricNames(expr string) []string {
	expr = stringLit.ReplaceAllString(expr, `""`)
	seen := map[string]bool{}
	var out []string
	for _, loc := range metricName.FindAllStringIndex(expr, -1) {
		id := expr[loc[0]:loc[1]]
		// A label name in a matcher or by/on/ignoring clause is followed by
		// an operator or sits in a (...) list after a keyword; metric names
		// of interest have a prefix no label shares, so prefix is enough.
		ok := Synthetic[id] || recordedName.MatchString(id)
		for _, p := range []string{"engram_", "go_", "process_", "promhttp_"} {
			ok = ok || strings.HasPrefix(id, p)
		}
		if ok && !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

var backticked = regexp.MustCompile("`([^`]+)`")

// RunbookMetricNames returns the metric names a Markdown text mentions in
// code spans (`engram_memories{tier="cold"}`, `rate(x[5m])`, ...).
func RunbookMetricNames(md string) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range backticked.FindAllStringSubmatch(md, -1) {
		for _, n := range MetricNames(m[1]) {
			if !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	return out
}
