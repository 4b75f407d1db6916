// Package dashboards holds engram-ops' observability as code, compiled into
// the binary so `engram-ops dashboards export` needs nothing else:
//
//   - grafana/*.json: the Grafana dashboards, rendered from the Go
//     definitions in internal/build (grafana-foundation-sdk) by
//     `go generate ./dashboards`; a test fails when they drift;
//   - prometheus/alerts.yml and recording.yml: alert and recording rules,
//     with promtool unit tests in prometheus/tests/;
//   - stack/: prometheus.yml, Grafana provisioning and a docker-compose.yml
//     for the monitoring stack.
//
// Export writes all of it in the layout the compose file and the Grafana
// provisioning expect (see Layout). These directories are the only copy in
// the repository: deploy/docker-compose.yml mounts them from
// here, and a test fails while grafana/*.json differs from what
// internal/build renders (regenerate with `go generate ./dashboards`).
//
// Every metric the dashboards and rules name is checked against a scrape of
// a live server (cmd/engram-ops tests), and every alert is proven to fire
// and resolve by promtool unit tests and, for latency and errors, by a real
// Prometheus against a real server with injected faults.
//
// This package imports only the standard library; the SDK is used by the
// generator and the tests only.
package dashboards

//go:generate go run ./internal/gen grafana

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

//go:embed grafana/*.json prometheus/*.yml prometheus/tests/*.yml stack
var files embed.FS

// File is one exported file.
type File struct {
	Path string // slash-separated path relative to the export directory
	Data []byte
}

// Layout maps the embedded directories onto the export directory:
//
//	dashboards/           Grafana dashboard JSON (mounted at /var/lib/grafana/dashboards/engram)
//	rules/                Prometheus alert and recording rules, rules/tests/ their promtool tests
//	provisioning/         Grafana provisioning (datasources/, dashboards/)
//	prometheus.yml        Prometheus configuration
//	docker-compose.yml    the stack (docker compose --profile monitoring up)
var Layout = map[string]string{
	"grafana":    "dashboards",
	"prometheus": "rules",
	"stack":      "",
}

// Files returns every file Export writes, sorted by path.
func Files() ([]File, error) {
	var out []File
	err := fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		top, rest, _ := strings.Cut(p, "/")
		dst, ok := Layout[top]
		if !ok {
			return fmt.Errorf("embedded file %s has no export location", p)
		}
		b, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		out = append(out, File{Path: path.Join(dst, rest), Data: b})
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, err
}

// Dashboards returns the dashboard JSON files by file name.
func Dashboards() (map[string][]byte, error) {
	return readDir("grafana", ".json")
}

// Rules returns the rule files (alerts.yml, recording.yml) by file name.
func Rules() (map[string][]byte, error) {
	return readDir("prometheus", ".yml")
}

func readDir(dir, ext string) (map[string][]byte, error) {
	ents, err := files.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for _, e := range ents {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ext) {
			continue
		}
		b, err := files.ReadFile(dir + "/" + e.Name())
		if err != nil {
			return nil, err
		}
		out[e.Name()] = b
	}
	return out, nil
}

// ErrNotEmpty is returned by Export when dir has entries and force is off.
var ErrNotEmpty = errors.New("directory is not empty")

// Export writes every file into dir (created if missing). A dir that has
// entries is refused unless force is set, in which case files are
// overwritten (other files in dir are left alone). It returns the paths
// written, relative to dir.
func Export(dir string, force bool) ([]string, error) {
	fl, err := Files()
	if err != nil {
		return nil, err
	}
	if ents, err := os.ReadDir(dir); err == nil {
		if len(ents) > 0 && !force {
			return nil, fmt.Errorf("%s: %w (%d entries); choose an empty directory or pass --force to overwrite", dir, ErrNotEmpty, len(ents))
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	var written []string
	for _, f := range fl {
		dst := filepath.Join(dir, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return written, fmt.Errorf("create %s: %w", filepath.Dir(dst), err)
		}
		if err := os.WriteFile(dst, f.Data, 0o644); err != nil {
			return written, fmt.Errorf("write %s: %w", dst, err)
		}
		written = append(written, f.Path)
	}
	return written, nil
}
