package main

import (
	"context"
	"encoding/json"
	"flag"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/engram-ops/engram-ops/internal/testsupport"
	"github.com/spf13/cobra"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// syncBuffer is a goroutine-safe buffer for a command's output.
type syncBuffer = testsupport.SyncBuffer

// runCLI runs the command in-process with an empty environment (plus env)
// and returns the exit code, stdout and stderr.
func runCLI(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr syncBuffer
	a := newApp(strings.NewReader(""), &stdout, &stderr, func(k string) string { return env[k] })
	code := a.run(context.Background(), args)
	return code, stdout.String(), stderr.String()
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run %s -update to create it)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (go test ./cmd/engram-ops -run %s -update to accept):\n--- got ---\n%s\n--- want ---\n%s",
			name, t.Name(), got, want)
	}
}

func TestHelpGolden(t *testing.T) {
	for _, tc := range []struct {
		file string
		args []string
	}{
		{"help.golden", []string{"--help"}},
		{"serve-help.golden", []string{"serve", "--help"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			code, out, errOut := runCLI(t, nil, tc.args...)
			if code != 0 || errOut != "" {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			golden(t, tc.file, out)
		})
	}
}

// TestEveryCommandHasHelpAndExample walks the command tree.
func TestEveryCommandHasHelpAndExample(t *testing.T) {
	a := newApp(strings.NewReader(""), &syncBuffer{}, &syncBuffer{}, func(string) string { return "" })
	root := a.rootCommand()
	stack := []*cobra.Command{root}
	for len(stack) > 0 {
		c := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if c.Name() == "help" {
			continue
		}
		if c.Short == "" || c.Example == "" {
			t.Errorf("%q lacks a short description or an example", c.CommandPath())
		}
		stack = append(stack, c.Commands()...)
	}
}

func TestExitCodes(t *testing.T) {
	cases := []struct {
		name string
		args []string
		code int
		err  string
	}{
		{"unknown command", []string{"frobnicate"}, exitUsage, "unknown command"},
		{"unknown flag", []string{"serve", "--frobnicate"}, exitUsage, "Try: engram-ops serve --help"},
		{"bad output", []string{"version", "--output", "yaml"}, exitUsage, "table or json"},
		{"extra args", []string{"version", "extra"}, exitUsage, "unknown command"},
		{"completion bad shell", []string{"completion", "tcsh"}, exitUsage, "tcsh"},
		{"validate without file", []string{"validate", "config"}, exitUsage, "accepts 1 arg"},
		{"validate missing file", []string{"validate", "config", "/nonexistent/engram.toml"}, exitFailed, "no such file"},
		{"serve bad durability", []string{"serve", "--durability", "yolo", "--data-dir", "unused"}, exitUsage, `durability = "yolo"`},
		{"serve bad set", []string{"serve", "--set", "nope"}, exitUsage, "key=value"},
		{"serve unknown set key", []string{"serve", "--set", "index.nope=1"}, exitUsage, "index.nope"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := runCLI(t, nil, tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr %s", code, tc.code, errOut)
			}
			if !strings.Contains(errOut, tc.err) {
				t.Errorf("stderr %q does not mention %q", errOut, tc.err)
			}
		})
	}
}

func TestServeBadEnvIsUsageError(t *testing.T) {
	code, _, errOut := runCLI(t, map[string]string{"ENGRAM_LIMITS_MAX_RESULTS": "lots", "ENGRAM_LOG_LEVEL": "chatty"}, "serve", "--data-dir", t.TempDir())
	if code != exitUsage || !strings.Contains(errOut, "ENGRAM_LIMITS_MAX_RESULTS") || !strings.Contains(errOut, "log.level") {
		t.Errorf("exit %d stderr %s", code, errOut)
	}
}

func TestServePortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	code, _, errOut := runCLI(t, nil, "serve", "--listen", ln.Addr().String(), "--data-dir", t.TempDir())
	if code != exitFailed || !strings.Contains(errOut, "listen on") {
		t.Errorf("exit %d stderr %s", code, errOut)
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := runCLI(t, nil, "version", "--output", "json")
	if code != 0 {
		t.Fatal(code)
	}
	var v map[string]string
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatal(err, out)
	}
	if v["version"] == "" || v["revision"] == "" || !strings.HasPrefix(v["go_version"], "go") {
		t.Errorf("version %v", v)
	}
	code, out, _ = runCLI(t, nil, "version")
	if code != 0 || !strings.Contains(out, "version") || !strings.Contains(out, v["go_version"]) {
		t.Errorf("table: %d %q", code, out)
	}
}

func TestCompletion(t *testing.T) {
	for _, sh := range []string{"bash", "zsh", "fish", "powershell"} {
		code, out, errOut := runCLI(t, nil, "completion", sh)
		if code != 0 || !strings.Contains(out, "engram-ops") {
			t.Errorf("%s: exit %d stderr %s", sh, code, errOut)
		}
	}
}

func TestValidateConfig(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.toml")
	os.WriteFile(good, []byte("listen = \"127.0.0.1:7000\"\n[limits]\nmax_body_bytes = 1048576\n"), 0o644)
	code, out, _ := runCLI(t, nil, "validate", "config", good)
	if code != 0 || !strings.Contains(out, "config OK") {
		t.Errorf("good: %d %q", code, out)
	}

	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte(`durability = "yolo"
colour = "blue"
[limits]
max_results = 0
max_body_bytes = 12
[index]
m = 1
`), 0o644)
	code, out, errOut := runCLI(t, nil, "validate", "config", bad)
	if code != exitNotPassed {
		t.Errorf("bad: exit %d, want 3", code)
	}
	for _, want := range []string{"colour", "durability", "limits.max_results", "limits.max_body_bytes", "index.m"} {
		if !strings.Contains(out, want) {
			t.Errorf("problem %s not printed:\n%s", want, out)
		}
	}
	if !strings.Contains(errOut, "problem(s)") {
		t.Errorf("summary missing: %q", errOut)
	}

	code, out, _ = runCLI(t, nil, "validate", "config", bad, "--output", "json")
	var rep configReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != exitNotPassed || rep.OK || len(rep.Problems) < 5 {
		t.Errorf("json: %d %+v %v", code, rep, err)
	}
}
