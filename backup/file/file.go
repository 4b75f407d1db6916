// Package file is the backup.ObjectStore for a local (or mounted) directory,
// the target written as file:///abs/dir.
//
// It owns the mapping of slash-separated object keys onto files under one root
// directory, and nothing else: no knowledge of snapshots or manifests. It
// imports only the standard library and package backup.
//
// Choices, and why:
//
//   - Put is atomic and durable: the bytes go to a temporary file in the
//     destination directory, which is fsynced, renamed over the final name and
//     followed by an fsync of the directory. A reader sees the old object or
//     the new one, never a prefix, and an acknowledged Put survives a power cut.
//   - Keys are checked before they touch the filesystem (see CheckKey): no
//     "." or ".." segments, no empty segments, no leading slash, no
//     backslashes, no NUL, valid UTF-8, at most 1024 bytes and 255 per segment.
//     A bad key is an error, never a path outside the root.
//   - Temporary files are named ".engram-tmp-*". They are never listed, a key
//     may not use that name, and New removes the ones a crashed Put left behind
//     once they are older than StaleTempAge (a younger one may belong to a Put
//     still running in another process sharing the directory).
//   - The root directory must already exist: a backup target that silently
//     appeared on the root filesystem because a mount was missing would be
//     worse than an error.
//   - Files are created 0600 and directories 0750: backups hold tenant data.
//   - Conditional puts (backup.ConditionalStore): the tag of an object is
//     the hex sha256 of its content. Create-only publishes with a hard link,
//     which fails when the name exists; replace-if-unchanged compares and
//     renames under an flock of the root directory.
//   - Unlike S3, a directory cannot be both an object and a key prefix: with
//     "a/b" stored, Put("a") fails (and the other way round). Backup layouts
//     never need both.
package file

import (
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
	"strings"
	"syscall"
	"time"

	"github.com/engram-ops/engram-ops/backup"
)

const (
	// MaxKeyLen is the longest key accepted, in bytes (S3's limit).
	MaxKeyLen = backup.MaxKeyLen
	// tempPrefix names in-progress Puts; keys may not use it.
	tempPrefix = ".engram-tmp-"
)

// StaleTempAge is how old a leftover temporary file must be before New
// removes it. A running Put keeps touching its file, so an hour without a
// write means the writer is gone.
const StaleTempAge = time.Hour

// Store is a backup.ObjectStore rooted at one directory. It is safe for
// concurrent use, including by several processes sharing the directory.
type Store struct {
	root string // absolute, cleaned
}

var _ backup.ConditionalStore = (*Store)(nil)

// New opens the directory dir (which must exist) as an object store and
// removes temporary files left there by Puts that crashed more than
// StaleTempAge ago.
func New(dir string) (*Store, error) {
	if dir == "" {
		return nil, errors.New("file store: empty directory")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("file store %q: %w", dir, err)
	}
	fi, err := os.Stat(abs)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("file store: directory %s does not exist; create it first (mkdir -p %s)", abs, abs)
	}
	if err != nil {
		return nil, fmt.Errorf("file store: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("file store: %s is not a directory", abs)
	}
	s := &Store{root: abs}
	if _, err := s.RemoveStaleTemp(StaleTempAge); err != nil {
		return nil, err
	}
	return s, nil
}

// String names the target as a file URL.
func (s *Store) String() string { return "file://" + filepath.ToSlash(s.root) }

// Dir returns the root directory.
func (s *Store) Dir() string { return s.root }

// CheckKey applies backup.CheckKey and reserves the names of this store's
// temporary files.
func CheckKey(key string) error {
	if err := backup.CheckKey(key); err != nil {
		return err
	}
	for seg := range strings.SplitSeq(key, "/") {
		if strings.HasPrefix(seg, tempPrefix) {
			return fmt.Errorf("invalid key %q: names starting with %q are reserved for temporary files", key, tempPrefix)
		}
	}
	return nil
}

