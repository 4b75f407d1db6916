// Package storetest is the conformance suite every backup.ObjectStore in this
// module must pass (backup/file and backup/s3 run it from their tests). It
// states the contract in code: what backup may rely on from any target.
//
// It imports only the standard library and package backup, so it can run
// against any implementation without pulling in the others.
package storetest

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/engram-ops/engram-ops/backup"
)

// BigSize is the size of the large objects the suite round-trips: more than
// two S3 parts at the default 16 MiB, so multipart uploads are exercised.
const BigSize = 40 << 20

// ManyObjects is more than one S3 listing page (1000 keys).
const ManyObjects = 1010

// Run runs the suite. newStore must return an empty store that no other
// test uses (a fresh directory, a fresh S3 prefix); it is called once per
// subtest.
func Run(t *testing.T, newStore func(t *testing.T) backup.ObjectStore) {
	t.Run("RoundTripSmall", func(t *testing.T) { testRoundTripSmall(t, newStore(t)) })
	t.Run("RoundTripBig", func(t *testing.T) { testRoundTripBig(t, newStore(t)) })
	t.Run("Overwrite", func(t *testing.T) { testOverwrite(t, newStore(t)) })
	t.Run("Stat", func(t *testing.T) { testStat(t, newStore(t)) })
	t.Run("ListOrder", func(t *testing.T) { testListOrder(t, newStore(t)) })
	t.Run("ListPrefix", func(t *testing.T) { testListPrefix(t, newStore(t)) })
	t.Run("ListMany", func(t *testing.T) { testListMany(t, newStore(t)) })
	t.Run("Delete", func(t *testing.T) { testDelete(t, newStore(t)) })
	t.Run("Missing", func(t *testing.T) { testMissing(t, newStore(t)) })
	t.Run("NestedKeys", func(t *testing.T) { testNestedKeys(t, newStore(t)) })
	t.Run("BadKeys", func(t *testing.T) { testBadKeys(t, newStore(t)) })
	t.Run("ShortReader", func(t *testing.T) { testShortReader(t, newStore(t)) })
	t.Run("CancelMidUpload", func(t *testing.T) { testCancelMidUpload(t, newStore(t)) })
	t.Run("ConcurrentPuts", func(t *testing.T) { testConcurrentPuts(t, newStore(t)) })
	t.Run("String", func(t *testing.T) { testString(t, newStore(t)) })
	t.Run("PutIfAbsent", func(t *testing.T) { testPutIfAbsent(t, conditional(t, newStore(t))) })
	t.Run("PutIfMatch", func(t *testing.T) { testPutIfMatch(t, conditional(t, newStore(t))) })
	t.Run("ConditionalRace", func(t *testing.T) { testConditionalRace(t, conditional(t, newStore(t))) })
}

// conditional asserts that s supports the conditional writes an archive's
// fencing relies on.
func conditional(t *testing.T, s backup.ObjectStore) backup.ConditionalStore {
	t.Helper()
	c, ok := s.(backup.ConditionalStore)
	if !ok {
		t.Fatalf("%T does not implement backup.ConditionalStore", s)
	}
	return c
}

func getTagged(t *testing.T, s backup.ConditionalStore, key string) ([]byte, string) {
	t.Helper()
	rc, tag, err := s.GetTagged(ctxFor(t), key)
	if err != nil {
		t.Fatalf("GetTagged(%q): %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("GetTagged(%q): read: %v", key, err)
	}
	if tag == "" {
		t.Fatalf("GetTagged(%q): empty tag", key)
	}
	return b, tag
}

func wantPrecondition(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, backup.ErrPrecondition) {
		t.Fatalf("%s: err = %v, want one matching backup.ErrPrecondition", what, err)
	}
}

