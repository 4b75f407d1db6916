package backup

import (
	"encoding/binary"
	"errors"
	"hash"
	"io"
	"math"
	"sync"

	"github.com/klauspost/compress/huff0"
)

// Engine files are stored as a sequence of zstd frames, one per sealChunk
// plain bytes (an empty file is one empty frame), written here block by
// block: a block is stored raw, or as Huffman-coded literals (or one
// repeated byte) when a byte histogram of its chunk predicts that this at
// least halves it. Both are ordinary zstd, so any zstd decoder, and every
// earlier engram-ops, reads them: neither the key (.zst) nor the manifest
// format changes.
//
// Why so little compression (measured on 2 shared cores, BenchmarkSnapshot-
// UploadS3): a plain upload to a nearby S3 server costs ~4-8 ns of CPU per
// byte. The zstd encoder at its fastest level ran at ~100 MB/s per core on
// these files (Pebble tables, whose blocks Pebble has already compressed,
// and float vectors: 26% saved), which held the upload to 0.24-0.39x of a
// plain one; Huffman coding alone runs at ~250 MB/s (4 ns/byte), and
// coding just the HNSW graph files (a histogram predicts 42% there, 13-26%
// for tables) still cost ~0.1x. Coding pays for its CPU on such a link only
// when it removes about half the bytes, hence the threshold.
const (
	sealChunk  = 1 << 20   // plain bytes per frame
	sealBlock  = 128 << 10 // zstd's largest block
	sealSample = 16 << 10  // bytes of a chunk its histogram is taken from
	minSaving  = 50        // percent a chunk must be predicted to shrink by to be coded
)

// A sealed file is described as spans, each either plain bytes (raw block
// contents, referenced, not copied) or bytes in the sealer's arena (frame
// and block headers, coded blocks).
type span struct {
	plain  bool
	off, n int
}

// sealer writes frames; one per goroutine (see sealers).
type sealer struct {
	huff  huff0.Scratch
	hist  [256]uint32
	arena []byte
	spans []span
	chunk []byte // sealStream's read buffer
	parts [][]byte
}

var sealers = sync.Pool{New: func() any {
	s := &sealer{}
	s.huff.Reuse = huff0.ReusePolicyNone // every block carries its own table
	return s
}}

func (s *sealer) reset() {
	s.arena, s.spans, s.parts = s.arena[:0], s.spans[:0], s.parts[:0]
}

// arenaAppend adds b to the arena and to the spans.
func (s *sealer) arenaAppend(b ...byte) {
	off := len(s.arena)
	s.arena = append(s.arena, b...)
	s.arenaSpan(off)
}

// arenaSpan records the arena bytes from off to its end as a span.
func (s *sealer) arenaSpan(off int) {
	if k := len(s.spans) - 1; k >= 0 && !s.spans[k].plain && s.spans[k].off+s.spans[k].n == off {
		s.spans[k].n += len(s.arena) - off
		return
	}
	s.spans = append(s.spans, span{off: off, n: len(s.arena) - off})
}

// frame adds the frame of the chunk p, which starts at plain offset base.
func (s *sealer) frame(p []byte, base int) {
	code := s.worthCoding(p)
	// Single segment (the window is the chunk), 4-byte content size, no
	// frame checksum: the manifest's sha256 covers the whole file.
	s.arenaAppend(0x28, 0xb5, 0x2f, 0xfd, 0xa0, byte(len(p)), byte(len(p)>>8), byte(len(p)>>16), byte(len(p)>>24))
	for i := 0; ; {
		n := min(len(p)-i, sealBlock)
		last := i+n == len(p)
		if !code || !s.literals(p[i:i+n], last) {
			s.arenaAppend(blockHeader(0, n, last)...)
			if n > 0 {
				s.spans = append(s.spans, span{plain: true, off: base + i, n: n})
			}
		}
		if i += n; i == len(p) {
			return
		}
	}
}

// worthCoding reports whether the order-0 entropy of a sample of p
// predicts that Huffman coding saves at least minSaving percent.
func (s *sealer) worthCoding(p []byte) bool {
	if len(p) > sealSample {
		p = p[(len(p)-sealSample)/2:][:sealSample] // the middle: file headers are atypical
	}
	if len(p) < 1024 {
		return false
	}
	s.hist = [256]uint32{}
	for _, b := range p {
		s.hist[b]++
	}
	n := float64(len(p))
	bits := 0.0
	for _, c := range s.hist {
		if c != 0 {
			q := float64(c) / n
			bits -= q * math.Log2(q)
		}
	}
	return bits <= 8*float64(100-minSaving)/100
}

