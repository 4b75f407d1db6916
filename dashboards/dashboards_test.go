package dashboards_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"go.yaml.in/yaml/v3"

	"github.com/engram-ops/engram-ops/dashboards"
	"github.com/engram-ops/engram-ops/dashboards/dashboardstest"
	"github.com/engram-ops/engram-ops/dashboards/internal/build"
	"github.com/engram-ops/engram-ops/runbooks"
)

// requiredAlerts are the alerts issue 5 asks for.
var requiredAlerts = []string{"EngramDown", "HighRecallLatency", "HighRememberLatency", "HighErrorRate",
	"StorageTierNearCapacity", "DiskFillingUp", "BackupRPOHigh", "BackupStale", "BackupShippingErrors",
	"RestoreDrillStale", "HighMemoryGrowth", "TooManyRateLimited", "AuthFailuresSpike"}

const highRecallLatencyExpr = `histogram_quantile(0.95, sum by (le, space) (rate(engram_memory_operation_duration_seconds_bucket{operation="recall"}[5m]))) > 0.01`

const runbookURLPrefix = "https://github.com/engram-ops/engram-ops/blob/main/runbooks/"

var dashboardFiles = []string{"system-overview.json", "memory-operations.json", "storage-tiers.json", "api-performance.json"}

func TestGeneratedDashboardsUpToDate(t *testing.T) {
	files, err := build.All()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, f.Name)
		got, err := os.ReadFile(filepath.Join("grafana", f.Name))
		if err != nil {
			t.Fatalf("%v (regenerate with: go generate ./dashboards)", err)
		}
		if !bytes.Equal(got, f.JSON) {
			t.Errorf("dashboards/grafana/%s is stale: it differs from what dashboards/internal/build renders; regenerate it with: go generate ./dashboards", f.Name)
		}
	}
	if !slices.Equal(sortedCopy(names), sortedCopy(dashboardFiles)) {
		t.Errorf("dashboards %v, want %v", names, dashboardFiles)
	}
	onDisk, _ := filepath.Glob("grafana/*.json")
	if len(onDisk) != len(files) {
		t.Errorf("dashboards/grafana/ has %d JSON files, the generator renders %d: remove the stale ones and run go generate ./dashboards", len(onDisk), len(files))
	}
}

func sortedCopy(s []string) []string { s = slices.Clone(s); sort.Strings(s); return s }

// The monitoring files live once, in this package's directories: the
// repository's compose file (deploy/docker-compose.yml) is the exported
// stack, plus the backup profile's services, with each mount pointing at
// the file or directory here that Export copies to that place.
func TestDeployMonitoringMountsTheOnePlace(t *testing.T) {
	root := filepath.Join("..", "deploy")
	if _, err := os.Stat(filepath.Join(root, "monitoring")); err == nil {
		t.Errorf("deploy/monitoring is a second copy: the monitoring files live in dashboards/ (grafana/, prometheus/, stack/), which deploy/docker-compose.yml mounts; remove it")
	}
	repo := readCompose(t, filepath.Join(root, "docker-compose.yml"))
	files, err := dashboards.Files()
	if err != nil {
		t.Fatal(err)
	}
	var exported composeFile
	for _, f := range files {
		if f.Path == "docker-compose.yml" {
			if err := yaml.Unmarshal(f.Data, &exported); err != nil {
				t.Fatalf("stack/docker-compose.yml: %v", err)
			}
		}
	}
	if len(exported.Services) == 0 {
		t.Fatal("the export has no docker-compose.yml")
	}
	for name, es := range exported.Services {
		rs, ok := repo.Services[name]
		if !ok {
			t.Errorf("service %s of dashboards/stack/docker-compose.yml is missing from deploy/docker-compose.yml", name)
			continue
		}
		if !slices.Equal(rs.Profiles, es.Profiles) {
			t.Errorf("service %s: profiles %v, the exported stack's %v", name, rs.Profiles, es.Profiles)
		}
		var want []string
		for _, v := range es.Volumes {
			host, rest, _ := strings.Cut(v, ":")
			if strings.HasPrefix(host, ".") {
				host = "../dashboards/" + exportSource(t, strings.TrimPrefix(host, "./"))
			}
			want = append(want, host+":"+rest)
		}
		if !slices.Equal(rs.Volumes, want) {
			t.Errorf("service %s mounts %v, want %v (the exported stack's mounts, from dashboards/)", name, rs.Volumes, want)
		}
	}
	for name, rs := range repo.Services {
		if _, ok := exported.Services[name]; !ok && !slices.Equal(rs.Profiles, []string{"backup"}) {
			t.Errorf("service %s of deploy/docker-compose.yml is not in dashboards/stack/docker-compose.yml (nor only in the backup profile)", name)
		}
	}
}

