package loadtest

import (
	"context"
	"fmt"
	"time"

	"github.com/engram-ops/engram-ops/ops/client"
)

// settleIndex waits until the server has moved every preloaded memory of
// spaces into its ANN index (index_pending = 0 on GET /api/v1/spaces/{id}),
// for at most timeout; timeout 0 reads the backlog once without waiting.
// Until then each recall also scans the backlog exactly, so a run started
// earlier measures a server busy catching up, not its steady state. It
// returns the time waited and what was still pending. A server that does
// not describe its spaces is not waited for.
func settleIndex(ctx context.Context, c *client.Client, spaces []string, timeout time.Duration,
	logf func(string, ...any)) (time.Duration, int, error) {
	start := time.Now()
	deadline := start.Add(timeout)
	open := append([]string(nil), spaces...)
	interval := 100 * time.Millisecond
	var lastLog time.Time
	for {
		pending := 0
		still := open[:0]
		for _, name := range open {
			sp, err := c.Space(ctx, name)
			if err != nil {
				if ctx.Err() != nil {
					return time.Since(start), 0, ctx.Err()
				}
				if client.StatusOf(err) != 0 {
					logf("not waiting for the index: GET space %s: %v", name, err)
					return time.Since(start), 0, nil
				}
				return time.Since(start), 0, fmt.Errorf("read the index backlog of space %s: %w", name, err)
			}
			if sp.IndexPending > 0 {
				pending += sp.IndexPending
				still = append(still, name)
			}
		}
		open = still
		now := time.Now()
		if pending == 0 {
			if now.Sub(start) >= time.Second {
				logf("index settled after %.1fs", now.Sub(start).Seconds())
			}
			return now.Sub(start), 0, nil
		}
		if !now.Before(deadline) {
			if timeout > 0 {
				logf("the index has not settled after %.0fs (%d memories pending): running anyway", timeout.Seconds(), pending)
			}
			return now.Sub(start), pending, nil
		}
		if now.Sub(lastLog) >= 5*time.Second {
			logf("waiting for the server to index the preload: %d memories pending (at most %.0fs more)", pending, deadline.Sub(now).Seconds())
			lastLog = now
		}
		t := time.NewTimer(min(interval, deadline.Sub(now)))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return time.Since(start), pending, ctx.Err()
		}
		interval = min(interval*3/2, time.Second)
	}
}
