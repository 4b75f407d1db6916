package backup_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/engram-ops/engram-ops/backup"
	"github.com/engram-ops/engram-ops/backup/file"
	"github.com/engram-ops/engram-ops/backup/target"
	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/internal/testsupport"
)

func followEngineOptions() core.Options {
	return core.Options{DefaultDimension: 32, Tiers: core.TierOptions{SweepInterval: -1}}
}

// followRig is a primary shipping to an archive through the real Shipper
// and a follower of that archive.
type followRig struct {
	t       *testing.T
	store   backup.ObjectStore
	primary *core.Engine
	shipper *backup.Shipper
	shipped uint64
	fol     *backup.Follower
	replica *core.Engine
}

func newFollowRig(t *testing.T, store backup.ObjectStore) *followRig {
	t.Helper()
	ctx := context.Background()
	r := &followRig{t: t, store: store}
	r.primary = testsupport.OpenEngine(t, t.TempDir(), func(o *core.Options) { *o = followEngineOptions() })
	r.remember("seed-1", "in the first snapshot")
	pa := r.archive()
	r.shipper = pa.NewShipper(r.primary, backup.ShipperOptions{})
	var err error
	if r.shipped, err = r.shipper.Resume(ctx); err != nil { // no segment yet: takes the first snapshot
		t.Fatal(err)
	}
	fa := r.archive()
	dir := filepath.Join(t.TempDir(), "follower")
	rep, err := fa.SeedFollower(ctx, dir)
	if err != nil || rep == nil || rep.Sequence != r.shipped {
		t.Fatalf("seed: %+v %v, want the snapshot at %d", rep, err, r.shipped)
	}
	r.replica = testsupport.OpenEngine(t, dir, func(o *core.Options) { *o = followEngineOptions() })
	r.replica.SetWriteBarrier(core.ReadOnlyReplica("http://primary.test"))
	r.fol = fa.NewFollower(r.replica, backup.FollowerOptions{})
	return r
}

func (r *followRig) archive() *backup.Archive {
	a, err := backup.New(r.store, backup.Options{EngineOptions: followEngineOptions()})
	if err != nil {
		r.t.Fatal(err)
	}
	return a
}

func (r *followRig) remember(id, content string) {
	r.t.Helper()
	if _, err := r.primary.Remember(context.Background(), "default", core.RememberInput{ID: id, Content: content}); err != nil {
		r.t.Fatal(err)
	}
}

// ship runs one shipping round of the real shipper (Run's loop body) by
// running it until it has shipped the primary's last sequence.
func (r *followRig) ship() {
	r.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- r.archive().NewShipper(r.primary, backup.ShipperOptions{Interval: 10 * time.Millisecond, FinalFlush: -1, VerifyPoll: -1}).Run(ctx)
	}()
	want := r.primary.LastSequence()
	a := r.archive()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if h, err := a.Head(ctx); err == nil && h != nil && h.Sequence >= want {
			break
		}
		if time.Now().After(deadline) {
			cancel()
			r.t.Fatalf("the shipper did not ship sequence %d: %v", want, <-done)
		}
	}
	cancel()
	if err := <-done; err != nil {
		r.t.Fatal(err)
	}
	r.shipped = want
}

func (r *followRig) has(id string) bool {
	_, err := r.replica.Get(context.Background(), "default", id, false)
	return err == nil
}

// segments lists the archive's segment keys.
func (r *followRig) segments() []string {
	r.t.Helper()
	segs, err := r.archive().Segments(context.Background())
	if err != nil {
		r.t.Fatal(err)
	}
	var keys []string
	for _, s := range segs {
		keys = append(keys, s.Key)
	}
	return keys
}