// exportSource maps a path of the export (see dashboards.Layout) back to
// the embedded file or directory it is copied from, relative to dashboards/.
func exportSource(t *testing.T, p string) string {
	for src, dst := range dashboards.Layout {
		if dst != "" && (p == dst || strings.HasPrefix(p, dst+"/")) {
			return src + strings.TrimPrefix(p, dst)
		}
	}
	if _, ok := dashboards.Layout["stack"]; !ok {
		t.Fatalf("export path %s has no source", p)
	}
	return "stack/" + p
}

// lineOf turns a byte offset into a 1-based line number.
func lineOf(b []byte, off int64) int {
	return bytes.Count(b[:min(int(off), len(b))], []byte("\n")) + 1
}

func TestDashboardsValidateWithSDK(t *testing.T) {
	plugins.RegisterDefaultPlugins()
	files, err := dashboards.Dashboards()
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(dashboardFiles) {
		t.Fatalf("%d dashboards embedded, want %d", len(files), len(dashboardFiles))
	}
	for name, b := range files {
		t.Run(name, func(t *testing.T) {
			//lint:ignore SA1019 the provisioned files are classic dashboard JSON, which this type models
			var d dashboard.Dashboard
			// Like Validate, strict unmarshalling returns a non-nil, empty
			// error on success in SDK v0.0.22.
			if err := d.UnmarshalJSONStrict(b); err != nil && err.Error() != "" {
				var se *json.SyntaxError
				if errors.As(err, &se) {
					t.Fatalf("grafana/%s:%d: %v", name, lineOf(b, se.Offset), err)
				}
				t.Fatalf("grafana/%s: strict unmarshal: %v", name, err)
			}
			// Validate returns a non-nil, empty error on success (SDK v0.0.22).
			if err := d.Validate(); err != nil && err.Error() != "" {
				t.Fatalf("grafana/%s: validate: %v", name, err)
			}
			checkDashboard(t, name, b)
		})
	}
}

