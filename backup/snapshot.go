package backup

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/engram-ops/engram-ops/core"
)

// SnapshotResult describes a finished snapshot.
type SnapshotResult struct {
	Manifest      *Manifest
	UploadedFiles int   // files that were not yet stored
	UploadedBytes int64 // stored bytes uploaded (files and manifest)
	Took          time.Duration
}

// SnapshotEngine snapshots a running engine: a Pebble checkpoint into a
// temporary directory, then upload. Writers are blocked only for the
// checkpoint itself.
func (a *Archive) SnapshotEngine(ctx context.Context, eng *core.Engine) (*SnapshotResult, error) {
	start := time.Now()
	tmp, err := os.MkdirTemp("", "engram-snapshot-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	dir := filepath.Join(tmp, "cp")
	created := a.opts.Now().UTC()
	a.progress(Event{Op: "snapshot", Stage: "checkpoint", Message: "checkpointing the running engine"})
	seq, err := eng.Checkpoint(dir)
	if err != nil {
		a.obs.Error("snapshot")
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	res, err := a.snapshotCheckpoint(ctx, dir, seq, created, "server")
	if err != nil {
		a.obs.Error("snapshot")
		return nil, err
	}
	res.Took = time.Since(start)
	return res, nil
}

// SnapshotDataDir snapshots a stopped data directory: it opens the engine
// (which fails if a server holds it), checkpoints, closes and uploads.
func (a *Archive) SnapshotDataDir(ctx context.Context, dataDir string) (*SnapshotResult, error) {
	start := time.Now()
	if st, err := os.Stat(dataDir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("data directory %s does not exist. Try: --data-dir with the server's data_dir", dataDir)
	}
	// A promoted data directory snapshots as its generation.
	gen, err := ReadGeneration(dataDir, a.Target())
	if err != nil {
		return nil, err
	}
	a.headMu.Lock()
	if a.gen == 0 {
		a.gen = gen
	}
	a.headMu.Unlock()
	eng, err := core.Open(dataDir, a.engineOptions())
	if core.CodeOf(err) == "DATA_DIR_IN_USE" {
		return nil, fmt.Errorf("open %s: %w. Try: snapshot through the server: engram-ops backup create --server URL", dataDir, err)
	}
	if err != nil {
		// The engine's own message says what to do: under the disk
		// reserve (opening replays the log into new tables, which
		// cannot finish on a full filesystem), or damaged files.
		return nil, fmt.Errorf("open %s: %w", dataDir, err)
	}
	tmp, err := os.MkdirTemp("", "engram-snapshot-")
	if err != nil {
		_ = eng.Close()
		return nil, err
	}
	defer os.RemoveAll(tmp)
	dir := filepath.Join(tmp, "cp")
	created := a.opts.Now().UTC()
	seq, err := eng.Checkpoint(dir)
	if cerr := eng.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", dataDir, err)
	}
	res, err := a.snapshotCheckpoint(ctx, dir, seq, created, "data-dir")
	if err != nil {
		a.obs.Error("snapshot")
		return nil, err
	}
	res.Took = time.Since(start)
	return res, nil
}

// snapshotCheckpoint digests, uploads and records the checkpoint in dir.
func (a *Archive) snapshotCheckpoint(ctx context.Context, dir string, seq uint64, created time.Time, source string) (*SnapshotResult, error) {
	// A writer of a superseded generation adds no snapshot: it would hold
	// the changes it made after it was fenced.
	if _, ok := a.store.(ConditionalStore); ok {
		head, err := a.Head(ctx)
		if err != nil && !errors.Is(err, ErrCorrupt) {
			return nil, fmt.Errorf("read %s: %w", headKey, err)
		}
		if mine := a.Generation(); head.Gen() > mine {
			return nil, &FencedError{Generation: mine, Current: head.Gen(), Sequence: head.Sequence}
		}
	}
	m := &Manifest{FormatVersion: ManifestFormat, ID: SnapshotID(created, seq), Sequence: seq, Created: created,
		Encryption: a.codec.encryption(), Source: source}

	// Open a clone of the checkpoint: counts, fingerprints, digest, the
	// last change's time. The checkpoint itself is uploaded as taken:
	// opening it would replay its WAL into new tables and compact, and
	// rewritten tables are new content-addressed files, so an incremental
	// snapshot would upload most of the data again. Restore opens it and
	// replays the WAL (same sequence, same content).
	a.progress(Event{Op: "snapshot", Stage: "digest", Message: "opening a copy of the checkpoint to digest its content"})
	clone := dir + ".digest"
	if err := cloneDir(dir, clone); err != nil {
		return nil, fmt.Errorf("copy checkpoint: %w", err)
	}
	defer os.RemoveAll(clone)
	eng, err := core.Open(clone, a.engineOptions())
	if err != nil {
		return nil, fmt.Errorf("open checkpoint: %w", err)
	}
	if got := eng.LastSequence(); got != seq {
		_ = eng.Close()
		return nil, fmt.Errorf("checkpoint holds sequence %d, expected %d", got, seq)
	}
	if seq > 0 {
		ch, err := eng.ChangesSince(seq-1, 1)
		if err != nil || len(ch) != 1 {
			_ = eng.Close()
			return nil, fmt.Errorf("read change %d of the checkpoint: %v", seq, err)
		}
		m.LastChange = ch[0].Time.UTC()
		// created was read before the checkpoint: a change committed in
		// between (or a clock step) must not leave the manifest claiming a
		// last change after its creation.
		if m.LastChange.After(m.Created) {
			m.Created = m.LastChange
			m.ID = SnapshotID(m.Created, seq)
		}
	}
	m.ContentDigest, m.Spaces, err = digestEngine(ctx, eng)
	if cerr := eng.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	// Done with the clone: free its disk (copies of the WAL, tables its
	// engine wrote) before the upload rather than after.
	if err := os.RemoveAll(clone); err != nil {
		return nil, fmt.Errorf("remove %s: %w", clone, err)
	}

	a.reuseGraphs(ctx, dir, seq)

	// Files: each is read once, hashed, and uploaded from memory unless
	// its content is stored already (see storeFile).
	type entry struct {
		path string
		size int64
	}
	var (
		files []entry
		total int64
	)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || filepath.Base(rel) == "LOCK" {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		files = append(files, entry{filepath.ToSlash(rel), fi.Size()})
		total += fi.Size()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("walk checkpoint: %w", err)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].path < files[j].path })
	existing, err := a.store.List(ctx, filesPrefix)
	if err != nil {
		return nil, fmt.Errorf("list %s on %s: %w", filesPrefix, a.Target(), err)
	}
	stored := make(map[string]int64, len(existing))
	for _, o := range existing {
		stored[o.Key] = o.Size
	}
	m.Files = make([]File, len(files))
	all := make([]int, len(files))
	for i, e := range files {
		m.Files[i].Path = e.path
		all[i] = i
	}
	// Largest first: a big file started last would upload alone at the end.
	sort.SliceStable(all, func(x, y int) bool { return files[all[x]].size > files[all[y]].size })

	res := &SnapshotResult{Manifest: m}
	a.progress(Event{Op: "snapshot", Stage: "upload", Message: fmt.Sprintf("hashing %d files and uploading what is not yet stored", len(files)), Total: total})
	st := newStage(a.opts.Parallel)
	var (
		mu    sync.Mutex
		done  atomic.Int64
		owner = map[string]int{} // key → the file that uploads it: a key shared by two paths is uploaded once
	)
	claim := func(i int) bool {
		f := &m.Files[i]
		mu.Lock()
		defer mu.Unlock()
		if sz, ok := stored[f.Key]; ok {
			f.StoredSize = sz
			return false
		}
		if _, ok := owner[f.Key]; ok {
			return false
		}
		owner[f.Key] = i
		return true
	}
	err = forEachParallel(ctx, a.opts.Parallel, all, func(ctx context.Context, i int) error {
		f := &m.Files[i]
		n, err := a.storeFile(ctx, st, filepath.Join(dir, filepath.FromSlash(f.Path)), f, func() bool { return claim(i) })
		if err == nil && n > 0 {
			mu.Lock()
			res.UploadedFiles++
			res.UploadedBytes += n
			f.StoredSize = n
			mu.Unlock()
		}
		a.progress(Event{Op: "snapshot", Stage: "upload", Message: f.Path, Done: done.Add(f.Size), Total: total})
		return err
	})
	if err != nil {
		return nil, err
	}
	for i := range m.Files { // duplicates of a file uploaded in this run
		if j, ok := owner[m.Files[i].Key]; ok && j != i {
			m.Files[i].StoredSize = m.Files[j].StoredSize
		}
	}

	// The manifest last: only now is the snapshot listed.
	b, err := EncodeManifest(m)
	if err != nil {
		return nil, err
	}
	if err := a.store.Put(ctx, manifestKey(m.ID), bytes.NewReader(b), int64(len(b))); err != nil {
		return nil, fmt.Errorf("write manifest %s to %s: %w", m.ID, a.Target(), err)
	}
	res.UploadedBytes += int64(len(b))
	// A prune running concurrently may have deleted a file this snapshot
	// reused (it was referenced only by an expiring manifest when the prune
	// listed). Now that the manifest protects them, check the reused files
	// and upload any that vanished.
	for i := range m.Files {
		f := &m.Files[i]
		if _, reused := stored[f.Key]; !reused {
			continue
		}
		if _, err := a.store.Stat(ctx, f.Key); errors.Is(err, ErrNotFound) {
			n, err := a.uploadFile(ctx, filepath.Join(dir, filepath.FromSlash(f.Path)), f)
			if err != nil {
				return nil, fmt.Errorf("snapshot %s: re-upload %s deleted by a concurrent prune: %w", m.ID, f.Key, err)
			}
			res.UploadedFiles++
			res.UploadedBytes += n
		} else if err != nil {
			return nil, fmt.Errorf("snapshot %s: check %s: %w", m.ID, f.Key, err)
		}
	}
	// A snapshot ahead of the shipped change log (or on a target without
	// one) is the newest stored change: the head record says so.
	if err := a.writeHead(ctx, Head{Sequence: m.Sequence, LastChange: m.LastChange, Snapshot: m.ID}, true); err != nil {
		if errors.Is(err, ErrFenced) {
			// Promoted over while uploading: the snapshot may hold changes
			// the new generation's history does not, so it is withdrawn.
			if derr := a.store.Delete(ctx, manifestKey(m.ID)); derr != nil {
				return nil, fmt.Errorf("snapshot %s: %w; and withdrawing its manifest failed (delete %s by hand): %v", m.ID, err, manifestKey(m.ID), derr)
			}
			return nil, fmt.Errorf("snapshot %s withdrawn: %w", m.ID, err)
		}
		return nil, fmt.Errorf("snapshot %s is stored, but %w", m.ID, err)
	}
	a.obs.Uploaded(res.UploadedBytes)
	a.obs.Success("snapshot", a.opts.Now())
	a.log.Info("snapshot stored", "target", a.Target(), "id", m.ID, "sequence", seq,
		"files", len(m.Files), "uploaded_files", res.UploadedFiles, "uploaded_bytes", res.UploadedBytes)
	return res, nil
}

