package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestValidateConfigEveryProblem: values of the wrong type do not stop the
// check at the first one, each problem names its line and says what the
// key takes in words (no Go type names), and an invalid max_body_bytes
// brings no knock-on problem about max_content_bytes, which was not set.
func TestValidateConfigEveryProblem(t *testing.T) {
	file := filepath.Join(t.TempDir(), "six.toml")
	if err := os.WriteFile(file, []byte(`durability = "yolo"
min_free_space = true
[limits]
max_body_bytes = -5
max_results = "many"
[index]
ef_search = "fast"
m = 1.5
colour = 1
`), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, nil, "validate", "config", file)
	if code != exitNotPassed {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		file + `:7: index.ef_search = "fast": must be an integer`,
		file + `:8: index.m = 1.5: must be an integer`,
		file + `:5: limits.max_results = "many": must be an integer`,
		file + `:2: min_free_space = true: must be a size`,
		file + `:9: index.colour: unknown key`,
		`durability = "yolo": must be one of sync, relaxed`,
		`limits.max_body_bytes = -5: must be in 1024..`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "problem: "); n != 7 {
		t.Errorf("%d problems, want 7:\n%s", n, out)
	}
	for _, leak := range []string{"max_content_bytes", "struct field", "IndexConfig", "of type"} {
		if strings.Contains(out, leak) {
			t.Errorf("output mentions %q:\n%s", leak, out)
		}
	}
}
