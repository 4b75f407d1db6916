package deploytest

import (
	"fmt"
	"maps"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// leaves returns the dotted paths of values' scalar leaves (an empty map
// is a leaf: a place for the user's own keys).
func leaves(prefix string, v map[string]any, out map[string]any) {
	for k, x := range v {
		p := k
		if prefix != "" {
			p = prefix + "." + k
		}
		if m, ok := x.(map[string]any); ok && len(m) > 0 {
			leaves(p, m, out)
			continue
		}
		out[p] = x
	}
}

// changed is a different value of the same kind as v.
func changed(v any) any {
	switch x := v.(type) {
	case bool:
		return !x
	case string:
		if x == "" {
			return "changed"
		}
		return x + "0"
	case int, int64, float64:
		return fmt.Sprint(x) + "1"
	case map[string]any:
		return map[string]any{"ENGRAM_CHANGED": "1"}
	}
	return "changed"
}

// set returns a values overlay with path set to v.
func set(path string, v any) map[string]any {
	parts := strings.Split(path, ".")
	out := map[string]any{parts[len(parts)-1]: v}
	for i := len(parts) - 2; i >= 0; i-- {
		out = map[string]any{parts[i]: out}
	}
	return out
}

// Every value of values.yaml changes the rendering: none is dead.
func TestChartHasNoDeadValues(t *testing.T) {
	chrt := loadChart(t)
	base := render(t, chrt, nil)
	all := map[string]any{}
	leaves("", chrt.Values, all)
	paths := make([]string, 0, len(all))
	for p := range all {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		out := render(t, chrt, set(p, changed(all[p])))
		if maps.Equal(out, base) {
			t.Errorf("value %s (%v) changes nothing the chart renders: use it in a template or remove it", p, all[p])
		}
	}
	t.Logf("%d values, each changes the rendering", len(paths))
	// Every size overrides only keys values.yaml has.
	for _, vf := range valuesFiles[1:] {
		size := map[string]any{}
		leaves("", readValues(t, vf), size)
		for p, v := range size {
			def, ok := all[p]
			if !ok {
				t.Errorf("%s sets %s, which values.yaml does not have", vf, p)
			} else if reflect.TypeOf(def) != reflect.TypeOf(v) {
				t.Errorf("%s sets %s to a %T, values.yaml has a %T", vf, p, v, def)
			}
		}
	}
}
