package backup

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

type recObserver struct {
	nopObserver
	mu       sync.Mutex
	verified time.Time
	drill    time.Duration
	errors   map[string]int
}

func (r *recObserver) Verified(at time.Time) { r.mu.Lock(); r.verified = at; r.mu.Unlock() }
func (r *recObserver) RestoreDrill(d time.Duration) {
	r.mu.Lock()
	r.drill = d
	r.mu.Unlock()
}
func (r *recObserver) Error(stage string) {
	r.mu.Lock()
	if r.errors == nil {
		r.errors = map[string]int{}
	}
	r.errors[stage]++
	r.mu.Unlock()
}

func TestVerifyCacheAndRecordedDrill(t *testing.T) {
	ctx := context.Background()
	eng := openEngine(t, t.TempDir(), nil)
	defer eng.Close()
	a, st := newArchive(t, nil)
	st.Now = time.Now
	for i := 0; i < 30; i++ {
		remember(t, eng, "default", fmt.Sprintf("m%02d", i), fmt.Sprintf("memory %d", i))
	}
	if _, err := a.SnapshotEngine(ctx, eng); err != nil {
		t.Fatal(err)
	}
	remember(t, eng, "default", "late", "shipped after the snapshot")
	shipOnce(t, a, eng)

	path := filepath.Join(t.TempDir(), "cache.json")
	c := OpenVerifyCache(path, 0)
	first, err := a.VerifyWith(ctx, VerifyOptions{Level: 4, Cache: c, Record: true})
	if err != nil || !first.OK() || first.Checked == 0 || first.Cached != 0 || first.Recorded == "" {
		t.Fatalf("first: %v %+v", err, first)
	}
	if err := c.Save(a.Target()); err != nil {
		t.Fatal(err)
	}
	second, err := a.VerifyWith(ctx, VerifyOptions{Level: 2, Cache: OpenVerifyCache(path, 0)})
	if err != nil || !second.OK() || second.Checked != 0 || second.Cached != first.Checked {
		t.Fatalf("second: %v %+v", err, second)
	}
	// A rewritten object (new modification time) is checked again.
	remember(t, eng, "default", "later", "another segment")
	shipOnce(t, a, eng)
	third, err := a.VerifyWith(ctx, VerifyOptions{Level: 2, Cache: OpenVerifyCache(path, 0)})
	if err != nil || third.Checked != 1 {
		t.Fatalf("third: %v %+v", err, third)
	}
	// Expired entries are checked again.
	old := OpenVerifyCache(path, 0)
	old.now = func() time.Time { return time.Now().Add(8 * 24 * time.Hour) }
	if r, _ := a.VerifyWith(ctx, VerifyOptions{Level: 2, Cache: old}); r.Cached != 0 {
		t.Fatalf("expired entries used: %+v", r)
	}

	// The shipper of a server exports the recorded level-4 drill.
	obs := &recObserver{}
	sa, err := New(st, Options{Observer: obs, EngineOptions: testEngineOptions(nil)})
	if err != nil {
		t.Fatal(err)
	}
	sh := sa.NewShipper(eng, ShipperOptions{})
	seen := sh.exportVerify(ctx, time.Time{})
	if seen.IsZero() || obs.verified.IsZero() || obs.drill <= 0 || math.Abs(obs.drill.Seconds()-first.DrillSeconds) > 1e-6 {
		t.Fatalf("exported verified %v drill %v (report %v)", obs.verified, obs.drill, first.DrillSeconds)
	}
	if again := sh.exportVerify(ctx, seen); !again.Equal(seen) {
		t.Fatalf("re-export moved %v -> %v", seen, again)
	}
}
