package backup

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/engram-ops/engram-ops/core"
)

func FuzzDecodeManifest(f *testing.F) {
	m := &Manifest{FormatVersion: ManifestFormat, ID: SnapshotID(time.Unix(0, 0), 7), Sequence: 7, Encryption: Encrypt{Scheme: "none"},
		Created: time.Unix(0, 0).UTC(), LastChange: time.Unix(0, 0).UTC(),
		Files: []File{{Path: "db/000001.sst", SHA256: strings.Repeat("a", 64), Size: 3, Key: fileKey(strings.Repeat("a", 64), false), StoredSize: 5}}}
	b, err := EncodeManifest(m)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	g := &Head{FormatVersion: 2, Sequence: 200, LastChange: time.Unix(300, 0).UTC(), Segment: genSegmentKey(151, 200, 3),
		Written: time.Unix(400, 0).UTC(), Generation: 3, Generations: []GenStart{{2, 114}, {3, 151}}}
	if b, err = EncodeHead(g); err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"format_version":3}`))
	f.Add([]byte(`{"format_version":1,"id":"x","files":[{"path":"../etc/passwd"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeManifest(b)
		if err != nil {
			return
		}
		// Whatever decodes must re-encode and never name a path outside the data directory.
		if _, err := EncodeManifest(m); err != nil {
			t.Fatalf("decoded manifest does not re-encode: %v", err)
		}
		for _, f := range m.Files {
			if strings.HasPrefix(f.Path, "/") || strings.HasPrefix(f.Path, "..") {
				t.Fatalf("unsafe path %q accepted", f.Path)
			}
		}
	})
}

// FuzzDecodeHead: whatever decodes re-encodes to the same bytes (a head
// is stored exactly as written) and names what it claims consistently.
func FuzzDecodeHead(f *testing.F) {
	h := &Head{FormatVersion: 1, Sequence: 113, LastChange: time.Unix(100, 0).UTC(), Segment: segmentKey(110, 113), Written: time.Unix(200, 0).UTC()}
	b, err := EncodeHead(h)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	s := &Head{FormatVersion: 1, Snapshot: SnapshotID(time.Unix(0, 0), 0), Written: time.Unix(1, 0).UTC()}
	if b, err = EncodeHead(s); err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	g := &Head{FormatVersion: 2, Sequence: 200, LastChange: time.Unix(300, 0).UTC(), Segment: genSegmentKey(151, 200, 3),
		Written: time.Unix(400, 0).UTC(), Generation: 3, Generations: []GenStart{{2, 114}, {3, 151}}}
	if b, err = EncodeHead(g); err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"format_version":3}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := DecodeHead(b)
		if err != nil {
			return
		}
		again, err := EncodeHead(h)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("decoded head does not re-encode to its bytes: %v\n%s\n%s", err, b, again)
		}
		if h.Segment != "" {
			// It ends at the head, or (a forced promotion) holds it and
			// belongs to an earlier generation.
			first, last, gen, ok := parseGenSegmentKey(h.Segment)
			if !ok || (last != h.Sequence && (gen >= h.Gen() || first > h.Sequence || last < h.Sequence)) {
				t.Fatalf("head names segment %q for sequence %d", h.Segment, h.Sequence)
			}
		}
		hist := h.History()
		for i := 1; i < len(hist); i++ {
			if hist[i].Generation <= hist[i-1].Generation || hist[i].First < hist[i-1].First {
				t.Fatalf("generation history %+v is not increasing", hist)
			}
		}
		if hist[len(hist)-1].Generation != h.Gen() {
			t.Fatalf("head of generation %d with history %+v", h.Gen(), hist)
		}
	})
}