// stageMax is the largest file storeFile reads into memory whole (one
// read, one hash, then a single retryable PUT from the buffer, as S3's
// part size is 16 MiB too). Larger files are hashed, then streamed.
const stageMax = 16 << 20

// stage holds the read buffers of one snapshot's uploads, reused from
// file to file (the largest files go first) so that each is allocated, and
// its pages faulted in, once per worker rather than once per file.
type stage struct{ free chan []byte }

func newStage(workers int) *stage { return &stage{free: make(chan []byte, workers)} }

func (s *stage) get(n int) []byte {
	select {
	case b := <-s.free:
		if cap(b) >= n {
			return b[:n]
		}
	default:
	}
	return make([]byte, n, max(n, 1<<20))
}

func (s *stage) put(b []byte) {
	select {
	case s.free <- b:
	default:
	}
}

// storeFile hashes the file at path into f (SHA256, Size, Key) and, if
// claim then returns true, uploads it. It returns the stored size, 0 when
// nothing was uploaded.
func (a *Archive) storeFile(ctx context.Context, st *stage, path string, f *File, claim func() bool) (int64, error) {
	src, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil {
		return 0, err
	}
	if fi.Size() > stageMax {
		h := sha256.New()
		size, err := io.Copy(h, src)
		if err != nil {
			return 0, fmt.Errorf("read %s: %w", path, err)
		}
		f.SHA256, f.Size = hex.EncodeToString(h.Sum(nil)), size
		f.Key = fileKey(f.SHA256, a.codec.Encrypted())
		if !claim() {
			return 0, nil
		}
		return a.uploadFile(ctx, path, f)
	}
	size := fi.Size()
	buf := st.get(int(size) + 1)
	defer st.put(buf)
	// One byte more than the size: a file that grew is an error, not truncated.
	k, err := io.ReadFull(src, buf)
	if int64(k) != size || (err != io.ErrUnexpectedEOF && err != io.EOF) {
		return 0, fmt.Errorf("read %s: %d bytes of %d: %v", path, k, size, err)
	}
	plain := buf[:size]
	sum := sha256.Sum256(plain)
	f.SHA256, f.Size = hex.EncodeToString(sum[:]), size
	f.Key = fileKey(f.SHA256, a.codec.Encrypted())
	if !claim() {
		return 0, nil
	}
	// The bytes sealed are the bytes hashed: no second hash is needed.
	var n int64
	err = a.codec.sealFile(plain, func(r io.ReadSeeker, size int64) error {
		n = size
		return a.store.Put(ctx, f.Key, r, size)
	})
	if err != nil {
		return 0, fmt.Errorf("upload %s to %s: %w", f.Path, a.Target(), err)
	}
	return n, nil
}

