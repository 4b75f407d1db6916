package openapi

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
)

// Markdown renders d as a reference: an index of the routes, then per tag
// each route with its parameters, body, responses and example, then the
// schemas and the shared error responses. head is written first (a title
// and what the reader needs before the routes). Error codes link to
// codesDoc#CODE.
func Markdown(d *Document, head, codesDoc string) []byte {
	var b bytes.Buffer
	b.WriteString(head)
	ops := d.operations()

	b.WriteString("\n## Routes\n\n| method | path | summary | permission |\n|---|---|---|---|\n")
	for _, o := range ops {
		fmt.Fprintf(&b, "| %s | [`%s`](#%s) | %s | %s |\n", o.method, o.path, anchor(o.method+" "+o.path), cell(o.op.Summary), o.op.Permission)
	}
	for _, tag := range d.Tags {
		fmt.Fprintf(&b, "\n## %s\n\n%s\n", tag.Name, tag.Description)
		for _, o := range ops {
			if slices.Contains(o.op.Tags, tag.Name) {
				d.operationMarkdown(&b, o, codesDoc)
			}
		}
	}

	b.WriteString("\n## Error responses\n\nEvery error is the envelope [ErrorEnvelope](#errorenvelope). " +
		"Each status lists the codes it is answered with; [" + codesDoc + "](" + codesDoc + ") says what each means and how to fix it.\n\n")
	b.WriteString("| status | codes |\n|---|---|\n")
	for _, name := range sortedKeys(d.Components.Responses) {
		r := d.Components.Responses[name]
		var codes []string
		for _, c := range ResponseCodes(r) {
			codes = append(codes, fmt.Sprintf("[`%s`](%s#%s)", c, codesDoc, c))
		}
		fmt.Fprintf(&b, "| <a id=\"%s\"></a>%s | %s |\n", strings.ToLower(name), cell(r.Description), strings.Join(codes, ", "))
	}

	b.WriteString("\n## Schemas\n")
	for _, name := range sortedKeys(d.Components.Schemas) {
		s := d.Components.Schemas[name]
		fmt.Fprintf(&b, "\n### %s\n\n", name)
		if s.Description != "" {
			b.WriteString(s.Description + "\n\n")
		}
		if len(s.Properties) == 0 {
			fmt.Fprintf(&b, "%s\n", schemaLink(s))
			continue
		}
		b.WriteString("| field | type | required | description |\n|---|---|---|---|\n")
		for _, f := range sortedKeys(s.Properties) {
			req := ""
			if slices.Contains(s.Required, f) {
				req = "yes"
			}
			fs := s.Properties[f]
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", f, schemaLink(fs), req, cell(fs.Description))
		}
	}
	return b.Bytes()
}

type operation struct {
	method, path string
	op           *Operation
}

// operations lists d's operations by path, then method.
func (d *Document) operations() []operation {
	var out []operation
	for _, p := range sortedKeys(d.Paths) {
		for _, m := range Methods {
			if op := *d.Paths[p].Operation(m); op != nil {
				out = append(out, operation{m, p, op})
			}
		}
	}
	return out
}

// Operations returns the "METHOD /path" of every operation of d.
func (d *Document) Operations() []string {
	var out []string
	for _, o := range d.operations() {
		out = append(out, o.method+" "+o.path)
	}
	return out
}

func (d *Document) operationMarkdown(b *bytes.Buffer, o operation, codesDoc string) {
	op := o.op
	fmt.Fprintf(b, "\n### `%s %s`\n\n%s.", o.method, o.path, op.Summary)
	if op.Description != "" {
		b.WriteString(" " + op.Description)
	}
	fmt.Fprintf(b, "\n\nPermission: %s.\n", op.Permission)
	if len(op.Parameters) > 0 {
		b.WriteString("\n| parameter | in | type | required | description |\n|---|---|---|---|---|\n")
		for _, p := range op.Parameters {
			req := ""
			if p.Required {
				req = "yes"
			}
			fmt.Fprintf(b, "| `%s` | %s | %s | %s | %s |\n", p.Name, p.In, schemaLink(p.Schema), req, cell(p.Description))
		}
	}
	if rb := op.RequestBody; rb != nil {
		for _, ct := range sortedKeys(rb.Content) {
			fmt.Fprintf(b, "\nRequest body (`%s`): %s", ct, schemaLink(rb.Content[ct].Schema))
			if rb.Description != "" {
				b.WriteString(". " + rb.Description)
			}
			b.WriteString("\n")
		}
	}
	b.WriteString("\n| status | body | description |\n|---|---|---|\n")
	for _, status := range sortedKeys(op.Responses) {
		r := op.Responses[status]
		if r.Ref != "" {
			name := RefName(r.Ref)
			shared := d.Components.Responses[name]
			fmt.Fprintf(b, "| %s | [ErrorEnvelope](#errorenvelope) | [%s](#%s) |\n", status, cell(shared.Description), strings.ToLower(name))
			continue
		}
		var bodies []string
		for _, ct := range sortedKeys(r.Content) {
			bodies = append(bodies, fmt.Sprintf("%s (`%s`)", schemaLink(r.Content[ct].Schema), ct))
		}
		fmt.Fprintf(b, "| %s | %s | %s |\n", status, strings.Join(bodies, ", "), cell(r.Description))
	}
	for _, status := range sortedKeys(op.Responses) {
		r := op.Responses[status]
		for _, ct := range sortedKeys(r.Content) {
			events := r.Content[ct].Events
			if len(events) == 0 {
				continue
			}
			fmt.Fprintf(b, "\nEvents of the %s answer (`%s`), by name (`event:`) and data (`data:`):\n\n| event | data |\n|---|---|\n", status, ct)
			for _, name := range sortedKeys(events) {
				fmt.Fprintf(b, "| `%s` | %s |\n", name, schemaLink(events[name]))
			}
		}
	}
	if op.Example != "" {
		fmt.Fprintf(b, "\n```sh\n%s\n```\n", op.Example)
	}
}

// ResponseCodes are the error codes a shared error response's schema
// allows (the enum of its error.code).
func ResponseCodes(r *Response) []string {
	for _, mt := range r.Content {
		for _, part := range mt.Schema.AllOf {
			if e, ok := part.Properties["error"]; ok {
				if c, ok := e.Properties["code"]; ok {
					return c.Enum
				}
			}
		}
	}
	return nil
}

// schemaLink is TypeName with component names linked to their section.
func schemaLink(s *Schema) string {
	if s == nil {
		return "any"
	}
	if s.Ref != "" {
		n := RefName(s.Ref)
		return fmt.Sprintf("[%s](#%s)", n, strings.ToLower(n))
	}
	if len(s.AnyOf) > 0 {
		var parts []string
		for _, a := range s.AnyOf {
			parts = append(parts, schemaLink(a))
		}
		return strings.Join(parts, " or ")
	}
	if s.Items != nil && s.Items.Ref != "" {
		return strings.Replace(TypeName(s), RefName(s.Items.Ref), schemaLink(s.Items), 1)
	}
	t := TypeName(s)
	if len(s.Enum) > 0 {
		t += ": " + strings.Join(s.Enum, ", ")
	}
	return t
}

// anchor is the GitHub anchor of a "### `METHOD /path`" heading.
func anchor(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(h) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('-')
		}
	}
	return b.String()
}

// cell makes s safe inside a Markdown table cell.
func cell(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "|", `\|`), "\n", " ")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
