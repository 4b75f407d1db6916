package migrate

import (
	"testing"
)

// FuzzParseMapping: any bytes either fail to parse with an error or compile
// (or fail to compile) without panicking, and every compiled template
// renders.
func FuzzParseMapping(f *testing.F) {
	f.Add([]byte("space = \"neo4j\"\n[objects.User]\ncontent = \"{name} {{x}}\"\nid = \"u:{_key}\"\ntags = [\"{a.b}\"]\nconfidence = 0.5\n[objects.KNOWS]\nweight = 0.3\n"))
	f.Add([]byte("[objects.User.references.FK]\nweight = 2\n"))
	f.Add([]byte("[objects.User]\ncontnet = 1\n"))
	f.Add([]byte("[objects.User]\ncontent = \"{\"\n"))
	objs := []Object{{Name: "User", Kind: Entity, Count: 1, Fields: []string{"name", "a"}}, {Name: "KNOWS", Kind: Relation}}
	rec := &Record{Object: "User", Key: "1", Fields: map[string]any{"name": "x", "a": map[string]any{"b": int64(1)}}}
	f.Fuzz(func(t *testing.T, data []byte) {
		mf, err := ParseMappingFile(data, "fuzz.toml")
		if err != nil {
			return
		}
		m, err := Compile(mf, objs, "default")
		if err != nil {
			return
		}
		if _, err := m.Apply(rec); err != nil {
			return
		}
	})
}

// FuzzTemplate: parsing never panics and a parsed template renders.
func FuzzTemplate(f *testing.F) {
	for _, s := range []string{"{a}", "{{", "}}", "{a.b.c} {*} {_key}", "x{", "{}"} {
		f.Add(s)
	}
	rec := &Record{Object: "O", Key: "k", Fields: map[string]any{"a": map[string]any{"b": []any{1.0}}}}
	f.Fuzz(func(t *testing.T, s string) {
		tm, err := parseTemplate(s)
		if err != nil {
			return
		}
		tm.render(rec)
	})
}