// literals adds a block of p as Huffman-coded literals and no sequences
// (or as one repeated byte), or reports false when that is not smaller.
func (s *sealer) literals(p []byte, last bool) bool {
	if len(p) < 1024 {
		return false
	}
	out, _, err := huff0.Compress4X(p, &s.huff)
	if err == huff0.ErrUseRLE {
		s.arenaAppend(append(blockHeader(1, len(p), last), p[0])...)
		return true
	}
	size := 5 + len(out) + 1 // literals header, table and 4 streams, sequence count
	if err != nil || size >= len(p) {
		return false
	}
	off := len(s.arena)
	s.arena = append(s.arena, blockHeader(2, size, last)...)
	// Literals header: compressed, 4 streams, 18-bit sizes (5 bytes).
	lh := uint64(2) | 3<<2 | uint64(len(p))<<4 | uint64(len(out))<<22
	var lhb [8]byte
	binary.LittleEndian.PutUint64(lhb[:], lh)
	s.arena = append(s.arena, lhb[:5]...)
	s.arena = append(s.arena, out...)
	s.arena = append(s.arena, 0) // no sequences
	s.arenaSpan(off)
	return true
}

// blockHeader is a zstd block header (typ 0 raw, 1 RLE, 2 compressed);
// size is the block's content size, for RLE the regenerated size.
func blockHeader(typ, size int, last bool) []byte {
	h := uint32(typ)<<1 | uint32(size)<<3
	if last {
		h |= 1
	}
	return []byte{byte(h), byte(h >> 8), byte(h >> 16)}
}

// resolve turns the spans into slices of plain and the arena.
func (s *sealer) resolve(plain []byte) [][]byte {
	for _, sp := range s.spans {
		if sp.plain {
			s.parts = append(s.parts, plain[sp.off:sp.off+sp.n])
		} else {
			s.parts = append(s.parts, s.arena[sp.off:sp.off+sp.n])
		}
	}
	return s.parts
}

// sealed is a staged file's stored form, unencrypted: the parts are read
// in order without being copied together. It is an io.ReadSeeker, so an
// upload from it can be retried.
type sealed struct {
	parts [][]byte
	size  int64
	pos   int64
	i, j  int // the part and the offset in it at pos
}

func newSealed(parts [][]byte) *sealed {
	r := &sealed{parts: parts}
	for _, p := range parts {
		r.size += int64(len(p))
	}
	return r
}

func (r *sealed) Read(b []byte) (int, error) {
	n := 0
	for n < len(b) && r.i < len(r.parts) {
		k := copy(b[n:], r.parts[r.i][r.j:])
		n += k
		if r.j += k; r.j == len(r.parts[r.i]) {
			r.i, r.j = r.i+1, 0
		}
	}
	r.pos += int64(n)
	if n == 0 && len(b) > 0 {
		return 0, io.EOF
	}
	return n, nil
}

func (r *sealed) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		offset += r.pos
	case io.SeekEnd:
		offset += r.size
	}
	if offset < 0 || offset > r.size {
		return r.pos, errors.New("sealed: seek out of range")
	}
	r.pos, r.i, r.j = offset, 0, 0
	for r.i < len(r.parts) && offset >= int64(len(r.parts[r.i])) {
		offset -= int64(len(r.parts[r.i]))
		r.i++
	}
	r.j = int(offset)
	return r.pos, nil
}

// sealFile calls fn with the stored form of the whole plain file p. The
// reader is valid only during fn.
func (c *Codec) sealFile(p []byte, fn func(r io.ReadSeeker, size int64) error) error {
	s := sealers.Get().(*sealer)
	defer sealers.Put(s)
	s.reset()
	for i := 0; ; {
		n := min(len(p)-i, sealChunk)
		s.frame(p[i:i+n], i)
		if i += n; i == len(p) {
			break
		}
	}
	r := newSealed(s.resolve(p))
	if !c.Encrypted() {
		return fn(r, r.size)
	}
	// age adds a header and 16 bytes per 64 KiB; encrypt into a buffer so
	// the upload still has a known size and can be retried.
	var buf bytesBuffer
	buf.b = s.chunk[:0]
	w, err := c.encrypter(&buf)
	if err == nil {
		_, err = io.Copy(w, r)
		err = errors.Join(err, w.Close())
	}
	s.chunk = buf.b[:0]
	if err != nil {
		return err
	}
	return fn(newSealed([][]byte{buf.b}), int64(len(buf.b)))
}

// sealStream writes the stored form of everything src yields to dst and
// returns the plain size; h, when not nil, is fed the plain bytes.
func (c *Codec) sealStream(dst io.Writer, src io.Reader, h hash.Hash) (int64, error) {
	s := sealers.Get().(*sealer)
	defer sealers.Put(s)
	w, err := c.encrypter(dst)
	if err != nil {
		return 0, err
	}
	if cap(s.chunk) < sealChunk {
		s.chunk = make([]byte, sealChunk)
	}
	chunk := s.chunk[:sealChunk]
	var n int64
	for first := true; ; first = false {
		k, err := io.ReadFull(src, chunk)
		if err == io.EOF && !first {
			break
		}
		if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
			return n, err
		}
		n += int64(k)
		if h != nil {
			h.Write(chunk[:k])
		}
		s.reset()
		s.frame(chunk[:k], 0)
		for _, b := range s.resolve(chunk) {
			if _, err := w.Write(b); err != nil {
				return n, err
			}
		}
		if k < len(chunk) {
			break
		}
	}
	return n, w.Close()
}

// bytesBuffer is an io.Writer appending to b (a bytes.Buffer would not
// hand its grown slice back for reuse).
type bytesBuffer struct{ b []byte }

func (w *bytesBuffer) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}
