package ops

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestLayering enforces the import rules the package docs state:
//   - ops/api is pure data: standard library only;
//   - ops/client uses only ops/api and the standard library;
//   - ops/metrics never imports ops, ops/client or cobra;
//   - nothing under ops imports cobra (only cmd/engram-ops does).
func TestLayering(t *testing.T) {
	const mod = "github.com/engram-ops/engram-ops/"
	rules := []struct {
		dir     string
		allowed func(path string) bool
	}{
		{"api", func(p string) bool { return isStd(p) }},
		{"client", func(p string) bool { return isStd(p) || p == mod+"ops/api" }},
		{"metrics", func(p string) bool {
			return p != mod+"ops" && !strings.HasPrefix(p, mod+"ops/client") && !strings.Contains(p, "cobra")
		}},
		{".", func(p string) bool { return !strings.Contains(p, "spf13/cobra") && p != mod+"ops/client" }},
	}
	for _, r := range rules {
		files, _ := filepath.Glob(filepath.Join(r.dir, "*.go"))
		if len(files) == 0 {
			t.Fatalf("no Go files in %s", r.dir)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			af, err := parser.ParseFile(token.NewFileSet(), f, src, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range af.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				if !r.allowed(p) {
					t.Errorf("%s imports %s, which its layer forbids", f, p)
				}
			}
		}
	}
}

func isStd(p string) bool {
	first, _, _ := strings.Cut(p, "/")
	return !strings.Contains(first, ".")
}
