package migrate

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Memory is a mapped memory, ready to write.
type Memory struct {
	ID         string            `json:"id"`
	Content    string            `json:"content"`
	Embedding  []float32         `json:"embedding,omitempty"`
	Confidence *float64          `json:"confidence,omitempty"`
	Type       string            `json:"memory_type,omitempty"`
	Tags       []string          `json:"tags,omitempty"`
	Metadata   map[string]string `json:"metadata,omitempty"`
	ObservedAt *time.Time        `json:"observed_at,omitempty"`
}

// Association is a mapped association.
type Association struct {
	From   string  `json:"from"`
	To     string  `json:"to"`
	Weight float64 `json:"weight"`
	Kind   string  `json:"kind,omitempty"`
}

// Mapped is what one record becomes.
type Mapped struct {
	Object       string
	Space        string
	Memory       *Memory // nil for relations and skipped objects
	Associations []Association
	Skipped      bool
}

// Apply maps one record. An error is the reason to reject the record.
func (m *Mapping) Apply(rec *Record) (Mapped, error) {
	r := m.rules[rec.Object]
	if r == nil {
		return Mapped{}, fmt.Errorf("object %q is not one the mapping was compiled for (the source's objects changed?)", rec.Object)
	}
	out := Mapped{Object: rec.Object, Space: r.space}
	if r.skip {
		out.Skipped = true
		return out, nil
	}
	if r.obj.Kind == Relation {
		for _, ref := range rec.Refs {
			a, ok, err := m.relationAssoc(r, rec, ref)
			if err != nil {
				return Mapped{}, err
			}
			if ok {
				out.Associations = append(out.Associations, a)
			}
		}
		return out, nil
	}
	mem := &Memory{ID: idSafe(r.id.render(rec)), Content: r.content.render(rec), Type: r.memType}
	if strings.TrimSpace(mem.Content) == "" {
		return Mapped{}, fmt.Errorf("content template %q renders empty text for this record", r.content.src)
	}
	seen := map[string]bool{}
	addTag := func(t string) {
		if t != "" && len(t) <= 256 && !seen[t] {
			seen[t] = true
			mem.Tags = append(mem.Tags, t)
		}
	}
	if r.sourceTags {
		for _, t := range rec.Tags {
			addTag(t)
		}
	}
	for _, t := range r.tags {
		addTag(t.render(rec))
	}
	mem.Metadata = map[string]string{MetaObject: rec.Object, MetaKey: truncateBytes(rec.Key, maxMetadataValue)}
	for k, v := range rec.Metadata {
		if _, taken := mem.Metadata[k]; !taken {
			mem.Metadata[k] = truncateBytes(v, maxMetadataValue)
		}
	}
	for _, f := range r.metadata {
		if f == fieldAll {
			addScalarMetadata(mem.Metadata, rec.Fields)
			continue
		}
		v := formatValue(rec.Fields[f])
		if len(v) > maxMetadataValue {
			return Mapped{}, fmt.Errorf("metadata field %q is %d bytes; a metadata value is at most %d bytes (map it into content instead)", f, len(v), maxMetadataValue)
		}
		mem.Metadata[f] = v
	}
	if r.observedAt != "" {
		if v, ok := rec.Fields[r.observedAt]; ok && v != nil {
			t, err := toTime(v)
			if err != nil {
				return Mapped{}, fmt.Errorf("observed_at field %q: %v", r.observedAt, err)
			}
			mem.ObservedAt = &t
		}
	}
	if r.confidence != nil {
		c := *r.confidence
		mem.Confidence = &c
	} else if r.confField != "" {
		if v, ok := rec.Fields[r.confField]; ok && v != nil {
			c, err := toFloat(v)
			if err != nil || c < 0 || c > 1 {
				return Mapped{}, fmt.Errorf("confidence field %q: %s is not a number in 0..1", r.confField, formatValue(v))
			}
			mem.Confidence = &c
		}
	}
	if r.embedding != "" {
		if v, ok := rec.Fields[r.embedding]; ok && v != nil {
			vec, err := toVector(v)
			if err != nil {
				return Mapped{}, fmt.Errorf("embedding field %q: %v", r.embedding, err)
			}
			mem.Embedding = vec
		}
	}
	out.Memory = mem
	for _, ref := range rec.Refs {
		rule := r.refs[ref.Kind]
		if rule.SkipRef {
			continue
		}
		to, ok := m.idOf(ref.ToObject, ref.ToKey)
		if !ok {
			continue
		}
		w := DefaultWeight
		if rule.Weight != nil {
			w = *rule.Weight
		}
		kind := rule.Kind
		if kind == "" {
			kind = ref.Kind
		}
		out.Associations = append(out.Associations, Association{From: mem.ID, To: to, Weight: w, Kind: kind})
	}
	return out, nil
}

