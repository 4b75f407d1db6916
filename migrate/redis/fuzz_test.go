package redis

import (
	"encoding/json"
	"strings"
	"testing"
)

// A stored cursor is untrusted text: decoding never panics, and what it
// accepts is exactly what encodeCursor writes, within the patterns.
func FuzzDecodeCursor(f *testing.F) {
	const set = "0123456789abcdef"
	for _, s := range []string{"k/0/0/" + set, "r/2/18446744073709551615/" + set, "k/3/0/" + set, "k/01/0/" + set,
		"k/0/-1/" + set, "x/0/0/" + set, "k/0/0", "k/0/0/" + set + "/", "", "k/4/0/" + set} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, c string) {
		p, err := decodeCursor(c, 3, set)
		if err != nil {
			return
		}
		if got := encodeCursor(p, set); got != c {
			t.Fatalf("decode(%q) = %+v, which encodes as %q", c, p, got)
		}
		if p.pattern > 3 || (p.pattern == 3 && p.scan != 0) || (p.phase != phaseKeys && p.phase != phaseRefs) {
			t.Fatalf("decode(%q) accepted %+v", c, p)
		}
	})
}

// Values are untrusted: detection never panics; only an object or array
// that is valid JSON is decoded, and a decoded object's fields are the
// JSON's; anything else stays one "value" field holding the text.
func FuzzStringFields(f *testing.F) {
	for _, s := range []string{`{"a":1}`, ` [1,2]`, `{"a":1} x`, `{"a":1}{}`, `42`, `"s"`, `{`, ``, `{"n":1e400}`, `[1,{"x":[null,true]}]`, "{\"a\":\"\xff\"}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		got := stringFields(v)
		t0 := strings.TrimLeft(v, " \t\r\n")
		looks := t0 != "" && (t0[0] == '{' || t0[0] == '[') && json.Valid([]byte(t0))
		if !looks {
			if len(got) != 1 || got["value"] != v {
				t.Fatalf("%q is not JSON-looking but became %v", v, got)
			}
			return
		}
		if t0[0] == '{' {
			var m map[string]json.RawMessage
			if err := json.Unmarshal([]byte(t0), &m); err != nil {
				t.Fatal(err)
			}
			if len(m) != len(got) {
				t.Fatalf("%q: %d fields, want %d", v, len(got), len(m))
			}
			return
		}
		if _, ok := got["value"].([]any); !ok || len(got) != 1 {
			t.Fatalf("%q: an array became %v", v, got)
		}
	})
}

// Patterns come from flags and keys from the server: matching never
// panics, a pattern without special bytes matches exactly itself, and "*"
// and a pattern's own literal prefix plus "*" match.
func FuzzGlobMatch(f *testing.F) {
	for _, s := range [][2]string{{"user:*", "user:1"}, {"a[b-c]?", "abz"}, {"[^x]*", "y"}, {"\\*", "*"}, {"[", "a"}, {"a[", "a"}, {"*a*b*c*d*e*f*g*", strings.Repeat("a", 60)}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, p, s string) {
		m := globMatch(p, s)
		if !strings.ContainsAny(p, "*?[\\") && m != (p == s) {
			t.Fatalf("literal %q vs %q: %v", p, s, m)
		}
		if s != "" && !globMatch("*", s) {
			t.Fatalf("* does not match %q", s)
		}
		if !strings.ContainsAny(s, "*?[\\") && s != "" && !globMatch(s+"*", s+p) {
			t.Fatalf("%q* does not match %q", s, s+p)
		}
	})
}

// globMatch agrees with the server's matching on cases its test suite and
// documentation give.
func TestGlobMatch(t *testing.T) {
	for _, c := range []struct {
		p, s string
		want bool
	}{
		{"h?llo", "hello", true}, {"h?llo", "hllo", false}, {"h*llo", "heeeello", true}, {"h*llo", "hllo", true},
		{"h[ae]llo", "hallo", true}, {"h[ae]llo", "hillo", false}, {"h[^e]llo", "hallo", true}, {"h[^e]llo", "hello", false},
		{"h[a-b]llo", "hbllo", true}, {"h[b-a]llo", "hallo", true}, {"h[a-b]llo", "hcllo", false},
		{"h\\*llo", "h*llo", true}, {"h\\*llo", "hello", false}, {"*", "", false}, {"", "", true},
		{"user:*", "user:", true}, {"a*b*c", "abc", true}, {"a*b*c", "acb", false}, {"[abc", "a", true}, {"[\\]]", "]", true},
		{"*a*a*a*a*a*a*a*a*a*a*b", strings.Repeat("a", 40), false},
	} {
		if got := globMatch(c.p, c.s); got != c.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", c.p, c.s, got, c.want)
		}
	}
}
