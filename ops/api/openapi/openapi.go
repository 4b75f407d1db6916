// Package openapi builds OpenAPI 3.1 documents from Go types: the
// document's objects, a reflector that turns the JSON wire types of
// ops/api into JSON Schema components, and a Markdown renderer of a
// document. It knows no routes: ops/server holds the table of its routes
// and builds its document with this package, so the document is generated
// from the same types and route patterns the server serves.
//
// Output is deterministic: maps are written with sorted keys and the
// reflector names each component after its Go type.
//
// This package imports only the standard library.
package openapi

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"time"
)

// Version is the OpenAPI version of the documents built here.
const Version = "3.1.0"

// Document is an OpenAPI 3.1 document (the parts this project uses).
type Document struct {
	OpenAPI    string               `json:"openapi"`
	Info       Info                 `json:"info"`
	Servers    []Server             `json:"servers,omitempty"`
	Tags       []Tag                `json:"tags,omitempty"`
	Paths      map[string]*PathItem `json:"paths"`
	Components Components           `json:"components"`
}

// Info is the document's info object.
type Info struct {
	Title       string  `json:"title"`
	Version     string  `json:"version"`
	Description string  `json:"description,omitempty"`
	License     License `json:"license"`
}

// License names the API's licence.
type License struct {
	Name       string `json:"name"`
	Identifier string `json:"identifier,omitempty"`
}

// Server is a base URL of the API.
type Server struct {
	URL         string `json:"url"`
	Description string `json:"description,omitempty"`
}

// Tag groups operations.
type Tag struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
}

// PathItem holds the operations of one path.
type PathItem struct {
	Get    *Operation `json:"get,omitempty"`
	Post   *Operation `json:"post,omitempty"`
	Put    *Operation `json:"put,omitempty"`
	Patch  *Operation `json:"patch,omitempty"`
	Delete *Operation `json:"delete,omitempty"`
}

// Operation returns the slot of method in the path item (nil for a
// method OpenAPI has no field for here).
func (p *PathItem) Operation(method string) **Operation {
	switch method {
	case "GET":
		return &p.Get
	case "POST":
		return &p.Post
	case "PUT":
		return &p.Put
	case "PATCH":
		return &p.Patch
	case "DELETE":
		return &p.Delete
	}
	return nil
}

// Methods are the methods a path item can hold, in the order documents
// list them.
var Methods = []string{"GET", "POST", "PUT", "PATCH", "DELETE"}

// Operation is one method of one path.
type Operation struct {
	OperationID string                 `json:"operationId"`
	Summary     string                 `json:"summary"`
	Description string                 `json:"description,omitempty"`
	Tags        []string               `json:"tags,omitempty"`
	Parameters  []Parameter            `json:"parameters,omitempty"`
	RequestBody *RequestBody           `json:"requestBody,omitempty"`
	Responses   map[string]*Response   `json:"responses"`
	Security    *[]map[string][]string `json:"security,omitempty"`
	// Permission is the API key permission the route needs (public, read,
	// write, admin, or metrics: public or read by auth.metrics).
	Permission string `json:"x-permission,omitempty"`
	// Example is a curl command that calls the route.
	Example string `json:"x-example,omitempty"`
}

// Parameter is a path, query or header parameter.
type Parameter struct {
	Name        string  `json:"name"`
	In          string  `json:"in"`
	Description string  `json:"description,omitempty"`
	Required    bool    `json:"required,omitempty"`
	Schema      *Schema `json:"schema"`
}

// RequestBody is an operation's body.
type RequestBody struct {
	Description string               `json:"description,omitempty"`
	Required    bool                 `json:"required"`
	Content     map[string]MediaType `json:"content"`
}

// Response is one status of an operation, or a reference to a shared one.
type Response struct {
	Ref         string               `json:"$ref,omitempty"`
	Description string               `json:"description,omitempty"`
	Headers     map[string]*Header   `json:"headers,omitempty"`
	Content     map[string]MediaType `json:"content,omitempty"`
}

// Header is a response header.
type Header struct {
	Description string  `json:"description,omitempty"`
	Schema      *Schema `json:"schema"`
}

