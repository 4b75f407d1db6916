package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

var (
	// mdLink matches [text](target) and ![alt](target), with an optional
	// "title"; the target is group 1.
	mdLink = regexp.MustCompile(`!?\[[^\]]*\]\(\s*<?([^)\s>]*)>?(?:\s+"[^"]*")?\s*\)`)
	// mdRefDef matches a reference definition: [label]: target.
	mdRefDef = regexp.MustCompile(`^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)`)
	// codeSpan matches an inline code span (a link inside one is text).
	codeSpan = regexp.MustCompile("`[^`]*`")
	// htmlAnchor matches <a name="x"> and id="x" targets.
	htmlAnchor = regexp.MustCompile(`(?:name|id)="([^"]+)"`)
	// urlScheme recognises an absolute URL (http:, mailto:, s3:, …).
	urlScheme = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`)
)

// No document a user reads on GitHub or in the source tree links to a
// file that is not there or to a heading that does not exist.
func TestDocumentLinksResolve(t *testing.T) {
	files := []string{"../../README.md"}
	for _, dir := range []string{"../../runbooks", "../../docs", "../../examples"} {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			// The examples' installed packages and build output are not ours.
			if err == nil && d.IsDir() && (d.Name() == "node_modules" || d.Name() == "target" || d.Name() == "build") {
				return filepath.SkipDir
			}
			if err == nil && !d.IsDir() && strings.HasSuffix(path, ".md") {
				files = append(files, path)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(files) < 20 {
		t.Fatalf("found only %d documents", len(files))
	}
	anchors := map[string]map[string]bool{} // cleaned path -> anchors
	anchorsOf := func(path string) (map[string]bool, error) {
		if a, ok := anchors[path]; ok {
			return a, nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		a := markdownAnchors(string(b))
		anchors[path] = a
		return a, nil
	}
	checked := 0
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range markdownLinks(string(b)) {
			if urlScheme.MatchString(l.target) || strings.HasPrefix(l.target, "//") {
				continue
			}
			checked++
			path, anchor, _ := strings.Cut(l.target, "#")
			target := filepath.Clean(file)
			if path != "" {
				if strings.HasPrefix(path, "/") {
					t.Errorf("%s:%d: %q is absolute: links are relative to the file", file, l.line, l.target)
					continue
				}
				target = filepath.Join(filepath.Dir(file), filepath.FromSlash(path))
				st, err := os.Stat(target)
				if err != nil {
					t.Errorf("%s:%d: link %q: no such file %s", file, l.line, l.target, target)
					continue
				}
				if st.IsDir() {
					if anchor != "" {
						t.Errorf("%s:%d: link %q: an anchor into a directory", file, l.line, l.target)
					}
					continue
				}
			}
			if anchor == "" {
				continue
			}
			if !strings.HasSuffix(target, ".md") {
				t.Errorf("%s:%d: link %q: an anchor into a file that is not Markdown", file, l.line, l.target)
				continue
			}
			a, err := anchorsOf(target)
			if err != nil {
				t.Errorf("%s:%d: %v", file, l.line, err)
				continue
			}
			if !a[anchor] {
				t.Errorf("%s:%d: link %q: %s has no heading with anchor #%s", file, l.line, l.target, target, anchor)
			}
		}
	}
	if checked < 50 {
		t.Fatalf("checked only %d relative links", checked)
	}
}

type markdownLink struct {
	line   int
	target string
}

// markdownLinks returns the link targets of a Markdown document outside
// fenced code blocks and code spans.
func markdownLinks(doc string) []markdownLink {
	var links []markdownLink
	var code codeBlocks
	for i, line := range strings.Split(doc, "\n") {
		if code.skip(line) {
			continue
		}
		if m := mdRefDef.FindStringSubmatch(line); m != nil {
			links = append(links, markdownLink{i + 1, m[1]})
			continue
		}
		for _, m := range mdLink.FindAllStringSubmatch(codeSpan.ReplaceAllString(line, ""), -1) {
			links = append(links, markdownLink{i + 1, m[1]})
		}
	}
	return links
}

// codeBlocks follows the fenced code blocks of a document line by line.
type codeBlocks struct{ fence string }

// skip reports whether line is a fence or inside a fenced block.
func (c *codeBlocks) skip(line string) bool {
	if f, ok := fenceOf(line); ok {
		switch {
		case c.fence == "":
			c.fence = f
		case strings.HasPrefix(f, c.fence):
			c.fence = ""
		}
		return true
	}
	return c.fence != ""
}

// fenceOf reports whether line opens or closes a fenced code block, and
// its fence (the run of backticks or tildes).
func fenceOf(line string) (string, bool) {
	s := strings.TrimLeft(line, " ")
	if len(line)-len(s) > 3 {
		return "", false
	}
	for _, c := range []string{"```", "~~~"} {
		if strings.HasPrefix(s, c) {
			return s[:len(s)-len(strings.TrimLeft(s, c[:1]))], true
		}
	}
	return "", false
}

