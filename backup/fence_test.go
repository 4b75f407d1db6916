package backup_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/engram-ops/engram-ops/backup"
	"github.com/engram-ops/engram-ops/backup/file"
	"github.com/engram-ops/engram-ops/backup/target"
	"github.com/engram-ops/engram-ops/core"
)

// fenceTargets are the stores the fencing tests run on: a file:// directory
// always, and the S3 server of ENGRAM_TEST_S3_* (versitygw under
// scripts/test.sh) when it is set. Each call opens a new store on the same
// target, as two processes would.
func fenceTargets(t *testing.T) map[string]func(t *testing.T) backup.ObjectStore {
	t.Helper()
	dir := t.TempDir()
	out := map[string]func(t *testing.T) backup.ObjectStore{
		"file": func(t *testing.T) backup.ObjectStore {
			st, err := file.New(dir)
			if err != nil {
				t.Fatal(err)
			}
			return st
		},
	}
	if ep := os.Getenv("ENGRAM_TEST_S3_ENDPOINT"); ep != "" {
		url := "s3://" + os.Getenv("ENGRAM_TEST_S3_BUCKET") + "/fence-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		env := map[string]string{"ENGRAM_S3_ENDPOINT": ep, "ENGRAM_S3_ACCESS_KEY_ID": os.Getenv("ENGRAM_TEST_S3_ACCESS_KEY"),
			"ENGRAM_S3_SECRET_ACCESS_KEY": os.Getenv("ENGRAM_TEST_S3_SECRET_KEY"), "ENGRAM_S3_REGION": "us-east-1",
			"ENGRAM_S3_PATH_STYLE": "1", "ENGRAM_S3_INSECURE": "1"}
		out["s3"] = func(t *testing.T) backup.ObjectStore {
			st, err := target.Open(t.Context(), url, target.Options{}, func(k string) string { return env[k] })
			if err != nil {
				t.Fatal(err)
			}
			return st
		}
	}
	return out
}

func fenceEngine(t *testing.T, dir string) *core.Engine {
	t.Helper()
	eng, err := core.Open(dir, core.Options{DefaultDimension: 8, Tiers: core.TierOptions{SweepInterval: -1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	return eng
}

func fenceRemember(t *testing.T, eng *core.Engine, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if _, err := eng.Remember(t.Context(), "default", core.RememberInput{ID: id, Content: "memory " + id}); err != nil {
			t.Fatal(err)
		}
	}
}

func fenceArchive(t *testing.T, st backup.ObjectStore) *backup.Archive {
	t.Helper()
	a, err := backup.New(st, backup.Options{EngineOptions: core.Options{DefaultDimension: 8}})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// shipping runs a shipper until the test ends.
type shipping struct {
	sh   *backup.Shipper
	eng  *core.Engine
	done chan error
	stop context.CancelFunc
}

func startShipper(t *testing.T, a *backup.Archive, eng *core.Engine, o backup.ShipperOptions) *shipping {
	t.Helper()
	o.Interval, o.FinalFlush, o.VerifyPoll = 10*time.Millisecond, -1, -1
	ctx, stop := context.WithCancel(context.Background())
	s := &shipping{sh: a.NewShipper(eng, o), eng: eng, done: make(chan error, 1), stop: stop}
	go func() { s.done <- s.sh.Run(ctx) }()
	t.Cleanup(func() { stop(); <-s.done })
	return s
}

func (s *shipping) caughtUp(t *testing.T) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); s.sh.Status().ShippedSequence < s.eng.LastSequence(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("shipped %d of %d: %+v", s.sh.Status().ShippedSequence, s.eng.LastSequence(), s.sh.Status())
		}
	}
}

