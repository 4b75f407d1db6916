package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/engram-ops/engram-ops/backup/target"
	"github.com/engram-ops/engram-ops/ops/config"
)

// deployRoot is the repository root, seen from this package.
const deployRoot = "../.."

// deployUse is one engram-ops process a deployment file starts: its
// arguments, environment (a value from a Secret is "secret"), ports and
// probe paths.
type deployUse struct {
	source string
	args   []string
	env    map[string]string
	ports  []int
	probes []string
}

// The deployment files name only what the binary has: every engram-ops
// invocation parses against the command tree, every ENGRAM_* variable is
// one the configuration or the S3 target reads and its value is valid,
// every port is the one the configuration listens on, and every probe and
// scrape path answers 200 on a running server. The chart is checked through
// its renderings (deploy/helm/rendered, kept current by deploy/deploytest).
func TestDeployFilesMatchTheBinary(t *testing.T) {
	uses, scrapePaths := deployUses(t)
	if len(uses) < 8 {
		t.Fatalf("found %d engram-ops uses in the deployment files, expected the Dockerfile's, compose's, the manifests', the chart renderings' and the unit's", len(uses))
	}
	known := knownEnv(t)
	probes := map[string]bool{}
	for _, u := range uses {
		if len(u.args) > 0 {
			if err := checkInvocation(u.args); err != nil {
				t.Errorf("%s: engram-ops %s: %v", u.source, strings.Join(u.args, " "), err)
			}
		}
		env := map[string]string{}
		for k, v := range u.env {
			if !strings.HasPrefix(k, "ENGRAM_") {
				if k != "TMPDIR" {
					t.Errorf("%s: sets %s, which engram-ops does not read", u.source, k)
				}
				continue
			}
			if !known[k] {
				t.Errorf("%s: sets %s, which engram-ops does not read", u.source, k)
			}
			if v != "secret" {
				env[k] = v
			}
		}
		cfg, _, err := config.Load("", func(k string) string { return env[k] })
		if err != nil {
			t.Errorf("%s: its ENGRAM_* values do not load: %v", u.source, err)
			continue
		}
		_, port, _ := net.SplitHostPort(cfg.Listen)
		for _, p := range u.ports {
			if strconv.Itoa(p) != port {
				t.Errorf("%s: port %d, but the server listens on %s", u.source, p, cfg.Listen)
			}
		}
		for _, p := range u.probes {
			probes[p] = true
		}
	}
	for _, p := range scrapePaths {
		probes[p] = true
	}
	p := startServe(t, t.TempDir())
	for path := range probes {
		resp, err := http.Get(p.base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("a deployment file probes or scrapes %s, which answers %d", path, resp.StatusCode)
		}
		if path == "/metrics" && !bytes.Contains(body, []byte("engram_build_info")) {
			t.Errorf("/metrics has no engram_build_info")
		}
	}
	t.Logf("checked %d engram-ops uses, %d paths", len(uses), len(probes))
}

// The check itself catches what shipped broken before: a flag the binary
// lacks, a command it lacks, an unknown variable and a bad value.
func TestDeployCheckCatchesMistakes(t *testing.T) {
	for _, args := range [][]string{{"serve", "--http-port", "7432"}, {"server"}, {"backup", "verify", "--level"}} {
		if checkInvocation(args) == nil {
			t.Errorf("engram-ops %s passed the check", strings.Join(args, " "))
		}
	}
	if checkInvocation([]string{"serve", "--backup-to", "s3://b/p"}) != nil {
		t.Error("a valid serve invocation failed the check")
	}
	known := knownEnv(t)
	for _, n := range []string{"ENGRAM_LISTEN", "ENGRAM_S3_ENDPOINT", "ENGRAM_S3_SECRET_ACCESS_KEY", "ENGRAM_API_KEY"} {
		if !known[n] {
			t.Errorf("%s is not known", n)
		}
	}
	if known["ENGRAM_HTTP_PORT"] {
		t.Error("ENGRAM_HTTP_PORT is known")
	}
}

