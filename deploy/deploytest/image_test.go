package deploytest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/engram-ops/engram-ops/internal/testsupport"
)

// What the Dockerfile promises, read from the file itself.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	for _, want := range []string{
		"AS build\n", "CGO_ENABLED=0 go build", "-X main.version=${VERSION}", "-X main.revision=${REVISION}",
		"\nFROM scratch\n", "\nUSER 65532:65532\n", "\nVOLUME [\"/data\"]\n", "\nEXPOSE 7432\n", "\nSTOPSIGNAL SIGTERM\n",
		`CMD ["/engram-ops", "health", "--quiet"]`, "\nENTRYPOINT [\"/engram-ops\"]\n", "ENGRAM_LISTEN=0.0.0.0:7432", "ENGRAM_DATA_DIR=/data",
	} {
		if !strings.Contains(df, want) {
			t.Errorf("the Dockerfile has no %q", strings.TrimSpace(want))
		}
	}
	if strings.Contains(df, "curl") || strings.Contains(df, "wget") {
		t.Error("the HEALTHCHECK must run engram-ops itself: the image has no curl or wget")
	}
	di, err := os.ReadFile(filepath.Join(repoRoot, ".dockerignore"))
	if err != nil || !strings.Contains(string(di), ".git") {
		t.Errorf(".dockerignore missing or keeps .git: %v", err)
	}
}

// The image built by podman from the Dockerfile, its final stage taking the
// binary this test builds (the golang build stage needs a registry, which is
// not reachable here), runs as 65532, serves /health/ready and passes its
// own HEALTHCHECK, and stops on SIGTERM. podman runs it with runc, cgroupfs
// and explicit ulimits: this machine's crun refuses hybrid cgroups and its
// kernel refuses raising RLIMIT_NPROC/NOFILE to the defaults.
func TestImageBuildsAndServes(t *testing.T) {
	podman, err := exec.LookPath("podman")
	if err != nil {
		t.Skip("podman is not installed (scripts/test.sh installs Debian's podman and runc)")
	}
	if _, err := exec.LookPath("runc"); err != nil {
		t.Skip("runc is not installed (scripts/test.sh installs it)")
	}
	ctxDir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(ctxDir, "out", "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(engramBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ctxDir, "out", "engram-ops"), bin, 0o755); err != nil {
		t.Fatal(err)
	}
	tag := "localhost/engram-ops-deploytest:" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))
	pod := func(args ...string) (string, error) {
		cmd := exec.Command(podman, append([]string{"--runtime", "runc", "--cgroup-manager", "cgroupfs"}, args...)...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return out.String(), err
	}
	root, _ := filepath.Abs(repoRoot)
	if out, err := pod("build", "--format", "docker", "--build-context", "build="+ctxDir, "-t", tag, root); err != nil {
		t.Fatalf("podman build: %v\n%s", err, out)
	}
	t.Cleanup(func() { _, _ = pod("rmi", "-f", tag) })
	if out, err := pod("image", "inspect", "--format", "{{.Config.User}} {{.Config.StopSignal}} {{.Config.Healthcheck.Test}}", tag); err != nil ||
		!strings.Contains(out, "65532:65532 SIGTERM") || !strings.Contains(out, "/engram-ops health") {
		t.Fatalf("image config: %v %q", err, out)
	}
	addr := testsupport.FreeAddr(t)
	name := "engram-ops-deploytest-" + strings.ReplaceAll(strings.TrimPrefix(addr, "127.0.0.1:"), ":", "")
	// Loopback on the host network: the test listens on 127.0.0.1 only.
	if out, err := pod("run", "-d", "--name", name, "--network", "host", "--health-interval", "disable",
		"--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096", "-e", "ENGRAM_LISTEN="+addr, tag); err != nil {
		t.Fatalf("podman run: %v\n%s", err, out)
	}
	t.Cleanup(func() { _, _ = pod("rm", "-f", "-t", "0", name) })
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := pod("healthcheck", "run", name)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			logs, _ := pod("logs", name)
			t.Fatalf("the HEALTHCHECK does not pass within 30s: %v %s\n%s", err, out, logs)
		}
		time.Sleep(300 * time.Millisecond)
	}
	if out, err := exec.Command(engramBinary(t), "health", "--target", "http://"+addr).CombinedOutput(); err != nil {
		t.Fatalf("/health/ready from the host: %v %s", err, out)
	}
	if out, err := pod("stop", "-t", "30", name); err != nil {
		t.Fatalf("podman stop: %v %s", err, out)
	}
	logs, _ := pod("logs", name)
	if !strings.Contains(logs, "engine closed") {
		t.Errorf("no graceful shutdown after SIGTERM:\n%s", logs)
	}
	if out, _ := pod("inspect", "--format", "{{.State.ExitCode}}", name); strings.TrimSpace(out) != "0" {
		t.Errorf("exit code after SIGTERM %q, want 0", out)
	}
}