// checkPrefix accepts what List may be asked for: "" or any string that is
// the start of a valid key. Only whole segments (those followed by a slash)
// reach the filesystem, and those are checked like keys.
func checkPrefix(prefix string) error {
	dir, _ := splitPrefix(prefix)
	if strings.ContainsAny(prefix, "\\\x00") || strings.HasPrefix(prefix, "/") || len(prefix) > MaxKeyLen {
		return fmt.Errorf("invalid list prefix %q", prefix)
	}
	if dir != "" {
		if err := CheckKey(dir); err != nil {
			return fmt.Errorf("invalid list prefix %q: %w", prefix, err)
		}
	}
	return nil
}

// splitPrefix splits a list prefix into the directory part (whole segments,
// without the trailing slash) and the partial last segment.
func splitPrefix(prefix string) (dir, rest string) {
	i := strings.LastIndexByte(prefix, '/')
	if i < 0 {
		return "", prefix
	}
	return prefix[:i], prefix[i+1:]
}

func (s *Store) path(key string) string {
	return filepath.Join(s.root, filepath.FromSlash(key))
}

// Put stores r under key atomically and durably. With size >= 0 the reader
// must yield exactly size bytes; anything else is an error and stores nothing.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64) (err error) {
	tmp, _, err := s.writeTemp(ctx, key, r, size)
	if err != nil {
		return err
	}
	return s.publish(key, tmp, os.Rename)
}

// writeTemp checks key and writes r to a synced temporary file in the
// directory key goes to. It returns the file's path and the tag of its
// content (hex sha256, see GetTagged).
func (s *Store) writeTemp(ctx context.Context, key string, r io.Reader, size int64) (tmp, tag string, err error) {
	if err := CheckKey(key); err != nil {
		return "", "", err
	}
	if err := ctx.Err(); err != nil {
		return "", "", fmt.Errorf("put %s: %w", key, err)
	}
	f, err := s.createTemp(filepath.Dir(s.path(key)))
	if err != nil {
		return "", "", fmt.Errorf("put %s: %w", key, err)
	}
	name := f.Name() // tmp is cleared by the error returns before this runs
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(name)
		}
	}()

	src := io.Reader(&ctxReader{ctx: ctx, r: r})
	if size >= 0 {
		// One byte past size tells a too-long reader from an exact one.
		src = io.LimitReader(src, size+1)
	}
	h := sha256.New()
	// Hide ReadFrom/WriteTo so the copy goes through ctxReader and can stop.
	n, err := io.Copy(struct{ io.Writer }{io.MultiWriter(f, h)}, struct{ io.Reader }{src})
	if err != nil {
		return "", "", fmt.Errorf("put %s: %w", key, err)
	}
	if size >= 0 && n != size {
		if n > size {
			return "", "", fmt.Errorf("put %s: reader has more than the declared %d bytes", key, size)
		}
		return "", "", fmt.Errorf("put %s: reader ended after %d of the declared %d bytes: %w", key, n, size, io.ErrUnexpectedEOF)
	}
	if err := f.Sync(); err != nil {
		return "", "", fmt.Errorf("put %s: sync: %w", key, err)
	}
	if err := f.Close(); err != nil {
		return "", "", fmt.Errorf("put %s: close: %w", key, err)
	}
	// Last chance to honour a cancellation: after publish the object exists.
	if err := ctx.Err(); err != nil {
		return "", "", fmt.Errorf("put %s: %w", key, err)
	}
	return name, hex.EncodeToString(h.Sum(nil)), nil
}

// publish moves the temporary file tmp to key's name with place (os.Rename,
// or os.Link for create-only) and makes the directory entry durable. The
// temporary file is gone afterwards whatever happens.
func (s *Store) publish(key, tmp string, place func(oldname, newname string) error) error {
	final := s.path(key)
	err := place(tmp, final)
	if rerr := os.Remove(tmp); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) && err == nil {
		err = rerr
	}
	if err != nil {
		if fi, serr := os.Stat(final); serr == nil && fi.IsDir() {
			return fmt.Errorf("put %s: the key is already used as a prefix of other keys", key)
		}
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("put %s: the object exists: %w", key, backup.ErrPrecondition)
		}
		return fmt.Errorf("put %s: %w", key, err)
	}
	if err := syncDir(filepath.Dir(final)); err != nil {
		return fmt.Errorf("put %s: sync directory: %w", key, err)
	}
	return nil
}

