package vector

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"math"
	"math/rand/v2"
	"slices"
)

// Graph file layout, little-endian:
//
//	magic      [8]byte "ENGRHNSW"
//	version    uint16  (graphVersion)
//	dim        uint32
//	M, efConstruction, efSearch uint32
//	seed       int64
//	hasEntry   uint8   (0 or 1)
//	entryID    uint32
//	entryLevel uint8
//	nodeCount  uint32
//	nodeCount × node, ascending id:
//	    id uint32, flags uint8 (bit 0: deleted), level uint8,
//	    (level+1) × { count uint16, count × neighbour id uint32 }
//	crc32c     uint32  of every byte before it
//
// Vectors are not stored: the caller owns them and supplies them to ReadGraph.
const (
	graphMagic   = "ENGRHNSW"
	graphVersion = 1
	flagDeleted  = 1
)

// ErrCorrupt wraps every ReadGraph failure caused by the file's content.
var ErrCorrupt = errors.New("vector: corrupt graph")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// WriteGraph writes the graph (configuration, levels, neighbour lists, entry
// point and tombstones) but not the vectors. Searches continue while it runs;
// Add and Delete wait for it, so the snapshot is consistent.
func (x *Index) WriteGraph(w io.Writer) error {
	x.snapshotMu.Lock()
	defer x.snapshotMu.Unlock()
	crc := crc32.New(castagnoli)
	bw := bufio.NewWriterSize(io.MultiWriter(w, crc), 1<<16)

	var ids []uint32
	d := x.dir.Load()
	for pi := range d.pages {
		p := d.pages[pi].Load()
		if p == nil {
			continue
		}
		for i := range p.nodes {
			if p.nodes[i].state.Load() != stateEmpty {
				ids = append(ids, pageStart(pi)+uint32(i))
			}
		}
	}

	var b []byte
	b = append(b, graphMagic...)
	b = binary.LittleEndian.AppendUint16(b, graphVersion)
	b = binary.LittleEndian.AppendUint32(b, uint32(x.dim))
	b = binary.LittleEndian.AppendUint32(b, uint32(x.cfg.M))
	b = binary.LittleEndian.AppendUint32(b, uint32(x.cfg.EfConstruction))
	b = binary.LittleEndian.AppendUint32(b, uint32(x.cfg.EfSearch))
	b = binary.LittleEndian.AppendUint64(b, uint64(x.cfg.Seed))
	e := x.entry.Load()
	entryID, entryLevel := unpackEntry(e)
	if e != 0 {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	b = binary.LittleEndian.AppendUint32(b, entryID)
	b = append(b, byte(entryLevel))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(ids)))
	if _, err := bw.Write(b); err != nil {
		return err
	}

	for _, id := range ids {
		p, i := x.at(id)
		n := &p.nodes[i]
		var flags byte
		if n.state.Load() != stateLive {
			flags = flagDeleted
		}
		b = binary.LittleEndian.AppendUint32(b[:0], id)
		n.mu.Lock() // searches may be reading the lists; writers are excluded
		level := len(n.upper)
		b = append(b, flags, byte(level))
		for l := range level + 1 {
			list := x.list(p, i, l)
			b = binary.LittleEndian.AppendUint16(b, uint16(len(list)))
			for _, nb := range list {
				b = binary.LittleEndian.AppendUint32(b, nb)
			}
		}
		n.mu.Unlock()
		if _, err := bw.Write(b); err != nil {
			return err
		}
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	_, err := w.Write(binary.LittleEndian.AppendUint32(nil, crc.Sum32()))
	return err
}

// graphReader decodes the stream while hashing it. Nothing it reads is
// allocated ahead of the bytes that justify it, so a hostile count can only
// lead to an early error, not to a large allocation.
type graphReader struct {
	r    *bufio.Reader
	crc  hash.Hash32
	read int64 // bytes consumed
	buf  [2 * 2 * MaxM * 4]byte
}

func (g *graphReader) bytes(n int) ([]byte, error) {
	b := g.buf[:n]
	if _, err := io.ReadFull(g.r, b); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil, fmt.Errorf("%w: truncated at byte %d", ErrCorrupt, g.read)
		}
		return nil, err
	}
	g.crc.Write(b)
	g.read += int64(n)
	return b, nil
}