func testPutIfAbsent(t *testing.T, s backup.ConditionalStore) {
	ctx := ctxFor(t)
	tag, err := s.PutIfAbsent(ctx, "c/k", bytes.NewReader([]byte("one")), 3)
	if err != nil {
		t.Fatalf("PutIfAbsent on a new key: %v", err)
	}
	b, gotTag := getTagged(t, s, "c/k")
	sameBytes(t, "Get after PutIfAbsent", b, []byte("one"))
	if gotTag != tag {
		t.Fatalf("GetTagged tag %q, PutIfAbsent returned %q", gotTag, tag)
	}
	_, err = s.PutIfAbsent(ctx, "c/k", bytes.NewReader([]byte("two")), 3)
	wantPrecondition(t, "PutIfAbsent on an existing key", err)
	sameBytes(t, "Get after a refused PutIfAbsent", get(t, s, "c/k"), []byte("one"))
	// Also refused when the existing object was written unconditionally.
	put(t, s, "c/plain", []byte("x"))
	_, err = s.PutIfAbsent(ctx, "c/plain", bytes.NewReader([]byte("y")), 1)
	wantPrecondition(t, "PutIfAbsent over a plain Put", err)
	if got := keys(list(t, s, "c/")); !slices.Equal(got, []string{"c/k", "c/plain"}) {
		t.Fatalf("List after refused puts = %q (a refused put must leave nothing behind)", got)
	}
}

func testPutIfMatch(t *testing.T, s backup.ConditionalStore) {
	ctx := ctxFor(t)
	_, err := s.PutIfMatch(ctx, "m", bytes.NewReader([]byte("v")), 1, "0123456789abcdef0123456789abcdef")
	wantPrecondition(t, "PutIfMatch on a missing key", err)
	wantNotFound(t, s, "m")

	put(t, s, "m", []byte("v1"))
	_, t1 := getTagged(t, s, "m")
	t2, err := s.PutIfMatch(ctx, "m", bytes.NewReader([]byte("v2")), 2, t1)
	if err != nil {
		t.Fatalf("PutIfMatch with the current tag: %v", err)
	}
	if t2 == t1 {
		t.Fatalf("the tag did not change with the content: %q", t2)
	}
	b, got := getTagged(t, s, "m")
	sameBytes(t, "Get after PutIfMatch", b, []byte("v2"))
	if got != t2 {
		t.Fatalf("GetTagged tag %q, PutIfMatch returned %q", got, t2)
	}
	// The old tag is stale now.
	_, err = s.PutIfMatch(ctx, "m", bytes.NewReader([]byte("v3")), 2, t1)
	wantPrecondition(t, "PutIfMatch with a stale tag", err)
	sameBytes(t, "Get after a refused PutIfMatch", get(t, s, "m"), []byte("v2"))
	// An unconditional overwrite makes the tag stale too.
	put(t, s, "m", []byte("v4"))
	_, err = s.PutIfMatch(ctx, "m", bytes.NewReader([]byte("v5")), 2, t2)
	wantPrecondition(t, "PutIfMatch after an unconditional Put", err)
	if got := keys(list(t, s, "")); !slices.Equal(got, []string{"m"}) {
		t.Fatalf("List after refused puts = %q", got)
	}
}

// testConditionalRace: of writers that all read the same version, exactly
// one replaces it; of writers that all create one key, exactly one wins.
func testConditionalRace(t *testing.T, s backup.ConditionalStore) {
	ctx := ctxFor(t)
	put(t, s, "race", []byte("base"))
	_, base := getTagged(t, s, "race")
	const n = 8
	var (
		wg                sync.WaitGroup
		mu                sync.Mutex
		replaced, created []int
		otherErrs         []error
	)
	for i := range n {
		wg.Add(2)
		go func() {
			defer wg.Done()
			v := []byte(fmt.Sprintf("writer %d", i))
			_, err := s.PutIfMatch(ctx, "race", bytes.NewReader(v), int64(len(v)), base)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				replaced = append(replaced, i)
			case !errors.Is(err, backup.ErrPrecondition):
				otherErrs = append(otherErrs, err)
			}
		}()
		go func() {
			defer wg.Done()
			v := []byte(fmt.Sprintf("creator %d", i))
			_, err := s.PutIfAbsent(ctx, "new", bytes.NewReader(v), int64(len(v)))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				created = append(created, i)
			case !errors.Is(err, backup.ErrPrecondition):
				otherErrs = append(otherErrs, err)
			}
		}()
	}
	wg.Wait()
	if len(otherErrs) > 0 {
		t.Fatalf("conditional puts failed otherwise: %v", otherErrs)
	}
	if len(replaced) != 1 || len(created) != 1 {
		t.Fatalf("%d of %d PutIfMatch on one version and %d of %d PutIfAbsent on one key succeeded; want exactly one each",
			len(replaced), n, len(created), n)
	}
	sameBytes(t, "the replacing writer's object", get(t, s, "race"), []byte(fmt.Sprintf("writer %d", replaced[0])))
	sameBytes(t, "the creating writer's object", get(t, s, "new"), []byte(fmt.Sprintf("creator %d", created[0])))
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// Data returns n deterministic pseudo-random bytes (incompressible, so a
// store that compresses is still measured honestly).
func Data(n int, seed uint64) []byte {
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), byte(seed >> 24)})
	b := make([]byte, n)
	_, _ = r.Read(b)
	return b
}