// PutIfAbsent stores r under key only if no object has that key: the
// temporary file is hard-linked to the final name, which the kernel
// refuses when the name exists.
func (s *Store) PutIfAbsent(ctx context.Context, key string, r io.Reader, size int64) (string, error) {
	tmp, tag, err := s.writeTemp(ctx, key, r, size)
	if err != nil {
		return "", err
	}
	if err := s.publish(key, tmp, os.Link); err != nil {
		return "", err
	}
	return tag, nil
}

// PutIfMatch replaces the object under key only if its content has the tag
// given. The comparison and the rename happen under an exclusive flock of
// the root directory, which every PutIfMatch on this directory takes (from
// any process on the host); PutIfAbsent cannot interleave harmfully, as it
// creates only a name that does not exist.
func (s *Store) PutIfMatch(ctx context.Context, key string, r io.Reader, size int64, tag string) (string, error) {
	tmp, newTag, err := s.writeTemp(ctx, key, r, size)
	if err != nil {
		return "", err
	}
	unlock, err := s.lockRoot()
	if err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("put %s: %w", key, err)
	}
	defer unlock()
	cur, err := fileTag(s.path(key))
	switch {
	case err != nil && (errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)):
		os.Remove(tmp)
		return "", fmt.Errorf("put %s: the object does not exist: %w", key, backup.ErrPrecondition)
	case err != nil:
		os.Remove(tmp)
		return "", fmt.Errorf("put %s: %w", key, err)
	case cur != tag:
		os.Remove(tmp)
		return "", fmt.Errorf("put %s: the object is version %.12s…, not %.12s…: %w", key, cur, tag, backup.ErrPrecondition)
	}
	if err := s.publish(key, tmp, os.Rename); err != nil {
		return "", err
	}
	return newTag, nil
}

// lockRoot takes an exclusive flock on the root directory.
func (s *Store) lockRoot() (func(), error) {
	d, err := os.Open(s.root)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(d.Fd()), syscall.LOCK_EX); err != nil {
		d.Close()
		return nil, fmt.Errorf("lock %s: %w", s.root, err)
	}
	return func() { d.Close() }, nil // closing the descriptor releases the lock
}

// fileTag is the tag of a stored file: hex sha256 of its content.
func fileTag(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return readerTag(f)
}

func readerTag(f *os.File) (string, error) {
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() {
		return "", &fs.PathError{Op: "open", Path: f.Name(), Err: fs.ErrNotExist}
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// GetTagged opens the object under key and returns the hex sha256 of its
// content as its tag. Objects are replaced by rename, never rewritten, so
// the file opened keeps the content the tag was computed from.
func (s *Store) GetTagged(ctx context.Context, key string) (io.ReadCloser, string, error) {
	rc, err := s.Get(ctx, key)
	if err != nil {
		return nil, "", err
	}
	f := rc.(*os.File)
	tag, err := readerTag(f)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, "", fmt.Errorf("get %s: %w", key, err)
	}
	return f, tag, nil
}

// createTemp makes the destination directory (fsyncing each directory it
// creates into its parent) and a temporary file in it. A concurrent Delete may
// remove an emptied directory between the two steps, so it tries again.
func (s *Store) createTemp(dir string) (*os.File, error) {
	var err error
	for range 10 {
		var f *os.File
		if err = s.mkdirAll(dir); err == nil {
			f, err = os.CreateTemp(dir, tempPrefix+"*")
		}
		switch {
		case err == nil:
			return f, nil
		case errors.Is(err, syscall.ENOTDIR):
			return nil, errors.New("a prefix of the key is already stored as an object")
		case !errors.Is(err, fs.ErrNotExist):
			return nil, err
		}
	}
	return nil, err
}

// mkdirAll is os.MkdirAll that also fsyncs the parent of every directory it
// creates, so a durable object is not lost with a directory entry.
func (s *Store) mkdirAll(dir string) error {
	if fi, err := os.Stat(dir); err == nil {
		if !fi.IsDir() {
			return &fs.PathError{Op: "mkdir", Path: dir, Err: syscall.ENOTDIR}
		}
		return nil
	}
	if dir == s.root {
		return fmt.Errorf("store directory %s has disappeared", s.root)
	}
	parent := filepath.Dir(dir)
	if err := s.mkdirAll(parent); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o750); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return syncDir(parent)
}

