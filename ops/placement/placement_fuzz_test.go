package placement

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// FuzzParse: any bytes either fail to parse with an error or give a
// placement that renders, with one map line per mapped space.
func FuzzParse(f *testing.F) {
	if b, err := os.ReadFile("testdata/placement.toml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("default_shard = \"a\"\n" + okRouter + "[[shards]]\nname = \"a\"\nprimary = \"http://h:1\"\n[spaces]\nabc = \"a\"\n"))
	f.Add([]byte("[[shards]]\nname = \"a\"\n[[shards]]\n"))
	f.Add([]byte("default_shard = 1\n[spaces]\n\"x y\" = \"a\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data, "f.toml")
		if err != nil {
			if !strings.Contains(err.Error(), "f.toml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		r, err := Render(p, RenderOptions{Dir: "/tmp", Routes: goldenRoutes})
		if err != nil {
			t.Fatalf("a parsed placement does not render: %v", err)
		}
		lines := bytes.Count(r.Map, []byte("\n")) - 1
		if lines != len(p.Spaces) {
			t.Fatalf("map has %d lines for %d spaces", lines, len(p.Spaces))
		}
		for _, s := range p.Shards {
			if !bytes.Contains(r.Config, []byte("backend "+BackendName(s.Name)+"\n")) {
				t.Fatalf("no backend for shard %q", s.Name)
			}
		}
	})
}