// markdownAnchors returns the anchors GitHub gives the headings of doc
// (repeats get -1, -2, …) plus explicit HTML name/id anchors.
func markdownAnchors(doc string) map[string]bool {
	anchors := map[string]bool{}
	seen := map[string]int{}
	var code codeBlocks
	for _, line := range strings.Split(doc, "\n") {
		if code.skip(line) {
			continue
		}
		for _, m := range htmlAnchor.FindAllStringSubmatch(line, -1) {
			anchors[m[1]] = true
		}
		s := strings.TrimLeft(line, " ")
		if len(line)-len(s) > 3 || !strings.HasPrefix(s, "#") {
			continue
		}
		text := strings.TrimLeft(s, "#")
		if len(s)-len(text) > 6 || (text != "" && text[0] != ' ' && text[0] != '\t') {
			continue
		}
		slug := headingSlug(text)
		if n := seen[slug]; n > 0 {
			anchors[slug+"-"+strconv.Itoa(n)] = true
		} else {
			anchors[slug] = true
		}
		seen[slug]++
	}
	return anchors
}

// headingSlug is GitHub's anchor for a heading's text: links reduced to
// their text, lower case, punctuation (backticks included) removed, each
// space a hyphen.
func headingSlug(text string) string {
	text = strings.TrimSpace(text)
	// A closing sequence of #s is not part of the heading.
	if t := strings.TrimRight(text, "#"); t != text && (t == "" || strings.HasSuffix(t, " ")) {
		text = strings.TrimSpace(t)
	}
	text = mdLink.ReplaceAllStringFunc(text, func(l string) string {
		return l[strings.Index(l, "[")+1 : strings.Index(l, "]")]
	})
	var b strings.Builder
	for _, r := range strings.ToLower(text) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

func TestHeadingAnchors(t *testing.T) {
	doc := "# Engram `serve` — Quick start\n" +
		"## Recall at 1,000/s over 100,000 × 768\n" +
		"## Options\n## Options\n" +
		"### See [the runbook](runbooks/serving.md) ###\n" +
		"```\n# not a heading\n```\n" +
		"#not-a-heading\n" +
		"<a name=\"explicit\"></a>\n"
	got := markdownAnchors(doc)
	for _, want := range []string{"engram-serve--quick-start", "recall-at-1000s-over-100000--768",
		"options", "options-1", "see-the-runbook", "explicit"} {
		if !got[want] {
			t.Errorf("no anchor %q in %v", want, got)
		}
	}
	if got["not-a-heading"] || len(got) != 6 {
		t.Errorf("anchors %v", got)
	}
	links := markdownLinks("[a](x.md#y) `[b](code.md)` ![i](img.png \"t\")\n```\n[c](in-block.md)\n```\n[ref]: ../z.md\n")
	var targets []string
	for _, l := range links {
		targets = append(targets, l.target)
	}
	if strings.Join(targets, " ") != "x.md#y img.png ../z.md" {
		t.Errorf("links %q", targets)
	}
}
