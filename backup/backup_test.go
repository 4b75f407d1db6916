package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/internal/testsupport"
)

// testClock is a controllable engine clock so PITR boundaries are exact.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func testEngineOptions(clock func() time.Time) core.Options {
	return core.Options{DefaultDimension: 32, Now: clock, Durability: core.DurabilityRelaxed,
		Tiers: core.TierOptions{SweepInterval: -1}}
}

func openEngine(t testing.TB, dir string, clock func() time.Time) *core.Engine {
	t.Helper()
	return testsupport.OpenEngine(t, dir, func(o *core.Options) {
		*o = testEngineOptions(clock)
		o.Durability = core.DurabilitySync
	})
}

func newArchive(t testing.TB, c *Codec) (*Archive, *memStore) {
	t.Helper()
	st := newMemStore()
	a, err := New(st, Options{Codec: c, EngineOptions: testEngineOptions(nil)})
	if err != nil {
		t.Fatal(err)
	}
	return a, st
}

func remember(t testing.TB, eng *core.Engine, space, id, content string) {
	t.Helper()
	if _, err := eng.Remember(context.Background(), space, core.RememberInput{ID: id, Content: content}); err != nil {
		t.Fatal(err)
	}
}

func ids(t testing.TB, eng *core.Engine, space string) map[string]string {
	t.Helper()
	res, err := eng.List(context.Background(), space, core.ListOptions{AllTiers: true, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, m := range res.Memories {
		out[m.ID] = m.Content
	}
	return out
}

// shipOnce ships every pending change (what one shipper round does).
func shipOnce(t testing.TB, a *Archive, eng *core.Engine) {
	t.Helper()
	s := a.NewShipper(eng, ShipperOptions{})
	shipped, err := s.Resume(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.shipAll(context.Background(), shipped); err != nil {
		t.Fatal(err)
	}
}

func TestSnapshotShipRestorePITR(t *testing.T) {
	ctx := context.Background()
	clock := &testClock{t: time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)}
	eng := openEngine(t, t.TempDir(), clock.Now)
	defer eng.Close()
	a, _ := newArchive(t, nil)

	for i := 0; i < 20; i++ {
		remember(t, eng, "default", fmt.Sprintf("m%02d", i), fmt.Sprintf("memory number %d about apples", i))
	}
	snap, err := a.SnapshotEngine(ctx, eng)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Manifest.Memories() != 20 || !strings.HasPrefix(snap.Manifest.ContentDigest, "sha256:") {
		t.Fatalf("manifest: %+v", snap.Manifest)
	}
	shipOnce(t, a, eng) // nothing pending yet
	clock.Advance(time.Second)
	remember(t, eng, "default", "keep", "written before the accident")
	shipOnce(t, a, eng)
	clock.Advance(time.Second)
	before := clock.Now() // the moment to restore to
	clock.Advance(time.Second)
	if _, err := eng.Forget(ctx, "default", "m03"); err != nil {
		t.Fatal(err)
	}
	remember(t, eng, "default", "after", "written after the accident")
	shipOnce(t, a, eng)

	dest := filepath.Join(t.TempDir(), "restored")
	rep, err := a.Restore(ctx, RestoreOptions{DataDir: dest, ToTime: before})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Snapshot != snap.Manifest.ID || rep.ChangesApplied != 1 {
		t.Fatalf("report: %+v", rep)
	}
	r := openEngine(t, dest, nil)
	got := ids(t, r, "default")
	r.Close()
	if _, ok := got["m03"]; !ok {
		t.Error("the forgotten memory m03 is not back")
	}
	if _, ok := got["keep"]; !ok {
		t.Error("the memory written before the moment is missing")
	}
	if _, ok := got["after"]; ok {
		t.Error("a memory written after the moment was restored")
	}
	if len(got) != 21 {
		t.Errorf("restored %d memories, want 21", len(got))
	}

	// Latest: everything.
	dest2 := filepath.Join(t.TempDir(), "latest")
	rep, err = a.Restore(ctx, RestoreOptions{DataDir: dest2})
	if err != nil {
		t.Fatal(err)
	}
	r = openEngine(t, dest2, nil)
	got = ids(t, r, "default")
	r.Close()
	if _, ok := got["m03"]; ok || len(got) != 21 {
		t.Errorf("latest restore has %d memories (m03 present: %v)", len(got), ok)
	}
	if rep.Sequence != eng.LastSequence() {
		t.Errorf("restored to %d, engine at %d", rep.Sequence, eng.LastSequence())
	}

	// A non-empty destination is refused without --force and untouched.
	if _, err := a.Restore(ctx, RestoreOptions{DataDir: dest2}); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("non-empty destination: %v", err)
	}
	rep, err = a.Restore(ctx, RestoreOptions{DataDir: dest2, Force: true, ToSequence: snap.Manifest.Sequence})
	if err != nil {
		t.Fatal(err)
	}
	if rep.MovedAside == "" || rep.ChangesApplied != 0 {
		t.Fatalf("force: %+v", rep)
	}
	if _, err := os.Stat(rep.MovedAside); err != nil {
		t.Fatal(err)
	}
}

func TestIncrementalSnapshot(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	eng := openEngine(t, dir, nil)
	a, _ := newArchive(t, nil)
	for i := 0; i < 200; i++ {
		remember(t, eng, "default", fmt.Sprintf("m%03d", i), strings.Repeat(fmt.Sprintf("content %d ", i), 20))
	}
	// Reopen, so the data is in tables as in a long-running engine (a
	// checkpoint is uploaded as taken: what is still in the memtable is in
	// its WAL copy, which every snapshot uploads anew).
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
	eng = openEngine(t, dir, nil)
	defer eng.Close()
	first, err := a.SnapshotEngine(ctx, eng)
	if err != nil {
		t.Fatal(err)
	}
	second, err := a.SnapshotEngine(ctx, eng)
	if err != nil {
		t.Fatal(err)
	}
	if second.UploadedBytes >= first.UploadedBytes/2 {
		t.Errorf("unchanged second snapshot uploaded %d bytes, the first %d", second.UploadedBytes, first.UploadedBytes)
	}
}

func TestRestoreFaults(t *testing.T) {
	ctx := context.Background()
	clock := &testClock{t: time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)}
	eng := openEngine(t, t.TempDir(), clock.Now)
	defer eng.Close()
	a, st := newArchive(t, nil)
	for i := 0; i < 5; i++ {
		remember(t, eng, "default", fmt.Sprintf("a%d", i), "first")
	}
	snap, err := a.SnapshotEngine(ctx, eng)
	if err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 3; round++ {
		clock.Advance(time.Second)
		remember(t, eng, "default", fmt.Sprintf("r%d", round), "later")
		shipOnce(t, a, eng)
	}
	segs, err := a.Segments(ctx)
	if err != nil || len(segs) != 3 {
		t.Fatalf("segments %v %v", segs, err)
	}

	restoreFails := func(t *testing.T, o RestoreOptions, want string) {
		t.Helper()
		parent := t.TempDir()
		o.DataDir = filepath.Join(parent, "dest")
		_, err := a.Restore(ctx, o)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("restore error %v, want %q", err, want)
		}
		left, _ := os.ReadDir(parent)
		if len(left) != 0 {
			t.Fatalf("restore left %v behind", left)
		}
	}
	move := func(t *testing.T, key string, mutate func([]byte) []byte) {
		t.Helper()
		r, err := st.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		orig, _ := io.ReadAll(r)
		r.Close()
		t.Cleanup(func() { _ = st.Put(ctx, key, bytes.NewReader(orig), int64(len(orig))) })
		if mutate == nil {
			_ = st.Delete(ctx, key)
			return
		}
		b := mutate(append([]byte(nil), orig...))
		if err := st.Put(ctx, key, bytes.NewReader(b), int64(len(b))); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("before first snapshot", func(t *testing.T) {
		restoreFails(t, RestoreOptions{ToTime: snap.Manifest.LastChange.Add(-time.Hour)}, "no snapshot at or before")
	})
	t.Run("missing middle segment", func(t *testing.T) {
		move(t, segs[1].Key, nil)
		restoreFails(t, RestoreOptions{}, fmt.Sprintf("sequences %d-%d are not on", segs[1].First, segs[1].Last))
	})
	t.Run("corrupt segment", func(t *testing.T) {
		move(t, segs[2].Key, func(b []byte) []byte { b[len(b)/2] ^= 0xff; return b })
		restoreFails(t, RestoreOptions{}, "checksum mismatch")
	})
	t.Run("truncated segment", func(t *testing.T) {
		move(t, segs[0].Key, func(b []byte) []byte { return b[:len(b)-10] })
		restoreFails(t, RestoreOptions{}, "segment")
	})
	t.Run("corrupt file", func(t *testing.T) {
		f := snap.Manifest.Files[0]
		for _, x := range snap.Manifest.Files {
			if x.Size > f.Size {
				f = x
			}
		}
		move(t, f.Key, func(b []byte) []byte { b[len(b)/2] ^= 0xff; return b })
		restoreFails(t, RestoreOptions{}, "corrupt")
	})
	t.Run("truncated file", func(t *testing.T) {
		f := snap.Manifest.Files[len(snap.Manifest.Files)-1]
		move(t, f.Key, func(b []byte) []byte { return b[:len(b)/2] })
		restoreFails(t, RestoreOptions{}, "corrupt")
	})
	t.Run("newer manifest format", func(t *testing.T) {
		move(t, manifestKey(snap.Manifest.ID), func(b []byte) []byte {
			return bytes.Replace(b, fmt.Appendf(nil, `"format_version": %d`, ManifestFormat), []byte(`"format_version": 99`), 1)
		})
		restoreFails(t, RestoreOptions{}, "manifest format 99")
	})
	t.Run("sequence beyond shipped", func(t *testing.T) {
		restoreFails(t, RestoreOptions{ToSequence: 1 << 40}, "beyond the newest shipped")
	})
}