// TestFollowerAppliesShippedSegments: a follower seeded from the primary's
// snapshot applies what the real shipper ships, in order, up to the head,
// and reports no lag once there.
func TestFollowerAppliesShippedSegments(t *testing.T) {
	ctx := context.Background()
	store, err := file.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r := newFollowRig(t, store)
	if !r.has("seed-1") {
		t.Fatal("the seeded follower lacks the snapshot's memory")
	}
	for round := range 3 {
		for i := range 5 {
			r.remember(fmt.Sprintf("r%d-%d", round, i), fmt.Sprintf("round %d memory %d about harbours", round, i))
		}
		r.ship()
		if err := r.fol.Poll(ctx); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		st := r.fol.Status()
		if st.AppliedSequence != r.shipped || st.HeadSequence != r.shipped || st.LagSeconds != 0 || st.LastError != "" {
			t.Fatalf("round %d: status %+v, want applied = head = %d, no lag", round, st, r.shipped)
		}
		for i := range 5 {
			if !r.has(fmt.Sprintf("r%d-%d", round, i)) {
				t.Fatalf("round %d: memory %d not applied", round, i)
			}
		}
	}
	if r.replica.LastSequence() != r.primary.LastSequence() {
		t.Fatalf("replica at %d, primary at %d", r.replica.LastSequence(), r.primary.LastSequence())
	}
	// A follower restarted on its data directory resumes after it.
	r.remember("after-restart", "shipped while the follower was down")
	r.ship()
	again := r.archive().NewFollower(r.replica, backup.FollowerOptions{})
	if err := again.Poll(ctx); err != nil || !r.has("after-restart") {
		t.Fatalf("resumed follower: %v, has=%v", err, r.has("after-restart"))
	}
	// A data directory that holds data is not seeded again.
	if rep, err := r.archive().SeedFollower(ctx, r.replica.Dir()); rep != nil || err != nil {
		t.Fatalf("seeding a data directory with data: %+v %v, want it left alone", rep, err)
	}
}

// shipThreeSegments ships memories a, b and c, one segment each, to a
// file:// archive in dir, and returns the rig (its follower has applied
// none of them) with the key and first sequence of b's segment.
func shipThreeSegments(t *testing.T, dir string) (*followRig, string, uint64) {
	t.Helper()
	store, err := file.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	r := newFollowRig(t, store)
	r.remember("a", "first shipped")
	r.ship()
	r.remember("b", "second shipped, to be damaged or lost")
	r.ship()
	all := r.segments()
	middle := all[len(all)-1]
	r.remember("c", "third shipped")
	r.ship()
	var first uint64
	if _, err := fmt.Sscanf(strings.TrimPrefix(middle, "segments/"), "%d-", &first); err != nil {
		t.Fatal(err)
	}
	return r, middle, first
}

