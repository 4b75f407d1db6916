package backup

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/engram-ops/engram-ops/core"
)

// integrityHistory is the archive of the repro: snapshot A at
// 07:56:00 (m0..m4), then shipped: "keep" at 07:56:10, m1 forgotten at
// 07:56:20, "after" at 07:56:31; snapshot B (last change 07:56:31); then
// "tail1" and "tail2" at 07:56:40 in the newest segment.
type integrityHistory struct {
	a      *Archive
	st     *memStore
	eng    *core.Engine
	snapA  *Manifest
	snapB  *Manifest
	newest SegmentInfo
	at     func(sec int) time.Time
}

func newIntegrityHistory(t *testing.T) *integrityHistory {
	t.Helper()
	ctx := context.Background()
	at := func(sec int) time.Time { return time.Date(2026, 11, 27, 7, 56, sec, 0, time.UTC) }
	clock := &testClock{t: at(0)}
	eng := openEngine(t, t.TempDir(), clock.Now)
	t.Cleanup(func() { eng.Close() })
	a, st := newArchive(t, nil)
	h := &integrityHistory{a: a, st: st, eng: eng, at: at}
	for i := range 5 {
		remember(t, eng, "default", fmt.Sprintf("m%d", i), fmt.Sprintf("memory number %d", i))
	}
	res, err := a.SnapshotEngine(ctx, eng)
	if err != nil {
		t.Fatal(err)
	}
	h.snapA = res.Manifest
	clock.t = at(10)
	remember(t, eng, "default", "keep", "written before the target time")
	shipOnce(t, a, eng)
	clock.t = at(20)
	if _, err := eng.Forget(ctx, "default", "m1"); err != nil {
		t.Fatal(err)
	}
	shipOnce(t, a, eng)
	clock.t = at(31)
	remember(t, eng, "default", "after", "written after the target time")
	shipOnce(t, a, eng)
	if res, err = a.SnapshotEngine(ctx, eng); err != nil {
		t.Fatal(err)
	}
	h.snapB = res.Manifest
	if !h.snapB.LastChange.Equal(at(31)) {
		t.Fatalf("snapshot B's last change is %v", h.snapB.LastChange)
	}
	clock.t = at(40)
	remember(t, eng, "default", "tail1", "in the newest segment")
	remember(t, eng, "default", "tail2", "in the newest segment too")
	shipOnce(t, a, eng)
	segs, err := a.Segments(ctx)
	if err != nil || len(segs) == 0 {
		t.Fatalf("segments %v %v", segs, err)
	}
	h.newest = segs[len(segs)-1]
	if h.newest.Last != eng.LastSequence() || h.newest.First == h.newest.Last {
		t.Fatalf("newest segment %+v, engine at %d", h.newest, eng.LastSequence())
	}
	return h
}

// put replaces an object, restoring the original when the test ends.
func (h *integrityHistory) put(t *testing.T, key string, b []byte) {
	t.Helper()
	orig, had := h.st.objs[key]
	t.Cleanup(func() {
		if had {
			h.st.objs[key] = orig
		} else {
			delete(h.st.objs, key)
		}
	})
	if b == nil {
		delete(h.st.objs, key)
		return
	}
	h.st.objs[key] = b
}

func (h *integrityHistory) restore(t *testing.T, o RestoreOptions) (*RestoreReport, map[string]string, error) {
	t.Helper()
	o.DataDir = filepath.Join(t.TempDir(), "r")
	rep, err := h.a.Restore(context.Background(), o)
	if rep == nil || o.DryRun {
		return nil, nil, err
	}
	r := openEngine(t, o.DataDir, nil)
	defer r.Close()
	return rep, ids(t, r, "default"), err
}

func problemsContain(rep *VerifyReport, parts ...string) bool {
	for _, p := range rep.Problems {
		ok := true
		for _, s := range parts {
			ok = ok && strings.Contains(p, s)
		}
		if ok {
			return true
		}
	}
	return false
}

