// Package examples runs every example under examples/rest and
// examples/grpc against a live `engram-ops serve` with API keys required,
// and checks each one's exit code and output. A missing toolchain fails the test (scripts/test.sh
// installs them); with ENGRAM_TEST_EXAMPLES_SKIP_MISSING=1 it skips instead.
package examples

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/engram-ops/engram-ops/core/apikey"
	"github.com/engram-ops/engram-ops/internal/testsupport"
)

// skipMissingEnv, when set, turns a missing toolchain into a skip.
const skipMissingEnv = "ENGRAM_TEST_EXAMPLES_SKIP_MISSING"

func TestMain(m *testing.M) {
	code := m.Run()
	testsupport.Cleanup()
	os.Exit(code)
}

// jackson is the classpath of Debian's libjackson2-databind-java.
var jackson = strings.Join([]string{
	"/usr/share/java/jackson-databind.jar",
	"/usr/share/java/jackson-core.jar",
	"/usr/share/java/jackson-annotations.jar",
}, string(os.PathListSeparator))

// example is one example: its directory under rest/, the commands its
// README gives, and what it needs installed.
type example struct {
	lang  string
	steps [][]string // run in order in the example's directory
	tools []string   // commands on PATH
	files []string   // globs that must match (libraries from Debian packages)
	env   []string
}

func examples(t *testing.T) []example {
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	return []example{
		{lang: "go", steps: [][]string{{"go", "run", "."}}, tools: []string{"go"}},
		{lang: "python", steps: [][]string{{"python3", "main.py"}}, tools: []string{"python3"}},
		{
			lang:  "typescript",
			steps: [][]string{{"npm", "ci", "--prefer-offline", "--no-audit", "--no-fund", "--silent"}, {"npm", "start", "--silent"}},
			tools: []string{"node", "npm"},
		},
		{
			lang:  "java",
			steps: [][]string{{"java", "-cp", jackson, "Example.java"}},
			tools: []string{"java", "javac"},
			files: strings.Split(jackson, string(os.PathListSeparator)),
		},
		{
			// The target directory is cached across runs: only the first
			// build compiles the crates.
			lang:  "rust",
			steps: [][]string{{"cargo", "run", "--quiet", "--locked"}},
			tools: []string{"cargo"},
			files: []string{"/usr/share/cargo/registry/ureq-2.*", "/usr/share/cargo/registry/serde_json-1.*"},
			env:   []string{"CARGO_TARGET_DIR=" + filepath.Join(cache, "engram-ops", "examples-rust-target")},
		},
	}
}

// want is the output every example prints for the space it works in.
func want(space string) string {
	return strings.ReplaceAll(`auth: without a key 401 MISSING_API_KEY
space: SPACE
remember: mito confidence 0.9 High
remember: atp confidence 0.8 High
associate: mito -> atp
vivid: mito
associated: atp via mito -> atp
episode: lab-day confidence 0.7
batch: 3 memories, 2 associations
forget: mito forgotten, then 404 MEMORY_NOT_FOUND
error: 400 EMPTY_CONTENT: content is empty; a memory needs text to remember
spaces: SPACE holds 5 memories
done
`, "SPACE", space)
}

// missing names what ex needs and the machine lacks.
func (ex example) missing() []string {
	var out []string
	for _, tool := range ex.tools {
		if _, err := exec.LookPath(tool); err != nil {
			out = append(out, tool)
		}
	}
	for _, f := range ex.files {
		if m, _ := filepath.Glob(f); len(m) == 0 {
			out = append(out, f)
		}
	}
	return out
}

// TestRESTExamples runs each REST example, each in its own space, against
// one server with auth on and a read/write key made by `apikey create`.
func TestRESTExamples(t *testing.T) {
	dataDir := t.TempDir()
	token := createKey(t, dataDir)
	s := testsupport.StartServe(t, dataDir, "--set", "auth.mode=api_key", "--no-access-log")
	for _, ex := range examples(t) {
		t.Run(ex.lang, func(t *testing.T) {
			t.Parallel()
			skipMissing(t, ex)
			space := "examples-" + ex.lang
			env := append([]string{"ENGRAM_URL=" + s.URL, "ENGRAM_API_KEY=" + token, "ENGRAM_SPACE=" + space}, ex.env...)
			var stdout string
			for _, argv := range ex.steps {
				stdout = run(t, filepath.Join("rest", ex.lang), env, argv)
			}
			if w := want(space); stdout != w {
				t.Errorf("%s example printed:\n%s\nwant:\n%s", ex.lang, stdout, w)
			}
		})
	}
}

// grpcSpace is the space the gRPC example in lang works in.
func grpcSpace(lang string) string { return "examples-grpc-" + lang }