var (
	bigOnce sync.Once
	bigData []byte
	bigSum  [sha256.Size]byte
)

func big() []byte {
	bigOnce.Do(func() {
		bigData = Data(BigSize, 40)
		bigSum = sha256.Sum256(bigData)
	})
	return bigData
}

func put(t *testing.T, s backup.ObjectStore, key string, data []byte) {
	t.Helper()
	if err := s.Put(ctxFor(t), key, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("Put(%q, %d bytes): %v", key, len(data), err)
	}
}

func get(t *testing.T, s backup.ObjectStore, key string) []byte {
	t.Helper()
	rc, err := s.Get(ctxFor(t), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("Get(%q): read: %v", key, err)
	}
	return b
}

// sameBytes compares without printing megabytes on failure.
func sameBytes(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: got %d bytes (sha256 %x), want %d bytes (sha256 %x)",
			what, len(got), sha256.Sum256(got), len(want), sha256.Sum256(want))
	}
}

func keys(infos []backup.ObjectInfo) []string {
	out := make([]string, len(infos))
	for i, o := range infos {
		out[i] = o.Key
	}
	return out
}

func list(t *testing.T, s backup.ObjectStore, prefix string) []backup.ObjectInfo {
	t.Helper()
	infos, err := s.List(ctxFor(t), prefix)
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	return infos
}

func wantNotFound(t *testing.T, s backup.ObjectStore, key string) {
	t.Helper()
	ctx := ctxFor(t)
	if rc, err := s.Get(ctx, key); !errors.Is(err, backup.ErrNotFound) {
		if rc != nil {
			rc.Close()
		}
		t.Fatalf("Get(%q) = %v, want an error matching backup.ErrNotFound", key, err)
	}
	if _, err := s.Stat(ctx, key); !errors.Is(err, backup.ErrNotFound) {
		t.Fatalf("Stat(%q) = %v, want an error matching backup.ErrNotFound", key, err)
	}
}

// onlyReader hides every method but Read (no Len, Seek, ReadAt, WriteTo),
// the way a pipe or a compressor's output looks to a store.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func testRoundTripSmall(t *testing.T, s backup.ObjectStore) {
	ctx := ctxFor(t)
	for _, tc := range []struct {
		key  string
		data []byte
	}{
		{"empty", nil},
		{"one", []byte{0x7f}},
		{"text.json", []byte(`{"hello":"world"}` + "\n")},
		{"binary", Data(100_000, 1)},
	} {
		put(t, s, tc.key, tc.data)
		sameBytes(t, "Get "+tc.key, get(t, s, tc.key), tc.data)

		// The same bytes with the size unknown.
		streamed := tc.key + ".stream"
		if err := s.Put(ctx, streamed, onlyReader{bytes.NewReader(tc.data)}, -1); err != nil {
			t.Fatalf("Put(%q, size -1): %v", streamed, err)
		}
		sameBytes(t, "Get "+streamed, get(t, s, streamed), tc.data)
		if len(tc.data) > 1 {
			// A partly consumed reader: the object is what remains.
			rest := tc.key + ".rest"
			if err := s.Put(ctx, rest, consumed(tc.data, 1), int64(len(tc.data)-1)); err != nil {
				t.Fatalf("Put(%q): %v", rest, err)
			}
			sameBytes(t, "Get "+rest, get(t, s, rest), tc.data[1:])
		}
		info, err := s.Stat(ctx, streamed)
		if err != nil {
			t.Fatalf("Stat(%q): %v", streamed, err)
		}
		if info.Size != int64(len(tc.data)) {
			t.Fatalf("Stat(%q).Size = %d, want %d", streamed, info.Size, len(tc.data))
		}
	}
}

