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
//   - ops/api is pure data: standard library only; ops/api/apijson adds
//     the JSON library only;
//   - ops/client uses only ops/api (and apijson), the JSON library and the
//     standard library;
//   - ops/health judges figures: core, ops/api and the standard library;
//   - ops/metrics never imports the server, the client or configuration;
//   - ops/config never imports the server, the client or backup;
//   - ops/server never imports backup (of any kind: stores, targets, the
//     shipper), configuration loading's libraries or the client;
//   - nothing under ops imports cobra or cmd (only cmd/engram-ops does).
func TestLayering(t *testing.T) {
	const mod = "github.com/engram-ops/engram-ops/"
	under := func(p, pkg string) bool { return p == mod+pkg || strings.HasPrefix(p, mod+pkg+"/") }
	rules := []struct {
		dir     string
		allowed func(path string) bool
	}{
		{"api", func(p string) bool { return isStd(p) }},
		{"api/apijson", func(p string) bool { return isStd(p) || strings.HasPrefix(p, "github.com/go-json-experiment/json") }},
		{"client", func(p string) bool {
			return isStd(p) || p == mod+"ops/api" || p == mod+"ops/api/apijson" || strings.HasPrefix(p, "github.com/go-json-experiment/json")
		}},
		{"health", func(p string) bool { return isStd(p) || p == mod+"core" || p == mod+"ops/api" }},
		{"metrics", func(p string) bool {
			return !under(p, "ops/server") && !under(p, "ops/client") && !under(p, "ops/config")
		}},
		{"config", func(p string) bool {
			return !under(p, "ops/server") && !under(p, "ops/client") && !under(p, "backup")
		}},
		{"server", func(p string) bool {
			return !under(p, "backup") && !under(p, "ops/client") && !strings.HasPrefix(p, "github.com/pelletier/")
		}},
	}
	dirs, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	var all []string
	for _, d := range dirs {
		if d.IsDir() {
			all = append(all, d.Name())
		}
	}
	check := func(dir string, allowed func(string) bool) {
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		if len(files) == 0 {
			t.Fatalf("no Go files in %s", dir)
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
				if !allowed(p) {
					t.Errorf("%s imports %s, which its layer forbids", f, p)
				}
			}
		}
	}
	for _, r := range rules {
		check(r.dir, r.allowed)
	}
	for _, dir := range append(all, ".") {
		check(dir, func(p string) bool { return !strings.Contains(p, "spf13/cobra") && !under(p, "cmd") })
	}
}

func isStd(p string) bool {
	first, _, _ := strings.Cut(p, "/")
	return !strings.Contains(first, ".")
}
