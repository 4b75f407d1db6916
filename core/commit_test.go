package core_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/engram-ops/engram-ops/core"
)

// TestReplayBesideLiveWrites drives ApplyChanges and acknowledged writes on
// one engine at once. Under the race detector it fails if any commit mode
// reads or writes the sequence outside the commit lock; without it, it
// checks that the interleaving leaves one gap-free change log in which
// every replayed change landed once, after any number of refused tries.
func TestReplayBesideLiveWrites(t *testing.T) {
	src := open(t, t.TempDir())
	defer src.Close()
	for i := range 150 {
		remember(t, src, "replayed", fmt.Sprintf("replayed memory number %d", i))
	}
	changes, err := src.ChangesSince(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	dst := open(t, t.TempDir())
	defer dst.Close()

	var wg sync.WaitGroup
	wg.Add(2)
	var applied, refused int
	go func() {
		defer wg.Done()
		for _, c := range changes {
			// Each change is offered as the next sequence; a live write
			// committing in between makes it a gap, which must be
			// refused, and the change is offered again.
			// LastSequence is the durable sequence, which trails a live
			// write's until its fsync: a try can fail many times in a row
			// on a loaded machine, so tries are bounded by time.
			deadline := time.Now().Add(30 * time.Second)
			for {
				c.Seq = dst.LastSequence() + 1
				err := dst.ApplyChanges(ctx, []core.Change{c})
				if err == nil {
					applied++
					break
				}
				if core.CodeOf(err) != "SEQUENCE_GAP" || time.Now().After(deadline) {
					t.Errorf("replay of change %d: %v", c.Seq, err)
					return
				}
				refused++
			}
		}
	}()
	go func() {
		defer wg.Done()
		for i := range 150 {
			if _, err := dst.Remember(ctx, "live", core.RememberInput{Content: fmt.Sprintf("live memory number %d", i)}); err != nil {
				t.Errorf("live remember %d: %v", i, err)
				return
			}
		}
	}()
	wg.Wait()
	if t.Failed() {
		return
	}
	log, err := dst.ChangesSince(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range log {
		if c.Seq != uint64(i+1) {
			t.Fatalf("change log entry %d has sequence %d: the log has a gap or a repeat", i, c.Seq)
		}
	}
	if got := dst.LastSequence(); got != uint64(len(log)) {
		t.Fatalf("last sequence %d, change log holds %d entries", got, len(log))
	}
	if applied != len(changes) {
		t.Fatalf("%d of %d replayed changes landed", applied, len(changes))
	}
	t.Logf("%d replayed changes applied, %d refused as gaps, %d log entries", applied, refused, len(log))
}