type rawDashboard struct {
	UID        string `json:"uid"`
	Refresh    string `json:"refresh"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []struct {
		ID         int    `json:"id"`
		Type       string `json:"type"`
		Title      string `json:"title"`
		Datasource *struct {
			UID string `json:"uid"`
		} `json:"datasource"`
		GridPos struct{ X, Y, W, H int } `json:"gridPos"`
		Targets []struct {
			Expr       string `json:"expr"`
			Datasource *struct {
				UID string `json:"uid"`
			} `json:"datasource"`
		} `json:"targets"`
	} `json:"panels"`
}

func checkDashboard(t *testing.T, name string, b []byte) {
	var d rawDashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	if d.Refresh != build.Refresh {
		t.Errorf("refresh %q, want %q", d.Refresh, build.Refresh)
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
	}
	for n, typ := range map[string]string{"datasource": "datasource", "instance": "query", "space": "query"} {
		if vars[n] != typ {
			t.Errorf("variable %s: type %q, want %q", n, vars[n], typ)
		}
	}
	ids := map[int]string{}
	type rect struct {
		x, y, w, h int
		title      string
	}
	var rects []rect
	for _, p := range d.Panels {
		if p.ID <= 0 {
			t.Errorf("panel %q has no id", p.Title)
		}
		if other, dup := ids[p.ID]; dup {
			t.Errorf("panel id %d used by %q and %q", p.ID, other, p.Title)
		}
		ids[p.ID] = p.Title
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: bad gridPos %+v", p.Title, g)
		}
		for _, r := range rects {
			if g.X < r.x+r.w && r.x < g.X+g.W && g.Y < r.y+r.h && r.y < g.Y+g.H {
				t.Errorf("panels %q and %q overlap", r.title, p.Title)
			}
		}
		rects = append(rects, rect{g.X, g.Y, g.W, g.H, p.Title})
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q does not use the ${datasource} variable", p.Title)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if tg.Datasource == nil || tg.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q: a query does not use ${datasource}", p.Title)
			}
			if !strings.Contains(tg.Expr, `instance=~"$instance"`) {
				t.Errorf("panel %q: query %q ignores $instance", p.Title, tg.Expr)
			}
		}
	}
}

func TestRulesLint(t *testing.T) {
	rules, err := dashboardstest.Rules()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range rules["alerts.yml"] {
		if r.Alert == "" {
			t.Errorf("alerts.yml has a rule without alert: %q", r.Expr)
			continue
		}
		if seen[r.Alert] {
			t.Errorf("alert %s defined twice", r.Alert)
		}
		seen[r.Alert] = true
		switch r.Labels["severity"] {
		case "critical", "warning", "info":
		default:
			t.Errorf("alert %s: severity %q, want critical, warning or info", r.Alert, r.Labels["severity"])
		}
		for _, a := range []string{"summary", "description", "runbook_url"} {
			if strings.TrimSpace(r.Annotations[a]) == "" {
				t.Errorf("alert %s: no %s annotation", r.Alert, a)
			}
		}
		u := r.Annotations["runbook_url"]
		name, ok := strings.CutPrefix(u, runbookURLPrefix)
		name, ok2 := strings.CutSuffix(name, ".md")
		if !ok || !ok2 {
			t.Errorf("alert %s: runbook_url %q is not %s<name>.md", r.Alert, u, runbookURLPrefix)
			continue
		}
		if _, err := runbooks.Get(name); err != nil {
			t.Errorf("alert %s: runbook_url %q does not resolve: %v", r.Alert, u, err)
		}
		if name != "alerts/"+r.Alert {
			t.Errorf("alert %s: runbook_url names %s, want alerts/%s", r.Alert, name, r.Alert)
		}
	}
	for _, a := range requiredAlerts {
		if !seen[a] {
			t.Errorf("required alert %s is missing", a)
		}
	}
	for _, r := range rules["alerts.yml"] {
		if r.Alert == "HighRecallLatency" && strings.TrimSpace(r.Expr) != highRecallLatencyExpr {
			t.Errorf("HighRecallLatency expr\n  %s\nwant exactly\n  %s", r.Expr, highRecallLatencyExpr)
		}
	}
	if len(rules["recording.yml"]) == 0 {
		t.Error("no recording rules")
	}
	// Every recorded series a dashboard uses is defined.
	recorded := map[string]bool{}
	for _, r := range rules["recording.yml"] {
		recorded[r.Record] = true
	}
	exprs, err := dashboardstest.DashboardExprs()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range exprs {
		for _, n := range dashboardstest.MetricNames(e.Expr) {
			if strings.Contains(n, ":") && !recorded[n] {
				t.Errorf("%s uses %s, which no recording rule defines", e.Source, n)
			}
		}
	}
}

var runbookSections = []string{"Meaning", "First checks", "Mitigation", "Escalation"}

func TestAlertRunbooks(t *testing.T) {
	for _, a := range requiredAlerts {
		rb, err := runbooks.Get("alerts/" + a)
		if err != nil {
			t.Errorf("alert %s has no runbook: %v", a, err)
			continue
		}
		for _, s := range runbookSections {
			if body, ok := rb.Section(s); !ok || strings.TrimSpace(body) == "" {
				t.Errorf("runbooks/alerts/%s.md has no %q section", a, s)
			}
		}
		if !strings.Contains(rb.Body, a) {
			t.Errorf("runbooks/alerts/%s.md does not name its alert", a)
		}
	}
}

// promtool returns the promtool binary set by scripts/test.sh.
func promtool(t *testing.T) string {
	p := os.Getenv("ENGRAM_TEST_PROMTOOL")
	if p == "" {
		t.Skip("ENGRAM_TEST_PROMTOOL is not set: run scripts/test.sh (make test), which extracts promtool from Debian's prometheus package")
	}
	return p
}

func TestPromtoolCheckAndTestRules(t *testing.T) {
	pt := promtool(t)
	dir := "prometheus"
	if out, err := exec.Command(pt, "check", "rules", filepath.Join(dir, "alerts.yml"), filepath.Join(dir, "recording.yml")).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	tests, _ := filepath.Glob(filepath.Join(dir, "tests", "*.yml"))
	if len(tests) == 0 {
		t.Fatal("no promtool tests")
	}
	out, err := exec.Command(pt, append([]string{"test", "rules"}, tests...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
	// Every alert has a test that sees it firing and sees it quiet.
	type unitFile struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string `yaml:"alertname"`
				ExpAlerts []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	firing, quiet := map[string]bool{}, map[string]bool{}
	for _, f := range tests {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var u unitFile
		if err := yaml.Unmarshal(b, &u); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, tc := range u.Tests {
			for _, a := range tc.AlertRuleTest {
				if len(a.ExpAlerts) > 0 {
					firing[a.Alertname] = true
				} else {
					quiet[a.Alertname] = true
				}
			}
		}
	}
	rules, err := dashboardstest.Rules()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rules["alerts.yml"] {
		if !firing[r.Alert] || !quiet[r.Alert] {
			t.Errorf("alert %s: promtool tests must see it firing (%v) and quiet (%v)", r.Alert, firing[r.Alert], quiet[r.Alert])
		}
	}
}

// Every dashboard query parses as PromQL: promtool checks a rule file that
// records each of them (Grafana's variables replaced), and a failure is
// mapped back to the dashboard, panel and query.
func TestDashboardQueriesParse(t *testing.T) {
	pt := promtool(t)
	exprs, err := dashboardstest.DashboardExprs()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("groups:\n  - name: dashboard-queries\n    rules:\n")
	for i, e := range exprs {
		q, _ := json.Marshal(dashboardstest.AsPromQL(e.Expr))
		fmt.Fprintf(&b, "      - record: dashboard_query_%d\n        expr: %s\n", i, q)
	}
	f := filepath.Join(t.TempDir(), "queries.yml")
	if err := os.WriteFile(f, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(pt, "check", "rules", f).CombinedOutput()
	if err == nil {
		t.Logf("promtool parsed %d dashboard queries", len(exprs))
		return
	}
	// promtool names the failing rule by its 1-based index in the group.
	for _, m := range regexp.MustCompile(`rule (\d+)`).FindAllStringSubmatch(string(out), -1) {
		var i int
		fmt.Sscan(m[1], &i)
		if i >= 1 && i <= len(exprs) {
			t.Errorf("%s does not parse: %s", exprs[i-1].Source, exprs[i-1].Expr)
		}
	}
	t.Fatalf("promtool check rules: %v\n%s", err, out)
}

func TestExport(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	written, err := dashboards.Export(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"dashboards/system-overview.json", "rules/alerts.yml", "rules/recording.yml",
		"provisioning/dashboards/engram.yml", "provisioning/datasources/prometheus.yml", "prometheus.yml", "docker-compose.yml"} {
		if !slices.Contains(written, want) {
			t.Errorf("export did not write %s (wrote %v)", want, written)
		}
	}
	if _, err := dashboards.Export(dir, false); !errors.Is(err, dashboards.ErrNotEmpty) || !strings.Contains(err.Error(), "--force") {
		t.Errorf("export into a non-empty dir: %v, want ErrNotEmpty naming --force", err)
	}
	if _, err := dashboards.Export(dir, true); err != nil {
		t.Errorf("export --force: %v", err)
	}
}

// composeFile is the part of docker-compose.yml the test reads.
type composeFile struct {
	Services map[string]struct {
		Profiles []string `yaml:"profiles"`
		Volumes  []string `yaml:"volumes"`
		Build    *struct {
			Context string `yaml:"context"`
		} `yaml:"build"`
	} `yaml:"services"`
}

var envDefault = regexp.MustCompile(`\$\{[A-Z_]+:-([^}]*)\}`)

// The compose file mounts only paths that exist, the monitoring profile
// brings up Prometheus and Grafana next to engram-ops, and Grafana's
// provisioning points at where the dashboards are mounted.
// Checked for the repository's compose file and for an export's.
func TestComposeMountsAndProvisioning(t *testing.T) {
	t.Run("deploy", func(t *testing.T) {
		checkCompose(t, filepath.Join("..", "deploy"))
	})
	t.Run("export", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "a", "b") // ENGRAM_OPS_SRC's default, ../.., is then the temp dir
		if _, err := dashboards.Export(dir, false); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "..", "..", "go.mod"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		checkCompose(t, dir)
	})
}

func readCompose(t *testing.T, path string) composeFile {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return c
}

func checkCompose(t *testing.T, root string) {
	c := readCompose(t, filepath.Join(root, "docker-compose.yml"))
	for _, s := range []string{"engram-ops", "prometheus", "grafana"} {
		if _, ok := c.Services[s]; !ok {
			t.Errorf("service %s missing", s)
		}
	}
	for _, s := range []string{"prometheus", "grafana"} {
		if !slices.Contains(c.Services[s].Profiles, "monitoring") {
			t.Errorf("service %s is not in the monitoring profile", s)
		}
	}
	mounts := map[string]string{} // container path -> host path
	for name, s := range c.Services {
		for _, v := range s.Volumes {
			parts := strings.Split(v, ":")
			if len(parts) < 2 || !strings.HasPrefix(parts[0], ".") {
				continue // named volume
			}
			host := filepath.Join(root, parts[0])
			if _, err := os.Stat(host); err != nil {
				t.Errorf("service %s mounts %s, which does not exist: %v", name, parts[0], err)
			}
			mounts[parts[1]] = host
		}
		if s.Build != nil {
			ctx := envDefault.ReplaceAllString(s.Build.Context, "$1")
			if _, err := os.Stat(filepath.Join(root, ctx, "go.mod")); err != nil {
				t.Errorf("service %s builds from %s, which is not the source tree: %v", name, ctx, err)
			}
		}
	}
	// Grafana's dashboard provider path is a mounted directory holding the dashboards.
	var prov struct {
		Providers []struct {
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	pb, err := os.ReadFile(filepath.Join(mounts["/etc/grafana/provisioning"], "dashboards", "engram.yml"))
	if err != nil {
		t.Fatalf("grafana provisioning is not mounted at /etc/grafana/provisioning with dashboards/engram.yml: %v", err)
	}
	if err := yaml.Unmarshal(pb, &prov); err != nil || len(prov.Providers) != 1 {
		t.Fatalf("provisioning/dashboards/engram.yml: %v", err)
	}
	host, ok := mounts[prov.Providers[0].Options.Path]
	if !ok {
		t.Fatalf("dashboard provider path %s is not a mount of the grafana service", prov.Providers[0].Options.Path)
	}
	for _, f := range dashboardFiles {
		if _, err := os.Stat(filepath.Join(host, f)); err != nil {
			t.Errorf("dashboard %s is not in the mounted directory: %v", f, err)
		}
	}
	if _, err := os.Stat(filepath.Join(mounts["/etc/grafana/provisioning"], "datasources", "prometheus.yml")); err != nil {
		t.Errorf("no datasource provisioning: %v", err)
	}
	// Prometheus loads the rules from the mounted rules directory.
	var pc struct {
		RuleFiles []string `yaml:"rule_files"`
	}
	pcb, err := os.ReadFile(mounts["/etc/prometheus/prometheus.yml"])
	if err != nil {
		t.Fatalf("prometheus.yml is not mounted: %v", err)
	}
	if err := yaml.Unmarshal(pcb, &pc); err != nil {
		t.Fatal(err)
	}
	for _, rf := range pc.RuleFiles {
		dir, file := filepath.Split(rf)
		h, ok := mounts[strings.TrimSuffix(dir, "/")]
		if !ok {
			t.Errorf("rule file %s is not under a mount", rf)
			continue
		}
		if _, err := os.Stat(filepath.Join(h, file)); err != nil {
			t.Errorf("rule file %s: %v", rf, err)
		}
	}
}

// The stack's prometheus.yml is a valid configuration for the Prometheus
// the tests use, with the rule files it names (container paths mapped to
// the files the compose file mounts there).
func TestStackPrometheusConfigChecks(t *testing.T) {
	pt := promtool(t)
	b, err := os.ReadFile(filepath.Join("stack", "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	rules, err := filepath.Abs("prometheus")
	if err != nil {
		t.Fatal(err)
	}
	const mounted = "/etc/prometheus/rules/"
	if !strings.Contains(string(b), mounted) {
		t.Fatalf("prometheus.yml does not load rules from %s", mounted)
	}
	cfg := filepath.Join(t.TempDir(), "prometheus.yml")
	if err := os.WriteFile(cfg, []byte(strings.ReplaceAll(string(b), mounted, rules+"/")), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(pt, "check", "config", cfg).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check config stack/prometheus.yml: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "SUCCESS") {
		t.Fatalf("promtool check config said:\n%s", out)
	}
}
