package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/engram-ops/engram-ops/dashboards"
	"github.com/engram-ops/engram-ops/dashboards/dashboardstest"
	"github.com/engram-ops/engram-ops/runbooks"
)

// intentionallyUnused lists engram_* metrics the server exports that no
// dashboard panel shows, with the reason.
var intentionallyUnused = map[string]string{
	"engram_audit_write_failures_total": "reported by the security check of /api/v1/system/health (runbooks/security.md, Audit)",
	"engram_backup_generation":          "shown per server by the shard board (engram-ops tui --placement), beside the followers' engram_replica_generation",
	"engram_backup_fenced":              "reported by the backup_fencing check of /api/v1/system/health, which turns unhealthy (runbooks/scaling-and-capacity.md, Promotion and fencing)",
}

// notFromServe are metrics the dashboards and rules use that `serve` does
// not set: backup verification runs in the `backup verify` process, so a
// scrape of serve does not have them until serve schedules verification
// (or they are pushed). They are checked against ops/metrics' registration
// by name instead.
var notFromServe = map[string]string{
	"engram_backup_last_verified_timestamp_seconds": "set by engram-ops backup verify, which serve does not run",
	"engram_backup_last_restore_drill_seconds":      "set by engram-ops backup verify --level 4, which serve does not run",
	"engram_grpc_requests_total":                    "exported once a gRPC call was served; the workload speaks REST",
	"engram_grpc_request_duration_seconds_bucket":   "exported once a gRPC call was served; the workload speaks REST",
	"engram_grpc_stream_messages_total":             "exported once a gRPC stream carried a message; the workload speaks REST",
	"engram_stream_subscribers":                     "exported once an event stream was opened; the workload opens none",
	"engram_stream_events_dropped_total":            "exported once a stream dropped an event for a slow client",
	"engram_migrate_records_total":                  "exported by engram-ops migrate --metrics-listen, not serve",
	"engram_migrate_rejects_total":                  "exported by engram-ops migrate --metrics-listen, not serve",
	"engram_migrate_source_position":                "exported by engram-ops migrate --metrics-listen, not serve",
	"engram_replica_lag_seconds":                    "exported by a follower (serve --follow); this scrape is of a primary",
	"engram_replica_applied_sequence":               "exported by a follower (serve --follow); this scrape is of a primary",
	"engram_replica_generation":                     "exported by a follower (serve --follow); this scrape is of a primary",
	"engram_replica_head_sequence":                  "exported by a follower (serve --follow); this scrape is of a primary",
	"engram_replica_apply_errors_total":             "exported by a follower (serve --follow); this scrape is of a primary",
}

