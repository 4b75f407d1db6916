package migrate

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/pelletier/go-toml/v2"

	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/internal/stricttoml"
)

// MappingFile is the TOML mapping file. Every key is optional; objects the
// file does not name take the default mapping, and `skip = true` leaves an
// object out. Unknown keys are errors naming their line.
type MappingFile struct {
	// Space is the target space of every object that names none.
	Space string `toml:"space" comment:"target space of every object that names none"`
	// Objects maps a table / key pattern / node label / relationship type to
	// its rule.
	Objects map[string]ObjectRule `toml:"objects"`
}

// ObjectRule maps one source object.
type ObjectRule struct {
	Skip bool `toml:"skip,omitempty"`
	// Space overrides the file's space.
	Space string `toml:"space,omitempty"`

	// Entity objects (memories).
	Content         string   `toml:"content,omitempty"`
	ID              string   `toml:"id,omitempty"`
	Tags            []string `toml:"tags,omitempty"`
	SourceTags      *bool    `toml:"source_tags,omitempty"`
	Metadata        []string `toml:"metadata,omitempty"`
	ObservedAt      string   `toml:"observed_at,omitempty"`
	Confidence      *float64 `toml:"confidence,omitempty"`
	ConfidenceField string   `toml:"confidence_field,omitempty"`
	Embedding       string   `toml:"embedding,omitempty"`
	MemoryType      string   `toml:"memory_type,omitempty"`
	// References maps a reference kind (foreign key, relationship) of an
	// entity record to its association.
	References map[string]AssocRule `toml:"references,omitempty"`

	// Relation objects (associations): the association each record becomes.
	AssocRule
}

// AssocRule says how a reference becomes an association.
type AssocRule struct {
	Weight      *float64 `toml:"weight,omitempty"`
	WeightField string   `toml:"weight_field,omitempty"`
	Kind        string   `toml:"kind,omitempty"`
	SkipRef     bool     `toml:"skip_reference,omitempty"`
}

// Defaults of the default mapping.
const (
	DefaultContent = "{_object} {_key}\n{*}"
	DefaultID      = "{_object}:{_key}"
	DefaultWeight  = 0.8
	// maxMetadata is how many fields metadata = ["*"] keeps (the engine's
	// default limit is 64 entries; two are the provenance keys).
	maxMetadata = 62
	// maxMetadataValue is the longest metadata value the engine accepts.
	maxMetadataValue = 4096
)

// Metadata keys every migrated memory carries (provenance, used by verify).
const (
	MetaObject = "migrate_object"
	MetaKey    = "migrate_key"
)

// ParseMappingFile decodes a mapping file strictly; name labels errors.
func ParseMappingFile(data []byte, name string) (*MappingFile, error) {
	var f MappingFile
	ps := stricttoml.Decode(data, &f)
	if ps == nil {
		return &f, nil
	}
	errs := make([]error, 0, len(ps))
	for _, p := range ps {
		switch {
		case p.Unknown:
			errs = append(errs, fmt.Errorf("%s:%d:%d: unknown key %q", name, p.Line, p.Col, p.Key))
		case p.Line > 0:
			errs = append(errs, fmt.Errorf("%s:%d:%d: %s", name, p.Line, p.Col, p.Msg))
		default:
			errs = append(errs, fmt.Errorf("%s: %s", name, p.Msg))
		}
	}
	return nil, errors.Join(errs...)
}

// Mapping is a compiled mapping for a known set of source objects.
type Mapping struct {
	space   string
	rules   map[string]*rule
	objects []Object
	fp      string
}

type rule struct {
	obj        Object
	skip       bool
	space      string
	content    *template
	id         *template
	tags       []*template
	sourceTags bool
	metadata   []string // field names; ["*"] = every scalar field
	observedAt string
	confidence *float64
	confField  string
	embedding  string
	memType    string
	refs       map[string]AssocRule
	assoc      AssocRule
}