// checkInvocation parses args against a fresh command tree as cobra would
// when running them.
func checkInvocation(args []string) error {
	root := newApp(strings.NewReader(""), io.Discard, io.Discard, func(string) string { return "" }).rootCommand()
	cmd, rest, err := root.Find(args)
	if err != nil {
		return err
	}
	if err := cmd.ParseFlags(rest); err != nil {
		return err
	}
	if cmd.HasSubCommands() && len(cmd.Flags().Args()) > 0 {
		return errors.New("unknown command " + strings.Join(cmd.Flags().Args(), " ") + " of " + cmd.CommandPath())
	}
	if cmd.Args != nil {
		return cmd.Args(cmd, cmd.Flags().Args())
	}
	return nil
}

// knownEnv is every variable engram-ops reads: the configuration's
// ENGRAM_* overrides, those the S3 backup target asks for, and the API key
// the client commands ask for, each learnt by asking the code.
func knownEnv(t *testing.T) map[string]bool {
	t.Helper()
	known := map[string]bool{}
	for _, e := range config.EnvVars() {
		known[e.Name] = true
	}
	record := func(k string) string { known[k] = true; return "" }
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := target.Open(ctx, "s3://bucket/prefix", target.Options{}, record); err == nil {
		t.Fatal("an S3 target without credentials opened")
	}
	a := newApp(strings.NewReader(""), io.Discard, io.Discard, record)
	a.run(ctx, []string{"apikey", "list", "--target", "http://127.0.0.1:1"})
	return known
}