func (g *graphReader) u8() (byte, error) {
	b, err := g.bytes(1)
	if err != nil {
		return 0, err
	}
	return b[0], nil
}

func (g *graphReader) u16() (uint16, error) {
	b, err := g.bytes(2)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint16(b), nil
}

func (g *graphReader) u32() (uint32, error) {
	b, err := g.bytes(4)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

func (g *graphReader) u64() (uint64, error) {
	b, err := g.bytes(8)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}

// Page memory ReadGraph will commit beyond a fixed allowance is capped at a
// multiple of the bytes read, so a file of scattered ids cannot make a small
// input cost gigabytes. Dense ids, as the store assigns them, never get near
// it unless M is large and the lists nearly empty: a page holds 8M bytes of
// layer-0 lists per slot (see pageBytes), a record is 8 bytes plus 4 a link.
const (
	freePageBytes        = 16 << 20
	pageBytesPerFileByte = 64
)

// ReadGraph rebuilds an index from a WriteGraph stream, taking each node's
// vector from vectors (kept by reference). A node whose vector is missing or
// of the wrong length is treated as deleted and is not used for navigation;
// adding it again restores it. The input is fully validated — structure,
// limits, link targets and the CRC32C trailer — and must end right after
// the trailer. Errors about the content wrap ErrCorrupt.
func ReadGraph(r io.Reader, vectors func(id uint32) ([]float32, bool)) (*Index, error) {
	g := &graphReader{r: bufio.NewReaderSize(r, 1<<16), crc: crc32.New(castagnoli)}
	corrupt := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
	}

	head, err := g.bytes(len(graphMagic) + 2)
	if err != nil {
		return nil, err
	}
	if string(head[:len(graphMagic)]) != graphMagic {
		return nil, corrupt("bad magic, not an HNSW graph")
	}
	if v := binary.LittleEndian.Uint16(head[len(graphMagic):]); v != graphVersion {
		return nil, corrupt("unsupported version %d (want %d)", v, graphVersion)
	}
	var fields [4]uint32 // dim, M, efConstruction, efSearch
	for i := range fields {
		if fields[i], err = g.u32(); err != nil {
			return nil, err
		}
	}
	seed, err := g.u64()
	if err != nil {
		return nil, err
	}
	dim := fields[0]
	if dim < 1 || dim > MaxDim {
		return nil, corrupt("dimension %d outside 1..%d", dim, MaxDim)
	}
	if fields[1] > MaxM || fields[2] > MaxEf || fields[3] > MaxEf {
		return nil, corrupt("config M=%d efConstruction=%d efSearch=%d beyond limits", fields[1], fields[2], fields[3])
	}
	cfg := Config{M: int(fields[1]), EfConstruction: int(fields[2]), EfSearch: int(fields[3]), Seed: int64(seed)}
	if cfg.normalized() != cfg {
		return nil, corrupt("config %+v is not a valid normalised config", cfg)
	}
	hasEntry, err := g.u8()
	if err != nil {
		return nil, err
	}
	entryID, err := g.u32()
	if err != nil {
		return nil, err
	}
	entryLevel, err := g.u8()
	if err != nil {
		return nil, err
	}
	nodeCount, err := g.u32()
	if err != nil {
		return nil, err
	}
	if hasEntry > 1 || entryID > MaxID || entryLevel > maxLevel {
		return nil, corrupt("bad entry point (flag %d, id %d, level %d)", hasEntry, entryID, entryLevel)
	}
	if nodeCount > MaxID+1 {
		return nil, corrupt("node count %d exceeds %d", nodeCount, MaxID+1)
	}

	x := New(int(dim), cfg)
	x.rng = rand.New(rand.NewPCG(uint64(cfg.Seed), uint64(nodeCount)^0x9e3779b97f4a7c15))
	var ids []uint32 // grows with the input, never sized from nodeCount
	var flat []uint32
	var counts []int
	pages, committed := 0, int64(0)
	for i := uint32(0); i < nodeCount; i++ {
		id, err := g.u32()
		if err != nil {
			return nil, err
		}
		if id > MaxID {
			return nil, corrupt("node id %d exceeds %d", id, MaxID)
		}
		if len(ids) > 0 && id <= ids[len(ids)-1] {
			return nil, corrupt("node id %d out of order after %d", id, ids[len(ids)-1])
		}
		flags, err := g.u8()
		if err != nil {
			return nil, err
		}
		level, err := g.u8()
		if err != nil {
			return nil, err
		}
		if flags&^flagDeleted != 0 || level > maxLevel {
			return nil, corrupt("node %d: bad flags %#x or level %d", id, flags, level)
		}
		if x.node(id) == nil {
			pi, _ := pageOf(id)
			pages++
			committed += x.pageBytes(pi)
			if committed > freePageBytes && committed > pageBytesPerFileByte*g.read {
				return nil, corrupt("node ids too sparse: %d pages for %d bytes of graph", pages, g.read)
			}
		}
		flat, counts = flat[:0], counts[:0]
		for l := range int(level) + 1 {
			count, err := g.u16()
			if err != nil {
				return nil, err
			}
			if int(count) > x.maxLinks(l) {
				return nil, corrupt("node %d layer %d: %d links, limit %d", id, l, count, x.maxLinks(l))
			}
			b, err := g.bytes(4 * int(count))
			if err != nil {
				return nil, err
			}
			for j := range int(count) {
				flat = append(flat, binary.LittleEndian.Uint32(b[4*j:]))
			}
			counts = append(counts, int(count))
		}
		p, i := x.slot(id)
		n := &p.nodes[i]
		x.setList(p, i, 0, append(x.list(p, i, 0), flat[:counts[0]]...))
		if level > 0 {
			// Upper lists get exactly the capacity the file fills, so memory
			// follows the input's size; a later append past it reallocates.
			backing := slices.Clone(flat[counts[0]:])
			n.upper = make([][]uint32, level)
			off := 0
			for l, c := range counts[1:] {
				n.upper[l] = backing[off : off+c : off+c]
				off += c
			}
		}
		if flags&flagDeleted != 0 {
			n.state.Store(stateDeleted)
		} else {
			n.state.Store(stateLive)
		}
		ids = append(ids, id)
	}
	want := g.crc.Sum32()
	trailer, err := g.bytes(4)
	if err != nil {
		return nil, err
	}
	if got := binary.LittleEndian.Uint32(trailer); got != want {
		return nil, corrupt("checksum mismatch (stored %#08x, computed %#08x)", got, want)
	}
	if _, err := g.r.ReadByte(); err != io.EOF {
		if err != nil {
			return nil, err
		}
		return nil, corrupt("trailing data after checksum")
	}

	// Every link must lead to a present node that has the layer, or a
	// search would step off the graph.
	for _, id := range ids {
		p, i := x.at(id)
		for l := range len(p.nodes[i].upper) + 1 {
			for _, t := range x.list(p, i, l) {
				tn := x.node(t)
				if t == id || tn == nil || tn.state.Load() == stateEmpty || len(tn.upper) < l {
					return nil, corrupt("node %d layer %d: bad link to %d", id, l, t)
				}
			}
		}
	}
	if hasEntry == 1 {
		en := x.node(entryID)
		if en == nil || en.state.Load() == stateEmpty || len(en.upper) != int(entryLevel) {
			return nil, corrupt("entry point %d at level %d is not a node of that level", entryID, entryLevel)
		}
	}

	for _, id := range ids {
		n := x.node(id)
		v, ok := vectors(id)
		if ok && len(v) == int(dim) && finite(v) {
			setVector(n, v)
		} else {
			n.state.Store(stateDeleted)
		}
		if n.state.Load() == stateLive {
			x.live.Add(1)
		} else {
			x.tombstones.Add(1)
		}
	}

	// The entry point must have a vector; if it has none, or the file names
	// no entry, start from the highest node that has one.
	if hasEntry == 1 && x.vectorOf(entryID) != nil {
		x.entry.Store(packEntry(entryID, int(entryLevel)))
	} else {
		best := -1
		for _, id := range ids {
			n := x.node(id)
			if x.vectorAt(n) != nil && len(n.upper) > best {
				best = len(n.upper)
				x.entry.Store(packEntry(id, best))
			}
		}
	}
	return x, nil
}

func finite(v []float32) bool {
	for _, f := range v {
		if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
			return false
		}
	}
	return true
}