// restoredIDs restores the newest state into a new directory and returns
// the ids of the memories there, in id order, and the sequence reached.
func restoredIDs(t *testing.T, a *backup.Archive) ([]string, uint64) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "restored")
	rep, err := a.Restore(t.Context(), backup.RestoreOptions{DataDir: dir})
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	eng := fenceEngine(t, dir)
	var ids []string
	if err := eng.ScanMemories(t.Context(), "default", true, func(m core.Memory) error {
		ids = append(ids, m.ID)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(ids)
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
	return ids, rep.Sequence
}

// TestFencedPromotion: primary A ships; a follower restored from the
// archive is promoted (generation 2); A's next ship stores a segment but
// its head write fails, so A is fenced (status, OnFenced once) and stops;
// a restore never contains A's write after the promotion, and once the new
// primary B ships, holds exactly A's shipped changes then B's. Prune
// removes A's orphan segment.
func TestFencedPromotion(t *testing.T) {
	for name, open := range fenceTargets(t) {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			engA := fenceEngine(t, t.TempDir())
			fenceRemember(t, engA, "a1", "a2", "a3")
			var (
				mu      sync.Mutex
				fencedA []error
			)
			a := startShipper(t, fenceArchive(t, open(t)), engA, backup.ShipperOptions{OnFenced: func(err error) {
				mu.Lock()
				fencedA = append(fencedA, err)
				mu.Unlock()
			}})
			a.caughtUp(t)
			shippedA := engA.LastSequence()

			// The follower: restored from the archive, then promoted.
			dirB := filepath.Join(t.TempDir(), "b")
			archB := fenceArchive(t, open(t))
			if _, err := archB.Restore(ctx, backup.RestoreOptions{DataDir: dirB}); err != nil {
				t.Fatal(err)
			}
			engB := fenceEngine(t, dirB)
			res, err := archB.Promote(ctx, engB.LastSequence(), backup.PromoteOptions{})
			if err != nil {
				t.Fatalf("promote: %v", err)
			}
			if res.Generation != 2 || res.FirstSequence != shippedA+1 {
				t.Fatalf("promote claimed %+v, want generation 2 from sequence %d", res, shippedA+1)
			}

			// A writes on: its segment is stored, its head write fails.
			fenceRemember(t, engA, "a-orphan")
			select {
			case err := <-a.done:
				if err != nil {
					t.Fatalf("fenced shipper returned %v", err)
				}
				a.done <- nil // for the cleanup
			case <-time.After(10 * time.Second):
				t.Fatalf("A kept running after the promotion: %+v", a.sh.Status())
			}
			st := a.sh.Status()
			if !st.Fenced || st.CurrentGeneration != 2 || st.Generation != 1 || st.ShippedSequence != shippedA {
				t.Fatalf("A's status after the promotion = %+v, want fenced at generation 2, shipped %d", st, shippedA)
			}
			mu.Lock()
			if len(fencedA) != 1 || !errors.Is(fencedA[0], backup.ErrFenced) {
				t.Fatalf("OnFenced calls: %v, want one with a FencedError", fencedA)
			}
			mu.Unlock()
			all, err := archB.StoredSegments(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if last := all[len(all)-1]; last.First != shippedA+1 || last.Generation != 1 {
				t.Fatalf("A's orphan segment is not on the target: newest segment %+v", last)
			}
			if ids, seq := restoredIDs(t, archB); !slices.Equal(ids, []string{"a1", "a2", "a3"}) || seq != shippedA {
				t.Fatalf("restore after A's orphan write holds %q at sequence %d, want a1-a3 at %d", ids, seq, shippedA)
			}
			// Verify checks the change log without the orphan, and says so.
			rep, err := archB.Verify(ctx, 2)
			if err != nil {
				t.Fatal(err)
			}
			if !rep.OK() || !slices.ContainsFunc(rep.Warnings, func(w string) bool { return strings.Contains(w, "1 segment(s) are not part of the change log") }) {
				t.Fatalf("verify after A's orphan write: problems %q, warnings %q", rep.Problems, rep.Warnings)
			}

			// B ships as generation 2.
			fenceRemember(t, engB, "b1", "b2")
			gen, err := backup.ReadGeneration(t.TempDir(), archB.Target())
			if err != nil || gen != 1 {
				t.Fatalf("generation of a data directory never promoted = %d, %v; want 1", gen, err)
			}
			b := startShipper(t, archB, engB, backup.ShipperOptions{Generation: res.Generation})
			b.caughtUp(t)
			if st := b.sh.Status(); st.Fenced || st.Generation != 2 {
				t.Fatalf("B's status = %+v", st)
			}
			ids, seq := restoredIDs(t, fenceArchive(t, open(t)))
			if !slices.Equal(ids, []string{"a1", "a2", "a3", "b1", "b2"}) || seq != engB.LastSequence() {
				t.Fatalf("restore after B shipped holds %q at sequence %d, want a1-a3, b1, b2 at %d", ids, seq, engB.LastSequence())
			}

			// A restarted as generation 1 is fenced before shipping anything.
			again := startShipper(t, fenceArchive(t, open(t)), engA, backup.ShipperOptions{})
			select {
			case <-again.done:
				again.done <- nil
			case <-time.After(10 * time.Second):
				t.Fatal("a restarted A ships into generation 2")
			}
			if st := again.sh.Status(); !st.Fenced {
				t.Fatalf("restarted A's status = %+v, want fenced", st)
			}

			// Prune removes A's orphan segment and nothing B owns.
			if _, err := archB.SnapshotEngine(ctx, engB); err != nil {
				t.Fatal(err)
			}
			if _, err := archB.Prune(ctx, backup.PruneOptions{Retention: backup.Retention{KeepLast: 10}}); err != nil {
				t.Fatal(err)
			}
			if all, err = archB.StoredSegments(ctx); err != nil {
				t.Fatal(err)
			}
			for _, s := range all {
				if s.Generation == 1 && s.Last > shippedA {
					t.Fatalf("prune left A's orphan segment %s", s.Key)
				}
			}
			if ids, _ := restoredIDs(t, archB); !slices.Equal(ids, []string{"a1", "a2", "a3", "b1", "b2"}) {
				t.Fatalf("restore after prune holds %q", ids)
			}
		})
	}
}

