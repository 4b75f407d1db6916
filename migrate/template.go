package migrate

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// A template is text in which each {name} is replaced by a record value:
//
//	{name}        the field's value (absent or null: empty)
//	{address.city} a key of a map-valued field
//	{_object}     the record's object (table, label, relationship type)
//	{_key}        the record's source key
//	{*}           every field as "name: value" lines, sorted by name
//	{{ and }}     literal braces
//
// Strings render as they are, numbers in their shortest form, times in RFC
// 3339, lists and maps as JSON.
type template struct {
	src   string
	parts []tmplPart
}

type tmplPart struct {
	lit   string
	field string // "" for a literal
	path  []string
}

const (
	fieldObject = "_object"
	fieldKey    = "_key"
	fieldAll    = "*"
)

// parseTemplate compiles s; errors name the byte offset.
func parseTemplate(s string) (*template, error) {
	t := &template{src: s}
	var lit strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '{' && i+1 < len(s) && s[i+1] == '{':
			lit.WriteByte('{')
			i++
		case c == '}' && i+1 < len(s) && s[i+1] == '}':
			lit.WriteByte('}')
			i++
		case c == '}':
			return nil, fmt.Errorf("template %q: unmatched } at byte %d (write }} for a literal brace)", s, i)
		case c == '{':
			end := strings.IndexAny(s[i+1:], "{}")
			if end < 0 || s[i+1+end] != '}' {
				return nil, fmt.Errorf("template %q: unclosed { at byte %d (write {{ for a literal brace)", s, i)
			}
			name := strings.TrimSpace(s[i+1 : i+1+end])
			if name == "" {
				return nil, fmt.Errorf("template %q: empty {} at byte %d", s, i)
			}
			if lit.Len() > 0 {
				t.parts = append(t.parts, tmplPart{lit: lit.String()})
				lit.Reset()
			}
			p := tmplPart{field: name}
			if name != fieldAll && name != fieldObject && name != fieldKey {
				p.path = strings.Split(name, ".")
				for _, seg := range p.path {
					if seg == "" {
						return nil, fmt.Errorf("template %q: field %q has an empty path segment", s, name)
					}
				}
			}
			t.parts = append(t.parts, p)
			i += end + 1
		default:
			lit.WriteByte(c)
		}
	}
	if lit.Len() > 0 || len(t.parts) == 0 {
		t.parts = append(t.parts, tmplPart{lit: lit.String()})
	}
	return t, nil
}

// fields lists the top-level record fields the template names.
func (t *template) fields() []string {
	var out []string
	for _, p := range t.parts {
		if len(p.path) > 0 {
			out = append(out, p.path[0])
		}
	}
	return out
}

// only reports whether every {name} in the template is one of names.
func (t *template) only(names ...string) bool {
	for _, p := range t.parts {
		if p.field != "" && !contains(names, p.field) {
			return false
		}
	}
	return true
}

func (t *template) render(r *Record) string {
	if len(t.parts) == 1 && t.parts[0].field == "" {
		return t.parts[0].lit
	}
	var b strings.Builder
	for _, p := range t.parts {
		switch p.field {
		case "":
			b.WriteString(p.lit)
		case fieldObject:
			b.WriteString(r.Object)
		case fieldKey:
			b.WriteString(r.Key)
		case fieldAll:
			writeAllFields(&b, r.Fields)
		default:
			b.WriteString(formatValue(lookup(r.Fields, p.path)))
		}
	}
	return b.String()
}

func lookup(fields map[string]any, path []string) any {
	var v any = fields
	for _, seg := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[seg]
	}
	return v
}

func writeAllFields(b *strings.Builder, fields map[string]any) {
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	for i, k := range names {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(k)
		b.WriteString(": ")
		b.WriteString(formatValue(fields[k]))
	}
}

// formatValue renders a field value as text.
func formatValue(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	case int:
		return strconv.Itoa(x)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	case time.Time:
		return x.Format(time.RFC3339Nano)
	case json.Number:
		return x.String()
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
