package core_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestCoreImportsOnlyWhatItMay enforces the design's dependency direction:
// core and its sub-packages never import transports, exporters, CLIs, cloud
// clients or database drivers.
func TestCoreImportsOnlyWhatItMay(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}:{{join .Imports " "}}`, "github.com/engram-ops/engram-ops/core/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	banned := []string{
		"net/http", "github.com/prometheus/", "github.com/spf13/cobra", "github.com/charmbracelet/",
		"github.com/minio/", "github.com/jackc/", "github.com/redis/", "github.com/neo4j/",
		"github.com/engram-ops/engram-ops/ops", "github.com/engram-ops/engram-ops/backup",
		"github.com/engram-ops/engram-ops/cmd",
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) < 2 {
		t.Fatalf("expected core and its sub-packages, got %q", out)
	}
	for _, line := range lines {
		pkg, imports, _ := strings.Cut(line, ":")
		for _, imp := range strings.Fields(imports) {
			for _, b := range banned {
				if imp == b || strings.HasPrefix(imp, b) {
					t.Errorf("%s imports %s; core must not import %s", pkg, imp, b)
				}
			}
		}
	}
}