func testRoundTripBig(t *testing.T, s backup.ObjectStore) {
	ctx := ctxFor(t)
	data := big()
	for _, tc := range []struct {
		key  string
		r    io.Reader
		size int64
	}{
		// A bytes.Reader is an io.ReaderAt: minio-go uploads its parts in parallel.
		{"big/readerat", bytes.NewReader(data), BigSize},
		// A plain reader of known size: parts are read and sent one by one.
		{"big/stream-known", onlyReader{bytes.NewReader(data)}, BigSize},
		// Unknown size: multipart streaming until EOF.
		{"big/stream-unknown", onlyReader{bytes.NewReader(data)}, -1},
		// A reader already partly consumed: the object is what remains.
		{"big/readerat-offset", consumed(data, BigSize-(20<<20)), 20 << 20},
	} {
		if err := s.Put(ctx, tc.key, tc.r, tc.size); err != nil {
			t.Fatalf("Put(%q, %d): %v", tc.key, tc.size, err)
		}
		// Hash the stream rather than buffer it: 40 MiB copies are slow under -race.
		rc, err := s.Get(ctx, tc.key)
		if err != nil {
			t.Fatalf("Get(%q): %v", tc.key, err)
		}
		h := sha256.New()
		n, err := io.Copy(h, rc)
		rc.Close()
		if err != nil {
			t.Fatalf("Get(%q): read: %v", tc.key, err)
		}
		want := bigSum
		if tc.size != BigSize && tc.size != -1 {
			want = sha256.Sum256(data[BigSize-tc.size:])
		}
		wantSize := cmp.Or(max(tc.size, 0), BigSize)
		if n != wantSize || !bytes.Equal(h.Sum(nil), want[:]) {
			t.Fatalf("Get(%q): %d bytes with sha256 %x, want %d bytes with sha256 %x", tc.key, n, h.Sum(nil), wantSize, want)
		}
		info, err := s.Stat(ctx, tc.key)
		if err != nil {
			t.Fatalf("Stat(%q): %v", tc.key, err)
		}
		if info.Size != wantSize {
			t.Fatalf("Stat(%q).Size = %d, want %d", tc.key, info.Size, wantSize)
		}
	}
}

// consumed returns a bytes.Reader over data with the first skip bytes
// already read, as a caller that parsed a header first would pass it.
func consumed(data []byte, skip int) *bytes.Reader {
	r := bytes.NewReader(data)
	if _, err := r.Seek(int64(skip), io.SeekStart); err != nil {
		panic(err)
	}
	return r
}

