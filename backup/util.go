package backup

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"io"
	"sync"
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

// forEachParallel calls fn for each index in items from at most workers
// goroutines. The first error cancels the context the others see and is
// returned; otherwise the context's own error, if any.
func forEachParallel(ctx context.Context, workers int, items []int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		once     sync.Once
		firstErr error
		wg       sync.WaitGroup
		work     = make(chan int)
	)
	for w := 0; w < max(workers, 1); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if err := fn(ctx, i); err != nil {
					once.Do(func() { firstErr = err })
					cancel()
				}
			}
		}()
	}
feed:
	for _, i := range items {
		select {
		case work <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}
