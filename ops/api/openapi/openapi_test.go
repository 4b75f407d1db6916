package openapi

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

type inner struct {
	Space string `json:"space,omitempty"`
}

type sample struct {
	ID       string            `json:"id"`
	Tags     []string          `json:"tags"`
	Opt      []string          `json:"opt,omitempty"`
	When     *time.Time        `json:"when"`
	Maybe    *time.Time        `json:"maybe,omitempty"`
	Count    uint64            `json:"count"`
	Vec      []float32         `json:"vec,omitempty"`
	Meta     map[string]string `json:"meta,omitempty"`
	Child    *sample           `json:"child,omitempty"`
	Skipped  string            `json:"-"`
	internal int               // unexported: not on the wire
	inner
}

// TestReflectorObject: the schema of a struct says what the encoder
// writes: embedded fields inlined, fields written always required, nil
// slices and pointers nullable, omitted ones optional, nothing else
// allowed, and recursion through a component reference.
func TestReflectorObject(t *testing.T) {
	r := NewReflector()
	ref := r.Ref(sample{internal: 1})
	if ref.Ref != "#/components/schemas/sample" {
		t.Fatalf("ref %+v", ref)
	}
	s := r.Schemas["sample"]
	if s.AdditionalProperties != false {
		t.Errorf("additionalProperties %v, want false", s.AdditionalProperties)
	}
	if want := []string{"id", "tags", "when", "count"}; !slices.Equal(s.Required, want) {
		t.Errorf("required %v, want %v", s.Required, want)
	}
	var names []string
	for n := range s.Properties {
		names = append(names, n)
	}
	slices.Sort(names)
	if want := []string{"child", "count", "id", "maybe", "meta", "opt", "space", "tags", "vec", "when"}; !slices.Equal(names, want) {
		t.Errorf("properties %v, want %v", names, want)
	}
	for field, want := range map[string]string{
		"tags":  "array of string or null",
		"opt":   "array of string",
		"when":  "string (date-time) or null",
		"maybe": "string (date-time)",
		"vec":   "array of number or string",
		"meta":  "object of string",
		"child": "sample",
	} {
		if got := TypeName(s.Properties[field]); got != want {
			t.Errorf("%s: %s, want %s", field, got, want)
		}
	}
	if m := s.Properties["count"].Minimum; m == nil || *m != 0 {
		t.Errorf("count: unsigned without minimum 0")
	}
}

// TestMarshalDeterministic: the same document marshals to the same bytes.
func TestMarshalDeterministic(t *testing.T) {
	build := func() []byte {
		r := NewReflector()
		d := &Document{OpenAPI: Version, Paths: map[string]*PathItem{}, Components: Components{Schemas: r.Schemas}}
		for _, p := range []string{"/b", "/a", "/c"} {
			d.Paths[p] = &PathItem{Get: &Operation{Summary: p, Responses: map[string]*Response{
				"200": {Description: "ok", Content: map[string]MediaType{"application/json": {Schema: r.Ref(sample{})}}}}}}
		}
		b, err := Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	first := build()
	for range 5 {
		if !bytes.Equal(first, build()) {
			t.Fatal("two marshals of one document differ")
		}
	}
	if strings.Index(string(first), `"/a"`) > strings.Index(string(first), `"/b"`) {
		t.Error("paths are not sorted")
	}
}

// TestStreamEvents: a text/event-stream body's events are written as
// x-events (name → schema) and the Markdown lists each event with a link
// to its schema.
func TestStreamEvents(t *testing.T) {
	r := NewReflector()
	d := &Document{OpenAPI: Version, Tags: []Tag{{Name: "streams"}}, Paths: map[string]*PathItem{"/s": {Get: &Operation{
		Summary: "Stream", Tags: []string{"streams"}, Responses: map[string]*Response{"200": {Description: "events", Content: map[string]MediaType{
			"text/event-stream": {Schema: &Schema{Type: "string"}, Events: map[string]*Schema{"formed": r.Ref(sample{}), "lost": r.Ref(inner{})}},
		}}}}}}, Components: Components{Schemas: r.Schemas}}
	b, err := Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		Paths map[string]struct {
			Get struct {
				Responses map[string]struct {
					Content map[string]struct {
						Events map[string]struct {
							Ref string `json:"$ref"`
						} `json:"x-events"`
					} `json:"content"`
				} `json:"responses"`
			} `json:"get"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	ev := back.Paths["/s"].Get.Responses["200"].Content["text/event-stream"].Events
	if ev["formed"].Ref != "#/components/schemas/sample" || ev["lost"].Ref != "#/components/schemas/inner" {
		t.Errorf("x-events %+v, want each name with its schema reference", ev)
	}
	md := string(Markdown(d, "# API\n", "codes.md"))
	for _, want := range []string{"| `formed` | [sample](#sample) |", "| `lost` | [inner](#inner) |", "Events of the 200 answer (`text/event-stream`)"} {
		if !strings.Contains(md, want) {
			t.Errorf("the Markdown lacks %q:\n%s", want, md)
		}
	}
}