// MediaType is a body of one content type.
type MediaType struct {
	Schema *Schema `json:"schema"`
	// Events are, for a text/event-stream body, the schema of the data of
	// each event name. OpenAPI 3.1 cannot describe the items of a stream,
	// so they are an extension; the schemas they name are components.
	Events map[string]*Schema `json:"x-events,omitempty"`
}

// Components are the document's shared schemas, responses and security
// schemes.
type Components struct {
	Schemas         map[string]*Schema         `json:"schemas"`
	Responses       map[string]*Response       `json:"responses,omitempty"`
	SecuritySchemes map[string]*SecurityScheme `json:"securitySchemes,omitempty"`
}

// SecurityScheme is an authentication method.
type SecurityScheme struct {
	Type        string `json:"type"`
	Scheme      string `json:"scheme,omitempty"`
	In          string `json:"in,omitempty"`
	Name        string `json:"name,omitempty"`
	Description string `json:"description,omitempty"`
}

// Schema is a JSON Schema (draft 2020-12, OpenAPI 3.1's dialect).
type Schema struct {
	Ref                  string             `json:"$ref,omitempty"`
	Type                 any                `json:"type,omitempty"` // a name, or a list of names
	Format               string             `json:"format,omitempty"`
	ContentEncoding      string             `json:"contentEncoding,omitempty"`
	Description          string             `json:"description,omitempty"`
	Enum                 []string           `json:"enum,omitempty"`
	Minimum              *float64           `json:"minimum,omitempty"`
	Items                *Schema            `json:"items,omitempty"`
	Properties           map[string]*Schema `json:"properties,omitempty"`
	Required             []string           `json:"required,omitempty"`
	AdditionalProperties any                `json:"additionalProperties,omitempty"` // false, or a *Schema
	AllOf                []*Schema          `json:"allOf,omitempty"`
	AnyOf                []*Schema          `json:"anyOf,omitempty"`
}