func testOverwrite(t *testing.T, s backup.ObjectStore) {
	ctx := ctxFor(t)
	put(t, s, "k", []byte("first version, longer than the second"))
	put(t, s, "k", []byte("second"))
	sameBytes(t, "Get after overwrite", get(t, s, "k"), []byte("second"))
	info, err := s.Stat(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != 6 {
		t.Fatalf("Stat after overwrite: size %d, want 6", info.Size)
	}
	if got := list(t, s, ""); len(got) != 1 || got[0].Key != "k" || got[0].Size != 6 {
		t.Fatalf("List after overwrite = %+v, want one object k of 6 bytes", got)
	}
	// An overwrite with an empty object.
	put(t, s, "k", nil)
	if b := get(t, s, "k"); len(b) != 0 {
		t.Fatalf("Get after empty overwrite: %d bytes", len(b))
	}
}

func testStat(t *testing.T, s backup.ObjectStore) {
	ctx := ctxFor(t)
	before := time.Now()
	sizes := map[string]int{"s/0": 0, "s/1": 1, "s/4097": 4097, "s/1m": 1 << 20}
	for k, n := range sizes {
		put(t, s, k, Data(n, uint64(n)))
	}
	for k, n := range sizes {
		info, err := s.Stat(ctx, k)
		if err != nil {
			t.Fatalf("Stat(%q): %v", k, err)
		}
		if info.Key != k || info.Size != int64(n) {
			t.Fatalf("Stat(%q) = %+v, want key %q size %d", k, info, k, n)
		}
		// Generous bounds: S3 servers keep second precision and clocks drift.
		if info.Modified.Before(before.Add(-5*time.Minute)) || info.Modified.After(time.Now().Add(5*time.Minute)) {
			t.Fatalf("Stat(%q).Modified = %v, not near now (%v)", k, info.Modified, before)
		}
	}
	for _, info := range list(t, s, "s/") {
		if want := int64(sizes[info.Key]); info.Size != want {
			t.Fatalf("List: %q size %d, want %d", info.Key, info.Size, want)
		}
		if info.Modified.IsZero() {
			t.Fatalf("List: %q has no modification time", info.Key)
		}
	}
}

func testListOrder(t *testing.T, s backup.ObjectStore) {
	// Byte order, not directory-walk order: '-' < '.' < '/' < '0'.
	want := []string{"x-y", "x.txt", "x/a", "x/b/c", "x0", "y", "Z", "é"}
	slices.Sort(want)
	shuffled := slices.Clone(want)
	rand.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for _, k := range shuffled {
		put(t, s, k, []byte(k))
	}
	if got := keys(list(t, s, "")); !slices.Equal(got, want) {
		t.Fatalf("List(\"\") = %q, want %q", got, want)
	}
}

func testListPrefix(t *testing.T, s backup.ObjectStore) {
	all := []string{
		"manifests/2024-01-01.json", "manifests/2024-02-01.json", "manifests/2025-01-01.json",
		"files/ab/abcdef", "files/ab/ab0123", "files/cd/cdef01",
		"log/00000001-00000100", "logs", "manifest",
	}
	for _, k := range all {
		put(t, s, k, []byte(k))
	}
	for _, tc := range []struct {
		prefix string
		want   []string
	}{
		{"", nil}, // nil: all of them
		{"manifests/", []string{"manifests/2024-01-01.json", "manifests/2024-02-01.json", "manifests/2025-01-01.json"}},
		{"manifests/2024-", []string{"manifests/2024-01-01.json", "manifests/2024-02-01.json"}},
		{"manifest", []string{"manifest", "manifests/2024-01-01.json", "manifests/2024-02-01.json", "manifests/2025-01-01.json"}},
		{"files/ab/", []string{"files/ab/ab0123", "files/ab/abcdef"}},
		{"files/ab/abc", []string{"files/ab/abcdef"}},
		{"files/", []string{"files/ab/ab0123", "files/ab/abcdef", "files/cd/cdef01"}},
		{"log", []string{"log/00000001-00000100", "logs"}},
		{"log/", []string{"log/00000001-00000100"}},
		{"nothing/", []string{}},
		{"nothing", []string{}},
		{"files/zz/", []string{}},
		{"logs/", []string{}}, // "logs" is an object, not a prefix of one
	} {
		want := tc.want
		if want == nil {
			want = slices.Sorted(slices.Values(all))
		}
		if got := keys(list(t, s, tc.prefix)); !slices.Equal(got, want) {
			t.Errorf("List(%q) = %q, want %q", tc.prefix, got, want)
		}
	}
}

func testListMany(t *testing.T, s backup.ObjectStore) {
	ctx := ctxFor(t)
	want := make([]string, ManyObjects)
	for i := range want {
		want[i] = fmt.Sprintf("many/%05d", i)
	}
	put(t, s, "other/outside", []byte("x"))
	put(t, s, "manz", []byte("x")) // sorts after every "many/…"
	var wg sync.WaitGroup
	errs := make(chan error, ManyObjects)
	work := make(chan string)
	for range 8 {
		wg.Go(func() {
			for k := range work {
				errs <- s.Put(ctx, k, strings.NewReader(k), int64(len(k)))
			}
		})
	}
	for _, k := range want {
		work <- k
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got := list(t, s, "many/")
	if !slices.Equal(keys(got), want) {
		t.Fatalf("List(many/) returned %d keys, want %d (first %q, last %q)", len(got), len(want), keys(got)[:min(3, len(got))], keys(got)[max(0, len(got)-3):])
	}
	for _, o := range got {
		if o.Size != int64(len(o.Key)) {
			t.Fatalf("List: %q size %d, want %d", o.Key, o.Size, len(o.Key))
		}
	}
	if n := len(list(t, s, "")); n != ManyObjects+2 {
		t.Fatalf("List(\"\") returned %d objects, want %d", n, ManyObjects+2)
	}
}

func testDelete(t *testing.T, s backup.ObjectStore) {
	ctx := ctxFor(t)
	put(t, s, "d/a/b", []byte("ab"))
	put(t, s, "d/a/c", []byte("ac"))
	if err := s.Delete(ctx, "d/a/b"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	wantNotFound(t, s, "d/a/b")
	if err := s.Delete(ctx, "d/a/b"); err != nil {
		t.Fatalf("second Delete of the same key: %v", err)
	}
	if err := s.Delete(ctx, "never/was/here"); err != nil {
		t.Fatalf("Delete of a key never stored: %v", err)
	}
	// A prefix of stored keys is not an object: deleting it deletes nothing.
	if err := s.Delete(ctx, "d/a"); err != nil {
		t.Fatalf("Delete of a prefix: %v", err)
	}
	if got := keys(list(t, s, "")); !slices.Equal(got, []string{"d/a/c"}) {
		t.Fatalf("List after deletes = %q, want [d/a/c]", got)
	}
	if err := s.Delete(ctx, "d/a/c"); err != nil {
		t.Fatal(err)
	}
	if got := list(t, s, ""); len(got) != 0 {
		t.Fatalf("List after deleting everything = %q, want empty", keys(got))
	}
	// The key can be stored again after a delete.
	put(t, s, "d/a/b", []byte("again"))
	sameBytes(t, "Get after re-put", get(t, s, "d/a/b"), []byte("again"))
}

func testMissing(t *testing.T, s backup.ObjectStore) {
	wantNotFound(t, s, "missing")
	wantNotFound(t, s, "no/such/nested/key")
	put(t, s, "dir/file", []byte("x"))
	wantNotFound(t, s, "dir")            // a prefix of a key is not an object
	wantNotFound(t, s, "dir/file/below") // below an object is nothing
	wantNotFound(t, s, "dir/fil")
}

func testNestedKeys(t *testing.T, s backup.ObjectStore) {
	ks := []string{
		"a/b/c/d/e/f/g/h.bin",
		"files/sha256/9f/86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		"with space/and+plus/and%percent/and=equals&amp",
		"unicode/ça/マ/🧠",
		strings.Repeat("k", 200) + "/" + strings.Repeat("v", 200),
	}
	for i, k := range ks {
		put(t, s, k, Data(i*10, uint64(i)))
	}
	for i, k := range ks {
		sameBytes(t, "Get "+k, get(t, s, k), Data(i*10, uint64(i)))
	}
	want := slices.Sorted(slices.Values(ks))
	if got := keys(list(t, s, "")); !slices.Equal(got, want) {
		t.Fatalf("List = %q, want %q", got, want)
	}
}

// BadKeys are rejected by every store: a layout that works on one target
// works on all of them, and no key escapes a file store's directory.
var BadKeys = []string{
	"", "/abs", "/", "a//b", "a/", "trailing/", ".", "..", "../escape", "a/../../b", "a/./b",
	`a\b`, `..\..\x`, "nul\x00byte", "bad\xffutf8", strings.Repeat("x", 1025),
	strings.Repeat("s", 256) + "/segment-too-long",
}

func testBadKeys(t *testing.T, s backup.ObjectStore) {
	ctx := ctxFor(t)
	for _, k := range BadKeys {
		name := k
		if len(name) > 40 {
			name = name[:40] + "…"
		}
		if err := s.Put(ctx, k, strings.NewReader("x"), 1); err == nil {
			t.Errorf("Put(%q) succeeded, want an invalid-key error", name)
		} else if errors.Is(err, backup.ErrNotFound) {
			t.Errorf("Put(%q) = %v: a bad key is not a missing object", name, err)
		}
		if rc, err := s.Get(ctx, k); err == nil {
			rc.Close()
			t.Errorf("Get(%q) succeeded, want an error", name)
		}
		if _, err := s.Stat(ctx, k); err == nil {
			t.Errorf("Stat(%q) succeeded, want an error", name)
		}
		if err := s.Delete(ctx, k); err == nil {
			t.Errorf("Delete(%q) succeeded, want an error", name)
		}
	}
	if got := list(t, s, ""); len(got) != 0 {
		t.Fatalf("after rejected Puts the store holds %q", keys(got))
	}
	// A long key is fine. (Not the full 1024 bytes: on S3 the limit covers
	// the store's prefix too.)
	long := strings.Repeat(strings.Repeat("L", 199)+"/", 4) + "end" // 803 bytes
	put(t, s, long, []byte("ok"))
	sameBytes(t, "Get of a long key", get(t, s, long), []byte("ok"))
}

func testShortReader(t *testing.T, s backup.ObjectStore) {
	ctx := ctxFor(t)
	// Declared 100 bytes, delivers 50: an error, and nothing stored.
	err := s.Put(ctx, "short", onlyReader{io.LimitReader(bytes.NewReader(Data(100, 3)), 50)}, 100)
	if err == nil {
		t.Fatal("Put with a reader shorter than its size succeeded")
	}
	wantNotFound(t, s, "short")
	// A reader that fails midway: the error comes back, nothing stored.
	boom := errors.New("boom")
	err = s.Put(ctx, "failing", onlyReader{io.MultiReader(bytes.NewReader(Data(1000, 4)), errReader{boom})}, -1)
	if err == nil {
		t.Fatal("Put with a failing reader succeeded")
	}
	wantNotFound(t, s, "failing")
	if got := list(t, s, ""); len(got) != 0 {
		t.Fatalf("store holds %q after failed Puts", keys(got))
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// cancelReader yields data and cancels the context once `after` bytes have
// been read, then keeps yielding: the store, not the reader, has to notice.
type cancelReader struct {
	r      io.Reader
	n      int
	after  int
	cancel context.CancelFunc
}

func (c *cancelReader) Read(p []byte) (int, error) {
	if c.n >= c.after && c.cancel != nil {
		c.cancel()
		c.cancel = nil
	}
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func testCancelMidUpload(t *testing.T, s backup.ObjectStore) {
	data := big()
	for _, tc := range []struct {
		name  string
		size  int64
		after int
	}{
		{"known-size-multipart", BigSize, 20 << 20},
		{"unknown-size-multipart", -1, 20 << 20},
		{"known-size-small", 4 << 20, 1 << 20},
		{"unknown-size-small", -1, 1 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(ctxFor(t))
			defer cancel()
			src := data
			if tc.size >= 0 {
				src = data[:tc.size]
			} else if tc.after < 16<<20 { // within one default S3 part: a short stream
				src = data[:4<<20]
			}
			key := "cancel/" + tc.name
			r := &cancelReader{r: bytes.NewReader(src), after: tc.after, cancel: cancel}
			start := time.Now()
			err := s.Put(ctx, key, onlyReader{r}, tc.size)
			if err == nil {
				t.Fatalf("Put succeeded although its context was cancelled after %d of %d bytes", tc.after, len(src))
			}
			if !errors.Is(err, context.Canceled) {
				t.Logf("Put error does not wrap context.Canceled (allowed, but worth a look): %v", err)
			}
			if d := time.Since(start); d > 30*time.Second {
				t.Errorf("Put took %v to give up after cancellation", d)
			}
			wantNotFound(t, s, key)
			if got := list(t, s, "cancel/"); len(got) != 0 {
				t.Fatalf("List shows %q after a cancelled Put", keys(got))
			}
		})
	}
	t.Run("already-cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := s.Put(ctx, "cancel/before", strings.NewReader("x"), 1); err == nil {
			t.Fatal("Put with a cancelled context succeeded")
		}
		wantNotFound(t, s, "cancel/before")
	})
}

func testConcurrentPuts(t *testing.T, s backup.ObjectStore) {
	ctx := ctxFor(t)
	const n = 32
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			// Shared directories, distinct keys, mixed sizes and size modes.
			key := fmt.Sprintf("conc/%d/obj-%02d", i%4, i)
			data := Data(1000+i*4099, uint64(100+i))
			size := int64(len(data))
			var r io.Reader = bytes.NewReader(data)
			if i%3 == 0 {
				size, r = -1, onlyReader{r}
			}
			errs[i] = s.Put(ctx, key, r, size)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Put %d: %v", i, err)
		}
	}
	for i := range n {
		key := fmt.Sprintf("conc/%d/obj-%02d", i%4, i)
		sameBytes(t, "Get "+key, get(t, s, key), Data(1000+i*4099, uint64(100+i)))
	}
	if got := list(t, s, "conc/"); len(got) != n {
		t.Fatalf("List(conc/) has %d objects, want %d", len(got), n)
	}
}

func testString(t *testing.T, s backup.ObjectStore) {
	// It ends up in log lines and metric labels: one short line. (That it
	// carries no secret is each implementation's own test: only it knows
	// its secrets.)
	name := s.String()
	if name == "" || len(name) > 300 || strings.ContainsAny(name, "\n\r") {
		t.Fatalf("String() = %q, want a non-empty single line", name)
	}
}
