package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"

	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

var codeLiteral = regexp.MustCompile(`^[A-Z][A-Z0-9_]+$`)

// emittedCodes collects the error codes the server's and the engine's
// source can emit: literal codes passed to httpErrorf, Errorf and
// validateFinite, given as the Code of a composite literal, or assigned to
// a variable named code.
func emittedCodes(t *testing.T, dirs ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	fset := token.NewFileSet()
	add := func(e ast.Expr) {
		lit, ok := e.(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			return
		}
		s, err := strconv.Unquote(lit.Value)
		if err == nil && codeLiteral.MatchString(s) {
			if _, seen := out[s]; !seen {
				out[s] = fset.Position(lit.Pos()).String()
			}
		}
	}
	for _, dir := range dirs {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, path := range files {
			if strings.HasSuffix(path, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, path, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			ast.Inspect(f, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.CallExpr:
					name := ""
					switch fn := n.Fun.(type) {
					case *ast.Ident:
						name = fn.Name
					case *ast.SelectorExpr:
						name = fn.Sel.Name
					}
					if name == "httpErrorf" || name == "Errorf" || name == "validateFinite" || name == "InvalidArgument" {
						for _, a := range n.Args {
							add(a)
						}
					}
				case *ast.KeyValueExpr:
					if k, ok := n.Key.(*ast.Ident); ok && k.Name == "Code" {
						add(n.Value)
					}
				case *ast.AssignStmt:
					for i, l := range n.Lhs {
						if id, ok := l.(*ast.Ident); ok && id.Name == "code" && i < len(n.Rhs) {
							add(n.Rhs[i])
						}
					}
				}
				return true
			})
		}
	}
	return out
}

// TestErrorCodesComplete: the table documents every code the server's and
// the engine's source can emit, and nothing else, once.
func TestErrorCodesComplete(t *testing.T) {
	emitted := emittedCodes(t, ".", "../../core", "../grpcserver")
	seen := map[string]bool{}
	for _, c := range errorCodes {
		if seen[c.Code] {
			t.Errorf("%s is in the table twice", c.Code)
		}
		seen[c.Code] = true
		if _, ok := emitted[c.Code]; !ok {
			t.Errorf("%s is in the table but no source emits it", c.Code)
		}
		if c.Status < 400 || c.Status > 599 || c.Meaning == "" || c.Fix == "" {
			t.Errorf("%s: incomplete entry %+v", c.Code, c)
		}
		if c.Engram == "" && c.EngramNote == "" {
			t.Errorf("%s: neither Engram's code nor why it has none", c.Code)
		}
	}
	for code, where := range emitted {
		if !seen[code] {
			t.Errorf("%s (emitted at %s) is not in errorCodes (errcodes.go)", code, where)
		}
	}
}

const errorDocPath = "../../docs/reference/error-codes.md"

// TestErrorCodeDoc: docs/reference/error-codes.md is the table; -update
// regenerates it.
func TestErrorCodeDoc(t *testing.T) {
	want := errorCodeDoc()
	if *update {
		if err := os.WriteFile(errorDocPath, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(errorDocPath)
	if err != nil {
		t.Fatalf("%v (go test ./ops/server -run TestErrorCodeDoc -update writes it)", err)
	}
	if string(got) != want {
		t.Errorf("%s is not the table in errcodes.go; regenerate it with go test ./ops/server -run TestErrorCodeDoc -update", errorDocPath)
	}
}

// TestErrorEnvelopeFields: every error answer carries Engram's envelope
// fields with the table's content.
func TestErrorEnvelopeFields(t *testing.T) {
	cfg := testConfig()
	h := newTestServer(t, cfg, openEngine(t, cfg)).Handler()
	w := do(t, h, request{method: "GET", path: "/api/v1/memories/nope"})
	var env struct {
		Error struct {
			Code, Message, EducationalContext, CognitiveGuidance, EngramCode string
		}
		Documentation map[string]string
	}
	if err := json.Unmarshal(w.Body.Bytes(), &env); err != nil {
		t.Fatal(err)
	}
	var raw map[string]map[string]any
	_ = json.Unmarshal(w.Body.Bytes(), &raw)
	for _, k := range []string{"code", "message", "educational_context", "cognitive_guidance", "engram_code"} {
		if s, _ := raw["error"][k].(string); s == "" {
			t.Errorf("error.%s is empty: %s", k, w.Body)
		}
	}
	for _, k := range []string{"api_guide", "memory_concepts", "examples", "error_code"} {
		if s, _ := raw["documentation"][k].(string); s == "" {
			t.Errorf("documentation.%s is empty: %s", k, w.Body)
		}
	}
	if raw["error"]["engram_code"] != "MEMORY_NOT_FOUND" || raw["error"]["educational_context"] != errorCodeIndex["MEMORY_NOT_FOUND"].Meaning {
		t.Errorf("envelope %s", w.Body)
	}
}

func errorCodeDoc() string {
	var b strings.Builder
	b.WriteString(`# Error codes

<!-- Generated from ops/server/errcodes.go by
     go test ./ops/server -run TestErrorCodeDoc -update; do not edit. -->

Every error answer is one envelope, Engram's shape with our precise code:

` + "```json" + `
{"error":{"code":"MEMORY_NOT_FOUND","message":"…","educational_context":"<meaning>","cognitive_guidance":"<fix>",
 "engram_code":"MEMORY_NOT_FOUND","details":{…}},
 "documentation":{"api_guide":"docs/engram-compatibility.md","memory_concepts":"README.md#decay-and-tiers",
 "examples":"docs/engram-compatibility.md#replayed-calls","error_code":"docs/reference/error-codes.md#MEMORY_NOT_FOUND"}}
` + "```" + `

` + "`code`" + ` is ours and stable; ` + "`engram_code`" + ` is the code Engram's server answers the same
failure with (absent when Engram has none). ` + "`educational_context`" + ` is the meaning below and
` + "`cognitive_guidance`" + ` the fix. A 503 carries Retry-After, as Engram's does.

The [REST API reference](rest-api.md) and the OpenAPI document (docs/openapi.json) list, per route, the
statuses it answers; each status's error response there allows exactly the codes of that status below
(TestOpenAPIErrorCodes checks it).

| Code | Status | Meaning | Fix | Engram |
|---|---|---|---|---|
`)
	cs := slices.Clone(errorCodes)
	sort.Slice(cs, func(i, j int) bool { return cs[i].Code < cs[j].Code })
	for _, c := range cs {
		eng := "—"
		if c.Engram != "" {
			eng = "`" + c.Engram + "`"
		}
		if c.EngramNote != "" {
			eng += " (" + c.EngramNote + ")"
		}
		fmt.Fprintf(&b, "| <a id=\"%s\"></a>`%s` | %d %s | %s | %s | %s |\n",
			c.Code, c.Code, c.Status, http.StatusText(c.Status), c.Meaning, c.Fix, eng)
	}
	return b.String()
}