// post sends a JSON request and returns the status and body.
func httpDo(t *testing.T, method, u, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// workload exercises every operation, including failures, in two spaces.
func workload(t *testing.T, base string) {
	t.Helper()
	var ids []string
	for i, space := range []string{"default", "default", "default", "other"} {
		code, b := httpDo(t, "POST", base+"/api/v1/memories/remember",
			fmt.Sprintf(`{"content":"observability workload memory %d about prometheus and grafana","space":%q}`, i, space))
		if code != http.StatusCreated {
			t.Fatalf("remember: %d %s", code, b)
		}
		var r struct {
			MemoryID string `json:"memory_id"`
		}
		_ = json.Unmarshal(b, &r)
		ids = append(ids, r.MemoryID)
	}
	steps := []struct {
		method, path, body string
	}{
		{"POST", "/api/v1/associations", fmt.Sprintf(`{"from":%q,"to":%q,"weight":0.9}`, ids[0], ids[1])},
		{"POST", "/api/v1/memories/batch", `{"memories":[{"content":"batched one"},{"content":"batched two"}]}`},
		{"GET", "/api/v1/memories/recall?query=prometheus+grafana&mode=hybrid", ""},
		{"GET", "/api/v1/memories/recall?query=workload&space=other", ""},
		{"GET", "/api/v1/memories/" + ids[0], ""},
		{"GET", "/api/v1/memories/mem_does_not_exist", ""}, // not_found error
		{"GET", "/api/v1/memories?limit=10", ""},
		{"DELETE", "/api/v1/memories/" + ids[2], ""},
		{"GET", "/api/v1/system/health", ""},
	}
	for _, s := range steps {
		if code, b := httpDo(t, s.method, base+s.path, s.body); code >= 500 {
			t.Fatalf("%s %s: %d %s", s.method, s.path, code, b)
		}
	}
}

// scrape returns the sample names of /metrics (histograms as _bucket, _sum
// and _count) and the metric families.
func scrape(t *testing.T, base string) (map[string]bool, map[string]*dto.MetricFamily) {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	names := map[string]bool{}
	for n, f := range fams {
		if len(f.GetMetric()) == 0 {
			continue
		}
		names[n] = true
		if f.GetType() == dto.MetricType_HISTOGRAM || f.GetType() == dto.MetricType_SUMMARY {
			names[n+"_sum"], names[n+"_count"] = true, true
			if f.GetType() == dto.MetricType_HISTOGRAM {
				names[n+"_bucket"] = true
			}
		}
	}
	return names, fams
}

// hasServeFlag reports whether `serve` has the flag (features land in
// parallel; the test adapts at run time).
func hasServeFlag(name string) bool {
	a := newApp(strings.NewReader(""), io.Discard, io.Discard, func(string) string { return "" })
	return newServeCmd(a).command().Flags().Lookup(name) != nil
}

// Every metric named by a dashboard, a rule or an alert runbook is in a
// scrape of a live server after a short workload, and every engram_* metric
// the server exports is shown by a dashboard (or listed as unused).
func TestDashboardMetricsInLiveScrape(t *testing.T) {
	var extra []string
	backup := hasServeFlag("backup-to")
	if backup {
		extra = append(extra, "--backup-to", "file://"+t.TempDir())
	} else {
		t.Log("serve has no --backup-to flag yet: engram_backup_* names are not checked against the scrape")
	}
	p := startServe(t, t.TempDir(), append(extra, "--no-access-log")...)
	workload(t, p.base)

	exprs, err := dashboardstest.DashboardExprs()
	if err != nil {
		t.Fatal(err)
	}
	ruleExprs, err := dashboardstest.RuleExprs()
	if err != nil {
		t.Fatal(err)
	}
	all := append(exprs, ruleExprs...)
	for _, rb := range runbooks.List() {
		if strings.HasPrefix(rb.Name, "alerts/") {
			for _, n := range dashboardstest.RunbookMetricNames(rb.Body) {
				all = append(all, dashboardstest.Expr{Source: "runbooks/" + rb.Name + ".md", Expr: n})
			}
		}
	}
	recorded := map[string]bool{}
	for _, e := range ruleExprs {
		if e.Record != "" {
			recorded[e.Record] = true
		}
	}

	// Backup metrics appear once the shipper has run; give it a moment.
	var names map[string]bool
	var fams map[string]*dto.MetricFamily
	deadline := time.Now().Add(15 * time.Second)
	for {
		names, fams = scrape(t, p.base)
		if !backup || names["engram_backup_last_success_timestamp_seconds"] || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}

	helpMentions := definedInOpsMetrics(t)
	for n, why := range notFromServe {
		t.Logf("%s: not in serve's scrape (%s); checked against ops/metrics instead", n, why)
	}
	used := map[string]bool{}
	checked := 0
	for _, e := range all {
		for _, n := range dashboardstest.MetricNames(e.Expr) {
			used[n] = true
			switch {
			case dashboardstest.Synthetic[n]:
				continue // made by Prometheus, not the server
			case recorded[n]:
				continue // a recording rule; its expression is checked itself
			case strings.Contains(n, ":"):
				t.Errorf("%s: %s is neither exported nor recorded", e.Source, n)
				continue
			case !backup && strings.HasPrefix(n, "engram_backup_"):
				continue
			case notFromServe[n] != "":
				if !helpMentions[n] {
					t.Errorf("%s uses %s, which ops/metrics does not define", e.Source, n)
				}
				continue
			}
			checked++
			if !names[n] {
				t.Errorf("%s uses %s, which a live server does not export", e.Source, n)
			}
		}
	}
	t.Logf("checked %d metric references from %d expressions against a scrape with %d series names", checked, len(all), len(names))

	// Every exported engram_* metric is shown by at least one dashboard panel.
	panelUsed := map[string]bool{}
	for _, e := range exprs {
		for _, n := range dashboardstest.MetricNames(e.Expr) {
			panelUsed[n] = true
		}
	}
	// Recorded series count for the metrics they are computed from.
	for _, e := range ruleExprs {
		if e.Record != "" && panelUsed[e.Record] {
			for _, n := range dashboardstest.MetricNames(e.Expr) {
				panelUsed[n] = true
			}
		}
	}
	var fnames []string
	for n := range fams {
		fnames = append(fnames, n)
	}
	sort.Strings(fnames)
	for _, n := range fnames {
		if !strings.HasPrefix(n, "engram_") {
			continue
		}
		if _, ok := intentionallyUnused[n]; ok {
			continue
		}
		if !panelUsed[n] && !panelUsed[n+"_bucket"] && !panelUsed[n+"_sum"] && !panelUsed[n+"_count"] {
			t.Errorf("the server exports %s but no dashboard panel shows it: add a panel or list it in intentionallyUnused with a reason", n)
		}
	}
}

// definedInOpsMetrics returns the metric names ops/metrics and the
// migration register (quoted string literals in their sources).
func definedInOpsMetrics(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	srcs, _ := filepath.Glob(filepath.Join("..", "..", "ops", "metrics", "*.go"))
	srcs = append(srcs, filepath.Join("..", "..", "migrate", "metrics.go"))
	for _, f := range srcs {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for n := range notFromServe {
			if bytes.Contains(b, []byte(`"`+strings.TrimSuffix(n, "_bucket")+`"`)) {
				out[n] = true
			}
		}
	}
	return out
}

func TestDashboardsExportCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "monitoring")
	code, out, errOut := runCLI(t, nil, "dashboards", "export", "--dir", dir)
	if code != exitOK {
		t.Fatalf("export: exit %d\n%s%s", code, out, errOut)
	}
	want, err := dashboards.Files()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range want {
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f.Path)))
		if err != nil || !bytes.Equal(b, f.Data) {
			t.Errorf("%s not written as embedded: %v", f.Path, err)
		}
	}
	if !strings.Contains(out, fmt.Sprintf("wrote %d files", len(want))) {
		t.Errorf("output %q", out)
	}
	// Non-empty without --force: usage error naming --force.
	code, _, errOut = runCLI(t, nil, "dashboards", "export", "--dir", dir)
	if code != exitUsage || !strings.Contains(errOut, "not empty") || !strings.Contains(errOut, "--force") {
		t.Errorf("non-empty dir: exit %d, stderr %q", code, errOut)
	}
	if code, _, errOut = runCLI(t, nil, "dashboards", "export", "--dir", dir, "--force"); code != exitOK {
		t.Errorf("--force: exit %d %s", code, errOut)
	}
	// JSON output.
	code, out, _ = runCLI(t, nil, "dashboards", "export", "--dir", filepath.Join(t.TempDir(), "j"), "--output", "json")
	var res struct {
		Files []string `json:"files"`
	}
	if code != exitOK || json.Unmarshal([]byte(out), &res) != nil || len(res.Files) != len(want) {
		t.Errorf("json: exit %d %q", code, out)
	}
	// Unwritable: a regular file where a directory is needed.
	blocker := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocker, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runCLI(t, nil, "dashboards", "export", "--dir", filepath.Join(blocker, "sub"))
	if code != exitFailed || !strings.Contains(errOut, "sub") {
		t.Errorf("unwritable dir: exit %d, stderr %q", code, errOut)
	}
	// --dir is required.
	if code, _, _ = runCLI(t, nil, "dashboards", "export"); code != exitUsage {
		t.Errorf("no --dir: exit %d, want %d", code, exitUsage)
	}
}