// Marshal writes d as indented JSON with a final newline.
func Marshal(d *Document) ([]byte, error) {
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Unmarshal reads a document Marshal wrote.
func Unmarshal(b []byte) (*Document, error) {
	var d Document
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// RefName is the component name of a "#/components/schemas/NAME" or
// "#/components/responses/NAME" reference.
func RefName(ref string) string {
	return ref[strings.LastIndexByte(ref, '/')+1:]
}

// Reflector turns Go types into schemas, registering each named struct
// type once as a component of Schemas.
type Reflector struct {
	Schemas map[string]*Schema
	// Describe, when set, returns the description of struct type t
	// (field "") or of its Go field.
	Describe func(t reflect.Type, field string) string
	names    map[reflect.Type]string
}

// NewReflector returns a reflector with no components.
func NewReflector() *Reflector {
	return &Reflector{Schemas: map[string]*Schema{}, names: map[reflect.Type]string{}}
}

var (
	timeType    = reflect.TypeFor[time.Time]()
	float32List = reflect.TypeFor[[]float32]()
)

// Ref returns the schema of the type of v: a reference to a component for
// a struct, an inline schema otherwise.
func (r *Reflector) Ref(v any) *Schema { return r.schema(reflect.TypeOf(v)) }

// name is the component name of struct type t: its Go name, which must
// be unique among the document's types.
func (r *Reflector) name(t reflect.Type) string {
	if n, ok := r.names[t]; ok {
		return n
	}
	n := t.Name()
	for ot, on := range r.names {
		if on == n {
			panic(fmt.Sprintf("openapi: types %s and %s would both be component %s; rename one", ot, t, n))
		}
	}
	r.names[t] = n
	return n
}

func (r *Reflector) schema(t reflect.Type) *Schema {
	switch {
	case t == timeType:
		return &Schema{Type: "string", Format: "date-time"}
	case t == float32List:
		return &Schema{AnyOf: []*Schema{
			{Type: "array", Items: &Schema{Type: "number", Format: "float"}},
			{Type: "string", ContentEncoding: "base64", Description: "the components as little-endian IEEE 754 float32s (requests only)"},
		}}
	}
	zero := 0.0
	switch t.Kind() {
	case reflect.Pointer:
		return nullable(r.schema(t.Elem()))
	case reflect.String:
		return &Schema{Type: "string"}
	case reflect.Bool:
		return &Schema{Type: "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return &Schema{Type: "integer"}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return &Schema{Type: "integer", Minimum: &zero}
	case reflect.Float32:
		return &Schema{Type: "number", Format: "float"}
	case reflect.Float64:
		return &Schema{Type: "number", Format: "double"}
	case reflect.Slice, reflect.Array:
		return &Schema{Type: "array", Items: r.schema(t.Elem())}
	case reflect.Map:
		return &Schema{Type: "object", AdditionalProperties: r.schema(t.Elem())}
	case reflect.Interface:
		return &Schema{}
	case reflect.Struct:
		if t.Name() == "" {
			return r.object(t)
		}
		name := r.name(t)
		if _, ok := r.Schemas[name]; !ok {
			r.Schemas[name] = &Schema{} // reserved first: a type that refers to itself gets a $ref, not endless recursion
			r.Schemas[name] = r.object(t)
		}
		return &Schema{Ref: "#/components/schemas/" + name}
	}
	panic(fmt.Sprintf("openapi: no schema for Go type %s", t))
}

// object is the schema of a struct: its JSON fields (embedded structs'
// fields inlined), those written always required, no others allowed.
func (r *Reflector) object(t reflect.Type) *Schema {
	s := &Schema{Type: "object", Properties: map[string]*Schema{}, AdditionalProperties: false, Description: r.describe(t, "")}
	r.fields(t, s)
	return s
}

func (r *Reflector) fields(t reflect.Type, s *Schema) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				r.fields(ft, s)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		omit := strings.Contains(opts, "omitempty") || strings.Contains(opts, "omitzero")
		fs := r.schema(f.Type)
		if !omit && (f.Type.Kind() == reflect.Slice && f.Type != float32List || f.Type.Kind() == reflect.Map) {
			// A nil slice or map is written as null.
			fs = nullable(fs)
		}
		if omit && f.Type.Kind() == reflect.Pointer {
			fs = r.schema(f.Type.Elem()) // left out rather than null
		}
		if fs.Ref == "" {
			fs.Description = r.describe(t, f.Name)
		}
		s.Properties[name] = fs
		if !omit {
			s.Required = append(s.Required, name)
		}
	}
}

func (r *Reflector) describe(t reflect.Type, field string) string {
	if r.Describe == nil || t.Name() == "" {
		return ""
	}
	return r.Describe(t, field)
}

// nullable allows null besides s.
func nullable(s *Schema) *Schema {
	switch typ := s.Type.(type) {
	case string:
		c := *s
		c.Type = []string{typ, "null"}
		return &c
	case nil:
		if s.Ref != "" {
			return &Schema{AnyOf: []*Schema{s, {Type: "null"}}}
		}
	}
	return s
}

// TypeName is a short description of a schema for tables: a type name, a
// component name, or "array of …".
func TypeName(s *Schema) string {
	if s == nil {
		return "any"
	}
	if s.Ref != "" {
		return RefName(s.Ref)
	}
	if len(s.AnyOf) > 0 {
		var parts []string
		for _, a := range s.AnyOf {
			parts = append(parts, TypeName(a))
		}
		return strings.Join(parts, " or ")
	}
	var names []string
	switch typ := s.Type.(type) {
	case string:
		names = []string{typ}
	case []string:
		names = typ
	case []any:
		for _, n := range typ {
			names = append(names, fmt.Sprint(n))
		}
	}
	for i, n := range names {
		switch n {
		case "array":
			names[i] = "array of " + TypeName(s.Items)
		case "object":
			if as, ok := s.AdditionalProperties.(*Schema); ok {
				names[i] = "object of " + TypeName(as)
			}
		case "string":
			if s.Format != "" {
				names[i] = "string (" + s.Format + ")"
			}
		}
	}
	if len(names) == 0 {
		return "any"
	}
	return strings.Join(names, " or ")
}
