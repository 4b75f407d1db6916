// Command stripstubs removes the Unimplemented*Server and Unsafe*Server
// types from protoc-gen-go-grpc output (scripts/protogen.sh runs it).
// engram-ops implements every method of its service itself, checked at
// compile time, so a stub answering "method X not implemented" would be
// dead code, and a method added to the .proto without a handler must fail
// the build rather than reach a stub. It rewrites FILE in place and fails
// when FILE has no stub type (the generator's output changed).
package main

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"os"
	"regexp"
	"strconv"
	"strings"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: stripstubs FILE")
		os.Exit(2)
	}
	if err := strip(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "stripstubs:", err)
		os.Exit(1)
	}
}

// stub reports whether name is a generated stub type.
func stub(name string) bool {
	return strings.HasSuffix(name, "Server") && (strings.HasPrefix(name, "Unimplemented") || strings.HasPrefix(name, "Unsafe"))
}

func strip(path string) error {
	src, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	src, err = dropStubText(src)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, src, parser.ParseComments)
	if err != nil {
		return err
	}
	var (
		kept    []ast.Decl
		removed []ast.Node // their comments go with them
		stubs   int
	)
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.GenDecl:
			if ts, ok := d.Specs[0].(*ast.TypeSpec); ok && d.Tok == token.TYPE && len(d.Specs) == 1 && stub(ts.Name.Name) {
				removed, stubs = append(removed, d), stubs+1
				continue
			}
		case *ast.FuncDecl:
			if d.Recv != nil && len(d.Recv.List) == 1 {
				if id, ok := d.Recv.List[0].Type.(*ast.Ident); ok && stub(id.Name) {
					removed = append(removed, d)
					continue
				}
			}
		}
		kept = append(kept, d)
	}
	if stubs == 0 {
		return fmt.Errorf("%s has no Unimplemented*Server or Unsafe*Server type: the generator's output changed", path)
	}
	f.Decls = kept
	var comments []*ast.CommentGroup
	for _, c := range f.Comments {
		drop := false
		for _, n := range removed {
			if c.Pos() >= n.Pos() && c.End() <= n.End() {
				drop = true
			}
			if d, ok := n.(*ast.GenDecl); ok && d.Doc == c {
				drop = true
			}
			if d, ok := n.(*ast.FuncDecl); ok && d.Doc == c {
				drop = true
			}
		}
		if !drop {
			comments = append(comments, c)
		}
	}
	f.Comments = comments
	dropUnusedImports(f)
	var buf bytes.Buffer
	if err := format.Node(&buf, fset, f); err != nil {
		return err
	}
	out, err := format.Source(buf.Bytes())
	if err != nil {
		return err
	}
	return os.WriteFile(path, out, 0o644)
}

// stubText are the generator's lines about the stubs outside their own
// declarations: the server interface's advice to embed them, and
// RegisterXServer's check that one was embedded by value.
var stubText = []*regexp.Regexp{
	regexp.MustCompile(`(?m)^// All implementations (must|should) embed Unimplemented\w+Server\n// for forward compatibility\.\n`),
	regexp.MustCompile(`(?m)^\t// If the following call panics, it indicates Unimplemented\w+Server was\n(\t//.*\n)*?\t// time to prevent it from happening at runtime later due to I/O\.\n`),
	regexp.MustCompile(`(?m)^\tif t, ok := srv\.\(interface\{ testEmbeddedByValue\(\) \}\); ok \{\n\t\tt\.testEmbeddedByValue\(\)\n\t\}\n`),
}

// dropStubText removes stubText, each of which must be present.
func dropStubText(src []byte) ([]byte, error) {
	for _, re := range stubText {
		if !re.Match(src) {
			return nil, fmt.Errorf("no match for %s: the generator's output changed", re)
		}
		src = re.ReplaceAll(src, nil)
	}
	return src, nil
}

// dropUnusedImports removes imports no remaining code names (the stubs
// were the only users of codes and status).
func dropUnusedImports(f *ast.File) {
	used := map[string]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		if sel, ok := n.(*ast.SelectorExpr); ok {
			if id, ok := sel.X.(*ast.Ident); ok {
				used[id.Name] = true
			}
		}
		return true
	})
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.IMPORT {
			continue
		}
		var specs []ast.Spec
		for _, s := range gd.Specs {
			is := s.(*ast.ImportSpec)
			name := ""
			if is.Name != nil {
				name = is.Name.Name
			} else if p, err := strconv.Unquote(is.Path.Value); err == nil {
				name = p[strings.LastIndexByte(p, '/')+1:]
			}
			if used[name] || name == "_" {
				specs = append(specs, s)
			}
		}
		gd.Specs = specs
	}
	var imports []*ast.ImportSpec
	for _, is := range f.Imports {
		for _, d := range f.Decls {
			if gd, ok := d.(*ast.GenDecl); ok && gd.Tok == token.IMPORT {
				for _, s := range gd.Specs {
					if s == ast.Spec(is) {
						imports = append(imports, is)
					}
				}
			}
		}
	}
	f.Imports = imports
}
