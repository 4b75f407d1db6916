package core

import (
	"runtime"
	"testing"
	"time"
)

// TestIndexerPace: the indexer takes every core only when the server is
// idle; while requests are served it takes at most one, however large the
// backlog.
func TestIndexerPace(t *testing.T) {
	backlog := func(n int) *space {
		sp := &space{pending: make(map[uint32][]float32, n)}
		for i := range n {
			sp.pending[uint32(i)] = nil
		}
		return sp
	}
	e := &Engine{}
	if rest, width := e.indexerPace(backlog(10)); rest != 0 || width != runtime.GOMAXPROCS(0) {
		t.Errorf("idle: rest %d width %d, want flat out on every core", rest, width)
	}
	e.enterForeground() // a request in flight
	searched := func(sp *space) *space { sp.lastRecall.Store(time.Now().UnixNano()); return sp }
	for _, c := range []struct {
		name        string
		sp          *space
		rest, width int
	}{
		{"writes only, small backlog", backlog(10), 9, 1},
		{"writes only, backlog above maxYieldBacklog", backlog(maxYieldBacklog + 1), 0, 1},
		{"recalls, small backlog", searched(backlog(10)), 0, 1},
		{"recalls, large backlog", searched(backlog(5000)), 0, 1},
	} {
		if rest, width := e.indexerPace(c.sp); rest != c.rest || width != c.width {
			t.Errorf("%s: rest %d width %d, want %d %d", c.name, rest, width, c.rest, c.width)
		}
	}
	// Under Index.MaxPending, writes held (or about to be) for the indexer
	// get it flat out on every core; while recalls search the space, half of
	// one core.
	bounded := &Engine{opts: Options{Index: IndexOptions{MaxPending: 100}}}
	bounded.enterForeground()
	held := backlog(1)
	held.waiters = []*roomWaiter{{n: 1, ready: make(chan struct{})}}
	for _, c := range []struct {
		name        string
		sp          *space
		rest, width int
	}{
		{"writes only, backlog under half the bound", backlog(49), 9, 1},
		{"writes only, backlog at half the bound", backlog(50), 0, runtime.GOMAXPROCS(0)},
		{"writes only, writes held", held, 0, runtime.GOMAXPROCS(0)},
		{"recalls, backlog at half the bound", searched(backlog(50)), 1, 1},
	} {
		if rest, width := bounded.indexerPace(c.sp); rest != c.rest || width != c.width {
			t.Errorf("bounded, %s: rest %d width %d, want %d %d", c.name, rest, width, c.rest, c.width)
		}
	}
}
