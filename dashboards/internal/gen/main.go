// Command gen renders the Grafana dashboards defined in
// dashboards/internal/build into dashboards/grafana/*.json (`gen DIR`), and
// writes the embedded export into deploy/monitoring (`gen -export DIR`).
// Run both with `go generate ./dashboards` after changing a dashboard, a
// rule or a stack file; the drift tests in package dashboards fail while
// the committed files differ from what these produce.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/engram-ops/engram-ops/dashboards"
	"github.com/engram-ops/engram-ops/dashboards/internal/build"
)

func main() {
	var err error
	switch {
	case len(os.Args) == 2:
		err = run(os.Args[1])
	case len(os.Args) == 3 && os.Args[1] == "-export":
		_, err = dashboards.Export(os.Args[2], true)
	default:
		err = fmt.Errorf("usage: gen DIR | gen -export DIR")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	files, err := build.All()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f.Name), f.JSON, 0o644); err != nil {
			return err
		}
	}
	return nil
}