// Compile checks f against the source's objects and compiles it. f may be
// nil (the default mapping); defaultSpace is the space when f names none.
// Errors name the object, the key and the problem; all are reported at once.
func Compile(f *MappingFile, objects []Object, defaultSpace string) (*Mapping, error) {
	if f == nil {
		f = &MappingFile{}
	}
	m := &Mapping{space: f.Space, rules: map[string]*rule{}, objects: objects}
	if m.space == "" {
		m.space = defaultSpace
	}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if err := core.ValidateSpaceName(m.space); err != nil {
		bad("space: %v", err)
	}
	known := map[string]Object{}
	for _, o := range objects {
		known[o.Name] = o
	}
	names := make([]string, 0, len(f.Objects))
	for name := range f.Objects {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if _, ok := known[name]; !ok && len(objects) > 0 {
			bad("objects.%s: the source has no object %q (it has: %s)", name, name, objectNames(objects))
		}
	}
	for _, o := range objects {
		r, err := compileRule(m.space, o, f.Objects[o.Name])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		m.rules[o.Name] = r
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	m.fp = fingerprint(f, defaultSpace)
	return m, nil
}

func objectNames(objects []Object) string {
	var names []string
	for _, o := range objects {
		names = append(names, o.Name)
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

func compileRule(space string, o Object, in ObjectRule) (*rule, error) {
	var errs []error
	at := "objects." + o.Name
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(at+"."+format, args...))
	}
	r := &rule{obj: o, skip: in.Skip, space: in.Space, sourceTags: true, refs: in.References, assoc: in.AssocRule}
	if r.space == "" {
		r.space = space
	} else if err := core.ValidateSpaceName(r.space); err != nil {
		bad("space: %v", err)
	}
	if in.SourceTags != nil {
		r.sourceTags = *in.SourceTags
	}
	// checkField names a field the schema must have (when it is known).
	checkField := func(key, field string) {
		if field == "" || o.Fields == nil || contains(o.Fields, field) {
			return
		}
		bad("%s: %q is not a field of %s (its fields: %s)", key, field, o.Name, fieldList(o.Fields))
	}
	tmpl := func(key, s, def string) *template {
		if s == "" {
			s = def
		}
		t, err := parseTemplate(s)
		if err != nil {
			bad("%s: %v", key, err)
			return nil
		}
		for _, f := range t.fields() {
			checkField(key, f)
		}
		return t
	}
	checkAssoc := func(key string, a AssocRule) {
		if a.Weight != nil && (math.IsNaN(*a.Weight) || *a.Weight <= 0 || *a.Weight > 1) {
			bad("%sweight: %v is outside (0, 1]", key, *a.Weight)
		}
	}
	if o.Kind == Relation {
		if in.Content != "" || in.ID != "" || len(in.Tags) > 0 || len(in.Metadata) > 0 || in.ObservedAt != "" ||
			in.Confidence != nil || in.ConfidenceField != "" || in.Embedding != "" || in.MemoryType != "" || len(in.References) > 0 {
			bad("%s is a relation: it becomes associations, so only weight, weight_field, kind, space and skip apply", "kind")
		}
		checkField("weight_field", in.WeightField)
		checkAssoc("", in.AssocRule)
		return r, errors.Join(errs...)
	}
	if in.Weight != nil || in.WeightField != "" || in.Kind != "" {
		bad("weight: %s is an entity (its records become memories); set association weights under [objects.%s.references.KIND]", o.Name, o.Name)
	}
	r.content = tmpl("content", in.Content, DefaultContent)
	r.id = tmpl("id", in.ID, DefaultID)
	if r.id != nil && !r.id.only(fieldObject, fieldKey) {
		bad("id: %q may use only {_object} and {_key}, so references to the record resolve without reading it", r.id.src)
	}
	for i, s := range in.Tags {
		if t := tmpl(fmt.Sprintf("tags[%d]", i), s, ""); t != nil {
			r.tags = append(r.tags, t)
		}
	}
	r.metadata = in.Metadata
	if r.metadata == nil {
		r.metadata = []string{fieldAll}
	}
	for _, f := range r.metadata {
		if f != fieldAll {
			checkField("metadata", f)
		}
	}
	r.observedAt, r.confField, r.embedding = in.ObservedAt, in.ConfidenceField, in.Embedding
	checkField("observed_at", r.observedAt)
	checkField("confidence_field", r.confField)
	checkField("embedding", r.embedding)
	if in.Confidence != nil {
		if c := *in.Confidence; math.IsNaN(c) || c < 0 || c > 1 {
			bad("confidence: %v is outside 0..1", c)
		}
		if in.ConfidenceField != "" {
			bad("confidence: set confidence (a constant) or confidence_field, not both")
		}
		r.confidence = in.Confidence
	}
	switch in.MemoryType {
	case "", "semantic", "episodic", "procedural":
		r.memType = in.MemoryType
	default:
		bad("memory_type: %q is not one of semantic, episodic, procedural", in.MemoryType)
	}
	kinds := make([]string, 0, len(in.References))
	for k := range in.References {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		a := in.References[k]
		checkAssoc("references."+k+".", a)
		if a.WeightField != "" {
			bad("references.%s.weight_field: an entity's reference has no fields of its own; use weight", k)
		}
	}
	return r, errors.Join(errs...)
}

func fieldList(fields []string) string {
	if len(fields) == 0 {
		return "none"
	}
	s := append([]string(nil), fields...)
	sort.Strings(s)
	if len(s) > 30 {
		return strings.Join(s[:30], ", ") + fmt.Sprintf(", … (%d in all)", len(s))
	}
	return strings.Join(s, ", ")
}

// fingerprint identifies a mapping: a stored cursor remembers it, so a
// resume with a different mapping (other ids, other content) is refused.
func fingerprint(f *MappingFile, defaultSpace string) string {
	b, _ := toml.Marshal(f)
	return fmt.Sprintf("%016x", fnv64(append(b, defaultSpace...)))
}

// Fingerprint identifies the compiled mapping.
func (m *Mapping) Fingerprint() string { return m.fp }

// Objects are the source objects the mapping was compiled for.
func (m *Mapping) Objects() []Object { return m.objects }

// Spaces lists the target spaces of the mapped objects.
func (m *Mapping) Spaces() []string {
	seen := map[string]bool{}
	var out []string
	for _, o := range m.objects {
		r := m.rules[o.Name]
		if r != nil && !r.skip && !seen[r.space] {
			seen[r.space] = true
			out = append(out, r.space)
		}
	}
	sort.Strings(out)
	return out
}

// DefaultMappingFile spells out the default mapping for objects, as a
// starting point for a mapping file (--print-default-mapping).
func DefaultMappingFile(objects []Object, space string) *MappingFile {
	f := &MappingFile{Space: space, Objects: map[string]ObjectRule{}}
	yes := true
	for _, o := range objects {
		if o.Kind == Relation {
			w := DefaultWeight
			f.Objects[o.Name] = ObjectRule{AssocRule: AssocRule{Weight: &w, Kind: o.Name}}
			continue
		}
		content := DefaultContent
		if o.Fields != nil {
			var b strings.Builder
			b.WriteString("{_object} {_key}")
			fields := append([]string(nil), o.Fields...)
			sort.Strings(fields)
			for _, fl := range fields {
				fmt.Fprintf(&b, "\n%s: {%s}", fl, fl)
			}
			content = b.String()
		}
		f.Objects[o.Name] = ObjectRule{Content: content, ID: DefaultID, SourceTags: &yes, Metadata: []string{fieldAll}}
	}
	return f
}

// MarshalMappingFile writes f as TOML with a header comment.
func MarshalMappingFile(f *MappingFile) ([]byte, error) {
	body, err := toml.Marshal(f)
	if err != nil {
		return nil, err
	}
	head := `# engram-ops migrate mapping file (TOML; unknown keys are errors).
# Templates use {field}, {a.b} (a map's key), {_object}, {_key}, {*} (every field
# as "name: value" lines); {{ and }} are literal braces. id may use only {_object}
# and {_key}. metadata = ["*"] stores every scalar field. Relations (relationship
# types) take weight, weight_field, kind; entities take content, id, tags,
# source_tags, metadata, observed_at, confidence or confidence_field, embedding,
# memory_type and [objects.NAME.references.KIND] weight/kind/skip_reference.
# Objects not named here take the default mapping; skip = true leaves one out.

`
	return append([]byte(head), body...), nil
}
