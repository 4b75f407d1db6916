package vector

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"sync"
	"testing"
)

func vectorsOf(data [][]float32) func(uint32) ([]float32, bool) {
	return func(id uint32) ([]float32, bool) {
		if int(id) >= len(data) || data[id] == nil {
			return nil, false
		}
		return data[id], true
	}
}

func graphBytes(t testing.TB, x *Index) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := x.WriteGraph(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestGraphRoundTrip(t *testing.T) {
	n := scaled(2000)
	data := clusteredData(10, n+40, 40, 20, 1)
	base, queries := data[:n], data[n:]
	x := buildIndex(t, base, Config{M: 12, EfConstruction: 100, EfSearch: 50, Seed: 42})
	for i := 0; i < n; i += 9 {
		x.Delete(uint32(i))
	}
	raw := graphBytes(t, x)
	y, err := ReadGraph(bytes.NewReader(raw), vectorsOf(base))
	if err != nil {
		t.Fatal(err)
	}
	if y.Dim() != x.Dim() || y.Config() != x.Config() || y.Len() != x.Len() || y.Tombstones() != x.Tombstones() {
		t.Fatalf("restored dim=%d cfg=%+v len=%d tomb=%d; want %d %+v %d %d",
			y.Dim(), y.Config(), y.Len(), y.Tombstones(), x.Dim(), x.Config(), x.Len(), x.Tombstones())
	}
	accept := func(id uint32) bool { return id%4 != 1 }
	for _, q := range queries {
		for _, filter := range []func(uint32) bool{nil, accept} {
			a, b := x.Search(q, 10, 0, filter), y.Search(q, 10, 0, filter)
			if len(a) != len(b) {
				t.Fatalf("result lengths differ: %v vs %v", a, b)
			}
			for i := range a {
				if a[i] != b[i] {
					t.Fatalf("hit %d differs: %+v vs %+v", i, a[i], b[i])
				}
			}
		}
	}
	if again := graphBytes(t, y); !bytes.Equal(raw, again) {
		t.Fatal("write → read → write is not byte-identical")
	}
	// The restored index keeps working as a normal index.
	extra := clusteredData(11, 1, 40, 1, 1)[0]
	if err := y.Add(uint32(n), extra); err != nil {
		t.Fatal(err)
	}
	if hits := y.Search(extra, 1, 0, nil); len(hits) != 1 || hits[0].ID != uint32(n) {
		t.Fatalf("insert after restore: %v", hits)
	}
}

func TestGraphRoundTripEmpty(t *testing.T) {
	raw := graphBytes(t, New(3, Config{}))
	y, err := ReadGraph(bytes.NewReader(raw), vectorsOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	if y.Len() != 0 || y.Search([]float32{1, 0, 0}, 3, 0, nil) != nil {
		t.Fatal("restored empty index is not empty")
	}
}

func smallGraph(t testing.TB) ([]byte, [][]float32) {
	data := clusteredData(12, 60, 6, 4, 1)
	x := buildIndex(t, data, Config{M: 4, EfConstruction: 16, Seed: 3})
	x.Delete(5)
	return graphBytes(t, x), data
}

func TestReadGraphRejectsEveryCorruption(t *testing.T) {
	raw, data := smallGraph(t)
	vectors := vectorsOf(data)
	for i := range raw {
		for _, mask := range []byte{0x01, 0x80, 0xff} {
			bad := bytes.Clone(raw)
			bad[i] ^= mask
			if _, err := ReadGraph(bytes.NewReader(bad), vectors); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("byte %d ^ %#x: err = %v, want ErrCorrupt", i, mask, err)
			}
		}
	}
	for n := range len(raw) {
		if _, err := ReadGraph(bytes.NewReader(raw[:n]), vectors); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated to %d of %d bytes: err = %v", n, len(raw), err)
		}
	}
	if _, err := ReadGraph(bytes.NewReader(append(bytes.Clone(raw), 0)), vectors); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("trailing byte: %v", err)
	}
}

type failingReader struct{ err error }

func (r failingReader) Read([]byte) (int, error) { return 0, r.err }

func TestReadGraphPassesIOErrors(t *testing.T) {
	boom := errors.New("disk on fire")
	if _, err := ReadGraph(failingReader{boom}, vectorsOf(nil)); !errors.Is(err, boom) || errors.Is(err, ErrCorrupt) {
		t.Fatalf("err = %v", err)
	}
}

// withCRC re-seals a modified graph so the structural checks, not the
// checksum, are what rejects it.
func withCRC(body []byte) []byte {
	return binary.LittleEndian.AppendUint32(bytes.Clone(body), crc32.Checksum(body, castagnoli))
}

