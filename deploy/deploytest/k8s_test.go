package deploytest

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	chartv2 "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite deploy/helm/rendered and deploy/kubernetes/prometheusrule.yaml")

const (
	repoRoot  = "../.."
	chartDir  = "../helm/engram-ops"
	renderDir = "../helm/rendered"
	plainDir  = "../kubernetes"
)

// valuesFiles are the chart's values files: the defaults, each size and
// the sharded layout.
var valuesFiles = []string{"values.yaml", "values-small.yaml", "values-medium.yaml", "values-large.yaml", shardedValues}

// shardedValues is the example of the sharded layout: two shards, the
// first with two followers, behind the router.
const shardedValues = "values-sharded.yaml"

// wantKinds is how many objects of each kind a values file renders.
func wantKinds(valuesFile string) map[string]int {
	if valuesFile == shardedValues {
		// Per shard a primary StatefulSet and Service and a restore drill;
		// shard a's followers' StatefulSet and Service; the router's
		// Deployment and Service and the placement ConfigMap.
		return map[string]int{"StatefulSet": 3, "Service": 4, "Deployment": 1, "ConfigMap": 1, "CronJob": 2,
			"PodDisruptionBudget": 1, "ServiceMonitor": 1, "PrometheusRule": 1}
	}
	return map[string]int{"StatefulSet": 1, "Service": 1, "PodDisruptionBudget": 1, "ServiceMonitor": 1, "PrometheusRule": 1, "CronJob": 1}
}

// strictDecoder decodes YAML into the registered Kubernetes and Prometheus
// Operator types, failing on unknown and duplicate fields and unknown kinds.
func strictDecoder(t *testing.T) *kjson.Serializer {
	t.Helper()
	s := runtime.NewScheme()
	if err := scheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := monitoringv1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	return kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, s, s, kjson.SerializerOptions{Yaml: true, Strict: true})
}

// decodeAll splits a multi-document YAML stream and decodes each
// non-empty document strictly.
func decodeAll(t *testing.T, dec *kjson.Serializer, name string, data []byte) []runtime.Object {
	t.Helper()
	r := utilyaml.NewYAMLReader(bufioReader(data))
	var out []runtime.Object
	for i := 0; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		obj, gvk, err := dec.Decode(doc, nil, nil)
		if err != nil {
			t.Errorf("%s document %d: %v", name, i, err)
			continue
		}
		if gvk.Kind == "" {
			t.Errorf("%s document %d: no kind", name, i)
		}
		out = append(out, obj)
	}
	return out
}