// uploadFile streams the file at path, sealed, to f.Key, checking on the
// way that it still hashes to f.SHA256, and returns the stored size.
func (a *Archive) uploadFile(ctx context.Context, path string, f *File) (int64, error) {
	src, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer src.Close()
	pr, pw := io.Pipe()
	cw := &countingWriter{w: pw}
	go func() {
		h := sha256.New()
		_, err := a.codec.sealStream(cw, src, h)
		if err == nil && hex.EncodeToString(h.Sum(nil)) != f.SHA256 {
			err = fmt.Errorf("%s changed while it was uploaded", f.Path)
		}
		pw.CloseWithError(err)
	}()
	if err := a.store.Put(ctx, f.Key, pr, -1); err != nil {
		pr.CloseWithError(err)
		return 0, fmt.Errorf("upload %s to %s: %w", f.Path, a.Target(), err)
	}
	return cw.n, nil
}

// cloneDir copies the tree src to dst (which must not exist). Pebble
// tables (*.sst) are immutable, and core replaces index files (index/) by
// rename, never in place, so both are hard-linked when possible; the rest
// (WAL, MANIFEST, which an opening Pebble may append to or recycle) is
// copied.
func cloneDir(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		out := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(out, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		link := filepath.Ext(p) == ".sst" || filepath.Dir(filepath.ToSlash(rel)) == "index"
		if link && os.Link(p, out) == nil {
			return nil
		}
		return copyFile(p, out)
	})
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	return errors.Join(err, out.Close())
}