func TestReadGraphRejectsHostileStructure(t *testing.T) {
	header := func(dim, m, efc, efs uint32, hasEntry byte, entry uint32, level byte, count uint32) []byte {
		b := []byte(graphMagic)
		b = binary.LittleEndian.AppendUint16(b, graphVersion)
		for _, v := range []uint32{dim, m, efc, efs} {
			b = binary.LittleEndian.AppendUint32(b, v)
		}
		b = binary.LittleEndian.AppendUint64(b, 1)
		b = append(b, hasEntry)
		b = binary.LittleEndian.AppendUint32(b, entry)
		b = append(b, level)
		return binary.LittleEndian.AppendUint32(b, count)
	}
	nodeRec := func(id uint32, flags, level byte, layers ...[]uint32) []byte {
		b := binary.LittleEndian.AppendUint32(nil, id)
		b = append(b, flags, level)
		for _, l := range layers {
			b = binary.LittleEndian.AppendUint16(b, uint16(len(l)))
			for _, t := range l {
				b = binary.LittleEndian.AppendUint32(b, t)
			}
		}
		return b
	}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	vec := func(uint32) ([]float32, bool) { return []float32{1, 0}, true }
	valid := cat(header(2, 16, 128, 96, 1, 0, 0, 2), nodeRec(0, 0, 0, []uint32{1}), nodeRec(1, 0, 0, []uint32{0}))
	if x, err := ReadGraph(bytes.NewReader(withCRC(valid)), vec); err != nil || x.Len() != 2 {
		t.Fatalf("valid hand-made graph: %v", err)
	}

	sparse := header(2, 16, 128, 96, 1, 0, 0, 400)
	for i := range uint32(400) {
		sparse = append(sparse, nodeRec(i*pageSize, 0, 0, nil)...)
	}
	cases := map[string][]byte{
		"dim zero":            header(0, 16, 128, 96, 0, 0, 0, 0),
		"dim too large":       header(MaxDim+1, 16, 128, 96, 0, 0, 0, 0),
		"M too small":         header(2, 1, 128, 96, 0, 0, 0, 0),
		"M huge":              header(2, 1<<31, 128, 96, 0, 0, 0, 0),
		"efc below M":         header(2, 16, 8, 96, 0, 0, 0, 0),
		"node count huge":     header(2, 16, 128, 96, 0, 0, 0, 1<<31),
		"count beyond input":  header(2, 16, 128, 96, 0, 0, 0, 1<<20),
		"entry flag":          header(2, 16, 128, 96, 2, 0, 0, 0),
		"entry missing":       header(2, 16, 128, 96, 1, 9, 0, 0),
		"entry level wrong":   cat(header(2, 16, 128, 96, 1, 0, 3, 1), nodeRec(0, 0, 0, nil)),
		"id too large":        cat(header(2, 16, 128, 96, 1, 0, 0, 1), nodeRec(MaxID+1, 0, 0, nil)),
		"ids out of order":    cat(header(2, 16, 128, 96, 1, 0, 0, 2), nodeRec(1, 0, 0, nil), nodeRec(0, 0, 0, nil)),
		"duplicate id":        cat(header(2, 16, 128, 96, 1, 0, 0, 2), nodeRec(0, 0, 0, nil), nodeRec(0, 0, 0, nil)),
		"bad flags":           cat(header(2, 16, 128, 96, 1, 0, 0, 1), nodeRec(0, 4, 0, nil)),
		"level too high":      cat(header(2, 16, 128, 96, 1, 0, 0, 1), nodeRec(0, 0, maxLevel+1)),
		"too many links":      cat(header(2, 16, 128, 96, 1, 0, 0, 1), nodeRec(0, 0, 0, make([]uint32, 33))),
		"link to absent node": cat(header(2, 16, 128, 96, 1, 0, 0, 1), nodeRec(0, 0, 0, []uint32{7})),
		"link to self":        cat(header(2, 16, 128, 96, 1, 0, 0, 1), nodeRec(0, 0, 0, []uint32{0})),
		"link above level": cat(header(2, 16, 128, 96, 1, 0, 1, 2),
			nodeRec(0, 0, 1, []uint32{1}, []uint32{1}), nodeRec(1, 0, 0, []uint32{0})),
		"sparse ids": sparse,
		"bad version": func() []byte {
			b := bytes.Clone(valid)
			b[len(graphMagic)] = 9
			return b
		}(),
	}
	for name, body := range cases {
		if _, err := ReadGraph(bytes.NewReader(withCRC(body)), vec); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: err = %v, want ErrCorrupt", name, err)
		}
	}
}

