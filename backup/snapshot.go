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
	"os"
	"path/filepath"
	"sort"
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
	eng, err := core.Open(dataDir, a.engineOptions())
	if err != nil {
		return nil, fmt.Errorf("open %s: %w (is a server running on it? Then snapshot through the server: engram-ops backup create --server URL)", dataDir, err)
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
	}
	m.ContentDigest, m.Spaces, err = digestEngine(ctx, eng)
	if cerr := eng.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}

	// Files, hashed.
	var paths []string
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err == nil && filepath.Base(rel) != "LOCK" {
			paths = append(paths, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("walk checkpoint: %w", err)
	}
	sort.Strings(paths)
	existing, err := a.store.List(ctx, filesPrefix)
	if err != nil {
		return nil, fmt.Errorf("list %s on %s: %w", filesPrefix, a.Target(), err)
	}
	stored := make(map[string]int64, len(existing))
	for _, o := range existing {
		stored[o.Key] = o.Size
	}
	m.Files = make([]File, len(paths))
	var total int64
	for i, p := range paths {
		sum, size, err := hashFile(filepath.Join(dir, filepath.FromSlash(p)))
		if err != nil {
			return nil, err
		}
		m.Files[i] = File{Path: p, SHA256: sum, Size: size, Key: fileKey(sum, a.codec.Encrypted())}
		total += size
	}

	res := &SnapshotResult{Manifest: m}
	a.progress(Event{Op: "snapshot", Stage: "upload", Message: fmt.Sprintf("uploading what is not yet stored of %d files", len(paths)), Total: total})
	var (
		mu        sync.Mutex
		done      atomic.Int64
		uploading = map[string]int{} // a key shared by two paths is uploaded once
		todo      []int
	)
	for i := range m.Files {
		f := &m.Files[i]
		if sz, ok := stored[f.Key]; ok {
			f.StoredSize = sz
			done.Add(f.Size)
			continue
		}
		if _, ok := uploading[f.Key]; ok {
			continue // same content as another path of this checkpoint
		}
		uploading[f.Key] = i
		todo = append(todo, i)
	}
	err = forEachParallel(ctx, a.opts.Parallel, todo, func(ctx context.Context, i int) error {
		f := &m.Files[i]
		n, err := a.uploadFile(ctx, filepath.Join(dir, filepath.FromSlash(f.Path)), f)
		if err == nil {
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
		if m.Files[i].StoredSize == 0 {
			if j, ok := uploading[m.Files[i].Key]; ok {
				m.Files[i].StoredSize = m.Files[j].StoredSize
			}
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
	a.obs.Uploaded(res.UploadedBytes)
	a.obs.Success("snapshot", a.opts.Now())
	a.log.Info("snapshot stored", "target", a.Target(), "id", m.ID, "sequence", seq,
		"files", len(m.Files), "uploaded_files", res.UploadedFiles, "uploaded_bytes", res.UploadedBytes)
	return res, nil
}

// uploadFile streams one file, compressed (and encrypted), to f.Key and
// returns the stored size.
func (a *Archive) uploadFile(ctx context.Context, path string, f *File) (int64, error) {
	src, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer src.Close()
	pr, pw := io.Pipe()
	cw := &countingWriter{w: pw}
	go func() {
		w, err := a.codec.sealWriter(cw)
		if err == nil {
			h := sha256.New()
			_, err = io.Copy(w, io.TeeReader(src, h))
			err = errors.Join(err, w.Close())
			if err == nil && hex.EncodeToString(h.Sum(nil)) != f.SHA256 {
				err = fmt.Errorf("%s changed while it was uploaded", f.Path)
			}
		}
		pw.CloseWithError(err)
	}()
	if err := a.store.Put(ctx, f.Key, pr, -1); err != nil {
		pr.CloseWithError(err)
		return 0, fmt.Errorf("upload %s to %s: %w", f.Path, a.Target(), err)
	}
	return cw.n, nil
}

func hashFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// cloneDir copies the tree src to dst (which must not exist). Pebble
// tables (*.sst) are immutable and hard-linked when possible; everything
// else (WAL, MANIFEST, index files, which an opening engine may rewrite or
// recycle in place) is copied.
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
		if filepath.Ext(p) == ".sst" && os.Link(p, out) == nil {
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
