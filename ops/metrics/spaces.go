package metrics

import (
	"maps"
	"sort"
	"sync"

	"github.com/engram-ops/engram-ops/core"
)

// Space labels are bounded so /metrics stays small with thousands of
// tenants: at most maxSpaceLabels spaces are exported under their own
// name, every other space under OtherSpaces (gauges summed, operations
// observed into one shared series).
const (
	// OtherSpaces is the space label of the spaces not labelled by name.
	OtherSpaces = "_other"
	// UnknownSpace is the space label of requests naming a space that does
	// not exist.
	UnknownSpace = "unknown"
	// DefaultMaxSpaceLabels is how many spaces are labelled by name unless
	// WithMaxSpaceLabels says otherwise.
	DefaultMaxSpaceLabels = 50
)

// spaceLabels decides which spaces are labelled by name. Spaces are
// admitted in the order they are first observed until the set is full;
// before every scrape of Metrics.Handler the set becomes the max spaces
// holding the most memories (on a tie those already labelled, then by
// name), and the series of spaces that leave it are deleted (they restart
// from zero if the space returns).
type spaceLabels struct {
	max    int
	mu     sync.RWMutex
	named  map[string]bool
	onDrop func(space string) // deletes a dropped space's series
}

func newSpaceLabels(max int) *spaceLabels {
	return &spaceLabels{max: max, named: map[string]bool{}}
}

// observe calls record with the space label to record space under, while
// the labelled set cannot change (so a dropped space's series, once
// deleted, is not recreated). space must be a validated name of an
// existing space, or UnknownSpace.
func (l *spaceLabels) observe(space string, record func(label string)) {
	if space == UnknownSpace || space == OtherSpaces {
		record(space) // a space named like a fixed label shares its series
		return
	}
	l.mu.RLock()
	if l.named[space] || len(l.named) >= l.max {
		label := OtherSpaces
		if l.named[space] {
			label = space
		}
		record(label)
		l.mu.RUnlock()
		return
	}
	l.mu.RUnlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.named[space] && len(l.named) < l.max {
		l.named[space] = true
	}
	if l.named[space] {
		record(space)
	} else {
		record(OtherSpaces)
	}
}

// snapshot returns a copy of the labelled set.
func (l *spaceLabels) snapshot() map[string]bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return maps.Clone(l.named)
}

// rank makes the labelled set the max spaces of spaces with the most
// memories and deletes the series of those that leave it.
func (l *spaceLabels) rank(spaces []core.SpaceStats) {
	l.mu.Lock()
	defer l.mu.Unlock()
	order := make([]int, len(spaces))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool {
		x, y := &spaces[order[a]], &spaces[order[b]]
		if tx, ty := x.Total(), y.Total(); tx != ty {
			return tx > ty
		}
		if nx, ny := l.named[x.Name], l.named[y.Name]; nx != ny {
			return nx
		}
		return x.Name < y.Name
	})
	top := make(map[string]bool, min(l.max, len(order)))
	for _, i := range order {
		if len(top) == l.max {
			break
		}
		// A space named like the aggregate is counted in it, never beside it.
		if name := spaces[i].Name; name != OtherSpaces {
			top[name] = true
		}
	}
	for s := range l.named {
		if !top[s] && l.onDrop != nil {
			l.onDrop(s)
		}
	}
	l.named = top
}