func stripComments(doc []byte) []byte {
	var b bytes.Buffer
	for _, l := range strings.Split(string(doc), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.Bytes()
}

// render renders the chart with values (on top of values.yaml) and returns
// the manifests by template name, empty ones left out.
func render(t *testing.T, chrt *chartv2.Chart, values map[string]any) map[string]string {
	t.Helper()
	out, err := renderErr(chrt, values)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	return out
}

// renderErr is render returning the error of a template that refuses the
// values.
func renderErr(chrt *chartv2.Chart, values map[string]any) (map[string]string, error) {
	vals, err := util.ToRenderValues(chrt, values, common.ReleaseOptions{Name: "engram-ops", Namespace: "engram", IsInstall: true}, common.DefaultCapabilities)
	if err != nil {
		return nil, err
	}
	out, err := engine.Render(chrt, vals)
	if err != nil {
		return nil, err
	}
	for k, v := range out {
		if strings.HasSuffix(k, ".tpl") || len(bytes.TrimSpace(stripComments([]byte(v)))) == 0 {
			delete(out, k)
		}
	}
	return out, nil
}

func loadChart(t *testing.T) *chartv2.Chart {
	t.Helper()
	c, err := loader.LoadDir(chartDir)
	if err != nil {
		t.Fatalf("load chart: %v", err)
	}
	return c
}

func readValues(t *testing.T, name string) map[string]any {
	t.Helper()
	if name == "values.yaml" {
		return map[string]any{}
	}
	v, err := common.ReadValuesFile(filepath.Join(chartDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// joined is the rendering as one YAML stream in template order.
func joined(out map[string]string) string {
	names := make([]string, 0, len(out))
	for n := range out {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "---\n# Source: %s\n%s\n", n, strings.TrimSpace(out[n]))
	}
	return b.String()
}

// The chart renders with every values file, every manifest decodes
// strictly into its API type, and deploy/helm/rendered holds the
// renderings (what cmd/engram-ops checks against the binary).
func TestChartRendersStrictly(t *testing.T) {
	chrt := loadChart(t)
	dec := strictDecoder(t)
	for _, vf := range valuesFiles {
		t.Run(vf, func(t *testing.T) {
			out := render(t, chrt, readValues(t, vf))
			kinds := map[string]int{}
			for name, m := range out {
				for _, obj := range decodeAll(t, dec, vf+": "+name, []byte(m)) {
					kinds[reflect.TypeOf(obj).Elem().Name()]++
				}
			}
			if want := wantKinds(vf); !maps.Equal(kinds, want) {
				t.Errorf("%s renders %v, want %v", vf, kinds, want)
			}
			golden := filepath.Join(renderDir, strings.TrimSuffix(strings.TrimPrefix(vf, "values-"), ".yaml")+".yaml")
			if vf == "values.yaml" {
				golden = filepath.Join(renderDir, "default.yaml")
			}
			got := "# Generated by deploy/deploytest (go test -update) from deploy/helm/engram-ops with " + vf + ".\n" + joined(out)
			if *update {
				if err := os.MkdirAll(renderDir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil || string(want) != got {
				t.Errorf("%s is stale (%v): run go test -update in deploy/deploytest", golden, err)
			}
		})
	}
}

// Every plain manifest decodes strictly, and together they hold the objects
// a deployment needs.
func TestPlainManifestsStrictly(t *testing.T) {
	dec := strictDecoder(t)
	files, _ := filepath.Glob(filepath.Join(plainDir, "*.yaml"))
	if len(files) == 0 {
		t.Fatal("no manifests in deploy/kubernetes")
	}
	kinds := map[string]int{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, obj := range decodeAll(t, dec, f, b) {
			kinds[reflect.TypeOf(obj).Elem().Name()]++
		}
	}
	for _, k := range []string{"StatefulSet", "Service", "PodDisruptionBudget", "ServiceMonitor", "PrometheusRule", "CronJob", "Secret", "Job"} {
		if kinds[k] != 1 {
			t.Errorf("deploy/kubernetes has %d %s, want 1 (kinds: %v)", kinds[k], k, kinds)
		}
	}
}

// A strict decode fails on a misspelt field: the check the tests above rely on.
func TestStrictDecoderRejectsUnknownFields(t *testing.T) {
	dec := strictDecoder(t)
	_, _, err := dec.Decode([]byte("apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {prots: []}\n"), nil, nil)
	if err == nil || !runtime.IsStrictDecodingError(err) {
		t.Fatalf("a Service with spec.prots decoded: %v", err)
	}
}

// shippedRuleGroups are dashboards/prometheus's recording then alert groups.
func shippedRuleGroups(t *testing.T) []monitoringv1.RuleGroup {
	t.Helper()
	var all []monitoringv1.RuleGroup
	for _, f := range []string{"recording.yml", "alerts.yml"} {
		b, err := os.ReadFile(filepath.Join(repoRoot, "dashboards", "prometheus", f))
		if err != nil {
			t.Fatal(err)
		}
		var file struct {
			Groups []monitoringv1.RuleGroup `json:"groups"`
		}
		if err := yaml.UnmarshalStrict(b, &file); err != nil {
			t.Fatalf("dashboards/prometheus/%s as PrometheusRule groups: %v", f, err)
		}
		all = append(all, file.Groups...)
	}
	return all
}

// The PrometheusRule of the plain manifests and of the chart hold exactly
// the shipped rules (dashboards/prometheus, checked there by promtool).
func TestPrometheusRuleIsTheShippedRules(t *testing.T) {
	want := shippedRuleGroups(t)
	plain := filepath.Join(plainDir, "prometheusrule.yaml")
	if *update {
		pr := monitoringv1.PrometheusRule{Spec: monitoringv1.PrometheusRuleSpec{Groups: want}}
		pr.APIVersion, pr.Kind, pr.Name = "monitoring.coreos.com/v1", "PrometheusRule", "engram-ops"
		pr.Labels = map[string]string{"app.kubernetes.io/name": "engram-ops"}
		b, err := yaml.Marshal(pr)
		if err != nil {
			t.Fatal(err)
		}
		b = bytes.Replace(b, []byte("  creationTimestamp: null\n"), nil, 1)
		head := "# Generated by deploy/deploytest (go test -update) from dashboards/prometheus/{recording,alerts}.yml.\n"
		if err := os.WriteFile(plain, append([]byte(head), b...), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dec := strictDecoder(t)
	check := func(name string, data []byte) {
		for _, obj := range decodeAll(t, dec, name, data) {
			if pr, ok := obj.(*monitoringv1.PrometheusRule); ok {
				if !reflect.DeepEqual(pr.Spec.Groups, want) {
					t.Errorf("%s: its groups differ from dashboards/prometheus's: run go test -update in deploy/deploytest", name)
				}
				return
			}
		}
		t.Errorf("%s: no PrometheusRule", name)
	}
	b, err := os.ReadFile(plain)
	if err != nil {
		t.Fatal(err)
	}
	check(plain, b)
	out := render(t, loadChart(t), nil)
	check("chart templates/prometheusrule.yaml", []byte(out["engram-ops/templates/prometheusrule.yaml"]))
}

func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }
