package deploytest

import (
	"context"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

func loadCompose(t *testing.T, env map[string]string, profiles ...string) *types.Project {
	t.Helper()
	var envList []string
	for k, v := range env {
		envList = append(envList, k+"="+v)
	}
	opts, err := cli.NewProjectOptions([]string{filepath.Join("..", "docker-compose.yml")},
		cli.WithName("engram"), cli.WithEnv(envList), cli.WithProfiles(profiles), cli.WithResolvedPaths(true))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("compose-go: %v", err)
	}
	return p
}

// The compose file loads with compose-go under each profile: engram-ops
// alone by default, MinIO and its bucket with --profile backup, Prometheus
// and Grafana with --profile monitoring; the build uses the repository's
// Dockerfile and ENGRAM_BACKUP_TO reaches the server.
func TestComposeLoads(t *testing.T) {
	for _, tc := range []struct {
		profiles []string
		want     []string
	}{
		{nil, []string{"engram-ops"}},
		{[]string{"backup"}, []string{"engram-ops", "s3", "s3-bucket"}},
		{[]string{"monitoring"}, []string{"engram-ops", "grafana", "prometheus"}},
	} {
		p := loadCompose(t, map[string]string{"ENGRAM_BACKUP_TO": "s3://engram-backups/prod"}, tc.profiles...)
		names := p.ServiceNames()
		sort.Strings(names)
		if !slices.Equal(names, tc.want) {
			t.Errorf("profiles %v: services %v, want %v", tc.profiles, names, tc.want)
		}
		s, err := p.GetService("engram-ops")
		if err != nil {
			t.Fatal(err)
		}
		if s.Build == nil || filepath.Base(s.Build.Dockerfile) != "Dockerfile" {
			t.Errorf("engram-ops is not built from the repository's Dockerfile: %+v", s.Build)
		} else if abs, _ := filepath.Abs(repoRoot); s.Build.Context != abs {
			t.Errorf("build context %s, want the repository root %s", s.Build.Context, abs)
		}
		if v := s.Environment["ENGRAM_BACKUP_TO"]; v == nil || *v != "s3://engram-backups/prod" {
			t.Errorf("ENGRAM_BACKUP_TO does not reach engram-ops: %v", v)
		}
		if len(s.Ports) != 1 || s.Ports[0].Target != 7432 || s.Ports[0].HostIP != "127.0.0.1" {
			t.Errorf("engram-ops ports %+v, want 7432 on the host's loopback", s.Ports)
		}
	}
}