// TestManifestBitFlipRepro is the repro: one bit of last_change
// flipped in a manifest (07:56:31 -> 07:56:11). Verify level 1 reports it,
// and a restore to 07:56:14 does not use that snapshot (whose state has
// "after" and lacks m1) but falls back to the older one.
func TestManifestBitFlipRepro(t *testing.T) {
	ctx := context.Background()
	h := newIntegrityHistory(t)
	key := manifestKey(h.snapB.ID)
	b := append([]byte(nil), h.st.objs[key]...)
	field := []byte(`"last_change": "2026-11-27T07:56:31`)
	i := bytes.Index(b, field)
	if i < 0 {
		t.Fatalf("no %s in\n%s", field, b)
	}
	b[i+len(field)-2] ^= 0x02 // '3' -> '1'
	if !bytes.Contains(b, []byte(`"last_change": "2026-11-27T07:56:11`)) {
		t.Fatal("the flip did not produce 07:56:11")
	}
	h.put(t, key, b)

	rep, err := h.a.Verify(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() || !problemsContain(rep, h.snapB.ID, "digest") {
		t.Fatalf("verify level 1 missed the flipped manifest: %+v", rep)
	}

	rr, got, err := h.restore(t, RestoreOptions{ToTime: h.at(14)})
	if err != nil {
		t.Fatal(err)
	}
	if rr.Snapshot != h.snapA.ID {
		t.Errorf("restore to 07:56:14 used snapshot %s, want the older %s", rr.Snapshot, h.snapA.ID)
	}
	if _, ok := got["m1"]; !ok {
		t.Error("m1, forgotten after the target time, is missing")
	}
	if _, ok := got["after"]; ok {
		t.Error(`"after", written after the target time, was restored`)
	}
	if _, ok := got["keep"]; !ok {
		t.Error(`"keep", written before the target time, is missing`)
	}

	if _, _, err := h.restore(t, RestoreOptions{SnapshotID: h.snapB.ID}); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "digest") {
		t.Fatalf("restore from the damaged manifest: %v", err)
	}
}

// TestMetadataBitFlipsCaughtAtLevel1 flips one bit at a byte every
// stride (about 250 per object, every bit position in turn) and at each
// byte of the last-change time of each metadata object (a manifest,
// head.json, verify/last.json): verify level 1 reports every one.
func TestMetadataBitFlipsCaughtAtLevel1(t *testing.T) {
	ctx := context.Background()
	h := newIntegrityHistory(t)
	if _, err := h.a.VerifyWith(ctx, VerifyOptions{Level: 1, Record: true}); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{manifestKey(h.snapB.ID), headKey, verifyResultKey} {
		t.Run(key, func(t *testing.T) {
			orig := h.st.objs[key]
			if len(orig) == 0 {
				t.Fatalf("%s is not on the target", key)
			}
			if rep, err := h.a.Verify(ctx, 1); err != nil || !rep.OK() {
				t.Fatalf("intact archive: %v %+v", err, rep)
			}
			defer func() { h.st.objs[key] = orig }()
			missed, flips := 0, 0
			lc := bytes.Index(orig, []byte(`"last_change":`))
			if lc < 0 && key != verifyResultKey {
				t.Fatalf("no last_change in %s", orig)
			}
			stride := max(1, len(orig)/250)
			for i := range orig {
				if i%stride != 0 && (lc < 0 || i < lc || i > lc+50) {
					continue
				}
				flips++
				b := append([]byte(nil), orig...)
				b[i] ^= 1 << (i % 8)
				h.st.objs[key] = b
				rep, err := h.a.Verify(ctx, 1)
				if err != nil {
					t.Fatal(err)
				}
				if rep.OK() {
					if missed++; missed <= 3 {
						t.Errorf("bit %d of byte %d (%q -> %q) not caught", i%8, i, orig[max(0, i-12):min(len(orig), i+12)], b[max(0, i-12):min(len(b), i+12)])
					}
				}
			}
			if missed > 0 {
				t.Errorf("%d of %d flips passed verify level 1", missed, flips)
			}
		})
	}
}