// Get opens the object stored under key.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := CheckKey(key); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := os.Open(s.path(key))
	if err != nil {
		return nil, notFound(key, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	if !fi.Mode().IsRegular() { // a directory is a key prefix, not an object
		f.Close()
		return nil, fmt.Errorf("get %s: %w", key, backup.ErrNotFound)
	}
	return f, nil
}

// Stat returns the size and modification time of the object under key.
func (s *Store) Stat(ctx context.Context, key string) (backup.ObjectInfo, error) {
	if err := CheckKey(key); err != nil {
		return backup.ObjectInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return backup.ObjectInfo{}, err
	}
	fi, err := os.Stat(s.path(key))
	if err != nil {
		return backup.ObjectInfo{}, notFound(key, err)
	}
	if !fi.Mode().IsRegular() {
		return backup.ObjectInfo{}, fmt.Errorf("stat %s: %w", key, backup.ErrNotFound)
	}
	return backup.ObjectInfo{Key: key, Size: fi.Size(), Modified: fi.ModTime()}, nil
}

// notFound maps "no such file" and "a path component is a file" onto
// backup.ErrNotFound, keeping the OS error for the message.
func notFound(key string, err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return fmt.Errorf("%s: %w (%v)", key, backup.ErrNotFound, err)
	}
	return fmt.Errorf("%s: %w", key, err)
}

// List returns every object whose key starts with prefix, sorted by key.
// Only the directory the prefix names is walked, not the whole tree.
func (s *Store) List(ctx context.Context, prefix string) ([]backup.ObjectInfo, error) {
	if err := checkPrefix(prefix); err != nil {
		return nil, err
	}
	dir, _ := splitPrefix(prefix)
	start := s.root
	if dir != "" {
		start = s.path(dir)
	}
	var out []backup.ObjectInfo
	err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == start && (errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)) {
				return fs.SkipAll // nothing stored under this prefix
			}
			// An emptied directory removed by a concurrent Delete is not an error.
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), tempPrefix) {
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(s.root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if !strings.HasPrefix(key, prefix) {
			return nil
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) { // deleted while we walked
			return nil
		}
		if err != nil {
			return err
		}
		out = append(out, backup.ObjectInfo{Key: key, Size: fi.Size(), Modified: fi.ModTime()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %q: %w", prefix, err)
	}
	// Walk order is per directory; "a.b" sorts before "a/b" as a string.
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// Delete removes the object under key (a missing key is not an error) and
// the directories that become empty because of it.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	p := s.path(key)
	fi, err := os.Lstat(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil
		}
		return fmt.Errorf("delete %s: %w", key, err)
	}
	if fi.IsDir() { // a prefix of other keys, not an object
		return nil
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	dir := filepath.Dir(p)
	if err := syncDir(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete %s: sync directory: %w", key, err)
	}
	// os.Remove refuses a non-empty directory, so racing Puts are safe.
	for dir != s.root && strings.HasPrefix(dir, s.root) {
		if os.Remove(dir) != nil {
			break
		}
		dir = filepath.Dir(dir)
	}
	return nil
}

// RemoveStaleTemp deletes temporary files of interrupted Puts whose last
// write is older than olderThan, and reports how many it removed.
func (s *Store) RemoveStaleTemp(olderThan time.Duration) (int, error) {
	cutoff := time.Now().Add(-olderThan)
	removed := 0
	err := filepath.WalkDir(s.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() || !strings.HasPrefix(d.Name(), tempPrefix) {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if fi.ModTime().After(cutoff) {
			return nil
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		removed++
		return nil
	})
	if err != nil {
		return removed, fmt.Errorf("file store %s: removing leftover temporary files: %w", s.root, err)
	}
	return removed, nil
}

// syncDir makes a directory's entries (a rename, a new file or
// subdirectory) durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// ctxReader stops a copy when the context is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
