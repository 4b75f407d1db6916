package placement

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/engram-ops/engram-ops/ops/server"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// goldenRoutes is a fixed route table, so the golden file does not change
// with every route the server gains (TestRenderClassifiesServerRoutes
// checks the real table).
var goldenRoutes = []Route{
	{"GET", "/api/v1/memories/{id}", true},
	{"DELETE", "/api/v1/memories/{id}", false},
	{"GET", "/api/v1/memories/recall", true},
	{"POST", "/api/v1/memories/recall", true},
	{"POST", "/api/v1/memories/remember", false},
	{"POST", "/api/v1/memories/batch", false},
	{"GET", "/api-docs/openapi.json", true},
}

func TestParseExample(t *testing.T) {
	p, err := Load("testdata/placement.toml")
	if err != nil {
		t.Fatal(err)
	}
	if p.ShardOf("tenant-b") != "b" || p.ShardOf("unmapped") != "a" || len(p.Shards[0].Followers) != 2 {
		t.Fatalf("parsed %+v", p)
	}
	if s, ok := p.ShardByURL("http://10.0.1.1:7432/"); !ok || s.Name != "b" {
		t.Fatalf("ShardByURL: %+v %v", s, ok)
	}
}

// Every problem is reported at once with its file:line.
func TestParseErrors(t *testing.T) {
	cases := []struct{ doc, want string }{
		{"default_shard = \"a\"\nbogus = 1\n", "p.toml:2:1: unknown key bogus"},
		{"default_shard = \"a\"\n[[shards]]\nname = \"a\"\nprimary = \"http://h:1\"\nweight = 3\n", "p.toml:5:1: unknown key shards.weight"},
		{"default_shard = 1\n", "p.toml:1:"},
		{"default_shard = \"a\"\n" + okRouter + "[[shards]]\nname = \"a\"\nprimary = \"http://h:1\"\n[[shards]]\nname = \"B!\"\nprimary = \"https://h:2\"\n",
			"p.toml:9: shards[1].name: \"B!\" must be"},
		{"default_shard = \"a\"\n" + okRouter + "[[shards]]\nname = \"a\"\nprimary = \"http://h:1\"\n[[shards]]\nname = \"b\"\nprimary = \"https://h:2\"\n",
			"p.toml:10: shards[1].primary: \"https://h:2\": the router reaches servers over http:// only"},
		{"default_shard = \"z\"\n" + okRouter + "[[shards]]\nname = \"a\"\nprimary = \"http://h:1\"\nfollowers = [\"http://h:1\"]\n",
			"p.toml:1: default_shard: no shard is named \"z\""},
		{"default_shard = \"a\"\n" + okRouter + "[[shards]]\nname = \"a\"\nprimary = \"http://h:1\"\nfollowers = [\"http://h:1\"]\n",
			"p.toml:8: shards[0].followers: http://h:1 is already a server of shard \"a\""},
		{"default_shard = \"a\"\n" + okRouter + "[[shards]]\nname = \"a\"\nprimary = \"http://h:1\"\n[spaces]\nok-space = \"a\"\nX = \"a\"\nlost = \"q\"\n",
			"p.toml:10: spaces.X: space name \"X\""},
		{"default_shard = \"a\"\n" + okRouter + "[[shards]]\nname = \"a\"\nprimary = \"http://h:1\"\n[spaces]\nlost-space = \"q\"\n",
			"p.toml:9: spaces.lost-space: no shard is named \"q\""},
		{"default_shard = \"a\"\n[router]\nlisten = \"nope\"\nstats_socket = \"rel.sock\"\n[[shards]]\nname = \"a\"\nprimary = \"http://h:1\"\n",
			"p.toml:3: router.listen: \"nope\" must be HOST:PORT"},
		{"default_shard = \"a\"\n[router]\nlisten = \"nope\"\nstats_socket = \"rel.sock\"\n[[shards]]\nname = \"a\"\nprimary = \"http://h:1\"\n",
			"p.toml:4: router.stats_socket: \"rel.sock\" must be an absolute"},
		{okRouter, "p.toml: no shards"},
	}
	for _, c := range cases {
		_, err := Parse([]byte(c.doc), "p.toml")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%q) = %v, want an error containing %q", c.doc, err, c.want)
		}
	}
}

const okRouter = "[router]\nlisten = \"127.0.0.1:1\"\nstats_socket = \"/s\"\n"

func TestRenderGolden(t *testing.T) {
	p, err := Load("testdata/placement.toml")
	if err != nil {
		t.Fatal(err)
	}
	r, err := Render(p, RenderOptions{Dir: "/unused", Source: "placement.toml", Routes: goldenRoutes})
	if err != nil {
		t.Fatal(err)
	}
	for file, got := range map[string][]byte{"testdata/haproxy.cfg.golden": r.Config, "testdata/spaces.map.golden": r.Map} {
		if *update {
			if err := os.WriteFile(file, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from the rendered output (go test ./ops/placement -run TestRenderGolden -update):\n%s", file, got)
		}
	}
}

// The real route table: every write goes to the primary, and the reads
// that matter are allowed to followers.
func TestRenderClassifiesServerRoutes(t *testing.T) {
	routes := ServerRoutes(server.Routes())
	reads, err := readRoutes(routes)
	if err != nil {
		t.Fatal(err)
	}
	match := func(method, path string) bool {
		for _, r := range reads {
			if strings.Contains(r.Methods, method) && regexp.MustCompile(r.Regex).MatchString(path) {
				return true
			}
		}
		return false
	}
	for _, c := range []struct {
		method, path string
		read         bool
	}{
		{"GET", "/api/v1/memories/m1", true},
		{"HEAD", "/api/v1/memories/m1", true},
		{"POST", "/api/v1/memories/recall", true},
		{"GET", "/api/v1/memories", true},
		{"DELETE", "/api/v1/memories/m1", false},
		{"POST", "/api/v1/memories/remember", false},
		{"POST", "/api/v1/memories", false},
		{"POST", "/api/v1/memories/batch", false},
		{"POST", "/api/v1/associations", false},
		{"POST", "/api/v1/admin/spaces/x/hold", false},
		{"GET", "/api/v1/admin/apikeys", false},
	} {
		if got := match(c.method, c.path); got != c.read {
			t.Errorf("%s %s classified read=%v, want %v", c.method, c.path, got, c.read)
		}
	}
	for _, r := range server.Routes() {
		if r.Access == "write" || r.Access == "admin" {
			path := wildcard.ReplaceAllString(r.Path, "x")
			if match(r.Method, path) {
				t.Errorf("%s %s (%s) would go to a follower", r.Method, r.Path, r.Access)
			}
		}
	}
}

// HAProxy itself accepts the rendered configuration.
func TestRenderHAProxyValid(t *testing.T) {
	bin := os.Getenv("ENGRAM_TEST_HAPROXY")
	if bin == "" {
		t.Skip("ENGRAM_TEST_HAPROXY is unset (scripts/test.sh installs Debian's haproxy and sets it)")
	}
	p, err := Load("testdata/placement.toml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p.Router.MapFile = ""
	p.Router.StatsSocket = filepath.Join(dir, "admin.sock")
	r, err := Render(p, RenderOptions{Dir: dir, Routes: ServerRoutes(server.Routes())})
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteFiles(dir, r); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "-c", "-f", filepath.Join(dir, "haproxy.cfg")).CombinedOutput()
	if err != nil {
		t.Fatalf("haproxy -c: %v\n%s\n%s", err, out, r.Config)
	}
}