// FuzzDecodeVerifyResult: verify/last.json is read by every server's
// shipper; whatever decodes (format 2) re-encodes to its bytes.
func FuzzDecodeVerifyResult(f *testing.F) {
	a, st := newArchive(f, nil)
	rep := &VerifyReport{Level: 4, DrillSeconds: 1.25, Problems: []string{}}
	if err := a.recordVerify(context.Background(), rep, SnapshotID(time.Unix(0, 0), 3)); err != nil {
		f.Fatal(err)
	}
	f.Add(st.objs[verifyResultKey])
	f.Add([]byte(`{"format_version":1,"level":2,"ok":true,"at":"2026-11-27T03:00:00Z","problems":0}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeVerifyResult(b)
		if err != nil || r.FormatVersion < 2 {
			return
		}
		again, err := json.Marshal(r)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("decoded result does not re-encode to its bytes: %v\n%s\n%s", err, b, again)
		}
	})
}

func FuzzDecodeSegment(f *testing.F) {
	c, err := NewCodec(nil, nil)
	if err != nil {
		f.Fatal(err)
	}
	changes := []core.Change{
		{Seq: 5, Time: time.Unix(100, 0).UTC(), Op: core.OpDeleteMemory, Space: "default", ID: "a"},
		{Seq: 6, Time: time.Unix(101, 0).UTC(), Op: core.OpSetCursor, Cursor: &core.Cursor{Source: "s", Value: "v"}},
	}
	b, _, err := EncodeSegment(changes, c)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(b[:len(b)-1])
	f.Add([]byte("EGSEG\x02"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, ch, err := DecodeSegment(b, c)
		if err != nil {
			return
		}
		if len(ch) != h.Count || ch[0].Seq != h.FirstSeq || ch[len(ch)-1].Seq != h.LastSeq {
			t.Fatalf("decoded segment disagrees with its header: %+v, %d changes", h, len(ch))
		}
	})
}

func TestSegmentRoundTripAndNewerFormat(t *testing.T) {
	c, _ := NewCodec(nil, nil)
	changes := []core.Change{{Seq: 1, Time: time.Unix(1, 0).UTC(), Op: core.OpDeleteMemory, Space: "s", ID: "x"}}
	b, _, err := EncodeSegment(changes, c)
	if err != nil {
		t.Fatal(err)
	}
	if _, got, err := DecodeSegment(b, c); err != nil || len(got) != 1 || got[0].ID != "x" {
		t.Fatalf("round trip: %v %v", got, err)
	}
	b[len(segmentMagic)] = 9
	if _, _, err := DecodeSegment(b, c); err == nil || !strings.Contains(err.Error(), "segment format 9") {
		t.Fatalf("newer segment format: %v", err)
	}
}

// TestEncryptionNoPlaintext ships and snapshots with age encryption on and
// scans every stored object for a sentinel written into a memory; then
// restores with the identity, and refuses without it.
func TestEncryptionNoPlaintext(t *testing.T) {
	ctx := context.Background()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	enc, err := NewCodec([]string{id.Recipient().String()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewCodec([]string{"age1notakey"}, nil); err == nil {
		t.Fatal("an unusable recipient was accepted")
	}
	eng := openEngine(t, t.TempDir(), nil)
	defer eng.Close()
	a, st := newArchive(t, enc)
	const sentinel = "SENTINEL-7f3a9c-PLAINTEXT"
	remember(t, eng, "default", "s1", "snapshot "+sentinel)
	if _, err := a.SnapshotEngine(ctx, eng); err != nil {
		t.Fatal(err)
	}
	remember(t, eng, "default", "s2", "segment "+sentinel)
	shipOnce(t, a, eng)
	objs, _ := st.List(ctx, "")
	if len(objs) < 3 {
		t.Fatalf("only %d objects stored", len(objs))
	}
	for _, o := range objs {
		b := st.objs[o.Key]
		if bytes.Contains(b, []byte(sentinel)) || bytes.Contains(b, []byte("SENTINEL")) {
			t.Errorf("%s holds the plaintext sentinel", o.Key)
		}
	}
	_, err = a.Restore(ctx, RestoreOptions{DataDir: t.TempDir() + "/x"})
	if err == nil || !strings.Contains(err.Error(), "identity") {
		t.Fatalf("restore without identity: %v", err)
	}
	dec, _ := NewCodec(nil, []age.Identity{id})
	b, _ := New(st, Options{Codec: dec, EngineOptions: testEngineOptions(nil)})
	dest := t.TempDir() + "/y"
	if _, err := b.Restore(ctx, RestoreOptions{DataDir: dest}); err != nil {
		t.Fatal(err)
	}
	r := openEngine(t, dest, nil)
	got := ids(t, r, "default")
	r.Close()
	if !strings.Contains(got["s2"], sentinel) || !strings.Contains(got["s1"], sentinel) {
		t.Fatalf("encrypted restore: %v", got)
	}
	if rep, err := b.Verify(ctx, 4); err != nil || !rep.OK() {
		t.Fatalf("verify 4 encrypted: %+v %v", rep, err)
	}
}

// FuzzSealFile: whatever the plain bytes, the stored form (the zstd frames
// seal.go writes) reads back to exactly them, and the staged and streamed
// paths store the same bytes.
func FuzzSealFile(f *testing.F) {
	c, err := NewCodec(nil, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte{})
	f.Add([]byte("river mountain ocean"))
	f.Add(bytes.Repeat([]byte{0}, 1500))
	f.Add(bytes.Repeat([]byte("ab"), 750)) // seeds just over 1 KiB, the least that is coded: the fuzzer minimizes what it finds
	f.Fuzz(func(t *testing.T, p []byte) {
		var staged []byte
		err := c.sealFile(p, func(r io.ReadSeeker, size int64) error {
			b, err := io.ReadAll(r)
			if err == nil && int64(len(b)) != size {
				t.Fatalf("sealFile read %d bytes, said %d", len(b), size)
			}
			staged = b
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		var streamed bytes.Buffer
		if _, err := c.sealStream(&streamed, bytes.NewReader(p), nil); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(staged, streamed.Bytes()) {
			t.Fatal("staged and streamed stored forms differ")
		}
		r, err := c.openReader(bytes.NewReader(staged), c.encryption())
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		got, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(got, p) {
			t.Fatalf("read back %d bytes (%v), sealed %d", len(got), err, len(p))
		}
	})
}
