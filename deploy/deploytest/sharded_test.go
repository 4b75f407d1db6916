package deploytest

import (
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// shardedObjects renders values-sharded.yaml and returns its objects by
// kind and name.
type shardedObjects struct {
	sets     map[string]*appsv1.StatefulSet
	services map[string]*corev1.Service
	configs  map[string]*corev1.ConfigMap
	deploys  map[string]*appsv1.Deployment
}

func renderSharded(t *testing.T) shardedObjects {
	t.Helper()
	out := render(t, loadChart(t), readValues(t, shardedValues))
	dec := strictDecoder(t)
	o := shardedObjects{map[string]*appsv1.StatefulSet{}, map[string]*corev1.Service{}, map[string]*corev1.ConfigMap{}, map[string]*appsv1.Deployment{}}
	for name, m := range out {
		for _, obj := range decodeAll(t, dec, name, []byte(m)) {
			switch x := obj.(type) {
			case *appsv1.StatefulSet:
				o.sets[x.Name] = x
			case *corev1.Service:
				o.services[x.Name] = x
			case *corev1.ConfigMap:
				o.configs[x.Name] = x
			case *appsv1.Deployment:
				o.deploys[x.Name] = x
			}
		}
	}
	return o
}

// argAfter returns the value after name in args.
func argAfter(args []string, name string) string {
	if i := slices.Index(args, name); i >= 0 && i+1 < len(args) {
		return args[i+1]
	}
	return ""
}

// mountOf is the volume mounted at the directory holding file.
func mountOf(c corev1.Container, file string) string {
	for _, m := range c.VolumeMounts {
		if strings.TrimSuffix(m.MountPath, "/") == path.Dir(file) || m.MountPath == file {
			return m.Name
		}
	}
	return ""
}

// The placement file the chart renders is accepted by the binary's
// placement haproxy (ops/placement's parser and renderer, as the router's
// init container runs it), routes to the Services the chart renders, and
// the router pod is wired the way the command writes its files: the init
// container reads the ConfigMap and writes where HAProxy reads. Each
// shard's followers tail the archive its primary ships to and name that
// primary's Service.
func TestChartPlacementIsAcceptedByTheCLI(t *testing.T) {
	o := renderSharded(t)
	cm := o.configs["engram-ops-placement"]
	router := o.deploys["engram-ops-router"]
	if cm == nil || router == nil {
		t.Fatalf("no placement ConfigMap or router Deployment (configs %v, deployments %v)", len(o.configs), len(o.deploys))
	}
	pod := router.Spec.Template.Spec
	if len(pod.InitContainers) != 1 || len(pod.Containers) != 1 {
		t.Fatalf("router pod: %d init containers, %d containers; want 1 and 1", len(pod.InitContainers), len(pod.Containers))
	}
	initC, haproxy := pod.InitContainers[0], pod.Containers[0]
	if initC.Image != "engram-ops:latest" || !slices.Equal(initC.Args[:2], []string{"placement", "haproxy"}) {
		t.Fatalf("init container runs %s %v, want the engram-ops image's placement haproxy", initC.Image, initC.Args)
	}
	placementPath, outDir := argAfter(initC.Args, "--placement"), argAfter(initC.Args, "--out")
	vols := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		vols[v.Name] = v
	}
	if v := vols[mountOf(initC, placementPath)]; v.ConfigMap == nil || v.ConfigMap.Name != cm.Name {
		t.Errorf("--placement %s is not on the placement ConfigMap's volume", placementPath)
	}
	toml, ok := cm.Data[path.Base(placementPath)]
	if !ok {
		t.Fatalf("the ConfigMap has no key %s (keys %v)", path.Base(placementPath), cm.Data)
	}
	cfgPath := argAfter(haproxy.Command, "-f")
	if cfgPath != path.Join(outDir, "haproxy.cfg") {
		t.Errorf("HAProxy runs -f %q, the init container writes %s/haproxy.cfg", cfgPath, outDir)
	}
	shared := mountOf(initC, outDir+"/x")
	if shared == "" || shared != mountOf(haproxy, cfgPath) || vols[shared].EmptyDir == nil {
		t.Errorf("--out %s and HAProxy's %s are not the same emptyDir (%q, %q)", outDir, cfgPath, shared, mountOf(haproxy, cfgPath))
	}

	dir := t.TempDir()
	file := filepath.Join(dir, "placement.toml")
	if err := os.WriteFile(file, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "router")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command(engramBinary(t), "placement", "haproxy", "--placement", file, "--out", out).CombinedOutput(); err != nil {
		t.Fatalf("engram-ops placement haproxy refuses the chart's placement file: %v\n%s\n%s", err, b, toml)
	}
	cfg, err := os.ReadFile(filepath.Join(out, "haproxy.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	spacesMap, err := os.ReadFile(filepath.Join(out, "spaces.map"))
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(int(haproxy.Ports[0].ContainerPort))
	if !strings.Contains(string(cfg), "bind 0.0.0.0:"+port+"\n") {
		t.Errorf("haproxy.cfg does not bind the router container's port %s:\n%s", port, cfg)
	}
	svc := o.services["engram-ops-router"]
	if svc == nil || svc.Spec.Ports[0].TargetPort.String() != haproxy.Ports[0].Name {
		t.Errorf("the router Service does not target HAProxy's port %q", haproxy.Ports[0].Name)
	}
	for _, line := range []string{"tenant-b b", "tenant-c b"} {
		if !strings.Contains(string(spacesMap), line+"\n") {
			t.Errorf("spaces.map lacks %q:\n%s", line, spacesMap)
		}
	}

	// Every server StatefulSet is behind a Service the router names, and
	// followers follow their primary's archive.
	for _, shard := range []string{"a", "b"} {
		primary := o.sets["engram-ops-"+shard]
		if primary == nil {
			t.Fatalf("no StatefulSet of shard %s's primary", shard)
		}
		archive := argAfter(primary.Spec.Template.Spec.Containers[0].Args, "--backup-to")
		if archive != "s3://engram-backups/prod/"+shard {
			t.Errorf("shard %s's primary ships to %q, want backup.to/%s", shard, archive, shard)
		}
		primaryURL := "http://engram-ops-" + shard + ".engram.svc:7432"
		checkServer(t, o, cfg, "engram-ops-"+shard, primaryURL)
		followers := o.sets["engram-ops-"+shard+"-follower"]
		if shard == "b" {
			if followers != nil {
				t.Errorf("shard b has 0 followers in values, but a followers StatefulSet renders")
			}
			continue
		}
		if followers == nil || *followers.Spec.Replicas != 2 {
			t.Fatalf("shard a's followers: %v, want a StatefulSet of 2", followers)
		}
		args := followers.Spec.Template.Spec.Containers[0].Args
		if argAfter(args, "--follow") != archive || argAfter(args, "--primary-url") != primaryURL {
			t.Errorf("shard a's followers run %v, want --follow %s --primary-url %s", args, archive, primaryURL)
		}
		checkServer(t, o, cfg, "engram-ops-a-follower", "http://engram-ops-a-follower.engram.svc:7432")
	}
}

// checkServer checks that the Service name exists, selects the pods of
// the StatefulSet of the same name on their http port, and that haproxy.cfg
// routes to it at url.
func checkServer(t *testing.T, o shardedObjects, cfg []byte, name, url string) {
	t.Helper()
	svc, set := o.services[name], o.sets[name]
	if svc == nil || set == nil {
		t.Errorf("no Service or StatefulSet %s", name)
		return
	}
	for k, v := range svc.Spec.Selector {
		if set.Spec.Template.Labels[k] != v {
			t.Errorf("Service %s selects %s=%s, which StatefulSet %s's pods lack", name, k, v, name)
		}
	}
	if len(svc.Spec.Selector) != len(set.Spec.Selector.MatchLabels) {
		t.Errorf("Service %s selects %v, StatefulSet %s %v", name, svc.Spec.Selector, name, set.Spec.Selector.MatchLabels)
	}
	if !strings.Contains(string(cfg), " "+strings.TrimPrefix(url, "http://")+" check") {
		t.Errorf("haproxy.cfg has no server %s", url)
	}
}
