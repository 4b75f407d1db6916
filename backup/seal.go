package backup

import (
	"errors"
	"hash"
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// Engine files are stored as a sequence of zstd frames, one per sealChunk
// plain bytes (an empty file is one empty frame). A chunk that a sample
// says zstd at least halves is a frame of the zstd encoder; any other is a
// frame of raw blocks written here, next to no CPU. Both are ordinary
// zstd, so any zstd decoder, and every earlier engram-ops, reads them:
// neither the key (.zst) nor the manifest format changes.
//
// Why so little compression: a plain upload to a nearby S3 server costs a
// few nanoseconds of CPU per byte, far less than the zstd encoder at its
// fastest level, and Pebble tables (whose blocks Pebble has already
// compressed) and float vectors shrink little. Compressing pays for its
// CPU on such a link only when it removes about half the bytes, as it does
// for the text in a WAL, hence the threshold (docs/benchmarks.md,
// "Snapshot upload").
const (
	sealChunk  = 1 << 20   // plain bytes per frame
	sealBlock  = 128 << 10 // zstd's largest block
	sealSample = 16 << 10  // bytes of a chunk the zstd probe compresses
	minSaving  = 50        // percent the probe must save for the chunk to be compressed
)

// A sealed file is described as spans, each either plain bytes (raw block
// contents, referenced, not copied) or bytes in the sealer's arena (frame
// and block headers, compressed frames).
type span struct {
	plain  bool
	off, n int
}

// sealer writes frames; one per goroutine (see sealers).
type sealer struct {
	enc   *zstd.Encoder // the codec's fileEnc; EncodeAll only
	probe []byte
	arena []byte
	spans []span
	chunk []byte // sealStream's read buffer
	parts [][]byte
}

var sealers = sync.Pool{New: func() any { return new(sealer) }}

// sealer takes a pooled sealer, encoding with the codec's shared encoder:
// a pooled encoder per sealer is rebuilt (hundreds of KB of tables) each
// time the pool drops it.
func (c *Codec) sealer() *sealer {
	s := sealers.Get().(*sealer)
	s.enc = c.fileEnc
	return s
}

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

// rawFrameSize is the size of the raw frame of n plain bytes.
func rawFrameSize(n int) int { return 9 + 3*max(1, (n+sealBlock-1)/sealBlock) + n }

// frame adds the frame of the chunk p, which starts at plain offset base.
func (s *sealer) frame(p []byte, base int) {
	if s.worthCompressing(p) {
		off := len(s.arena)
		s.arena = s.enc.EncodeAll(p, s.arena)
		if len(s.arena)-off < rawFrameSize(len(p)) {
			s.arenaSpan(off)
			return
		}
		s.arena = s.arena[:off]
	}
	// Single segment (the window is the chunk), 4-byte content size, no
	// frame checksum: the manifest's sha256 covers the whole file.
	s.arenaAppend(0x28, 0xb5, 0x2f, 0xfd, 0xa0, byte(len(p)), byte(len(p)>>8), byte(len(p)>>16), byte(len(p)>>24))
	for i := 0; ; {
		n := min(len(p)-i, sealBlock)
		h := uint32(n) << 3 // block type 0: raw
		if i+n == len(p) {
			h |= 1 // last block
		}
		s.arenaAppend(byte(h), byte(h>>8), byte(h>>16))
		if n > 0 {
			s.spans = append(s.spans, span{plain: true, off: base + i, n: n})
		}
		if i += n; i == len(p) {
			return
		}
	}
}

// worthCompressing reports whether zstd saves at least minSaving percent
// on a sample of p (from its middle: file headers are atypical).
func (s *sealer) worthCompressing(p []byte) bool {
	if len(p) < 1024 {
		return false
	}
	if len(p) > sealSample {
		p = p[(len(p)-sealSample)/2:][:sealSample]
	}
	s.probe = s.enc.EncodeAll(p, s.probe[:0])
	return len(s.probe) <= len(p)*(100-minSaving)/100
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
	s := c.sealer()
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
	s := c.sealer()
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