// TestPromoteRefusesBehind: a follower that has not applied everything
// head.json says was shipped is refused (the shipped changes would be
// lost) unless forced; a forced promotion cuts the change log where the
// follower is, and restores then stop there.
func TestPromoteRefusesBehind(t *testing.T) {
	for name, open := range fenceTargets(t) {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			eng := fenceEngine(t, t.TempDir())
			fenceRemember(t, eng, "a1", "a2")
			s := startShipper(t, fenceArchive(t, open(t)), eng, backup.ShipperOptions{})
			s.caughtUp(t)
			behind := eng.LastSequence()
			fenceRemember(t, eng, "a3")
			s.caughtUp(t)
			head := eng.LastSequence()
			s.stop()

			a := fenceArchive(t, open(t))
			_, err := a.Promote(ctx, behind, backup.PromoteOptions{})
			if !errors.Is(err, backup.ErrNotCaughtUp) {
				t.Fatalf("promote of a follower at %d with head at %d: %v, want ErrNotCaughtUp", behind, head, err)
			}
			if _, err := a.Promote(ctx, head+1, backup.PromoteOptions{}); err == nil {
				t.Fatal("promote of an engine ahead of the archive succeeded")
			}
			dry, err := a.Promote(ctx, behind, backup.PromoteOptions{Force: true, DryRun: true})
			if err != nil || dry.Generation != 2 || dry.Discarded != head-behind {
				t.Fatalf("dry forced promote = %+v, %v", dry, err)
			}
			if h, _ := a.Head(ctx); h.Gen() != 1 {
				t.Fatalf("a dry run wrote generation %d", h.Gen())
			}
			res, err := a.Promote(ctx, behind, backup.PromoteOptions{Force: true})
			if err != nil || res.Generation != 2 || res.FirstSequence != behind+1 {
				t.Fatalf("forced promote = %+v, %v", res, err)
			}
			if ids, seq := restoredIDs(t, a); !slices.Equal(ids, []string{"a1", "a2"}) || seq != behind {
				t.Fatalf("restore after a forced promotion at %d holds %q at %d", behind, ids, seq)
			}
		})
	}
}

// flakyStore is a conditional store with hooks: loseHead makes the next
// conditional write of head.json store the object but report a failure
// (a response lost on the way back), and onManifest runs before a
// manifest is stored.
type flakyStore struct {
	backup.ConditionalStore
	mu         sync.Mutex
	loseHead   bool
	onManifest func()
}

func (f *flakyStore) PutIfMatch(ctx context.Context, key string, r io.Reader, size int64, tag string) (string, error) {
	t, err := f.ConditionalStore.PutIfMatch(ctx, key, r, size, tag)
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil && key == "head.json" && f.loseHead {
		f.loseHead = false
		return "", errors.New("connection reset by peer")
	}
	return t, err
}

func (f *flakyStore) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	f.mu.Lock()
	hook := f.onManifest
	f.mu.Unlock()
	if hook != nil && strings.HasPrefix(key, "snapshots/") {
		hook()
	}
	return f.ConditionalStore.Put(ctx, key, r, size)
}

