package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/engram-ops/engram-ops/core"
)

// VerifyReport lists what verification checked and what failed. Its JSON
// form is the stable output of `engram-ops backup verify --output json`.
type VerifyReport struct {
	Target    string   `json:"target"`
	Level     int      `json:"level"`
	Snapshots int      `json:"snapshots"`
	Files     int      `json:"files"`
	Segments  int      `json:"segments"`
	Problems  []string `json:"problems"`
	// DrillSeconds is the restore time measured by level 3 and 4.
	DrillSeconds float64 `json:"drill_seconds,omitempty"`
	Seconds      float64 `json:"seconds"`
	// Cached counts the objects whose level-2 check was skipped because
	// the verify cache remembered them; Checked those downloaded and checked.
	Cached  int `json:"cached"`
	Checked int `json:"checked"`
	// Recorded is the key of the result object written for servers
	// (verify/last.json), empty when not written; Warnings say why.
	Recorded string   `json:"recorded,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
}

// VerifyOptions configure VerifyWith.
type VerifyOptions struct {
	Level int
	// Cache remembers objects that passed the level-2 checksum check; nil
	// checks everything.
	Cache *VerifyCache
	// Record writes the result to verify/last.json on the target, where a
	// server's shipper reads it to export
	// engram_backup_last_verified_timestamp_seconds and
	// engram_backup_last_restore_drill_seconds. A failed write is a warning.
	Record bool
	// Drill, when set, is level 4's service check: it gets the restored
	// engine (the CLI starts an in-process server on it and recalls over
	// HTTP; this package does not import the server). An error is a failed
	// check. Nil recalls through the engine directly.
	Drill func(ctx context.Context, eng *core.Engine, m *Manifest) error
}

// OK reports whether every check passed.
func (r *VerifyReport) OK() bool { return len(r.Problems) == 0 }

// Verify checks the archive at level
//
//	1: every manifest decodes and matches its digest and its own claims
//	   (id, times), every object it names is present with its stored
//	   size, segments after the oldest snapshot have no gap, head.json
//	   matches its digest and the target holds the newest sequence it
//	   names, verify/last.json matches its digest. No segment or file
//	   body is read;
//	2: level 1, plus every file's and segment's checksum (downloads
//	   everything), each segment header's times against its changes, and
//	   the last-change time of each manifest and of head.json against the
//	   change in the segment holding it (when one does; the cache keeps
//	   a segment with the manifest times it was checked against, so a
//	   changed manifest is checked again);
//	3: level 2, plus a restore of the newest snapshot into a temporary
//	   directory whose per-space counts must match the manifest;
//	4: level 3, plus the restored content digest must equal the manifest's,
//	   a recall must answer, and the drill time is recorded.
//
// A failed check is a problem in the report, not an error; an error means
// verification itself could not run.
func (a *Archive) Verify(ctx context.Context, level int) (*VerifyReport, error) {
	return a.VerifyWith(ctx, VerifyOptions{Level: level})
}

// VerifyWith is Verify with a cache and recording; see VerifyOptions.
func (a *Archive) VerifyWith(ctx context.Context, o VerifyOptions) (*VerifyReport, error) {
	level := o.Level
	start := time.Now()
	if level < 1 || level > 4 {
		return nil, fmt.Errorf("verify level %d: must be 1..4", level)
	}
	rep := &VerifyReport{Target: a.Target(), Level: level, Problems: []string{}}
	problem := func(format string, args ...any) { rep.Problems = append(rep.Problems, fmt.Sprintf(format, args...)) }
	snaps, err := a.Snapshots(ctx)
	if err != nil {
		return nil, err
	}
	files, err := a.store.List(ctx, filesPrefix)
	if err != nil {
		return nil, fmt.Errorf("list files on %s: %w", a.Target(), err)
	}
	stored := map[string]ObjectInfo{}
	for _, obj := range files {
		stored[obj.Key] = obj
	}
	rep.Snapshots = len(snaps)
	if len(snaps) == 0 {
		problem("no snapshot on %s", a.Target())
	}
	checked := map[string]bool{}
	var (
		newest   *Manifest
		noDigest []string // format-1 manifests
		digested bool     // a manifest written by a binary that writes head records
	)
	for _, s := range snaps {
		if s.Err != nil {
			problem("snapshot %s: %v", s.ID, s.Err)
			continue
		}
		newest = s.Manifest
		if s.Manifest.HasDigest() {
			digested = true
		} else {
			noDigest = append(noDigest, s.ID)
		}
		for i := range s.Manifest.Files {
			f := &s.Manifest.Files[i]
			if checked[f.Key] {
				continue
			}
			checked[f.Key] = true
			rep.Files++
			obj, ok := stored[f.Key]
			switch {
			case !ok:
				problem("snapshot %s: %s (%s) is missing", s.ID, f.Key, f.Path)
				continue
			case obj.Size != f.StoredSize:
				problem("snapshot %s: %s has %d bytes, the manifest says %d", s.ID, f.Key, obj.Size, f.StoredSize)
				continue
			}
			if level >= 2 {
				ck := cacheKey(obj, f.SHA256)
				if o.Cache.has(ck) {
					rep.Cached++
					continue
				}
				rep.Checked++
				if err := a.checkFile(ctx, s.Manifest, f); err != nil {
					problem("%v", err)
				} else {
					o.Cache.add(ck)
				}
				a.progress(Event{Op: "verify", Stage: "files", Message: f.Key, Done: int64(rep.Files)})
			}
		}
	}
	all, err := a.StoredSegments(ctx)
	if err != nil {
		return nil, err
	}
	// Only the change log head.json's generations make up is checked; the
	// rest (segments a fenced primary wrote) is ignored by every reader.
	segs, err := a.Segments(ctx)
	if err != nil {
		return nil, err
	}
	if n := len(all) - len(segs); n > 0 {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("%d segment(s) are not part of the change log (written by a superseded generation, or past %s) and are ignored; prune removes the superseded ones", n, headKey))
	}
	rep.Segments = len(segs)
	if n := len(noDigest); n > 0 {
		ids := strings.Join(noDigest[:min(n, 3)], ", ")
		if n > 3 {
			ids += ", …"
		}
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("%d manifest(s) have no digest (written by an older engram-ops), so only the cross-checks catch damage to them: %s", n, ids))
	}
	// A newer format is a problem too, as for manifests: this binary
	// cannot check it (and a flipped format digit looks the same).
	if _, err := a.LastVerify(ctx); err != nil {
		problem("%v", err)
	}
	head := a.verifyHead(ctx, snaps, segs, digested, problem, func(w string) { rep.Warnings = append(rep.Warnings, w) })
	if len(snaps) > 0 {
		next := snaps[0].Sequence + 1
		for _, s := range segs {
			if s.End() < next {
				continue
			}
			if s.First > next {
				problem("change-log gap: sequences %d-%d are missing", next, s.First-1)
			}
			next = s.End() + 1
		}
	}
	if level >= 2 {
		// What the metadata says about single changes, cross-checked
		// against the segments holding them: each manifest's and the
		// head's last change.
		claims := map[uint64][]timeClaim{}
		for _, s := range snaps {
			if m := s.Manifest; m != nil && m.Sequence > 0 {
				claims[m.Sequence] = append(claims[m.Sequence], timeClaim{"snapshot " + m.ID + ": manifest", m.LastChange})
			}
		}
		// The manifests' claims are part of a segment's cache key, so a
		// manifest changed since the segment was cached is cross-checked
		// again; the head's (which moves with every segment) is checked
		// whenever its segment is read.
		keyClaims := maps.Clone(claims)
		if head != nil && head.Sequence > 0 {
			claims[head.Sequence] = append(slices.Clip(claims[head.Sequence]), timeClaim{headKey, head.LastChange})
		}
		for i, s := range segs {
			// A segment's checksum is its own trailer: key, size and
			// modification time identify what was checked.
			ck := cacheKey(ObjectInfo{Key: s.Key, Size: s.Size, Modified: s.Modified}, s.claimsAbout(keyClaims))
			if o.Cache.has(ck) {
				rep.Cached++
				continue
			}
			rep.Checked++
			_, changes, err := a.ReadSegment(ctx, s)
			if err != nil {
				problem("%v", err)
			} else {
				o.Cache.add(ck)
				for _, c := range changes {
					for _, cl := range claims[c.Seq] {
						if !c.Time.Equal(cl.t) {
							problem("%s says change %d was committed at %s, but %s holds it committed at %s",
								cl.what, c.Seq, cl.t.UTC().Format(time.RFC3339Nano), s.Key, c.Time.UTC().Format(time.RFC3339Nano))
						}
					}
				}
			}
			a.progress(Event{Op: "verify", Stage: "segments", Message: s.Key, Done: int64(i + 1), Total: int64(len(segs))})
		}
	}
	if level >= 3 && newest != nil && rep.OK() {
		d, err := a.drill(ctx, newest, level, o.Drill, problem)
		if err != nil {
			return nil, err
		}
		rep.DrillSeconds = d.Seconds()
		if level >= 4 && rep.OK() {
			a.obs.RestoreDrill(d)
		}
	}
	if rep.OK() {
		a.obs.Verified(a.opts.Now())
	} else {
		a.obs.Error("verify")
	}
	rep.Seconds = time.Since(start).Seconds()
	if o.Record {
		var snap string
		if newest != nil {
			snap = newest.ID
		}
		if err := a.recordVerify(ctx, rep, snap); err != nil {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("could not record the result in %s on the target (servers will not export it): %v", verifyResultKey, err))
		} else {
			rep.Recorded = verifyResultKey
		}
	}
	return rep, nil
}

// timeClaim is a metadata object's statement of when one change was
// committed.
type timeClaim struct {
	what string
	t    time.Time
}

// claimsAbout renders the claims about the segment's changes, in sequence
// order ("" when there are none), for its verify cache key.
func (s SegmentInfo) claimsAbout(claims map[uint64][]timeClaim) string {
	var seqs []uint64
	for seq := range claims {
		if seq >= s.First && seq <= s.End() {
			seqs = append(seqs, seq)
		}
	}
	slices.Sort(seqs)
	var b strings.Builder
	for _, seq := range seqs {
		for _, cl := range claims[seq] {
			fmt.Fprintf(&b, "%d@%d;", seq, cl.t.UnixNano())
		}
	}
	return b.String()
}

// verifyHead checks head.json against the listing (level 1): the newest
// change it says was shipped must be on the target, in a segment or a
// snapshot. It returns the head, nil when missing or unreadable.
func (a *Archive) verifyHead(ctx context.Context, snaps []SnapshotInfo, segs []SegmentInfo, digested bool, problem func(string, ...any), warn func(string)) *Head {
	head, err := a.Head(ctx)
	if err != nil {
		problem("%v", err)
		return nil
	}
	if head == nil {
		switch {
		case digested:
			problem("%s is missing, but the archive holds snapshots written by an engram-ops that writes it: the newest shipped sequence is unknown, so a lost newest segment cannot be told from the end of the archive", headKey)
		case len(segs) > 0 || len(snaps) > 0:
			warn(fmt.Sprintf("no %s (archive written by an older engram-ops): a lost newest segment cannot be detected until a server of this version ships or snapshots to it", headKey))
		}
		return nil
	}
	var have uint64 // newest sequence on the target
	if n := len(segs); n > 0 {
		have = segs[n-1].End()
	}
	for _, s := range snaps {
		have = max(have, s.Sequence)
		if m := s.Manifest; m != nil && m.Sequence == head.Sequence && !m.LastChange.Equal(head.LastChange) {
			problem("snapshot %s says change %d was committed at %s, %s says %s", m.ID, m.Sequence,
				m.LastChange.UTC().Format(time.RFC3339Nano), headKey, head.LastChange.UTC().Format(time.RFC3339Nano))
		}
	}
	if head.Sequence > have {
		problem("the newest change-log segments are missing: sequences %d-%d were shipped (%s, written %s) but are not on the target; the newest there is %d",
			have+1, head.Sequence, headKey, head.Written.Format(time.RFC3339), have)
	}
	return head
}

// checkFile downloads one file and checks its plain size and sha256.
func (a *Archive) checkFile(ctx context.Context, m *Manifest, f *File) error {
	r, err := a.store.Get(ctx, f.Key)
	if err != nil {
		return fmt.Errorf("snapshot %s: %s: %w", m.ID, f.Key, err)
	}
	defer r.Close()
	pr, err := a.codec.openReader(r, m.Encryption)
	if err != nil {
		return fmt.Errorf("snapshot %s: %s: %w", m.ID, f.Key, err)
	}
	defer pr.Close()
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(pr, f.Size+1))
	if err != nil {
		return fmt.Errorf("snapshot %s: %s: %w: %v", m.ID, f.Key, ErrCorrupt, err)
	}
	if n != f.Size || hex.EncodeToString(h.Sum(nil)) != f.SHA256 {
		return fmt.Errorf("snapshot %s: %s (%s) does not match its checksum", m.ID, f.Key, f.Path)
	}
	return nil
}

// drill restores m into a temporary directory and checks the engine there.
func (a *Archive) drill(ctx context.Context, m *Manifest, level int, hook func(context.Context, *core.Engine, *Manifest) error, problem func(string, ...any)) (time.Duration, error) {
	tmp, err := os.MkdirTemp("", "engram-verify-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp)
	start := time.Now()
	dir := filepath.Join(tmp, "data")
	if _, err := a.Restore(ctx, RestoreOptions{DataDir: dir, SnapshotID: m.ID, SnapshotOnly: true}); err != nil {
		problem("restore of snapshot %s failed: %v", m.ID, err)
		return time.Since(start), nil
	}
	eng, err := core.Open(dir, a.engineOptions())
	if err != nil {
		problem("restored snapshot %s does not open: %v", m.ID, err)
		return time.Since(start), nil
	}
	defer eng.Close()
	want := map[string]Space{}
	for _, s := range m.Spaces {
		want[s.Name] = s
	}
	for _, st := range eng.Spaces() {
		w, ok := want[st.Name]
		delete(want, st.Name)
		if !ok {
			problem("snapshot %s: restored space %s is not in the manifest", m.ID, st.Name)
			continue
		}
		if st.Total() != w.Memories || st.Associations != w.Associations {
			problem("snapshot %s: space %s has %d memories and %d associations, the manifest says %d and %d",
				m.ID, st.Name, st.Total(), st.Associations, w.Memories, w.Associations)
		}
		if st.Dimension != w.Dimension || st.Fingerprint != w.Fingerprint {
			problem("snapshot %s: space %s has dimension %d/%s, the manifest says %d/%s", m.ID, st.Name, st.Dimension, st.Fingerprint, w.Dimension, w.Fingerprint)
		}
	}
	for name := range want {
		problem("snapshot %s: space %s is missing after restore", m.ID, name)
	}
	if level >= 4 {
		digest, _, err := digestEngine(ctx, eng)
		if err != nil {
			return 0, err
		}
		if digest != m.ContentDigest {
			problem("snapshot %s: restored content digest %s differs from the manifest's %s", m.ID, digest, m.ContentDigest)
		}
		if hook != nil {
			if err := hook(ctx, eng, m); err != nil {
				problem("snapshot %s: restore drill: %v", m.ID, err)
			}
			return time.Since(start), nil
		}
		for _, s := range m.Spaces {
			if s.Memories == 0 {
				continue
			}
			res, err := eng.List(ctx, s.Name, core.ListOptions{AllTiers: true, Limit: 1})
			if err != nil || len(res.Memories) == 0 {
				problem("snapshot %s: space %s lists no memory: %v", m.ID, s.Name, err)
				continue
			}
			rec, err := eng.Recall(ctx, s.Name, core.RecallQuery{Text: res.Memories[0].Content, NoReinforce: true, Deep: true})
			if err != nil || len(rec.Vivid) == 0 {
				problem("snapshot %s: recall in space %s found nothing for a stored memory's own content: %v", m.ID, s.Name, err)
			}
		}
	}
	return time.Since(start), nil
}
