package deploytest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/engram-ops/engram-ops/internal/testsupport"
	"github.com/engram-ops/engram-ops/ops/api"
	"github.com/engram-ops/engram-ops/ops/client"
)

// run runs the binary and returns its stdout, failing on a non-zero exit.
func run(t *testing.T, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(engramBinary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("engram-ops %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// createAdminKey is the runbook's first-key step (server stopped).
func createAdminKey(t *testing.T, dataDir string) string {
	t.Helper()
	var created api.APIKeyCreated
	out := run(t, nil, "apikey", "create", "--data-dir", dataDir, "--name", "admin", "--permissions", "admin", "--output", "json")
	if err := json.Unmarshal([]byte(out), &created); err != nil || !strings.HasPrefix(created.Token, "engk_") {
		t.Fatalf("apikey create --output json: %v %q", err, out)
	}
	return created.Token
}

// verifyServing is the runbook's verification after each stage: ready
// (engram-ops health), a remember/recall round trip, metrics scraped, the
// first backup shipped to backupURL, and a restore drill of it.
func verifyServing(t *testing.T, base, token, backupURL string) {
	t.Helper()
	run(t, nil, "health", "--target", base)
	c, err := client.New(base, client.WithToken(token), client.WithSpace("deploy"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	id, err := c.RememberID(ctx, api.RememberRequest{Content: "the deployment runbook was followed end to end"})
	if err != nil {
		t.Fatalf("remember: %v", err)
	}
	rec, err := c.Recall(ctx, api.RecallRequest{Query: "deployment runbook followed", MaxResults: 5})
	if err != nil {
		t.Fatalf("recall: %v", err)
	}
	found := false
	for _, m := range rec.Memories.Vivid {
		found = found || m.ID == id
	}
	if !found {
		t.Fatalf("recall did not return the remembered memory %s: %+v", id, rec.Memories)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		metrics := scrapeMetrics(t, base)
		if strings.Contains(metrics, "engram_build_info{") &&
			strings.Contains(metrics, `engram_backup_last_success_timestamp_seconds{kind="snapshot"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no snapshot shipped to %s within 20s; /metrics:\n%s", backupURL, metrics)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if out := run(t, nil, "backup", "list", "--from", backupURL); !strings.Contains(out, "snapshot") && len(strings.TrimSpace(out)) == 0 {
		t.Fatalf("backup list --from %s shows nothing", backupURL)
	}
	run(t, nil, "backup", "verify", "--from", backupURL, "--level", "4")
}

func scrapeMetrics(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d %s", resp.StatusCode, b.String())
	}
	return b.String()
}

// runbooks/deployment.md, "Plain binary": the server started with its data
// directory and --backup-to, then every verification step.
func TestRunbookPlainBinary(t *testing.T) {
	dir := t.TempDir()
	data, backups := filepath.Join(dir, "engram-data"), filepath.Join(dir, "backups")
	backupURL := "file://" + backups
	if err := os.MkdirAll(backups, 0o750); err != nil {
		t.Fatal(err)
	}
	s, err := testsupport.TryStartServe(t, data, testsupport.ServeOptions{Binary: engramBinary(t)}, "--backup-to", backupURL, "--snapshot-interval", "1h")
	if err != nil {
		t.Fatal(err)
	}
	verifyServing(t, s.URL, "", backupURL)
	if err := s.Stop(); err != nil {
		t.Fatalf("graceful stop: %v\n%s", err, s.Logs.String())
	}
}

// unit is what the test reads from the systemd unit.
type unit struct {
	execStart []string
	env       []string
	envFile   string
	killSig   syscall.Signal
}

func readUnit(t *testing.T) unit {
	t.Helper()
	f, err := os.Open(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var u unit
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok || strings.HasPrefix(k, "#") {
			continue
		}
		switch k {
		case "ExecStart":
			u.execStart = strings.Fields(v)
		case "Environment":
			u.env = append(u.env, v)
		case "EnvironmentFile":
			u.envFile = strings.TrimPrefix(v, "-")
		case "KillSignal":
			if v != "SIGTERM" {
				t.Fatalf("KillSignal=%s: the server drains on SIGTERM", v)
			}
			u.killSig = syscall.SIGTERM
		}
	}
	if len(u.execStart) == 0 || u.envFile == "" || u.killSig == 0 {
		t.Fatalf("the unit lacks ExecStart, EnvironmentFile or KillSignal: %+v", u)
	}
	return u
}

// runbooks/deployment.md, "systemd": the first admin key created in the
// state directory, settings in the environment file, then the unit's
// ExecStart run as systemd runs it: its command line, its Environment=
// lines overridden by the environment file, WorkingDirectory the state
// directory, and stopped with its KillSignal. What systemd itself does
// (the user, the sandbox) is not reproduced here; systemd-analyze verify
// checks those settings.
func TestRunbookSystemd(t *testing.T) {
	u := readUnit(t)
	dir := t.TempDir()
	state, backups := filepath.Join(dir, "var-lib-engram-ops"), filepath.Join(dir, "backups")
	for _, d := range []string{state, backups} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			t.Fatal(err)
		}
	}
	token := createAdminKey(t, state)
	addr := testsupport.FreeAddr(t)
	backupURL := "file://" + backups
	// The runbook's /etc/engram-ops/engram-ops.env, with this test's paths.
	envFile := strings.Join([]string{
		"ENGRAM_DATA_DIR=" + state,
		"ENGRAM_LISTEN=" + addr,
		"ENGRAM_AUTH_MODE=api_key",
		"ENGRAM_BACKUP_TO=" + backupURL,
	}, "\n") + "\n"
	var env []string
	env = append(env, "PATH="+os.Getenv("PATH"), "HOME="+dir)
	env = append(env, u.env...)
	// Later entries win, as EnvironmentFile= does over Environment=.
	env = append(env, strings.Split(strings.TrimSpace(envFile), "\n")...)
	if u.execStart[0] != "/usr/local/bin/engram-ops" {
		t.Fatalf("ExecStart runs %s, not /usr/local/bin/engram-ops", u.execStart[0])
	}
	cmd := exec.Command(engramBinary(t), u.execStart[1:]...)
	cmd.Env, cmd.Dir = env, state
	logs := &testsupport.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// exited is closed once the process has exited, with waitErr set.
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	base := "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		if exec.Command(engramBinary(t), "health", "--target", base, "--quiet", "--timeout", "1s").Run() == nil {
			break
		}
		select {
		case <-exited:
			t.Fatalf("the unit's server exited (%v):\n%s", waitErr, logs.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the unit's server is not ready within 30s:\n%s", logs.String())
		}
	}
	// Without a key the API refuses: auth.mode = api_key took effect.
	if resp, err := http.Get(base + "/api/v1/spaces"); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET /api/v1/spaces without a key: %v %v, want 401", resp, err)
	} else {
		resp.Body.Close()
	}
	verifyServing(t, base, token, backupURL)
	if err := cmd.Process.Signal(u.killSig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
		if waitErr != nil {
			t.Fatalf("after %v the server exited with %v:\n%s", u.killSig, waitErr, logs.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("the server did not stop within TimeoutStopSec (60s) of %v", u.killSig)
	}
}