// freePort returns a free TCP port on 127.0.0.1.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// testRules derives the end-to-end rules from alerts.yml: the same
// expressions over 10s windows instead of 5m, and `for: 2s`, so an alert
// fires and resolves within seconds.
func testRules(t *testing.T, alerts ...string) string {
	t.Helper()
	rules, err := dashboardstest.Rules()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("groups:\n  - name: e2e\n    interval: 1s\n    rules:\n")
	found := 0
	for _, r := range rules["alerts.yml"] {
		for _, a := range alerts {
			if r.Alert != a {
				continue
			}
			found++
			expr := strings.ReplaceAll(r.Expr, "[5m]", "[10s]")
			if a == "HighRecallLatency" {
				// 10x the threshold (the promtool tests check the real one), so
				// that the race build's baseline recall latency on a loaded
				// machine cannot keep the alert from resolving.
				if !strings.HasSuffix(expr, "> 0.01") {
					t.Fatalf("HighRecallLatency no longer ends with \"> 0.01\": %s", expr)
				}
				expr = strings.TrimSuffix(expr, "0.01") + "0.1"
			}
			q, _ := json.Marshal(expr)
			fmt.Fprintf(&b, "      - alert: %s\n        expr: %s\n        for: 2s\n        labels: {severity: %s}\n", a, q, r.Labels["severity"])
		}
	}
	if found != len(alerts) {
		t.Fatalf("alerts.yml defines %d of %v", found, alerts)
	}
	return b.String()
}

