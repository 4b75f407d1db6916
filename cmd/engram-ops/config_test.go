package main

import (
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/pelletier/go-toml/v2"

	"github.com/engram-ops/engram-ops/ops/config"
)

// flatKeys lists the dotted paths of a decoded TOML document's values.
func flatKeys(prefix string, m map[string]any, out *[]string) {
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok {
			flatKeys(prefix+k+".", sub, out)
			continue
		}
		*out = append(*out, prefix+k)
	}
}

// TestConfigExample: the example names every key the configuration has,
// each with a comment, and reads back (strictly) as exactly the defaults.
func TestConfigExample(t *testing.T) {
	code, out, errOut := runCLI(t, nil, "config", "example")
	if code != exitOK || errOut != "" {
		t.Fatalf("exit %d %s", code, errOut)
	}
	var got config.Config
	if err := got.Decode(strings.NewReader(out), "example"); err != nil {
		t.Fatalf("the example does not parse: %v\n%s", err, out)
	}
	if want := config.Default(); !reflect.DeepEqual(got, want) {
		t.Errorf("the example reads back as\n%+v\nnot the defaults\n%+v", got, want)
	}
	var doc map[string]any
	if err := toml.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	var keys []string
	flatKeys("", doc, &keys)
	sort.Strings(keys)
	if want := config.Keys(); strings.Join(keys, "\n") != strings.Join(want, "\n") {
		t.Errorf("keys in the example:\n%v\nkeys of the configuration:\n%v", keys, want)
	}
	// Every key line follows its comment.
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, "[") {
			continue
		}
		if i == 0 || !strings.HasPrefix(strings.TrimSpace(lines[i-1]), "#") {
			t.Errorf("line %d has no comment: %s", i+1, l)
		}
	}
}

// TestRootVersionFlag: engram-ops --version prints what engram-ops version
// prints, in both forms.
func TestRootVersionFlag(t *testing.T) {
	for _, args := range [][]string{nil, {"--output", "json"}} {
		code, want, _ := runCLI(t, nil, append([]string{"version"}, args...)...)
		if code != exitOK {
			t.Fatal(code)
		}
		code, got, errOut := runCLI(t, nil, append([]string{"--version"}, args...)...)
		if code != exitOK || got != want {
			t.Errorf("--version %v: exit %d %s\n%q, want %q", args, code, errOut, got, want)
		}
	}
}
