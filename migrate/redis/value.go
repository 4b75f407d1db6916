package redis

import (
	"encoding/json"
	"io"
	"math"
	"strconv"
	"strings"
)

// stringFields is what a string key's value becomes: a JSON object's
// members as fields, anything else one field "value" (a JSON array
// decoded, other text as it is).
func stringFields(v string) map[string]any {
	if d, ok := decodeJSONLooking(v); ok {
		if m, ok := d.(map[string]any); ok {
			return m
		}
		return map[string]any{"value": d}
	}
	return map[string]any{"value": v}
}

// jsonOrString decodes a JSON-looking value (a hash field's), else keeps
// the text.
func jsonOrString(v string) any {
	if d, ok := decodeJSONLooking(v); ok {
		return d
	}
	return v
}

// decodeJSONLooking decodes v when it is one JSON object or array (after
// optional whitespace) and nothing else: integers become int64, other
// numbers float64 (a number neither can hold stays its text). Scalars
// ("42", "true", a quoted string) are not JSON-looking: they stay text.
func decodeJSONLooking(v string) (any, bool) {
	t := strings.TrimLeft(v, " \t\r\n")
	if t == "" || (t[0] != '{' && t[0] != '[') {
		return nil, false
	}
	dec := json.NewDecoder(strings.NewReader(t))
	dec.UseNumber()
	var out any
	if err := dec.Decode(&out); err != nil {
		return nil, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false
	}
	return numbers(out), true
}

func numbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return i
		}
		if f, err := strconv.ParseFloat(string(x), 64); err == nil && !math.IsInf(f, 0) {
			return f
		}
		return string(x)
	case map[string]any:
		for k, e := range x {
			x[k] = numbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = numbers(e)
		}
	}
	return v
}

// maxKeyRef bounds the values taken for key names (references).
const maxKeyRef = 512

// keyLike reports whether a field value could name a key: 1-512 bytes,
// no whitespace or control bytes.
func keyLike(s string) bool {
	if s == "" || len(s) > maxKeyRef {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] == 0x7f {
			return false
		}
	}
	return true
}