type promAlerts struct {
	Data struct {
		Alerts []struct {
			Labels map[string]string `json:"labels"`
			State  string            `json:"state"`
		} `json:"alerts"`
	} `json:"data"`
}

// alertState returns the state of alertname in Prometheus ("" when inactive).
func alertState(t *testing.T, prom, alertname string) string {
	resp, err := http.Get(prom + "/api/v1/alerts")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var a promAlerts
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		return ""
	}
	state := ""
	for _, al := range a.Data.Alerts {
		if al.Labels["alertname"] == alertname && (state == "" || al.State == "firing") {
			state = al.State
		}
	}
	return state
}

func waitAlert(t *testing.T, prom, alertname, want string, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < timeout {
		if alertState(t, prom, alertname) == want {
			return time.Since(start)
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("%s did not become %q within %s (state %q)", alertname, want, timeout, alertState(t, prom, alertname))
	return 0
}

// startPrometheus runs a real Prometheus scraping target every second
// with rules, until the test ends, and returns its URL.
func startPrometheus(t *testing.T, bin, target, rules string) string {
	t.Helper()
	dir := t.TempDir()
	rulesFile := filepath.Join(dir, "rules.yml")
	if err := os.WriteFile(rulesFile, []byte(rules), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
  - job_name: engram
    static_configs:
      - targets: [%q]
`, rulesFile, target)
	cfgFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	prom := fmt.Sprintf("http://127.0.0.1:%d", port)
	var plog bytes.Buffer
	cmd := exec.Command(bin, "--config.file="+cfgFile, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port), "--log.level=warn")
	cmd.Stdout, cmd.Stderr = &plog, &plog
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // by PID
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus log:\n%s", plog.String())
		}
	})
	ready := time.Now().Add(20 * time.Second)
	for {
		if resp, err := http.Get(prom + "/-/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(ready) {
			t.Fatalf("prometheus not ready:\n%s", plog.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return prom
}

// A real Prometheus scrapes a real server under load; a fault injected
// through the test-only switch makes the real alert fire, and removing it
// makes the alert resolve.
func TestAlertsFireAndResolveWithRealPrometheus(t *testing.T) {
	bin := os.Getenv("ENGRAM_TEST_PROMETHEUS")
	if bin == "" {
		t.Skip("ENGRAM_TEST_PROMETHEUS is not set: run scripts/test.sh (make test), which extracts prometheus from Debian's prometheus package")
	}
	p := startServe(t, t.TempDir(), "--set", "testing.fault_injection=true", "--no-access-log")
	prom := startPrometheus(t, bin, strings.TrimPrefix(p.base, "http://"), testRules(t, "HighRecallLatency", "HighErrorRate"))

	// Small steady load: recalls over a fixed set of memories (a growing
	// store would make the baseline recall slower as the test runs).
	for i := range 20 {
		if code, b := httpDo(t, "POST", p.base+"/api/v1/memories/remember", fmt.Sprintf(`{"content":"load memory %d"}`, i)); code != http.StatusCreated {
			t.Fatalf("remember: %d %s", code, b)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c := &http.Client{Timeout: 5 * time.Second}
		for ctx.Err() == nil {
			if resp, err := c.Get(p.base + "/api/v1/memories/recall?query=load+memory&max_results=5"); err == nil {
				resp.Body.Close()
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	defer func() { cancel(); wg.Wait() }()

	setFault := func(body string) {
		method := "POST"
		if body == "" {
			method = "DELETE"
		}
		if code, b := httpDo(t, method, p.base+"/api/v1/admin/faults", body); code != http.StatusOK {
			t.Fatalf("fault %q: %d %s", body, code, b)
		}
	}
	// Let Prometheus see the healthy baseline first.
	time.Sleep(3 * time.Second)
	if s := alertState(t, prom, "HighRecallLatency"); s != "" {
		t.Fatalf("HighRecallLatency is %q before any fault", s)
	}

	setFault(`{"operations":["recall"],"latency":"300ms"}`)
	fired := waitAlert(t, prom, "HighRecallLatency", "firing", 30*time.Second)
	setFault("")
	resolved := waitAlert(t, prom, "HighRecallLatency", "", 30*time.Second)
	t.Logf("HighRecallLatency: firing %.1fs after a 300ms recall fault, resolved %.1fs after removing it", fired.Seconds(), resolved.Seconds())

	setFault(`{"operations":["recall"],"error_ratio":1}`)
	fired = waitAlert(t, prom, "HighErrorRate", "firing", 30*time.Second)
	setFault("")
	resolved = waitAlert(t, prom, "HighErrorRate", "", 30*time.Second)
	t.Logf("HighErrorRate: firing %.1fs after failing every recall, resolved %.1fs after removing it", fired.Seconds(), resolved.Seconds())
}

// AuthFailuresSpike and TooManyRateLimited fire from real traffic: a
// keyed server refusing bad keys and rate limiting a space, scraped by a
// real Prometheus.
func TestAuthAlertsFireWithRealPrometheus(t *testing.T) {
	bin := os.Getenv("ENGRAM_TEST_PROMETHEUS")
	if bin == "" {
		t.Skip("ENGRAM_TEST_PROMETHEUS is not set: run scripts/test.sh (make test), which extracts prometheus from Debian's prometheus package")
	}
	dir := t.TempDir()
	code, out, errOut := runCLI(t, nil, "apikey", "create", "--data-dir", dir, "--name", "load", "--permissions", "write")
	if code != exitOK {
		t.Fatalf("apikey create: %d %s", code, errOut)
	}
	token := strings.TrimSpace(out)
	p := startServe(t, dir, "--set", "auth.mode=api_key", "--set", "rate_limit.space=5", "--no-access-log")
	prom := startPrometheus(t, bin, strings.TrimPrefix(p.base, "http://"), testRules(t, "AuthFailuresSpike", "TooManyRateLimited"))
	send := func(token string) int {
		req, _ := http.NewRequest("GET", p.base+"/api/v1/memories?space=default", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	req, _ := http.NewRequest("POST", p.base+"/api/v1/memories/remember", strings.NewReader(`{"content":"x"}`))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("remember: %v %v", resp, err)
	}
	time.Sleep(2 * time.Second)
	for _, a := range []string{"AuthFailuresSpike", "TooManyRateLimited"} {
		if s := alertState(t, prom, a); s != "" {
			t.Fatalf("%s is %q before any bad traffic", a, s)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	var limited, refused atomic.Int64
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			if send("") == http.StatusUnauthorized { // no key: 401
				refused.Add(1)
			}
			if send(token) == http.StatusTooManyRequests { // beyond 5/s in the space: 429
				limited.Add(1)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	defer func() { cancel(); wg.Wait() }()
	for _, a := range []string{"AuthFailuresSpike", "TooManyRateLimited"} {
		d := waitAlert(t, prom, a, "firing", 40*time.Second)
		t.Logf("%s firing after %.1fs (%d requests refused for auth, %d rate limited so far)", a, d.Seconds(), refused.Load(), limited.Load())
	}
}
