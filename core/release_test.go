package core_test

import (
	"strconv"
	"sync"
	"testing"

	"github.com/engram-ops/engram-ops/core"
)

// TestRecallResultRelease: results handed back by Release are reused by
// later recalls, concurrently, without one recall seeing another's results;
// a released result no longer points at them.
func TestRecallResultRelease(t *testing.T) {
	e := open(t, t.TempDir())
	defer e.Close()
	for i := range 30 {
		remember(t, e, "default", "lighthouse keeper log entry number "+strconv.Itoa(i), func(in *core.RememberInput) { in.ID = "m" + strconv.Itoa(i) })
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 50 {
				id := "m" + strconv.Itoa((g*50+k)%30)
				res, err := e.Recall(ctx, "default", core.RecallQuery{Text: "lighthouse keeper log entry number " + id[1:], MaxResults: 3})
				if err != nil || len(res.Vivid) == 0 {
					t.Errorf("recall %s: %v %+v", id, err, res)
					return
				}
				if got := res.Vivid[0].Memory.ID; got != id {
					t.Errorf("recall of %s: first result %s", id, got)
				}
				for _, r := range res.Vivid {
					if r.Memory.Content != "lighthouse keeper log entry number "+r.Memory.ID[1:] {
						t.Errorf("result %s carries %q", r.Memory.ID, r.Memory.Content)
					}
				}
				res.Release()
				if res.Vivid != nil || res.Associated != nil {
					t.Error("a released result still holds its slices")
				}
			}
		}()
	}
	wg.Wait()
}