func (m *Mapping) relationAssoc(r *rule, rec *Record, ref Reference) (Association, bool, error) {
	from, ok1 := m.idOf(ref.FromObject, ref.FromKey)
	to, ok2 := m.idOf(ref.ToObject, ref.ToKey)
	if !ok1 || !ok2 {
		return Association{}, false, nil
	}
	w := DefaultWeight
	if r.assoc.Weight != nil {
		w = *r.assoc.Weight
	}
	if f := r.assoc.WeightField; f != "" {
		if v, ok := rec.Fields[f]; ok && v != nil {
			x, err := toFloat(v)
			if err != nil || math.IsNaN(x) || x <= 0 || x > 1 {
				return Association{}, false, fmt.Errorf("weight field %q: %s is not a number in (0, 1]", f, formatValue(v))
			}
			w = x
		}
	}
	kind := r.assoc.Kind
	if kind == "" {
		kind = rec.Object
	}
	return Association{From: from, To: to, Weight: w, Kind: kind}, true, nil
}

// idOf is the memory id of another record; false when its object is
// skipped (no memory, so no association).
func (m *Mapping) idOf(object, key string) (string, bool) {
	r := m.rules[object]
	if r == nil {
		// An object the source did not list (a label only seen on
		// relationship endpoints): the default id.
		t, _ := parseTemplate(DefaultID)
		return idSafe(t.render(&Record{Object: object, Key: key})), true
	}
	if r.skip || r.obj.Kind == Relation {
		return "", false
	}
	return idSafe(r.id.render(&Record{Object: object, Key: key})), true
}

// idSafe replaces bytes a memory id may not hold (letters, digits and
// . _ : @ - are allowed) with '_'.
func idSafe(s string) string {
	ok := true
	for i := 0; i < len(s); i++ {
		if !idByte(s[i]) {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	b := []byte(s)
	for i := range b {
		if !idByte(b[i]) {
			b[i] = '_'
		}
	}
	return string(b)
}

func idByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '@' || c == '-'
}

func addScalarMetadata(md map[string]string, fields map[string]any) {
	names := make([]string, 0, len(fields))
	for k, v := range fields {
		switch v.(type) {
		case string, int64, float64, bool, time.Time, json.Number:
			if k != "" && len(k) <= 256 {
				names = append(names, k)
			}
		}
	}
	sort.Strings(names)
	n := 0
	for _, k := range names {
		if n == maxMetadata || len(md) >= maxMetadata+2 {
			break
		}
		if _, taken := md[k]; taken {
			continue
		}
		v := formatValue(fields[k])
		if len(v) > maxMetadataValue {
			continue // too long for metadata; it is in content
		}
		md[k] = v
		n++
	}
}

func truncateBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

func toTime(v any) (time.Time, error) {
	switch x := v.(type) {
	case time.Time:
		return x, nil
	case string:
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999", "2006-01-02"} {
			if t, err := time.Parse(layout, x); err == nil {
				return t, nil
			}
		}
		return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time", truncateBytes(x, 60))
	case int64:
		return unixAuto(x), nil
	case float64:
		return unixAuto(int64(x)), nil
	case json.Number:
		n, err := x.Int64()
		if err != nil {
			return time.Time{}, fmt.Errorf("%s is not a Unix time", x)
		}
		return unixAuto(n), nil
	}
	return time.Time{}, fmt.Errorf("a %T is not a time", v)
}

// unixAuto reads seconds, or milliseconds when the number is too large to
// be seconds (after the year 5138).
func unixAuto(n int64) time.Time {
	if n > 1e11 || n < -1e11 {
		return time.UnixMilli(n).UTC()
	}
	return time.Unix(n, 0).UTC()
}

func toFloat(v any) (float64, error) {
	switch x := v.(type) {
	case float64:
		return x, nil
	case int64:
		return float64(x), nil
	case json.Number:
		return x.Float64()
	case string:
		return strconv.ParseFloat(strings.TrimSpace(x), 64)
	}
	return 0, fmt.Errorf("a %T is not a number", v)
}

func toVector(v any) ([]float32, error) {
	switch x := v.(type) {
	case []float32:
		return x, nil
	case []any:
		out := make([]float32, len(x))
		for i, e := range x {
			f, err := toFloat(e)
			if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
				return nil, fmt.Errorf("element %d (%s) is not a finite number", i, formatValue(e))
			}
			out[i] = float32(f)
		}
		return out, nil
	}
	return nil, fmt.Errorf("a %T is not a vector (want a list of numbers)", v)
}

func fnv64(b []byte) uint64 {
	h := fnv.New64a()
	h.Write(b)
	return h.Sum64()
}

// checksum is a memory's content checksum for reconciliation: id, content
// and sorted tags (what both sinks can read back).
func checksum(id, content string, tags []string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(id))
	h.Write([]byte{0})
	h.Write([]byte(content))
	t := append([]string(nil), tags...)
	sort.Strings(t)
	for _, s := range t {
		h.Write([]byte{0})
		h.Write([]byte(s))
	}
	return h.Sum64()
}
