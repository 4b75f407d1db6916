package backup

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"io"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/klauspost/compress/zstd"
)

// sealInputs are plain files of the shapes engine files have: empty, tiny,
// text, float vectors, random bytes, one repeated byte, low-entropy bytes,
// and sizes around the block and chunk boundaries.
func sealInputs() map[string][]byte {
	r := rand.New(rand.NewSource(1))
	rnd := func(n int) []byte { b := make([]byte, n); r.Read(b); return b }
	floats := func(n int) []byte {
		b := make([]byte, 0, n)
		for len(b) < n {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(r.NormFloat64()*0.036)))
		}
		return b[:n]
	}
	text := []byte(strings.Repeat("river mountain ocean forest city engine signal memory ", 40000))
	acgt := make([]byte, 2*sealChunk+5) // 2 bits a byte: compressed
	for i := range acgt {
		acgt[i] = "ACGT"[r.Intn(4)]
	}
	return map[string][]byte{
		"empty":        {},
		"one":          {7},
		"text":         text,
		"floats":       floats(3*sealChunk + 12345),
		"random":       rnd(sealChunk + 1),
		"zeros":        make([]byte, 2*sealBlock+3),
		"block":        floats(sealBlock),
		"block+1":      floats(sealBlock + 1),
		"chunk":        floats(sealChunk),
		"chunk-1":      rnd(sealChunk - 1),
		"mixed":        append(append(floats(sealChunk/2), text[:sealChunk]...), rnd(sealChunk)...),
		"small-floats": floats(1500),
		"acgt":         acgt,
	}
}

