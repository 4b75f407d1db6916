// Command gen renders the Grafana dashboards defined in
// dashboards/internal/build into dashboards/grafana/*.json (`gen DIR`). Run
// it with `go generate ./dashboards` after changing a dashboard;
// TestGeneratedDashboardsUpToDate fails while the committed files differ
// from what it produces.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/engram-ops/engram-ops/dashboards/internal/build"
)

func main() {
	var err error
	if len(os.Args) == 2 {
		err = run(os.Args[1])
	} else {
		err = fmt.Errorf("usage: gen DIR")
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
