package server

import (
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/engram-ops/engram-ops/ops/api"
)

// Engram's request types ignore unknown keys; ours refuse them
// (UNKNOWN_FIELD), so a typo is an error rather than a silently dropped
// value. The names Engram's router or its docs use that are not ours are
// listed here, per request, each with its Engram meaning: an alias of one
// of our fields, or accepted and not applied (as Engram does, and the
// answer says so). docs/engram-compatibility.md lists the same table.

// engramName is one field or query parameter name Engram's clients send.
type engramName struct {
	Name string
	// Alias is our field the name stands for; "" when the name is
	// accepted and not applied.
	Alias string
	// Why says where Engram uses the name and what it does there.
	Why string
}

// engramBody lists the extra body field names of each request type.
var engramBody = map[reflect.Type][]engramName{
	reflect.TypeFor[api.RememberRequest](): {spaceAlias},
	reflect.TypeFor[api.EpisodeRequest](): {
		{"where", "where_location", "Engram's README, quickstart and demo send where; Engram's server reads only where_location and drops where"},
		{"confidence", "importance", "Engram's README, quickstart and demo send confidence; Engram's server reads only importance (the encoding confidence) and drops confidence"},
		spaceAlias,
	},
	reflect.TypeFor[api.RecallRequest]():      append(engramRecallParams[:len(engramRecallParams):len(engramRecallParams)], spaceAlias),
	reflect.TypeFor[api.AssociationRequest](): {spaceAlias},
	reflect.TypeFor[api.BatchRequest]():       {spaceAlias},
	reflect.TypeFor[api.QueryRequest](): {
		{"query", "query_text", "Engram's quickstart sends the statement as query; Engram's server reads query_text"},
		spaceAlias,
	},
}

var spaceAlias = engramName{"memory_space", "memory_space_id", "Engram's docs name the body's space field memory_space as well as memory_space_id"}

// engramRecallParams lists the extra query parameters of GET recall (the
// body's names, without the space field).
var engramRecallParams = []engramName{
	{"confidence_threshold", "threshold", "Engram's memory API doc names the minimum confidence confidence_threshold; its router reads threshold and ignores confidence_threshold"},
	{"excluded_tags", "", "Engram's router accepts excluded_tags and does not apply it"},
	{"location", "", "Engram's router accepts location and does not apply it"},
}

// engramFields resolves the Engram names of a decoded request body in
// place: an alias's value moves to its field (400 CONFLICTING_FIELDS when
// both are given with different values), and an ignored name that was
// given adds a note for the answer. Types without Engram names pass.
func engramFields(r *http.Request, req any) error {
	v := reflect.ValueOf(req)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return nil
	}
	v = v.Elem()
	names := engramBody[v.Type()]
	for _, n := range names {
		f := jsonField(v, n.Name)
		if !f.IsValid() || f.IsZero() {
			continue
		}
		if n.Alias == "" {
			addNote(r, ignoredNote(n))
			continue
		}
		dst := jsonField(v, n.Alias)
		if !dst.IsZero() && !reflect.DeepEqual(dst.Interface(), f.Interface()) {
			return conflictingFields(n.Name, n.Alias)
		}
		dst.Set(f)
		f.SetZero()
	}
	return nil
}

func conflictingFields(alias, field string) error {
	return httpErrorf(http.StatusBadRequest, "CONFLICTING_FIELDS",
		"%s and %s are the same field (%s is Engram's name for %s) and were given different values; send one", alias, field, alias, field).
		with("field", alias, "alias_of", field)
}

func ignoredNote(n engramName) string {
	return n.Name + " is accepted for Engram compatibility and not applied, as Engram does"
}

// engramRecallQuery resolves the Engram query parameters of GET recall
// into req, after p parsed ours.
func engramRecallQuery(r *http.Request, p *params, req *api.RecallRequest) {
	for _, n := range engramRecallParams {
		p.known[n.Name] = true
	}
	if s := p.str("confidence_threshold"); s != "" {
		t := p.float("confidence_threshold")
		if p.err == nil && req.Threshold != 0 && req.Threshold != t {
			p.err = conflictingFields("confidence_threshold", "threshold")
		}
		req.Threshold = t
	}
	for _, n := range engramRecallParams {
		if n.Alias == "" && p.v.Has(n.Name) {
			addNote(r, ignoredNote(n))
		}
	}
}

// jsonField is the field of struct v (embedded structs included) whose
// JSON name is name; the zero Value when there is none.
func jsonField(v reflect.Value, name string) reflect.Value {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		tag := strings.Split(sf.Tag.Get("json"), ",")[0]
		if sf.Anonymous && tag == "" && sf.Type.Kind() == reflect.Struct {
			if f := jsonField(v.Field(i), name); f.IsValid() {
				return f
			}
			continue
		}
		if tag == name {
			return v.Field(i)
		}
	}
	return reflect.Value{}
}

// addNote records a note for the request's answer (a field accepted and
// not applied, a value clamped).
func addNote(r *http.Request, note string) {
	if r == nil {
		return
	}
	if ri := infoFrom(r.Context()); ri != nil {
		ri.notes = append(ri.notes, note)
	}
}

// clampConfidence clamps a confidence to [0, 1], as Engram does, and says
// so in the returned note ("" when c was in range). field names it.
func clampConfidence(c *float64, field string) (*float64, string) {
	if c == nil || (*c >= 0 && *c <= 1) {
		return c, ""
	}
	v := min(max(*c, 0), 1)
	return &v, fmt.Sprintf("%s %s is outside 0..1 and was clamped to %s, as Engram does",
		field, strconv.FormatFloat(*c, 'g', -1, 64), strconv.FormatFloat(v, 'g', -1, 64))
}
