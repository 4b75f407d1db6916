package deploytest

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sort"
	"strconv"
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

// changedList is a different list: empty for a non-empty one.
func changedList(v []any) any {
	if len(v) > 0 {
		return []any{}
	}
	return []any{"changed"}
}

// merged is a deep copy of base with over's keys set (maps merge, other
// values replace).
func merged(base, over map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		if bm, ok := out[k].(map[string]any); ok {
			if om, ok := v.(map[string]any); ok {
				out[k] = merged(bm, om)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// listLeaves is leaves descending into lists of maps too (path segments
// of list items are their index).
func listLeaves(prefix []string, v any, out map[string][]string, vals map[string]any) {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 0 && len(prefix) > 0 {
			break
		}
		for k, y := range x {
			listLeaves(append(slices.Clone(prefix), k), y, out, vals)
		}
		return
	case []any:
		if len(x) > 0 {
			if _, ok := x[0].(map[string]any); ok {
				for i, y := range x {
					listLeaves(append(slices.Clone(prefix), strconv.Itoa(i)), y, out, vals)
				}
				return
			}
		}
	}
	p := strings.Join(prefix, ".")
	out[p] = prefix
	vals[p] = v
}

// withLeaf is a deep copy of v with the leaf at path set to x.
func withLeaf(v any, path []string, x any) any {
	if len(path) == 0 {
		return x
	}
	switch c := v.(type) {
	case map[string]any:
		out := maps.Clone(c)
		out[path[0]] = withLeaf(c[path[0]], path[1:], x)
		return out
	case []any:
		out := slices.Clone(c)
		i, _ := strconv.Atoi(path[0])
		out[i] = withLeaf(c[i], path[1:], x)
		return out
	}
	return x
}

// Every value of values.yaml changes the rendering, with the defaults or
// with the sharded layout (values-sharded.yaml), and so does every value
// values-sharded.yaml sets, down to each shard's fields: none is dead. A
// value the templates refuse (fail) counts as used.
func TestChartHasNoDeadValues(t *testing.T) {
	chrt := loadChart(t)
	base := render(t, chrt, nil)
	sharded := readValues(t, shardedValues)
	shardedBase := render(t, chrt, sharded)
	differs := func(want map[string]string, values map[string]any) bool {
		out, err := renderErr(chrt, values)
		return err != nil || !maps.Equal(out, want)
	}
	change := func(v any) any {
		if l, ok := v.([]any); ok {
			return changedList(l)
		}
		return changed(v)
	}
	all := map[string]any{}
	leaves("", chrt.Values, all)
	paths := make([]string, 0, len(all))
	for p := range all {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		over := set(p, change(all[p]))
		if !differs(base, over) && !differs(shardedBase, merged(sharded, over)) {
			t.Errorf("value %s (%v) changes nothing the chart renders: use it in a template or remove it", p, all[p])
		}
	}
	shardedPaths, shardedVals := map[string][]string{}, map[string]any{}
	listLeaves(nil, sharded, shardedPaths, shardedVals)
	for p, segs := range shardedPaths {
		if !differs(shardedBase, withLeaf(sharded, segs, change(shardedVals[p])).(map[string]any)) {
			t.Errorf("%s: value %s (%v) changes nothing the chart renders", shardedValues, p, shardedVals[p])
		}
	}
	t.Logf("%d values and %d of %s, each changes the rendering", len(paths), len(shardedPaths), shardedValues)
	// Every other values file overrides only keys values.yaml has (or
	// sets keys in a map values.yaml leaves empty for them).
	for _, vf := range valuesFiles[1:] {
		size := map[string]any{}
		leaves("", readValues(t, vf), size)
		for p, v := range size {
			def, ok := all[p]
			if !ok {
				if !underEmptyMap(p, all) {
					t.Errorf("%s sets %s, which values.yaml does not have", vf, p)
				}
			} else if reflect.TypeOf(def) != reflect.TypeOf(v) {
				t.Errorf("%s sets %s to a %T, values.yaml has a %T", vf, p, v, def)
			}
		}
	}
}

// underEmptyMap reports whether a parent of path is an empty map of the
// defaults: a place for the user's own keys.
func underEmptyMap(path string, defaults map[string]any) bool {
	for i := strings.LastIndex(path, "."); i > 0; i = strings.LastIndex(path[:i], ".") {
		if m, ok := defaults[path[:i]].(map[string]any); ok && len(m) == 0 {
			return true
		}
	}
	return false
}
