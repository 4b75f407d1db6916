package migrate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
)

// ObjectCheck reconciles one source object.
type ObjectCheck struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
	// Expected counts the memories (entities) or associations (relations)
	// the source yields after mapping; Rejected the records the mapping
	// rejects (they are not expected in Engram).
	Expected int64 `json:"expected"`
	Rejected int64 `json:"rejected"`
	// Found, Missing and Mismatched compare entities by id and checksum.
	// For relations Found is null: the engine counts associations per
	// space, not per kind, so relations are checked in SpaceCheck.
	Found            *int64   `json:"found"`
	Missing          int64    `json:"missing"`
	Mismatched       int64    `json:"mismatched"`
	ExpectedChecksum string   `json:"expected_checksum,omitempty"`
	FoundChecksum    string   `json:"found_checksum,omitempty"`
	Examples         []string `json:"examples,omitempty"` // ids missing or different
	OK               bool     `json:"ok"`
}

// SpaceCheck reconciles one target space.
type SpaceCheck struct {
	Name                 string `json:"name"`
	ExpectedMemories     int64  `json:"expected_memories"`
	FoundMemories        int64  `json:"found_memories"`
	Extra                int64  `json:"extra"` // memories in the space no source record maps to
	ExpectedAssociations int64  `json:"expected_associations"`
	FoundAssociations    int64  `json:"found_associations"`
	OK                   bool   `json:"ok"`
}

// Reconciliation compares the source, mapped, with what Engram holds.
type Reconciliation struct {
	Source  string        `json:"source"`
	Objects []ObjectCheck `json:"objects"`
	Spaces  []SpaceCheck  `json:"spaces"`
	OK      bool          `json:"ok"`
}

type found struct {
	sum     uint64
	matched bool
}

// Verify reads every memory of the mapping's spaces from sink (memory use
// grows with the number of memories: an id and a checksum each), then
// streams the whole source through the mapping and compares, per object,
// counts and the sum of content checksums (id, content, tags). Memories of
// a space that no record maps to are counted as extra: migrate into a space
// of its own. Associations are compared per space: the distinct (from, to)
// pairs the source maps to, between memories that are in Engram, against
// the space's association count.
func Verify(ctx context.Context, src Source, m *Mapping, sink Sink, sourceName string) (*Reconciliation, error) {
	have := map[string]map[string]*found{}
	for _, space := range m.Spaces() {
		ids := map[string]*found{}
		err := sink.Scan(ctx, space, func(id, content string, tags []string) error {
			ids[id] = &found{sum: checksum(id, content, tags)}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("read space %q: %w", space, err)
		}
		have[space] = ids
	}
	type objAcc struct {
		ObjectCheck
		expSum, foundSum uint64
		found            int64
	}
	accs := map[string]*objAcc{}
	var order []string
	acc := func(name string, kind ObjectKind) *objAcc {
		a := accs[name]
		if a == nil {
			a = &objAcc{ObjectCheck: ObjectCheck{Name: name, Kind: kind.String()}}
			accs[name] = a
			order = append(order, name)
		}
		return a
	}
	for _, o := range m.Objects() {
		acc(o.Name, o.Kind)
	}
	pairs := map[string]map[uint64]struct{}{}
	it, err := src.Open(ctx, "")
	if err != nil {
		return nil, err
	}
	defer it.Close()
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		rec, err := it.Next()
		if err == io.EOF {
			break
		}
		var bad *BadRecordError
		if errors.As(err, &bad) {
			continue
		}
		if err != nil {
			return nil, err
		}
		mp, err := m.Apply(&rec)
		if err != nil {
			acc(rec.Object, Entity).Rejected++
			continue
		}
		if mp.Skipped {
			continue
		}
		a := acc(rec.Object, m.rules[rec.Object].obj.Kind)
		ids := have[mp.Space]
		if mem := mp.Memory; mem != nil {
			a.Expected++
			sum := checksum(mem.ID, mem.Content, mem.Tags)
			a.expSum += sum
			f := ids[mem.ID]
			switch {
			case f == nil || f.matched:
				a.Missing++
				a.example(mem.ID)
			case f.sum != sum:
				a.Mismatched++
				a.example(mem.ID)
				f.matched = true
				a.found++
				a.foundSum += f.sum
			default:
				f.matched = true
				a.found++
				a.foundSum += f.sum
			}
		}
		if mp.Memory == nil {
			a.Expected += int64(len(mp.Associations))
		}
		for _, as := range mp.Associations {
			if ids[as.From] == nil || ids[as.To] == nil {
				continue
			}
			ps := pairs[mp.Space]
			if ps == nil {
				ps = map[uint64]struct{}{}
				pairs[mp.Space] = ps
			}
			ps[fnv64([]byte(as.From+"\x00"+as.To))] = struct{}{}
		}
	}
	rep := &Reconciliation{Source: sourceName, OK: true}
	for _, name := range order {
		a := accs[name]
		c := a.ObjectCheck
		if c.Kind == Entity.String() {
			n := a.found
			c.Found = &n
			c.ExpectedChecksum = fmt.Sprintf("%016x", a.expSum)
			c.FoundChecksum = fmt.Sprintf("%016x", a.foundSum)
			c.OK = c.Missing == 0 && c.Mismatched == 0 && a.expSum == a.foundSum
		} else {
			c.OK = true
		}
		rep.OK = rep.OK && c.OK
		rep.Objects = append(rep.Objects, c)
	}
	spaces := m.Spaces()
	sort.Strings(spaces)
	for _, space := range spaces {
		sc := SpaceCheck{Name: space, FoundMemories: int64(len(have[space])), ExpectedAssociations: int64(len(pairs[space]))}
		for _, f := range have[space] {
			if f.matched {
				sc.ExpectedMemories++
			} else {
				sc.Extra++
			}
		}
		for _, c := range rep.Objects {
			if c.Kind == Entity.String() && m.rules[c.Name] != nil && m.rules[c.Name].space == space {
				sc.ExpectedMemories += c.Missing
			}
		}
		n, err := sink.Associations(ctx, space)
		if err != nil {
			return nil, fmt.Errorf("count associations of space %q: %w", space, err)
		}
		sc.FoundAssociations = n
		sc.OK = sc.Extra == 0 && sc.ExpectedMemories == sc.FoundMemories && sc.ExpectedAssociations == sc.FoundAssociations
		rep.OK = rep.OK && sc.OK
		rep.Spaces = append(rep.Spaces, sc)
	}
	return rep, nil
}

func (a *ObjectCheck) example(id string) {
	if len(a.Examples) < 5 {
		a.Examples = append(a.Examples, id)
	}
}
