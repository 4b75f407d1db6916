package redis

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/engram-ops/engram-ops/migrate/redis/redistest"
)

// counter counts the round trips to the server (a pipeline or a single
// command is one), the SCANs among their commands, and the passes over
// each pattern (its SCANs from cursor 0).
type counter struct {
	mu     sync.Mutex
	trips  int
	scans  int
	passes map[string]int
}

func (c *counter) DialHook(next goredis.DialHook) goredis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) { return next(ctx, network, addr) }
}

func (c *counter) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		c.count([]goredis.Cmder{cmd})
		return next(ctx, cmd)
	}
}

func (c *counter) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		c.count(cmds)
		return next(ctx, cmds)
	}
}

func (c *counter) count(cmds []goredis.Cmder) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.trips++
	for _, cmd := range cmds {
		if cmd.Name() != "scan" {
			continue
		}
		c.scans++
		// SCAN cursor MATCH pattern COUNT n
		if args := cmd.Args(); len(args) > 3 && fmt.Sprint(args[1]) == "0" {
			if c.passes == nil {
				c.passes = map[string]int{}
			}
			c.passes[fmt.Sprint(args[3])]++
		}
	}
}

// A SCAN page costs one round trip: it carries the next SCAN with the
// types, values and referenced keys of the pages before it. References to
// an earlier pattern's keys come with their key's page, so a keyspace
// holding only those is scanned once.
func TestRoundTripsPerPage(t *testing.T) {
	t.Parallel()
	c := redistest.Client(t)
	p := redistest.Prefix(t, c)
	cnt := redistest.Fill(t, c, p, 3000)
	ctx := context.Background()
	src, err := Connect(ctx, Config{Addr: redistest.Addr(t), Patterns: redistest.Patterns(p), Count: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if _, err := src.Objects(ctx); err != nil {
		t.Fatal(err)
	}
	var run counter
	src.c.AddHook(&run)
	it, err := src.Open(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		if _, err := it.Next(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != cnt.Keys+cnt.Refs {
		t.Fatalf("%d records, want %d", n, cnt.Keys+cnt.Refs)
	}
	for _, pat := range src.Patterns() {
		if run.passes[pat] != 1 {
			t.Errorf("pattern %s was scanned %d times, want once: %v", pat, run.passes[pat], run.passes)
		}
	}
	// The last page needs three more round trips after its SCAN.
	if run.trips > run.scans+3 {
		t.Errorf("%d round trips for %d SCAN pages; want one a page", run.trips, run.scans)
	}
}