// blockingStore blocks segment uploads until their context is cancelled.
type blockingStore struct {
	ObjectStore
	started chan struct{}
	once    sync.Once
}

func (b *blockingStore) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if strings.HasPrefix(key, segmentsPrefix) {
		_, _ = io.Copy(io.Discard, io.LimitReader(r, 10))
		b.once.Do(func() { close(b.started) })
		<-ctx.Done()
		return ctx.Err()
	}
	return b.ObjectStore.Put(ctx, key, r, size)
}

func TestShipperKilledMidUploadResumes(t *testing.T) {
	ctx := context.Background()
	eng := openEngine(t, t.TempDir(), nil)
	defer eng.Close()
	a, st := newArchive(t, nil)
	remember(t, eng, "default", "base", "in the first snapshot")

	// First run: one segment shipped, then killed during the next upload.
	shipOnce(t, a, eng)
	remember(t, eng, "default", "x1", "shipped by the first run")
	shipOnce(t, a, eng)
	remember(t, eng, "default", "x2", "pending when the shipper dies")

	bs := &blockingStore{ObjectStore: st, started: make(chan struct{})}
	ba, _ := New(bs, Options{EngineOptions: testEngineOptions(nil)})
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() {
		done <- ba.NewShipper(eng, ShipperOptions{Interval: 10 * time.Millisecond, FinalFlush: -1}).Run(rctx)
	}()
	select {
	case <-bs.started:
	case <-time.After(10 * time.Second):
		t.Fatal("the shipper never uploaded")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// Second run on the real store ships the rest.
	remember(t, eng, "default", "x3", "written after the crash")
	rctx, cancel = context.WithCancel(ctx)
	s := a.NewShipper(eng, ShipperOptions{Interval: 10 * time.Millisecond, FinalFlush: -1})
	go func() { done <- s.Run(rctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for s.Status().ShippedSequence < eng.LastSequence() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	segs, err := a.Segments(ctx)
	if err != nil {
		t.Fatal(err)
	}
	next := uint64(0)
	for i, sg := range segs {
		if i > 0 && sg.First != next {
			t.Fatalf("segments are not contiguous: %v", segs)
		}
		next = sg.Last + 1
	}
	if next-1 != eng.LastSequence() {
		t.Fatalf("shipped up to %d, engine at %d", next-1, eng.LastSequence())
	}
	dest := filepath.Join(t.TempDir(), "r")
	if _, err := a.Restore(ctx, RestoreOptions{DataDir: dest}); err != nil {
		t.Fatal(err)
	}
	r := openEngine(t, dest, nil)
	got := ids(t, r, "default")
	r.Close()
	for _, id := range []string{"base", "x1", "x2", "x3"} {
		if _, ok := got[id]; !ok {
			t.Errorf("%s lost", id)
		}
	}
}

func TestShipperRefusesFork(t *testing.T) {
	ctx := context.Background()
	eng := openEngine(t, t.TempDir(), nil)
	a, _ := newArchive(t, nil)
	remember(t, eng, "default", "a", "one")
	shipOnce(t, a, eng)
	remember(t, eng, "default", "b", "two")
	shipOnce(t, a, eng)
	eng.Close()
	other := openEngine(t, t.TempDir(), nil) // a fresh engine behind the target
	defer other.Close()
	err := a.NewShipper(other, ShipperOptions{}).Run(ctx)
	if !errors.Is(err, errFork) {
		t.Fatalf("fork: %v", err)
	}
}

// Change-log retention never removes what the shipper has not shipped.
func TestShipperHoldsUnshippedChangeLog(t *testing.T) {
	clock := &testClock{t: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
	o := testEngineOptions(clock.Now)
	o.ChangeLog.Retention = time.Hour
	o.Durability = core.DurabilitySync
	eng, err := core.Open(t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	a, _ := newArchive(t, nil)
	for i := range 5 {
		remember(t, eng, "default", fmt.Sprintf("m%d", i), fmt.Sprintf("memory number %d", i))
	}
	s := a.NewShipper(eng, ShipperOptions{})
	clock.Advance(2 * time.Hour)
	if n, err := eng.ApplyChangeLogRetention(); err != nil || n != 0 {
		t.Fatalf("before the shipper resumed, retention removed %d (%v)", n, err)
	}
	shipped, err := s.Resume(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if shipped, err = s.shipAll(context.Background(), shipped); err != nil {
		t.Fatal(err)
	}
	remember(t, eng, "default", "late", "written after the shipment")
	clock.Advance(2 * time.Hour)
	if _, err := eng.ApplyChangeLogRetention(); err != nil {
		t.Fatal(err)
	}
	first, last := eng.ChangeLogRange()
	if first != shipped+1 || last != shipped+1 {
		t.Fatalf("after shipping up to %d, the log holds %d..%d; want exactly the unshipped %d", shipped, first, last, shipped+1)
	}
}

// TestIncrementalSnapshotReusesIndexGraph: a snapshot taken after a few
// changes stores the previous snapshot's index graph again instead of the
// rewritten one, and a restore of it still finds every memory (those the
// older graph lacks are indexed after opening, searched exactly meanwhile);
// once the graph has drifted by more than graphReuseFraction it is stored
// anew.
func TestIncrementalSnapshotReusesIndexGraph(t *testing.T) {
	ctx := context.Background()
	eng := openEngine(t, t.TempDir(), nil)
	defer eng.Close()
	a, _ := newArchive(t, nil)
	write := func(from, to int, text string) {
		t.Helper()
		var batch []core.RememberInput
		for i := from; i < to; i++ {
			batch = append(batch, core.RememberInput{ID: fmt.Sprintf("m%04d", i), Content: fmt.Sprintf("%s %d alpha beta %d", text, i, i*7)})
		}
		if _, err := eng.Batch(ctx, "default", core.BatchInput{Memories: batch}); err != nil {
			t.Fatal(err)
		}
		if err := eng.WaitIndexed(ctx); err != nil {
			t.Fatal(err)
		}
	}
	graphOf := func(m *Manifest) File {
		t.Helper()
		for _, f := range m.Files {
			if f.Path == "index/default.graph" {
				return f
			}
		}
		t.Fatalf("snapshot %s has no index/default.graph", m.ID)
		return File{}
	}
	const n = 2500 // above the exact-search threshold: the graph is used
	write(0, n, "original memory")
	first, err := a.SnapshotEngine(ctx, eng)
	if err != nil {
		t.Fatal(err)
	}
	write(0, n/25, "rewritten zebra") // 4% of the memories
	second, err := a.SnapshotEngine(ctx, eng)
	if err != nil {
		t.Fatal(err)
	}
	if g1, g2 := graphOf(first.Manifest), graphOf(second.Manifest); g1.Key != g2.Key {
		t.Errorf("second snapshot stored a new graph %s (first %s) after 4%% changed", g2.Key, g1.Key)
	}
	if pct := 100 * float64(second.UploadedBytes) / float64(first.UploadedBytes); pct > 15 {
		t.Errorf("incremental snapshot uploaded %.1f%% of the full one", pct)
	}

	dest := filepath.Join(t.TempDir(), "restored")
	if _, err := a.Restore(ctx, RestoreOptions{DataDir: dest}); err != nil {
		t.Fatal(err)
	}
	o := testEngineOptions(nil)
	r, err := core.Open(dest, o)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got := len(ids(t, r, "default")); got != 1000 { // ids lists at most 1000
		t.Fatalf("restored listing has %d memories", got)
	}
	for _, when := range []string{"just opened", "indexed"} {
		if when == "indexed" {
			if err := r.WaitIndexed(ctx); err != nil {
				t.Fatal(err)
			}
		}
		for _, i := range []int{3, 50, 99} {
			res, err := r.Recall(ctx, "default", core.RecallQuery{Text: fmt.Sprintf("rewritten zebra %d alpha beta %d", i, i*7), MaxResults: 3, NoReinforce: true})
			if err != nil {
				t.Fatal(err)
			}
			want := fmt.Sprintf("m%04d", i)
			if len(res.Vivid) == 0 || res.Vivid[0].Memory.ID != want || !strings.HasPrefix(res.Vivid[0].Memory.Content, "rewritten zebra") {
				t.Errorf("%s: recall of rewritten %s: %+v", when, want, res.Vivid)
			}
		}
	}

	// Another engine with a graph of about the same size snapshotted into
	// the same archive: its node ids are its own, so its graph is stored.
	other := openEngine(t, t.TempDir(), nil)
	defer other.Close()
	var batch []core.RememberInput
	for i := 0; i < n; i++ {
		batch = append(batch, core.RememberInput{ID: fmt.Sprintf("o%04d", i), Content: fmt.Sprintf("other engine %d gamma %d", i, i*3)})
	}
	if _, err := other.Batch(ctx, "default", core.BatchInput{Memories: batch}); err != nil {
		t.Fatal(err)
	}
	// Rewrites put it ahead of the archive's sequence with a graph of
	// about the same size, so only the table check tells it apart.
	if _, err := other.Batch(ctx, "default", core.BatchInput{Memories: batch[:n/10]}); err != nil {
		t.Fatal(err)
	}
	if err := other.WaitIndexed(ctx); err != nil {
		t.Fatal(err)
	}
	if other.LastSequence() <= second.Manifest.Sequence {
		t.Fatalf("test setup: the other engine is at %d, not ahead of %d", other.LastSequence(), second.Manifest.Sequence)
	}
	foreign, err := a.SnapshotEngine(ctx, other)
	if err != nil {
		t.Fatal(err)
	}
	if g1, gf := graphOf(first.Manifest), graphOf(foreign.Manifest); g1.Key == gf.Key {
		t.Error("another engine's snapshot reused this engine's graph")
	}

	write(n, n+n/5, "added later") // the graph grows by 20%
	third, err := a.SnapshotEngine(ctx, eng)
	if err != nil {
		t.Fatal(err)
	}
	if g1, g3 := graphOf(first.Manifest), graphOf(third.Manifest); g1.Key == g3.Key {
		t.Error("a graph 20% larger than the stored one was not stored anew")
	}
}

// TestSnapshotDataDirUnderReserve: a data directory whose filesystem is
// under the engine's reserve is refused with the reason, not with a hint
// that a server holds it.
func TestSnapshotDataDirUnderReserve(t *testing.T) {
	dir := t.TempDir()
	eng := openEngine(t, dir, nil)
	remember(t, eng, "notes", "a", "kept")
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
	o := testEngineOptions(nil)
	o.MinFreeBytes = 1 << 30
	o.DiskFree = func(string) (int64, error) { return 10 << 20, nil }
	a, err := New(newMemStore(), Options{EngineOptions: o})
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.SnapshotDataDir(context.Background(), dir)
	if core.KindOf(err) != core.KindInsufficientStorage || strings.Contains(err.Error(), "server running") {
		t.Fatalf("snapshot of a data directory under the reserve: %v", err)
	}
}

// TestRestoreChecksRoomFirst: a restore whose snapshot and the engine's
// reserve do not fit in the free space stops before downloading anything,
// naming both, and leaves nothing behind.
func TestRestoreChecksRoomFirst(t *testing.T) {
	ctx := context.Background()
	eng := openEngine(t, t.TempDir(), nil)
	defer eng.Close()
	for i := range 20 {
		remember(t, eng, "default", fmt.Sprintf("m%02d", i), "a memory worth restoring")
	}
	st := newMemStore()
	src, err := New(st, Options{EngineOptions: testEngineOptions(nil)})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := src.SnapshotEngine(ctx, eng)
	if err != nil {
		t.Fatal(err)
	}
	size := snap.Manifest.PlainBytes()
	const reserve = 1 << 20
	o := testEngineOptions(nil)
	o.MinFreeBytes = reserve
	o.DiskFree = func(string) (int64, error) { return reserve + size - 1, nil } // one byte short
	a, err := New(st, Options{EngineOptions: o})
	if err != nil {
		t.Fatal(err)
	}
	parent := t.TempDir()
	dest := filepath.Join(parent, "restored")
	_, err = a.Restore(ctx, RestoreOptions{DataDir: dest})
	if core.KindOf(err) != core.KindInsufficientStorage || !strings.Contains(err.Error(), fmt.Sprintf("(%d bytes) to write", size)) {
		t.Fatalf("restore one byte short of room: %v", err)
	}
	if entries, _ := os.ReadDir(parent); len(entries) != 0 {
		t.Fatalf("a refused restore left %v behind", entries)
	}
	o.DiskFree = func(string) (int64, error) { return reserve + size, nil } // just enough
	if a, err = New(st, Options{EngineOptions: o}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Restore(ctx, RestoreOptions{DataDir: dest}); err != nil {
		t.Fatalf("restore with just enough room: %v", err)
	}
}