// deployUses reads every deployment file and returns the engram-ops
// processes they start and the paths scraped.
func deployUses(t *testing.T) ([]deployUse, []string) {
	t.Helper()
	var uses []deployUse
	var scrape []string

	// Dockerfile: ENV, EXPOSE, CMD, HEALTHCHECK.
	df := readDeploy(t, "Dockerfile")
	image := deployUse{source: "Dockerfile", env: map[string]string{}}
	var health deployUse
	logical := strings.ReplaceAll(df, "\\\n", " ")
	inFinal := false
	for _, line := range strings.Split(logical, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch f[0] {
		case "FROM":
			inFinal = f[1] == "scratch"
		case "ENV":
			for _, kv := range f[1:] {
				k, v, _ := strings.Cut(kv, "=")
				image.env[k] = v
			}
		case "EXPOSE":
			for _, p := range f[1:] {
				n, _ := strconv.Atoi(strings.TrimSuffix(p, "/tcp"))
				image.ports = append(image.ports, n)
			}
		case "CMD":
			if inFinal {
				image.args = jsonArgs(t, strings.TrimPrefix(line, "CMD"))
			}
		case "HEALTHCHECK":
			_, exec, _ := strings.Cut(line, " CMD ")
			health = deployUse{source: "Dockerfile HEALTHCHECK", args: jsonArgs(t, exec)[1:], env: image.env}
		}
	}
	if len(image.args) == 0 || len(health.args) == 0 || len(image.ports) == 0 {
		t.Fatalf("Dockerfile: no CMD, HEALTHCHECK or EXPOSE in the final stage")
	}
	uses = append(uses, image, health)

	// Compose: engram-ops's environment and ports, on top of the image's.
	var compose struct {
		Services map[string]struct {
			Command     []string          `yaml:"command"`
			Environment map[string]string `yaml:"environment"`
			Ports       []string          `yaml:"ports"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal([]byte(readDeploy(t, "deploy/docker-compose.yml")), &compose); err != nil {
		t.Fatal(err)
	}
	svc := compose.Services["engram-ops"]
	cu := deployUse{source: "deploy/docker-compose.yml", args: image.args, env: map[string]string{}}
	for k, v := range image.env {
		cu.env[k] = v
	}
	for k, v := range svc.Environment {
		cu.env[k] = composeDefault(v)
	}
	if len(svc.Command) > 0 {
		cu.args = svc.Command
	}
	for _, p := range svc.Ports {
		parts := strings.Split(p, ":")
		n, _ := strconv.Atoi(parts[len(parts)-1])
		cu.ports = append(cu.ports, n)
	}
	uses = append(uses, cu)

	// Kubernetes: the plain manifests and the chart's renderings.
	files, _ := filepath.Glob(filepath.Join(deployRoot, "deploy", "kubernetes", "*.yaml"))
	rendered, _ := filepath.Glob(filepath.Join(deployRoot, "deploy", "helm", "rendered", "*.yaml"))
	if len(files) == 0 || len(rendered) < 4 {
		t.Fatalf("deploy/kubernetes has %d files, deploy/helm/rendered %d", len(files), len(rendered))
	}
	for _, f := range append(files, rendered...) {
		rel, _ := filepath.Rel(deployRoot, f)
		dec := yaml.NewDecoder(strings.NewReader(readDeploy(t, rel)))
		for {
			var doc map[string]any
			if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", rel, err)
			}
			kind, _ := doc["kind"].(string)
			if kind == "ServiceMonitor" {
				for _, ep := range dig(doc, "spec", "endpoints").([]any) {
					scrape = append(scrape, dig(ep, "path").(string))
				}
			}
			for _, c := range podContainers(doc) {
				uses = append(uses, containerUse(rel+" "+kind, c, image.env))
			}
		}
	}

	// systemd: ExecStart and Environment=.
	su := deployUse{source: "deploy/systemd/engram-ops.service", env: map[string]string{}}
	sc := bufio.NewScanner(strings.NewReader(readDeploy(t, "deploy/systemd/engram-ops.service")))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		switch k {
		case "ExecStart":
			su.args = strings.Fields(v)[1:]
		case "Environment":
			ek, ev, _ := strings.Cut(v, "=")
			su.env[ek] = ev
		}
	}
	uses = append(uses, su)
	return uses, scrape
}

func readDeploy(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(deployRoot, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func jsonArgs(t *testing.T, s string) []string {
	t.Helper()
	var out []string
	if err := yaml.Unmarshal([]byte(strings.TrimSpace(s)), &out); err != nil || len(out) == 0 {
		t.Fatalf("not an exec-form JSON array: %q (%v)", s, err)
	}
	if out[0] == "/engram-ops" {
		out = out[1:]
	}
	return out
}

// composeDefault resolves ${VAR:-default} to its default.
func composeDefault(v string) string {
	if strings.HasPrefix(v, "${") && strings.HasSuffix(v, "}") {
		if _, def, ok := strings.Cut(v[2:len(v)-1], ":-"); ok {
			return def
		}
		return ""
	}
	return v
}

func dig(v any, path ...string) any {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

// podContainers returns the containers and init containers of a
// workload's pod template that run the engram-ops image (the router's
// HAProxy container runs another).
func podContainers(doc map[string]any) []any {
	var spec any
	switch doc["kind"] {
	case "StatefulSet", "Deployment", "Job":
		spec = dig(doc, "spec", "template", "spec")
	case "CronJob":
		spec = dig(doc, "spec", "jobTemplate", "spec", "template", "spec")
	default:
		return nil
	}
	var out []any
	for _, c := range append(asList(dig(spec, "initContainers")), asList(dig(spec, "containers"))...) {
		if img, _ := dig(c, "image").(string); strings.HasPrefix(img, "engram-ops:") {
			out = append(out, c)
		}
	}
	return out
}

// containerUse reads a container running the image: args (the image's
// ENTRYPOINT is engram-ops), env, ports and probe paths.
func containerUse(source string, c any, imageEnv map[string]string) deployUse {
	u := deployUse{source: source + " " + dig(c, "name").(string), env: map[string]string{}}
	for k, v := range imageEnv {
		u.env[k] = v
	}
	for _, a := range asList(dig(c, "args")) {
		u.args = append(u.args, a.(string))
	}
	for _, e := range asList(dig(c, "env")) {
		v, ok := dig(e, "value").(string)
		if !ok {
			v = "secret"
		}
		u.env[dig(e, "name").(string)] = v
	}
	for _, p := range asList(dig(c, "ports")) {
		u.ports = append(u.ports, dig(p, "containerPort").(int))
	}
	for _, probe := range []string{"startupProbe", "livenessProbe", "readinessProbe"} {
		if p, ok := dig(c, probe, "httpGet", "path").(string); ok {
			u.probes = append(u.probes, p)
		}
	}
	slices.Sort(u.probes)
	return u
}

func asList(v any) []any { l, _ := v.([]any); return l }