func openAll(t *testing.T, c *Codec, stored []byte, enc Encrypt) []byte {
	t.Helper()
	r, err := c.openReader(bytes.NewReader(stored), enc)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSealRoundTrip: what sealFile and sealStream store, plain and
// encrypted, reads back through the decoder restore and verify use, and
// through zstd's own DecodeAll (any zstd reader must accept it).
func TestSealRoundTrip(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	plainC, _ := NewCodec(nil, nil)
	encC, _ := NewCodec([]string{id.Recipient().String()}, []age.Identity{id})
	dec, _ := zstd.NewReader(nil)
	defer dec.Close()
	for name, p := range sealInputs() {
		for _, c := range []*Codec{plainC, encC} {
			var all []byte
			err := c.sealFile(p, func(r io.ReadSeeker, size int64) error {
				b, err := io.ReadAll(r)
				if err == nil && int64(len(b)) != size {
					t.Fatalf("%s: sealFile read %d bytes, said %d", name, len(b), size)
				}
				all = b
				return err
			})
			if err != nil {
				t.Fatal(name, err)
			}
			var streamed bytes.Buffer
			h := sha256.New()
			n, err := c.sealStream(&streamed, bytes.NewReader(p), h)
			if err != nil || n != int64(len(p)) {
				t.Fatal(name, n, err)
			}
			if sum := sha256.Sum256(p); !bytes.Equal(h.Sum(nil), sum[:]) {
				t.Fatalf("%s: sealStream hashed something else", name)
			}
			for _, stored := range [][]byte{all, streamed.Bytes()} {
				if got := openAll(t, c, stored, c.encryption()); !bytes.Equal(got, p) {
					t.Fatalf("%s (encrypted %v): read back %d bytes that differ from the %d stored", name, c.Encrypted(), len(got), len(p))
				}
				if !c.Encrypted() {
					got, err := dec.DecodeAll(stored, nil)
					if err != nil || !bytes.Equal(got, p) {
						t.Fatalf("%s: zstd DecodeAll: %v", name, err)
					}
				}
			}
			if !c.Encrypted() && !bytes.Equal(all, streamed.Bytes()) {
				t.Fatalf("%s: sealFile and sealStream store different bytes", name)
			}
		}
	}
}

// TestSealCompresses: what zstd at least halves (text, low-entropy bytes,
// runs of one byte) is compressed; vectors and random bytes are stored raw
// at 3 bytes per 128 KiB.
func TestSealCompresses(t *testing.T) {
	c, _ := NewCodec(nil, nil)
	in := sealInputs()
	for name, maxRatio := range map[string]float64{"text": 0.1, "acgt": 0.35, "zeros": 0.01, "floats": 1.001, "random": 1.001} {
		var size int64
		if err := c.sealFile(in[name], func(_ io.ReadSeeker, n int64) error { size = n; return nil }); err != nil {
			t.Fatal(err)
		}
		if r := float64(size) / float64(len(in[name])); r > maxRatio {
			t.Errorf("%s stored at %.3f of its size, want at most %.3f", name, r, maxRatio)
		}
	}
}

// TestOpenReaderReadsOldObjects: objects written before seal.go (one zstd
// stream from the zstd encoder) still read back.
func TestOpenReaderReadsOldObjects(t *testing.T) {
	c, _ := NewCodec(nil, nil)
	p := sealInputs()["mixed"]
	var b bytes.Buffer
	zw, _ := zstd.NewWriter(&b, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	zw.Write(p)
	zw.Close()
	if got := openAll(t, c, b.Bytes(), c.encryption()); !bytes.Equal(got, p) {
		t.Fatal("an old object does not read back")
	}
}

// TestSealedSeek: the upload reader rewinds (as a retried PUT needs) and
// seeks to any offset.
func TestSealedSeek(t *testing.T) {
	c, _ := NewCodec(nil, nil)
	p := sealInputs()["mixed"]
	err := c.sealFile(p, func(r io.ReadSeeker, size int64) error {
		all, err := io.ReadAll(r)
		if err != nil || int64(len(all)) != size {
			t.Fatal(len(all), size, err)
		}
		for _, off := range []int64{0, 1, 3, size / 3, size - 1, size} {
			if got, err := r.Seek(off, io.SeekStart); err != nil || got != off {
				t.Fatalf("seek %d: %d %v", off, got, err)
			}
			buf := make([]byte, 1000)
			n, _ := io.ReadFull(r, buf)
			if !bytes.Equal(buf[:n], all[off:min(off+1000, size)]) {
				t.Fatalf("read at %d differs", off)
			}
		}
		if _, err := r.Seek(size+1, io.SeekStart); err == nil {
			t.Fatal("seek past the end accepted")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestStoreFileLarge: a file above stageMax is hashed, then streamed with
// its hash checked on the way; a hash that no longer matches (the file
// changed in between) fails the upload and stores nothing.
func TestStoreFileLarge(t *testing.T) {
	a, st := newArchive(t, nil)
	r := rand.New(rand.NewSource(2))
	p := make([]byte, stageMax+3*sealChunk+17)
	r.Read(p[:len(p)/2]) // random half, zero half: raw and coded chunks
	path := filepath.Join(t.TempDir(), "big.sst")
	if err := os.WriteFile(path, p, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var f File
	n, err := a.storeFile(ctx, newStage(1), path, &f, func() bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(p); f.SHA256 != hex.EncodeToString(sum[:]) || f.Size != int64(len(p)) {
		t.Fatalf("file recorded as %s (%d bytes)", f.SHA256, f.Size)
	}
	stored := st.objs[f.Key]
	if int64(len(stored)) != n || n >= int64(len(p)) {
		t.Fatalf("stored %d bytes, reported %d, plain %d", len(stored), n, len(p))
	}
	if got := openAll(t, a.codec, stored, a.codec.encryption()); !bytes.Equal(got, p) {
		t.Fatal("the large file does not read back")
	}

	bad := File{Path: "big.sst", SHA256: strings.Repeat("0", 64), Key: fileKey(strings.Repeat("0", 64), false)}
	if _, err := a.uploadFile(ctx, path, &bad); err == nil || !strings.Contains(err.Error(), "changed while it was uploaded") {
		t.Fatalf("upload of a file that no longer matches its hash: %v", err)
	}
	if _, ok := st.objs[bad.Key]; ok {
		t.Fatal("an object that does not match its key was stored")
	}
}
