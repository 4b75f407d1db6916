package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// synthHistory writes a synthetic archive: one snapshot a day at 03:00 UTC
// from first to last (inclusive), sequence 100 per day. Every snapshot
// references a file shared by all, one shared within its month and one of
// its own; a segment per day covers the changes between snapshots, and a
// tail segment the changes after the last one.
func synthHistory(t *testing.T, st *memStore, first, last time.Time) (ids map[string]string, seqOf map[string]uint64) {
	t.Helper()
	ctx := context.Background()
	ids, seqOf = map[string]string{}, map[string]uint64{}
	put := func(key string, b []byte) {
		if err := st.Put(ctx, key, bytes.NewReader(b), int64(len(b))); err != nil {
			t.Fatal(err)
		}
	}
	file := func(name string) File {
		sum := hexSum([]byte(name))
		k := fileKey(sum, false)
		put(k, []byte(name))
		return File{Path: "db/" + name, SHA256: sum, Size: int64(len(name)), Key: k, StoredSize: int64(len(name))}
	}
	var seq uint64
	day := 0
	for d := first; !d.After(last); d = d.AddDate(0, 0, 1) {
		day++
		created := d.Add(3 * time.Hour)
		prev := seq
		seq = uint64(day) * 100
		put(segmentKey(prev+1, seq), []byte("segment"))
		m := &Manifest{FormatVersion: ManifestFormat, ID: SnapshotID(created, seq), Sequence: seq, Created: created,
			LastChange: created, Encryption: Encrypt{Scheme: "none"}, ContentDigest: "sha256:x",
			Files: []File{file("base"), file("month-" + created.Format("2006-01")), file("own-" + created.Format("2006-01-02"))}}
		b, err := EncodeManifest(m)
		if err != nil {
			t.Fatal(err)
		}
		put(manifestKey(m.ID), b)
		ids[created.Format("2006-01-02")] = m.ID
		seqOf[m.ID] = seq
	}
	put(segmentKey(seq+1, seq+50), []byte("tail"))
	hb, err := EncodeHead(&Head{FormatVersion: 1, Sequence: seq + 50, LastChange: last.Add(4 * time.Hour),
		Segment: segmentKey(seq+1, seq+50), Written: last.Add(4 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	put(headKey, hb)
	return ids, seqOf
}

func keys(st *memStore, prefix string) []string {
	objs, _ := st.List(context.Background(), prefix)
	var out []string
	for _, o := range objs {
		out = append(out, o.Key)
	}
	return out
}

func TestPruneGFSSyntheticHistory(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	st := newMemStore()
	days, seqOf := synthHistory(t, st, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC))
	// An unreferenced file left by an interrupted snapshot long ago, and
	// one being uploaded right now by a snapshot without a manifest yet.
	st.Now = func() time.Time { return now.Add(-48 * time.Hour) }
	_ = st.Put(ctx, fileKey(hexSum([]byte("orphan-old")), false), strings.NewReader("x"), 1)
	st.Now = func() time.Time { return now.Add(-time.Minute) }
	_ = st.Put(ctx, fileKey(hexSum([]byte("orphan-new")), false), strings.NewReader("y"), 1)
	st.Now = nil

	a, err := New(st, Options{EngineOptions: testEngineOptions(nil), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	policy := Retention{KeepDaily: 7, KeepWeekly: 4, KeepMonthly: 12}

	// Dry run: the plan, nothing deleted.
	before := keys(st, "")
	plan, err := a.Prune(ctx, PruneOptions{Retention: policy, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if after := keys(st, ""); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("dry run changed the archive: %d objects before, %d after", len(before), len(after))
	}
	if plan.Done {
		t.Error("a dry run reports Done")
	}

	wantDays := []string{
		// daily: the 7 newest days
		"2026-11-21", "2026-11-22", "2026-11-23", "2026-11-24", "2026-11-25", "2026-11-26", "2026-11-27",
		// weekly (ISO): W48 and W47 are covered by dailies (27th, 22nd), then W46 and W45
		"2026-11-15", "2026-11-08",
		// monthly: November is covered by the 27th; the last day of every other month there is
		"2026-10-31", "2026-09-30", "2026-08-31", "2026-07-31", "2026-06-30", "2026-05-31",
		"2026-04-30", "2026-03-31", "2026-02-28", "2026-01-31",
	}
	var want []string
	for _, d := range wantDays {
		want = append(want, days[d])
	}
	sort.Strings(want)
	if got := plan.KeptIDs(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("kept\n%v\nwant\n%v", got, want)
	}
	for _, s := range plan.Snapshots {
		if s.ID == days["2026-11-27"] && (len(s.Reasons) < 4 || s.Reasons[0] != "newest") {
			t.Errorf("newest snapshot reasons %v", s.Reasons)
		}
		if s.ID == days["2026-11-22"] && fmt.Sprint(s.Reasons) != "[daily 2026-11-22 weekly 2026-W47]" {
			t.Errorf("2026-11-22 reasons %v", s.Reasons)
		}
	}

	plan, err = a.Prune(ctx, PruneOptions{Retention: policy})
	if err != nil || !plan.Done {
		t.Fatalf("prune: %v (done %v)", err, plan != nil && plan.Done)
	}
	// Exactly the kept manifests remain.
	var left []string
	for _, k := range keys(st, snapshotsPrefix) {
		left = append(left, strings.TrimSuffix(strings.TrimPrefix(k, snapshotsPrefix), ".json"))
	}
	if fmt.Sprint(left) != fmt.Sprint(want) {
		t.Fatalf("manifests left %v", left)
	}
	// Files: base, the 11 month files, the kept snapshots' own files and the young orphan.
	wantFiles := map[string]bool{fileKey(hexSum([]byte("base")), false): true, fileKey(hexSum([]byte("orphan-new")), false): true}
	for m := 1; m <= 11; m++ {
		wantFiles[fileKey(hexSum([]byte(fmt.Sprintf("month-2026-%02d", m))), false)] = true
	}
	for _, d := range wantDays {
		wantFiles[fileKey(hexSum([]byte("own-"+d)), false)] = true
	}
	gotFiles := keys(st, filesPrefix)
	if len(gotFiles) != len(wantFiles) {
		t.Errorf("%d files left, want %d", len(gotFiles), len(wantFiles))
	}
	for _, k := range gotFiles {
		if !wantFiles[k] {
			t.Errorf("file %s survived", k)
		}
	}
	// Segments: everything after the oldest kept snapshot (Jan 31), and
	// nothing before it.
	oldest := seqOf[days["2026-01-31"]]
	if plan.OldestKeptSequence != oldest {
		t.Errorf("oldest kept sequence %d, want %d", plan.OldestKeptSequence, oldest)
	}
	segs, _ := a.Segments(ctx)
	next := oldest + 1
	for _, s := range segs {
		if s.First != next {
			t.Fatalf("segments after the oldest kept snapshot are not contiguous: %s, want first %d", s.Key, next)
		}
		next = s.Last + 1
	}
	if want := uint64(331*100 + 51); next != want {
		t.Errorf("segments end before %d, want %d", next, want)
	}
	// Level 1 verification passes on what is left; a second prune deletes nothing.
	if rep, err := a.Verify(ctx, 1); err != nil || !rep.OK() {
		t.Fatalf("verify after prune: %v %+v", err, rep)
	}
	plan, err = a.Prune(ctx, PruneOptions{Retention: policy})
	if err != nil || plan.Files.Deleted+plan.Segments.Deleted != 0 || len(plan.KeptIDs()) != len(want) {
		t.Fatalf("second prune: %v %+v", err, plan)
	}
}

func TestPruneKeepsNewestAndRefusesUnsafe(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	st := newMemStore()
	days, _ := synthHistory(t, st, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 10, 0, 0, 0, 0, time.UTC))
	a, _ := New(st, Options{Now: func() time.Time { return now }})
	if _, err := a.Prune(ctx, PruneOptions{}); err == nil || !strings.Contains(err.Error(), "--keep-daily") {
		t.Fatalf("empty policy: %v", err)
	}
	// A manifest that cannot be read is kept, and no file is deleted.
	garbage := manifestKey(SnapshotID(time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC), 7))
	_ = st.Put(ctx, garbage, strings.NewReader("{"), 1)
	plan, err := a.Prune(ctx, PruneOptions{Retention: Retention{KeepLast: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if got := plan.KeptIDs(); len(got) != 2 || got[1] != days["2026-11-10"] {
		t.Fatalf("kept %v", got)
	}
	if plan.Files.Deleted != 0 || len(keys(st, filesPrefix)) != 12 {
		t.Fatalf("files deleted with an unreadable manifest: %+v", plan.Files)
	}
	if plan.OldestKeptSequence != 7 || plan.Segments.Deleted != 0 {
		t.Fatalf("segments: oldest %d, deleted %d", plan.OldestKeptSequence, plan.Segments.Deleted)
	}
	_ = st.Delete(ctx, garbage)
	// KeepLast 1 with a history of ten days: only the newest survives, and
	// only the segment after it.
	_, err = a.Prune(ctx, PruneOptions{Retention: Retention{KeepLast: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if got := keys(st, snapshotsPrefix); len(got) != 1 || got[0] != manifestKey(days["2026-11-10"]) {
		t.Fatalf("left %v", got)
	}
	if got := keys(st, segmentsPrefix); len(got) != 1 || got[0] != segmentKey(1001, 1050) {
		t.Fatalf("segments left %v", got)
	}
}

// failingDeletes fails every Delete after the first n.
type failingDeletes struct {
	ObjectStore
	n atomic.Int64
}

func (f *failingDeletes) Delete(ctx context.Context, key string) error {
	if f.n.Add(-1) < 0 {
		return errors.New("injected: connection reset")
	}
	return f.ObjectStore.Delete(ctx, key)
}

// TestPruneInterruptedLeavesRestorableArchive takes real snapshots over
// two months (the archive's clock is injected), interrupts prune after
// every possible number of deletions, and restores every snapshot that is
// left, each to the newest shipped change.
func TestPruneInterruptedLeavesRestorableArchive(t *testing.T) {
	ctx := context.Background()
	clock := &testClock{t: time.Date(2026, 9, 20, 3, 0, 0, 0, time.UTC)}
	eng := openEngine(t, t.TempDir(), clock.Now)
	defer eng.Close()
	st := newMemStore()
	a, err := New(st, Options{EngineOptions: testEngineOptions(nil), Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, step := range []time.Duration{0, 24 * time.Hour, 20 * 24 * time.Hour, 24 * time.Hour, 15 * 24 * time.Hour, 24 * time.Hour} {
		clock.Advance(step)
		for i := 0; i < 5; i++ {
			remember(t, eng, "default", fmt.Sprintf("m%03d", n), fmt.Sprintf("memory %d written on %s", n, clock.Now().Format("Jan 2")))
			n++
		}
		shipOnce(t, a, eng)
		if _, err := a.SnapshotEngine(ctx, eng); err != nil {
			t.Fatal(err)
		}
	}
	remember(t, eng, "default", "tail", "after the last snapshot")
	shipOnce(t, a, eng)
	want := eng.LastSequence()
	policy := Retention{KeepDaily: 1, KeepMonthly: 2}

	full, err := a.Prune(ctx, PruneOptions{Retention: policy, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	total := full.Files.Deleted + full.Segments.Deleted
	for _, s := range full.Snapshots {
		if !s.Keep {
			total++
		}
	}
	if len(full.KeptIDs()) != 2 || total < 5 {
		t.Fatalf("plan keeps %v and deletes %d objects", full.KeptIDs(), total)
	}
	snapshotOf := func() map[string][]byte {
		st.mu.Lock()
		defer st.mu.Unlock()
		out := map[string][]byte{}
		for k, v := range st.objs {
			out[k] = v
		}
		return out
	}
	orig := snapshotOf()
	for cut := 0; cut < total; cut++ {
		st.mu.Lock()
		st.objs = map[string][]byte{}
		for k, v := range orig {
			st.objs[k] = v
		}
		st.mu.Unlock()
		fs := &failingDeletes{ObjectStore: st}
		fs.n.Store(int64(cut))
		fa, _ := New(fs, Options{EngineOptions: testEngineOptions(nil), Now: clock.Now})
		if _, err := fa.Prune(ctx, PruneOptions{Retention: policy}); err == nil {
			t.Fatalf("cut %d: prune did not report the failure", cut)
		}
		snaps, _ := a.Snapshots(ctx)
		for _, s := range snaps {
			rep, err := a.Restore(ctx, RestoreOptions{DataDir: filepath.Join(t.TempDir(), "r"), SnapshotID: s.ID})
			if err != nil {
				t.Fatalf("cut %d: restore from %s: %v", cut, s.ID, err)
			}
			if rep.Sequence != want {
				t.Fatalf("cut %d: restore from %s reached %d, want %d", cut, s.ID, rep.Sequence, want)
			}
		}
		// A rerun finishes the job.
		plan, err := a.Prune(ctx, PruneOptions{Retention: policy})
		if err != nil || fmt.Sprint(plan.KeptIDs()) != fmt.Sprint(full.KeptIDs()) {
			t.Fatalf("cut %d: rerun %v kept %v", cut, err, plan.KeptIDs())
		}
		if rep, err := a.Verify(ctx, 2); err != nil || !rep.OK() {
			t.Fatalf("cut %d: verify after rerun: %v %+v", cut, err, rep)
		}
	}
}
