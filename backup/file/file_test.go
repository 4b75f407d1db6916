package file

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/engram-ops/engram-ops/backup"
	"github.com/engram-ops/engram-ops/backup/storetest"
)

func newStore(t *testing.T) *Store {
	t.Helper()
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) backup.ObjectStore { return newStore(t) })
}

// walk returns every path under dir, relative, slash-separated.
func walk(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestKeysNeverEscape stores a file outside the root and checks that no
// bad key reaches it, whatever the operation.
func TestKeysNeverEscape(t *testing.T) {
	parent := t.TempDir()
	root := filepath.Join(parent, "root")
	if err := os.Mkdir(root, 0o700); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(parent, "outside")
	if err := os.WriteFile(outside, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for _, k := range append([]string{"../outside", "a/../../outside", "/" + outside, `..\outside`}, storetest.BadKeys...) {
		if err := s.Put(ctx, k, strings.NewReader("evil"), 4); err == nil {
			t.Errorf("Put(%q) accepted", k)
		}
		if err := s.Delete(ctx, k); err == nil {
			t.Errorf("Delete(%q) accepted", k)
		}
		if _, err := s.Get(ctx, k); err == nil {
			t.Errorf("Get(%q) accepted", k)
		}
	}
	for _, p := range []string{"../", "../x", "a/../../", "/etc/", `..\`} {
		if _, err := s.List(ctx, p); err == nil {
			t.Errorf("List(%q) accepted", p)
		}
	}
	if b, err := os.ReadFile(outside); err != nil || string(b) != "precious" {
		t.Fatalf("file outside the root changed: %q, %v", b, err)
	}
	if got := walk(t, root); len(got) != 0 {
		t.Fatalf("root holds %q after rejected keys", got)
	}
	// The error says what is wrong with the key.
	err = s.Put(ctx, "a/../b", strings.NewReader("x"), 1)
	if err == nil || !strings.Contains(err.Error(), `".." segments are not allowed`) {
		t.Fatalf("Put(a/../b) error = %v, want one naming the .. segment", err)
	}
	if err := s.Put(ctx, ".engram-tmp-x", strings.NewReader("x"), 1); err == nil || !strings.Contains(err.Error(), "reserved") {
		t.Fatalf("Put of a temp-file name = %v, want a reserved-name error", err)
	}
}

func TestNewRequiresDirectory(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "not-mounted")
	_, err := New(missing)
	if err == nil || !strings.Contains(err.Error(), "does not exist; create it first") {
		t.Fatalf("New(missing) = %v, want a create-it-first error", err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("New created the missing directory")
	}
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(f); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("New(file) = %v", err)
	}
	if _, err := New(""); err == nil {
		t.Fatal("New(\"\") accepted")
	}
}

// TestCrashLeftovers simulates Puts that died between creating their temp
// file and renaming it: the leftovers are never listed, and New removes
// the stale ones but not one a live Put may still be writing.
func TestCrashLeftovers(t *testing.T) {
	dir := t.TempDir()
	s, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := s.Put(ctx, "snap/a", strings.NewReader("a"), 1); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * StaleTempAge)
	for _, p := range []string{tempPrefix + "111", "snap/" + tempPrefix + "222", "snap/deep/" + tempPrefix + "333"} {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte("half-written"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(full, old, old); err != nil {
			t.Fatal(err)
		}
	}
	fresh := filepath.Join(dir, "snap", tempPrefix+"live")
	if err := os.WriteFile(fresh, []byte("in progress"), 0o600); err != nil {
		t.Fatal(err)
	}

	infos, err := s.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 1 || infos[0].Key != "snap/a" {
		t.Fatalf("List shows temp files: %+v", infos)
	}

	if _, err := New(dir); err != nil {
		t.Fatal(err)
	}
	got := walk(t, dir)
	want := []string{"snap", "snap/" + tempPrefix + "live", "snap/a", "snap/deep"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("after New the directory holds %q, want %q", got, want)
	}
	n, err := s.RemoveStaleTemp(0)
	if err != nil || n != 1 {
		t.Fatalf("RemoveStaleTemp(0) = %d, %v; want 1 removed", n, err)
	}
}

// TestFailedPutLeavesNoTemp: every failure path removes its temp file.
func TestFailedPutLeavesNoTemp(t *testing.T) {
	dir := t.TempDir()
	s, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	_ = s.Put(t.Context(), "k/short", strings.NewReader("abc"), 10)
	_ = s.Put(t.Context(), "k/long", strings.NewReader("abcdef"), 3)
	cancel()
	_ = s.Put(ctx, "k/cancelled", strings.NewReader("abc"), 3)
	for _, p := range walk(t, dir) {
		if strings.Contains(p, tempPrefix) {
			t.Fatalf("temp file left behind: %s", p)
		}
	}
	if err := s.Put(t.Context(), "k/long", strings.NewReader("abcdef"), 3); err == nil || !strings.Contains(err.Error(), "more than the declared") {
		t.Fatalf("too-long reader: %v", err)
	}
}

func TestDeleteRemovesEmptyDirectories(t *testing.T) {
	dir := t.TempDir()
	s, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for _, k := range []string{"a/b/c/one", "a/b/two"} {
		if err := s.Put(ctx, k, strings.NewReader("x"), 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Delete(ctx, "a/b/c/one"); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(walk(t, dir), ","); got != "a,a/b,a/b/two" {
		t.Fatalf("after first delete: %s", got)
	}
	if err := s.Delete(ctx, "a/b/two"); err != nil {
		t.Fatal(err)
	}
	if got := walk(t, dir); len(got) != 0 {
		t.Fatalf("after deleting everything: %q", got)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("the root itself was removed: %v", err)
	}
}

func TestKeyAndPrefixConflict(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	if err := s.Put(ctx, "a/b", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "a", strings.NewReader("x"), 1); err == nil || !strings.Contains(err.Error(), "prefix") {
		t.Fatalf("Put(a) over directory a/ = %v, want a clear conflict error", err)
	}
	if err := s.Put(ctx, "a/b/c", strings.NewReader("x"), 1); err == nil || !strings.Contains(err.Error(), "prefix") {
		t.Fatalf("Put(a/b/c) below object a/b = %v, want a clear conflict error", err)
	}
}

func TestPermissionsAndString(t *testing.T) {
	dir := t.TempDir()
	s, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(t.Context(), "p/q", bytes.NewReader([]byte("x")), 1); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "p", "q"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("object mode %v, want 0600", fi.Mode().Perm())
	}
	if want := "file://" + filepath.ToSlash(dir); s.String() != want {
		t.Fatalf("String() = %q, want %q", s.String(), want)
	}
}

func FuzzCheckKey(f *testing.F) {
	for _, k := range append([]string{"a", "a/b", "files/ab/cdef", "x.y/z"}, storetest.BadKeys...) {
		f.Add(k)
	}
	f.Fuzz(func(t *testing.T, key string) {
		if CheckKey(key) != nil {
			return
		}
		// An accepted key stays under the root once joined.
		root := "/srv/backups"
		p := filepath.Join(root, filepath.FromSlash(key))
		if !strings.HasPrefix(p, root+string(filepath.Separator)) {
			t.Fatalf("key %q maps to %q, outside %s", key, p, root)
		}
		if filepath.ToSlash(strings.TrimPrefix(p, root+"/")) != key {
			t.Fatalf("key %q does not map one-to-one onto a path (%q)", key, p)
		}
	})
}

// TestPutDeleteChurn: a Delete that empties a directory removes it, so a
// concurrent Put into that directory must recreate it rather than fail.
// (Not in the conformance suite: versitygw's posix backend has this very
// race and fails such Puts with "Existing Object is a directory"; real S3
// has no directories.)
func TestPutDeleteChurn(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 50 {
				key := fmt.Sprintf("churn/d/%d-%d", i, j)
				if err := s.Put(ctx, key, strings.NewReader("x"), 1); err != nil {
					t.Errorf("Put %s: %v", key, err)
					return
				}
				if err := s.Delete(ctx, key); err != nil {
					t.Errorf("Delete %s: %v", key, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if got, err := s.List(ctx, ""); err != nil || len(got) != 0 {
		t.Fatalf("List = %+v, %v after every key was deleted", got, err)
	}
}

func TestMaxKeyLength(t *testing.T) {
	s := newStore(t)
	key := strings.Repeat(strings.Repeat("L", 204)+"/", 5)[:1024] // five segments, the last 200 bytes
	if len(key) != MaxKeyLen {
		t.Fatal(len(key))
	}
	if err := s.Put(t.Context(), key, strings.NewReader("ok"), 2); err != nil {
		t.Fatalf("Put of a %d-byte key: %v", len(key), err)
	}
	if err := s.Put(t.Context(), key+"x", strings.NewReader("ok"), 2); err == nil {
		t.Fatal("Put of a 1025-byte key succeeded")
	}
}