func TestReadGraphMissingVectors(t *testing.T) {
	const n = 800
	data := clusteredData(13, n, 24, 8, 1)
	x := buildIndex(t, data, Config{})
	raw := graphBytes(t, x)
	entry, _ := unpackEntry(x.entry.Load())

	partial := make([][]float32, n)
	copy(partial, data)
	partial[entry] = nil // the entry point must be replaced
	for i := 0; i < n; i += 3 {
		partial[i] = nil
	}
	partial[1] = data[1][:5] // wrong length counts as missing
	y, err := ReadGraph(bytes.NewReader(raw), vectorsOf(partial))
	if err != nil {
		t.Fatal(err)
	}
	missing := func(id uint32) bool { return partial[id] == nil || len(partial[id]) != 24 }
	live := 0
	for i := range n {
		if !missing(uint32(i)) {
			live++
		}
	}
	if y.Len() != live || y.Tombstones() != n-live || y.Contains(1) || y.Contains(entry) {
		t.Fatalf("Len=%d Tombstones=%d; want %d live", y.Len(), y.Tombstones(), live)
	}
	for _, q := range data[:50] {
		for _, h := range y.Search(q, 10, 0, nil) {
			if missing(h.ID) {
				t.Fatalf("id %d without a vector returned", h.ID)
			}
		}
	}
	// Adding the vector back restores the node.
	if err := y.Add(entry, data[entry]); err != nil || !y.Contains(entry) {
		t.Fatalf("restore: %v", err)
	}
	if hits := y.Search(data[entry], 1, 0, nil); len(hits) != 1 || hits[0].ID != entry {
		t.Fatalf("restored id not found: %v", hits)
	}

	none, err := ReadGraph(bytes.NewReader(raw), vectorsOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	if none.Len() != 0 || none.Search(data[0], 5, 0, nil) != nil {
		t.Fatal("graph without any vectors must behave as empty")
	}
	if err := none.Add(3, data[3]); err != nil {
		t.Fatal(err)
	}
	if hits := none.Search(data[3], 5, 0, nil); len(hits) != 1 || hits[0].ID != 3 {
		t.Fatalf("first vector into a vectorless graph: %v", hits)
	}
}

func FuzzReadGraph(f *testing.F) {
	raw, data := smallGraph(f)
	f.Add(raw)
	f.Add(raw[:len(raw)/2])
	f.Add(raw[:len(graphMagic)+2])
	f.Add([]byte{})
	empty := graphBytes(f, New(6, Config{}))
	f.Add(empty)
	vectors := func(id uint32) ([]float32, bool) {
		if id%11 == 3 { // some nodes lose their vector
			return nil, false
		}
		return data[id%uint32(len(data))], true
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 1<<20 {
			return
		}
		// As given (almost always a checksum failure) and re-sealed, so
		// the fuzzer explores the structural checks too.
		inputs := [][]byte{in}
		if len(in) >= 4 {
			inputs = append(inputs, withCRC(in[:len(in)-4]))
		}
		for _, b := range inputs {
			x, err := ReadGraph(bytes.NewReader(b), vectors)
			if err != nil {
				if x != nil {
					t.Fatal("non-nil index with an error")
				}
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("content error not wrapping ErrCorrupt: %v", err)
				}
				continue
			}
			// Whatever was accepted must be safe to use.
			if x.Dim() == 6 {
				for _, q := range data[:3] {
					x.Search(q, 5, 0, nil)
					x.Search(q, 5, 0, func(id uint32) bool { return id%2 == 0 })
				}
				if err := x.Add(2, data[2]); err != nil {
					t.Fatal(err)
				}
				x.Search(data[2], 5, 0, nil)
			}
			if err := x.WriteGraph(io.Discard); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// TestWriteGraphDuringAdds: every snapshot taken while two writers insert
// must read back, and must search like the index it came from.
func TestWriteGraphDuringAdds(t *testing.T) {
	n := scaled(2000)
	data := clusteredData(14, n, 16, 10, 1)
	x := New(16, Config{M: 6, EfConstruction: 32})
	var writers sync.WaitGroup
	for w := range 2 {
		writers.Go(func() {
			for i := w; i < n; i += 2 {
				if err := x.Add(uint32(i), data[i]); err != nil {
					t.Error(err)
					return
				}
				if i%7 == 0 {
					x.Delete(uint32(i))
				}
			}
		})
	}
	done := make(chan struct{})
	go func() {
		writers.Wait()
		close(done)
	}()
	for snapshots := 0; ; snapshots++ {
		select {
		case <-done:
			if snapshots == 0 {
				t.Log("writers finished before the first snapshot")
			}
			return
		default:
		}
		raw := graphBytes(t, x)
		y, err := ReadGraph(bytes.NewReader(raw), vectorsOf(data))
		if err != nil {
			t.Fatalf("snapshot %d: %v", snapshots, err)
		}
		if again := graphBytes(t, y); !bytes.Equal(raw, again) {
			t.Fatalf("snapshot %d does not round-trip", snapshots)
		}
	}
}