// graphReuseFraction bounds how far a space's index graph may have drifted
// (in file size, which grows with every node inserted) from the graph an
// earlier snapshot stored, for a snapshot to store that earlier graph again
// instead of the current one.
const graphReuseFraction = 0.10

// reuseGraphs replaces each index graph in the checkpoint dir with the one
// the newest snapshot stored for the same space, when their sizes differ by
// at most graphReuseFraction. A graph is derived data that changes
// throughout with every insert (each new node links into its neighbours'
// lists), so storing the current one makes an incremental snapshot upload
// the whole graph, most of a snapshot of text memories. An older graph is
// what the engine already handles after a crash: opening a restored
// snapshot indexes the memories the graph lacks in the background (recall
// is exact over them meanwhile) and ignores nodes of memories gone since.
// The graph is downloaded (checksum verified) rather than only referenced,
// so the checkpoint's files are exactly what the manifest records. Only a
// graph of the same engine qualifies (its node ids are that engine's
// slots): the earlier snapshot must not be ahead of this one and must share
// an engine table with it. Any failure (an encrypted archive without the
// identity, a missing object) keeps the current graph.
func (a *Archive) reuseGraphs(ctx context.Context, dir string, seq uint64) {
	// The newest readable manifest; ids sort by time, so only that one
	// (or, if it is unreadable, the one before) is downloaded.
	ids, err := a.snapshotIDs(ctx)
	if err != nil {
		return
	}
	var prev *Manifest
	for i := len(ids) - 1; i >= 0 && prev == nil; i-- {
		prev, _ = a.Manifest(ctx, ids[i])
	}
	if prev == nil || prev.Sequence > seq || !sharesTable(prev, dir) {
		return
	}
	for i := range prev.Files {
		f := &prev.Files[i]
		if !strings.HasPrefix(f.Path, "index/") || !strings.HasSuffix(f.Path, ".graph") {
			continue
		}
		local := filepath.Join(dir, filepath.FromSlash(f.Path))
		st, err := os.Stat(local)
		if err != nil || math.Abs(float64(st.Size()-f.Size)) > graphReuseFraction*float64(f.Size) {
			continue
		}
		tmp := local + ".base"
		if _, err := a.fetchFile(ctx, prev, f, tmp); err != nil {
			os.Remove(tmp)
			a.log.Info("snapshot stores the current index graph", "path", f.Path, "reason", err)
			continue
		}
		if err := os.Rename(tmp, local); err != nil {
			os.Remove(tmp)
			continue
		}
		a.log.Info("snapshot reuses an earlier index graph", "path", f.Path, "base_snapshot", prev.ID,
			"base_bytes", f.Size, "current_bytes", st.Size())
	}
}

// sharesTable reports whether the checkpoint in dir holds one of m's engine
// tables byte for byte: tables are immutable, so a shared one means the
// same engine (another engine's table of the same name and size would not
// have the same sha256).
func sharesTable(m *Manifest, dir string) bool {
	// Smallest first: the upload hashes every table again, so hashing one
	// here should cost as little as it can.
	var tables []File
	for _, f := range m.Files {
		if strings.HasPrefix(f.Path, "db/") && strings.HasSuffix(f.Path, ".sst") {
			tables = append(tables, f)
		}
	}
	sort.Slice(tables, func(i, j int) bool { return tables[i].Size < tables[j].Size })
	for _, f := range tables {
		local := filepath.Join(dir, filepath.FromSlash(f.Path))
		if st, err := os.Stat(local); err != nil || st.Size() != f.Size {
			continue
		}
		src, err := os.Open(local)
		if err != nil {
			continue
		}
		h := sha256.New()
		_, err = io.Copy(h, src)
		src.Close()
		if err == nil && hex.EncodeToString(h.Sum(nil)) == f.SHA256 {
			return true
		}
	}
	return false
}
