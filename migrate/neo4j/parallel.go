package neo4j

import (
	"bytes"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/engram-ops/engram-ops/migrate"
)

// Lines are independent, so an export is decoded on every core: one
// goroutine reads lines in chunks, workers decode whole chunks, and Next
// hands the records out in file order. A chunk holds at most chunkLines
// lines, or chunkBytes bytes and one line; at most 2×workers+2 chunks are
// read ahead.
const (
	chunkLines = 256
	chunkBytes = 1 << 20
)

// lineJob is one line of a chunk and what it decoded to.
type lineJob struct {
	line, off  int64 // after this line, as Reader counts them
	start, end int   // the line's bytes in the chunk's buf
	tooLong    bool
	rec        migrate.Record
	err        error
}

type lineChunk struct {
	jobs []lineJob
	buf  []byte
	// end ends the stream after the jobs: io.EOF or a read error.
	end  error
	done chan struct{} // closed once every job is decoded
}

// parallelReader reads like Reader, decoding on workers goroutines.
type parallelReader struct {
	rd    *Reader
	order chan *lineChunk
	// free holds the chunks Next is done with (a record holds copies of
	// what it needs from a line), for the reading goroutine to reuse.
	free chan *lineChunk
	quit chan struct{}
	wg   sync.WaitGroup
	once sync.Once
	cur  *lineChunk
	i    int
}

// newParallelReader reads rd's lines on its own goroutine and decodes
// them on workers (at least 2) goroutines; rd is closed by Close.
func newParallelReader(rd *Reader, workers int) *parallelReader {
	p := &parallelReader{rd: rd, order: make(chan *lineChunk, 2*workers+2), free: make(chan *lineChunk, 2*workers+4), quit: make(chan struct{})}
	work := make(chan *lineChunk, 2*workers+2)
	p.wg.Add(1 + workers)
	go func() {
		defer p.wg.Done()
		defer close(work)
		defer close(p.order)
		for {
			c := p.readChunk()
			select {
			case p.order <- c:
			case <-p.quit:
				return
			}
			select {
			case work <- c:
			case <-p.quit:
				return
			}
			if c.end != nil {
				return
			}
		}
	}()
	for i := 0; i < workers; i++ {
		go func() {
			defer p.wg.Done()
			// A parser: a Reader without input, positioned at each line.
			w := &Reader{keysOnly: rd.keysOnly}
			for c := range work {
				for i := range c.jobs {
					j := &c.jobs[i]
					w.line, w.off = j.line, j.off
					if j.tooLong {
						j.err = w.bad(nil, fmt.Sprintf("line is longer than %d bytes", MaxLineBytes))
						continue
					}
					b := c.buf[j.start:j.end]
					rec, err := w.parse(b)
					if err != nil {
						j.err = w.bad(b, err.Error())
						continue
					}
					j.rec = rec
				}
				close(c.done)
			}
		}()
	}
	return p
}

// readChunk reads the next lines as Reader.Next does, blank ones skipped.
func (p *parallelReader) readChunk() *lineChunk {
	rd := p.rd
	var c *lineChunk
	select {
	case c = <-p.free:
		clear(c.jobs)
		c.jobs, c.buf = c.jobs[:0], c.buf[:0]
	default:
		c = &lineChunk{jobs: make([]lineJob, 0, chunkLines), buf: make([]byte, 0, 64<<10)}
	}
	c.done = make(chan struct{})
	for len(c.jobs) < chunkLines && len(c.buf) < chunkBytes {
		b, tooLong, err := rd.readLine()
		if err != nil {
			c.end = err
			if err != io.EOF {
				c.end = fmt.Errorf("read the export after line %d: %w", rd.line, err)
			}
			break
		}
		rd.line++
		if !tooLong && len(bytes.TrimSpace(b)) == 0 {
			continue
		}
		start := len(c.buf)
		c.buf = append(c.buf, b...)
		c.jobs = append(c.jobs, lineJob{line: rd.line, off: rd.off, start: start, end: len(c.buf), tooLong: tooLong})
	}
	return c
}

// Next returns what Reader.Next would: the next record, a
// *migrate.BadRecordError for a malformed line, io.EOF, or the read error
// that ends the stream.
func (p *parallelReader) Next() (migrate.Record, error) {
	for {
		if c := p.cur; c != nil {
			if p.i < len(c.jobs) {
				j := &c.jobs[p.i]
				p.i++
				return j.rec, j.err
			}
			if c.end != nil {
				return migrate.Record{}, c.end
			}
		}
		c, ok := <-p.order
		if !ok {
			return migrate.Record{}, io.EOF
		}
		<-c.done
		if p.cur != nil {
			select {
			case p.free <- p.cur:
			default:
			}
		}
		p.cur, p.i = c, 0
	}
}

// Close stops the goroutines, then closes the input.
func (p *parallelReader) Close() error {
	p.once.Do(func() { close(p.quit) })
	p.wg.Wait()
	return p.rd.Close()
}

// decodeWorkers is how many goroutines decode an export: one a core (with
// one core, Reader decodes on the caller's goroutine).
func decodeWorkers() int { return runtime.GOMAXPROCS(0) }
