package main

import (
	"io"
	"sync"
	"time"
)

// lineBatcher collects the access log's lines and hands them to w in one
// write per batch instead of one per request: a write system call per line
// would be most of the access log's cost at high request rates
// (docs/benchmarks.md, "Access log"). A line waits at most interval, and a
// batch at most maxLogBatch bytes. Lines written through Immediate flush
// the batch ahead of themselves, so the output keeps its order and startup
// lines, warnings and errors are never held back. What kill -9 can cost is
// the access lines of the last interval; no data.
type lineBatcher struct {
	mu       sync.Mutex
	w        io.Writer
	interval time.Duration
	buf      []byte
	timer    *time.Timer
	armed    bool
	closed   bool
}

// maxLogBatch bounds the bytes held: a full batch is written at once.
const maxLogBatch = 64 << 10

func newLineBatcher(w io.Writer, interval time.Duration) *lineBatcher {
	return &lineBatcher{w: w, interval: interval}
}

// Write holds p (one log line) for the next batch.
func (b *lineBatcher) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return b.w.Write(p)
	}
	b.buf = append(b.buf, p...)
	if len(b.buf) >= maxLogBatch {
		return len(p), b.flushLocked()
	}
	if !b.armed {
		b.armed = true
		if b.timer == nil {
			b.timer = time.AfterFunc(b.interval, func() { _ = b.Flush() })
		} else {
			b.timer.Reset(b.interval)
		}
	}
	return len(p), nil
}

// Flush writes the held lines now.
func (b *lineBatcher) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.flushLocked()
}

func (b *lineBatcher) flushLocked() error {
	if b.armed {
		b.timer.Stop() // a tick already running finds nothing to write
		b.armed = false
	}
	if len(b.buf) == 0 {
		return nil
	}
	_, err := b.w.Write(b.buf)
	b.buf = b.buf[:0]
	return err
}

// Close flushes; later writes go straight through.
func (b *lineBatcher) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	err := b.flushLocked()
	b.closed = true
	return err
}

// Immediate is a writer whose lines are written at once, after whatever the
// batch holds.
func (b *lineBatcher) Immediate() io.Writer { return immediateWriter{b} }

type immediateWriter struct{ b *lineBatcher }

func (i immediateWriter) Write(p []byte) (int, error) {
	b := i.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.buf) == 0 {
		return b.w.Write(p)
	}
	b.buf = append(b.buf, p...)
	return len(p), b.flushLocked()
}