// TestFollowerStopsAtDamagedSegment: a segment that fails its checks stops
// applying at its first change; nothing past it is applied; the status
// names the error and the sequence, the lag grows; once the segment is
// good again the follower catches up.
func TestFollowerStopsAtDamagedSegment(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	r, bad, badFirst := shipThreeSegments(t, dir)
	path := filepath.Join(dir, filepath.FromSlash(bad))
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	damaged := append([]byte(nil), good...)
	damaged[len(damaged)/2] ^= 0x40
	if err := os.WriteFile(path, damaged, 0o644); err != nil {
		t.Fatal(err)
	}
	err = r.fol.Poll(ctx)
	if !errors.Is(err, backup.ErrCorrupt) {
		t.Fatalf("poll over a damaged segment: %v, want ErrCorrupt", err)
	}
	st := r.fol.Status()
	if st.AppliedSequence != badFirst-1 || st.ErrorSequence != badFirst || st.HeadSequence != r.shipped || st.LastError == "" || st.ApplyErrors != 1 {
		t.Fatalf("status %+v, want applied %d, error at %d, head %d", st, badFirst-1, badFirst, r.shipped)
	}
	if !r.has("a") || r.has("b") || r.has("c") {
		t.Fatalf("applied past the damage: a=%v b=%v c=%v", r.has("a"), r.has("b"), r.has("c"))
	}
	if st.LagSeconds <= 0 {
		t.Fatalf("lag %v while stopped short of the head", st.LagSeconds)
	}
	if err := os.WriteFile(path, good, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := r.fol.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if st := r.fol.Status(); st.AppliedSequence != r.shipped || st.LastError != "" || st.ErrorSequence != 0 || st.LagSeconds != 0 || !r.has("c") {
		t.Fatalf("after repair: %+v", st)
	}
}

// TestFollowerStopsAtGap: a missing segment stops applying before it, and
// an archive whose head went behind the follower stops it for good.
func TestFollowerStopsAtGap(t *testing.T) {
	ctx := context.Background()
	r, lost, lostFirst := shipThreeSegments(t, t.TempDir())
	if err := r.store.Delete(ctx, lost); err != nil {
		t.Fatal(err)
	}
	err := r.fol.Poll(ctx)
	if !errors.Is(err, backup.ErrCorrupt) || !strings.Contains(err.Error(), "segment missing") {
		t.Fatalf("poll over a gap: %v", err)
	}
	st := r.fol.Status()
	if st.AppliedSequence != lostFirst-1 || st.ErrorSequence != lostFirst || st.Stopped {
		t.Fatalf("status %+v, want applied %d, error at %d", st, lostFirst-1, lostFirst)
	}
	if !r.has("a") || r.has("b") || r.has("c") {
		t.Fatalf("applied past the gap: a=%v b=%v c=%v", r.has("a"), r.has("b"), r.has("c"))
	}

	// The archive rewound below the follower (another primary's history).
	other := t.TempDir()
	ostore, err := file.New(other)
	if err != nil {
		t.Fatal(err)
	}
	eng := testsupport.OpenEngine(t, t.TempDir(), func(o *core.Options) { *o = followEngineOptions() })
	oa, err := backup.New(ostore, backup.Options{EngineOptions: followEngineOptions()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := oa.NewShipper(eng, backup.ShipperOptions{}).Resume(ctx); err != nil { // an empty snapshot: head at 0
		t.Fatal(err)
	}
	fol := oa.NewFollower(r.replica, backup.FollowerOptions{Interval: time.Millisecond})
	runErr := make(chan error, 1)
	go func() { runErr <- fol.Run(ctx) }()
	select {
	case err := <-runErr:
		if !errors.Is(err, backup.ErrArchiveRewound) {
			t.Fatalf("run on a rewound archive: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the follower kept running on a rewound archive")
	}
	if st := fol.Status(); !st.Stopped || !strings.Contains(st.LastError, "already applied") {
		t.Fatalf("status on a rewound archive: %+v", st)
	}
}

// TestFollowerS3 runs the follower against a real S3 server
// (ENGRAM_TEST_S3_*; scripts/test.sh starts versitygw).
func TestFollowerS3(t *testing.T) {
	ep := os.Getenv("ENGRAM_TEST_S3_ENDPOINT")
	if ep == "" {
		t.Skip("ENGRAM_TEST_S3_ENDPOINT is not set: scripts/test.sh starts versitygw")
	}
	env := map[string]string{"ENGRAM_S3_ENDPOINT": ep, "ENGRAM_S3_ACCESS_KEY_ID": os.Getenv("ENGRAM_TEST_S3_ACCESS_KEY"),
		"ENGRAM_S3_SECRET_ACCESS_KEY": os.Getenv("ENGRAM_TEST_S3_SECRET_KEY"), "ENGRAM_S3_REGION": "us-east-1",
		"ENGRAM_S3_PATH_STYLE": "1", "ENGRAM_S3_INSECURE": "1"}
	url := fmt.Sprintf("s3://%s/follow-%d", os.Getenv("ENGRAM_TEST_S3_BUCKET"), time.Now().UnixNano())
	store, err := target.Open(context.Background(), url, target.Options{}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	r := newFollowRig(t, store)
	r.remember("over-s3", "shipped to S3 and applied from it")
	r.ship()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- r.archive().NewFollower(r.replica, backup.FollowerOptions{Interval: 20 * time.Millisecond}).Run(ctx)
	}()
	defer func() { cancel(); <-done }()
	for deadline := time.Now().Add(10 * time.Second); !r.has("over-s3"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the follower did not apply the segment shipped to S3")
		}
	}
}