// grpcExamples are the examples under grpc/, given the server's gRPC
// address (the Go one takes flags, the others ENGRAM_GRPC_ADDR and
// ENGRAM_SPACE).
func grpcExamples(addr string) []example {
	return []example{
		{lang: "go", steps: [][]string{{"go", "run", ".", "-addr", addr, "-space", grpcSpace("go")}}, tools: []string{"go"}},
		{
			// Debian's Python: python3-grpcio and python3-grpc-tools install
			// into its dist-packages only.
			lang:  "python",
			steps: [][]string{{"/usr/bin/python3", "main.py"}},
			tools: []string{"/usr/bin/python3"},
			files: []string{"/usr/lib/python3/dist-packages/grpc/__init__.py", "/usr/lib/python3/dist-packages/grpc_tools/protoc.py"},
		},
		{
			lang:  "typescript",
			steps: [][]string{{"npm", "ci", "--prefer-offline", "--no-audit", "--no-fund", "--silent"}, {"npm", "start", "--silent"}},
			tools: []string{"node", "npm"},
		},
		{
			// run.sh generates the classes with protoc and Debian's
			// protoc-gen-grpc-java, then compiles and runs them against
			// Debian's jars.
			lang:  "java",
			steps: [][]string{{"sh", "run.sh"}},
			tools: []string{"java", "javac", "protoc"},
			files: grpcJavaFiles,
		},
	}
}

// grpcJavaFiles are what the Java gRPC example needs from Debian's
// packages: the plugin, the gRPC runtime with its Netty transport, and the
// annotation the generated stubs carry.
var grpcJavaFiles = []string{
	"/usr/bin/grpc_java_plugin",
	"/usr/share/java/grpc-api.jar",
	"/usr/share/java/grpc-context.jar",
	"/usr/share/java/grpc-core.jar",
	"/usr/share/java/grpc-netty.jar",
	"/usr/share/java/grpc-protobuf.jar",
	"/usr/share/java/grpc-protobuf-lite.jar",
	"/usr/share/java/grpc-stub.jar",
	"/usr/share/java/protobuf.jar",
	"/usr/share/java/guava.jar",
	"/usr/share/java/perfmark-api.jar",
	"/usr/share/java/netty-codec-http2.jar",
	"/usr/share/java/geronimo-annotation-1.3-spec.jar",
}

// wantGRPC is the output every gRPC example prints.
const wantGRPC = `remembered deploy-failed (confidence 0.90)
remembered disk-alert (confidence 0.80)
experienced postmortem
associated deploy-failed -> disk-alert
  vivid      deploy-failed (0.55)
  vivid      postmortem (0.22)
  associated disk-alert (0.19)
recall: 2 vivid, 1 associated
batch: 3 remembered
forgot batch-0
refused: InvalidArgument EMPTY_CONTENT: content is empty; a memory needs text to remember
`

// TestGRPCExamples runs each gRPC example, each in its own space, against
// one server with auth on, gRPC on a free port and a read/write key.
func TestGRPCExamples(t *testing.T) {
	dataDir := t.TempDir()
	token := createKey(t, dataDir)
	addr := testsupport.FreeAddr(t)
	testsupport.StartServe(t, dataDir, "--set", "auth.mode=api_key", "--no-access-log", "--grpc-listen", addr)
	for _, ex := range grpcExamples(addr) {
		t.Run(ex.lang, func(t *testing.T) {
			t.Parallel()
			skipMissing(t, ex)
			env := []string{"ENGRAM_GRPC_ADDR=" + addr, "ENGRAM_API_KEY=" + token, "ENGRAM_SPACE=" + grpcSpace(ex.lang)}
			var stdout string
			for _, argv := range ex.steps {
				stdout = run(t, filepath.Join("grpc", ex.lang), env, argv)
			}
			if stdout != wantGRPC {
				t.Errorf("%s gRPC example printed:\n%s\nwant:\n%s", ex.lang, stdout, wantGRPC)
			}
		})
	}
}

// skipMissing fails (or, with skipMissingEnv set, skips) the test when the
// machine lacks what ex needs.
func skipMissing(t *testing.T, ex example) {
	t.Helper()
	if miss := ex.missing(); len(miss) > 0 {
		msg := fmt.Sprintf("the %s example needs %s, which this machine lacks (scripts/test.sh installs it)", ex.lang, strings.Join(miss, ", "))
		if os.Getenv(skipMissingEnv) != "" {
			t.Skipf("%s; skipped because %s is set", msg, skipMissingEnv)
		}
		t.Fatalf("%s; set %s=1 to skip it locally", msg, skipMissingEnv)
	}
}

// createKey makes a read/write key on the stopped data directory and
// returns its token.
func createKey(t *testing.T, dataDir string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(testsupport.MustBinary(t), "apikey", "create", "--data-dir", dataDir, "--name", "examples", "--permissions", "read,write")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("apikey create: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	token := strings.TrimSpace(stdout.String())
	if !apikey.Valid(token) {
		t.Fatalf("apikey create printed %q, not a token", token)
	}
	return token
}

// run runs argv in dir with env added, fails the test unless it exits 0,
// and returns its stdout.
func run(t *testing.T, dir string, env, argv []string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	t.Logf("%s: %s", strings.Join(argv[:2], " "), time.Since(start).Round(time.Millisecond))
	if err != nil {
		t.Fatalf("%s in %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(argv, " "), dir, err, stdout.String(), stderr.String())
	}
	return stdout.String()
}