// TestNewestSegmentLost: the newest segment deleted is caught by verify
// level 1 (head.json names a later sequence) and by a restore to the
// newest state, which writes what the target has and says what it lacks.
func TestNewestSegmentLost(t *testing.T) {
	ctx := context.Background()
	h := newIntegrityHistory(t)
	if rep, _, err := h.restore(t, RestoreOptions{}); err != nil || rep.NewestShipped != h.newest.Last || rep.Sequence != h.newest.Last {
		t.Fatalf("intact restore: %v %+v", err, rep)
	}
	h.put(t, h.newest.Key, nil)
	reached := h.newest.First - 1

	rep, err := h.a.Verify(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("sequences %d-%d were shipped", h.newest.First, h.newest.Last)
	if rep.OK() || !problemsContain(rep, "newest change-log segments are missing", want) {
		t.Fatalf("verify level 1: %+v", rep)
	}

	rr, got, err := h.restore(t, RestoreOptions{})
	var short *IncompleteRestoreError
	if !errors.As(err, &short) || short.Reached != reached || short.Shipped != h.newest.Last ||
		!strings.Contains(err.Error(), fmt.Sprintf("reached %d, shipped %d", reached, h.newest.Last)) {
		t.Fatalf("restore to the newest without the newest segment: %v", err)
	}
	if rr.Sequence != reached || rr.NewestShipped != h.newest.Last {
		t.Errorf("report: sequence %d newest shipped %d", rr.Sequence, rr.NewestShipped)
	}
	if _, ok := got["after"]; !ok {
		t.Error("the restore did not write what the target holds")
	}
	if _, _, err := h.restore(t, RestoreOptions{DryRun: true}); !errors.As(err, &short) {
		t.Errorf("dry run does not predict the short restore: %v", err)
	}
	// Asking for no more than the target holds is not short; asking for a
	// time the lost changes precede is.
	for _, o := range []RestoreOptions{{ToSequence: reached}, {ToTime: h.at(35)}} {
		if _, _, err := h.restore(t, o); err != nil {
			t.Errorf("bounded restore %+v: %v", o, err)
		}
	}
	if _, _, err := h.restore(t, RestoreOptions{ToTime: h.at(50)}); !errors.As(err, &short) {
		t.Errorf("restore to a time after the lost changes: %v", err)
	}
}

// TestHeadRecord: the shipper and snapshots keep head.json at the newest
// stored change; a missing one is a problem on an archive written with
// head records and a warning on an older one.
func TestHeadRecord(t *testing.T) {
	ctx := context.Background()
	h := newIntegrityHistory(t)
	head, err := h.a.Head(ctx)
	if err != nil || head == nil || head.Sequence != h.newest.Last || head.Segment != h.newest.Key || !head.LastChange.Equal(h.at(40)) {
		t.Fatalf("head after shipping: %+v %v", head, err)
	}
	// A snapshot ahead of the shipped segments moves it; one behind does not.
	remember(t, h.eng, "default", "unshipped", "snapshot only")
	res, err := h.a.SnapshotEngine(ctx, h.eng)
	if err != nil {
		t.Fatal(err)
	}
	if head, _ = h.a.Head(ctx); head.Sequence != res.Manifest.Sequence || head.Snapshot != res.Manifest.ID {
		t.Fatalf("head after a snapshot ahead of the log: %+v", head)
	}
	if rep, err := h.a.Verify(ctx, 2); err != nil || !rep.OK() {
		t.Fatalf("verify level 2 with the head on a snapshot: %v %+v", err, rep)
	}
	h.put(t, headKey, nil)
	rep, err := h.a.Verify(ctx, 1)
	if err != nil || rep.OK() || !problemsContain(rep, "head.json is missing") {
		t.Fatalf("missing head on a format-2 archive: %v %+v", err, rep)
	}
}

// encodeManifestRaw encodes m as a writer that skips validation would: a
// valid digest over whatever m says.
func encodeManifestRaw(t *testing.T, m *Manifest) []byte {
	t.Helper()
	c := *m
	c.Digest = ""
	if m.FormatVersion >= 2 {
		d, err := jsonDigest(&c)
		if err != nil {
			t.Fatal(err)
		}
		c.Digest = d
	}
	b, err := json.MarshalIndent(&c, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestManifestCrossChecks: what a manifest claims is checked against
// itself (id vs times, sequence 0) and, at level 2 and in restore,
// against the segment holding its last change. A format-1 manifest (no
// digest, as older binaries wrote) with the wrong last_change is
// read, warned about at level 1, reported at level 2, and skipped by a
// restore whose target time it does not fit.
func TestManifestCrossChecks(t *testing.T) {
	ctx := context.Background()
	h := newIntegrityHistory(t)
	bad := func(name string, mutate func(m *Manifest), want string) {
		t.Run(name, func(t *testing.T) {
			m := *h.snapB
			mutate(&m)
			if _, err := DecodeManifest(encodeManifestRaw(t, &m)); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), want) {
				t.Fatalf("got %v, want %q", err, want)
			}
		})
	}
	bad("id time", func(m *Manifest) { m.Created = m.Created.Add(time.Hour) }, "id names time")
	bad("last change after created", func(m *Manifest) { m.LastChange = m.Created.Add(time.Second) }, "after the snapshot was created")
	bad("sequence 0 with a last change", func(m *Manifest) {
		m.Sequence, m.ID = 0, SnapshotID(m.Created, 0)
	}, "sequence 0")

	// The repro on an older archive: format 1, no head.
	old := *h.snapB
	old.FormatVersion, old.LastChange = 1, h.at(11)
	h.put(t, manifestKey(old.ID), encodeManifestRaw(t, &old))
	oldA := *h.snapA
	oldA.FormatVersion = 1
	h.put(t, manifestKey(oldA.ID), encodeManifestRaw(t, &oldA))
	h.put(t, headKey, nil)
	rep, err := h.a.Verify(ctx, 1)
	if err != nil || !rep.OK() || !strings.Contains(strings.Join(rep.Warnings, "\n"), "no digest (written by an older engram-ops)") ||
		!strings.Contains(strings.Join(rep.Warnings, "\n"), "no head.json") {
		t.Fatalf("verify level 1 of a format-1 archive: %v %+v", err, rep)
	}
	if rep, err = h.a.Verify(ctx, 2); err != nil || !problemsContain(rep, old.ID, "07:56:11", "07:56:31") {
		t.Fatalf("verify level 2 missed the wrong last change: %v %+v", err, rep)
	}
	rr, got, err := h.restore(t, RestoreOptions{ToTime: h.at(14)})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got["after"]; ok || rr.Snapshot != h.snapA.ID {
		t.Errorf("restore to 07:56:14 used %s (after restored: %v)", rr.Snapshot, ok)
	}
	// Without a head (older archive) a restore to the newest is not short.
	if _, _, err := h.restore(t, RestoreOptions{}); err != nil {
		t.Errorf("restore of a format-1 archive: %v", err)
	}
}

// TestSegmentHeaderTimesChecked: a segment whose header times disagree
// with its changes (its checksum recomputed) is refused.
func TestSegmentHeaderTimesChecked(t *testing.T) {
	c, _ := NewCodec(nil, nil)
	changes := []core.Change{
		{Seq: 5, Time: time.Unix(100, 0).UTC(), Op: core.OpDeleteMemory, Space: "s", ID: "a"},
		{Seq: 6, Time: time.Unix(101, 0).UTC(), Op: core.OpDeleteMemory, Space: "s", ID: "b"},
	}
	b, _, err := EncodeSegment(changes, c)
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{"first", "last"} {
		p := len(segmentMagic) + 1
		hl := int(binary.BigEndian.Uint32(b[p:]))
		var hdr SegmentHeader
		if err := json.Unmarshal(b[p+4:p+4+hl], &hdr); err != nil {
			t.Fatal(err)
		}
		if field == "first" {
			hdr.FirstTime = hdr.FirstTime.Add(-time.Minute)
		} else {
			hdr.LastTime = hdr.LastTime.Add(time.Minute)
		}
		hj, _ := json.Marshal(hdr)
		out := append([]byte(nil), b[:p]...)
		out = binary.BigEndian.AppendUint32(out, uint32(len(hj)))
		out = append(out, hj...)
		out = append(out, b[p+4+hl:len(b)-32]...)
		sum := sha256.Sum256(out)
		out = append(out, sum[:]...)
		if _, _, err := DecodeSegment(out, c); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "segment header says") {
			t.Errorf("%s time moved: %v", field, err)
		}
	}
}
