package backup

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"io"
)

type hashWriter = hash.Hash

func newDigest() *digest { return &digest{h: sha256.New()} }

func (d *digest) sum() string { return "sha256:" + hex.EncodeToString(d.h.Sum(nil)) }

func appendUvarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }

// countingWriter counts bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// countingReader counts bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
