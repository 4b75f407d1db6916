package deploytest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/engram-ops/engram-ops/internal/testsupport"
)

var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

// engramBinary is the engram-ops binary as the Dockerfile builds it
// (static, version ldflags), built once from the repository's own module
// so its dependencies are the binary's, not this module's.
func engramBinary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		if p := os.Getenv(testsupport.BinaryEnv); p != "" {
			binPath = p
			return
		}
		if binDir, binErr = os.MkdirTemp("", "engram-ops-deploytest-"); binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "engram-ops")
		root, _ := filepath.Abs(repoRoot)
		build := exec.Command("go", "build", "-trimpath", "-ldflags", "-X main.version=deploytest -X main.revision=test",
			"-o", binPath, "./cmd/engram-ops")
		build.Dir = root
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		var out bytes.Buffer
		build.Stdout, build.Stderr = &out, &out
		if err := build.Run(); err != nil {
			binErr = fmt.Errorf("build engram-ops: %v\n%s", err, out.String())
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}