// TestHeadWriteLostResponse: a head write that was stored although its
// response was lost is recognised as the writer's own when the retry's
// condition fails, so the shipper is not fenced and ships on.
func TestHeadWriteLostResponse(t *testing.T) {
	st, err := file.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	fs := &flakyStore{ConditionalStore: st}
	eng := fenceEngine(t, t.TempDir())
	fenceRemember(t, eng, "a1")
	s := startShipper(t, fenceArchive(t, fs), eng, backup.ShipperOptions{})
	s.caughtUp(t)
	fs.mu.Lock()
	fs.loseHead = true
	fs.mu.Unlock()
	fenceRemember(t, eng, "a2")
	s.caughtUp(t)
	fenceRemember(t, eng, "a3")
	s.caughtUp(t)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		h, err := fenceArchive(t, st).Head(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if h.Sequence == eng.LastSequence() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("head at %d, engine at %d: %+v", h.Sequence, eng.LastSequence(), s.sh.Status())
		}
	}
	if st := s.sh.Status(); st.Fenced || !st.Running {
		t.Fatalf("a lost head-write response fenced the shipper: %+v", st)
	}
	if ids, _ := restoredIDs(t, fenceArchive(t, st)); !slices.Equal(ids, []string{"a1", "a2", "a3"}) {
		t.Fatalf("restore holds %q", ids)
	}
}

// TestSnapshotWithdrawnWhenPromotedDuringUpload: a promotion that lands
// while the old primary uploads a snapshot makes that snapshot's head
// write fail; the snapshot's manifest is deleted again, so no restore
// picks a snapshot holding changes outside the new generation's history.
func TestSnapshotWithdrawnWhenPromotedDuringUpload(t *testing.T) {
	ctx := t.Context()
	st, err := file.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	fs := &flakyStore{ConditionalStore: st}
	eng := fenceEngine(t, t.TempDir())
	fenceRemember(t, eng, "a1", "a2")
	a := fenceArchive(t, fs)
	s := startShipper(t, a, eng, backup.ShipperOptions{})
	s.caughtUp(t)
	shipped := eng.LastSequence()
	s.stop()
	<-s.done
	s.done <- nil
	fenceRemember(t, eng, "unshipped")
	fs.mu.Lock()
	fs.onManifest = func() {
		if _, err := fenceArchive(t, st).Promote(ctx, shipped, backup.PromoteOptions{}); err != nil {
			t.Error(err)
		}
	}
	fs.mu.Unlock()
	_, err = a.SnapshotEngine(ctx, eng)
	if !errors.Is(err, backup.ErrFenced) {
		t.Fatalf("snapshot during a promotion: %v, want a FencedError", err)
	}
	snaps, err := a.Snapshots(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, sn := range snaps {
		if sn.Sequence > shipped {
			t.Fatalf("the fenced snapshot %s (sequence %d) is still listed", sn.ID, sn.Sequence)
		}
	}
	if ids, seq := restoredIDs(t, fenceArchive(t, st)); !slices.Equal(ids, []string{"a1", "a2"}) || seq != shipped {
		t.Fatalf("restore holds %q at %d, want a1, a2 at %d", ids, seq, shipped)
	}
}

// TestUnreadableHeadNotReplaced: on a conditional store a shipper does not
// overwrite a head.json it cannot read (its generation, which fences
// writers, is unknown): shipping fails with an error saying so, and the
// damaged record stays for the operator.
func TestUnreadableHeadNotReplaced(t *testing.T) {
	dir := t.TempDir()
	st, err := file.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	eng := fenceEngine(t, t.TempDir())
	fenceRemember(t, eng, "a1")
	s := startShipper(t, fenceArchive(t, st), eng, backup.ShipperOptions{})
	s.caughtUp(t)
	s.stop()
	<-s.done
	s.done <- nil
	path := filepath.Join(dir, "head.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	damaged := []byte(strings.Replace(string(b), `"sequence":`, `"sequence":1`, 1))
	if err := os.WriteFile(path, damaged, 0o600); err != nil {
		t.Fatal(err)
	}
	fenceRemember(t, eng, "a2")
	again := startShipper(t, fenceArchive(t, st), eng, backup.ShipperOptions{})
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(again.sh.Status().LastError, "not replaced"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("shipper status %+v, want an error saying head.json is not replaced", again.sh.Status())
		}
	}
	if st := again.sh.Status(); st.Fenced {
		t.Fatalf("an unreadable head fenced the shipper: %+v", st)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, damaged) {
		t.Fatalf("head.json was replaced:\n%s", got)
	}
}
