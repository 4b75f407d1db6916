package neo4j

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/engram-ops/engram-ops/migrate"
	"github.com/engram-ops/engram-ops/migrate/neo4j/neo4jtest"
)

// step is one Next result, compared between the readers.
type step struct {
	rec migrate.Record
	err string
}

func readAll(it migrate.RecordIterator, limit int) []step {
	var out []step
	for len(out) < limit {
		rec, err := it.Next()
		s := step{rec: rec}
		if err != nil {
			s.err = fmt.Sprintf("%T %v", err, err)
			var bad *migrate.BadRecordError
			if errors.As(err, &bad) {
				s.err = fmt.Sprintf("bad %+v", *bad)
			}
		}
		out = append(out, s)
		if err != nil && s.err[:3] != "bad" {
			break
		}
	}
	return out
}

// The export decoded on several goroutines yields what Reader yields, in
// the same order: records, bad lines with their numbers and cursors,
// blank lines skipped, across chunk boundaries, from the start and from a
// cursor, with Fields as Objects and as Run see them.
func TestParallelReaderAsReader(t *testing.T) {
	var b bytes.Buffer
	if _, err := neo4jtest.Write(&b, 700); err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(b.String(), "\n")
	// Bad, blank and CRLF lines spread over several chunks.
	for i := 3; i < len(lines); i += 97 {
		lines[i] = []string{"{bad\n", "\n", "  \r\n", `{"type":"node","id":"x` + fmt.Sprint(i) + `"}` + "\r\n", `{"type":"edge","id":"1"}` + "\n"}[i%5]
	}
	data := []byte(strings.Join(lines, "") + `{"type":"node","id":"last"}`) // no final newline
	for _, keysOnly := range []bool{false, true} {
		for _, from := range []struct{ line, off int64 }{{0, 0}, {250, int64(len(strings.Join(lines[:250], "")))}} {
			seq := NewReader(bytes.NewReader(data[from.off:]), from.line, from.off)
			seq.keysOnly = keysOnly
			want := readAll(seq, 1<<20)
			rd := NewReader(bytes.NewReader(data[from.off:]), from.line, from.off)
			rd.keysOnly = keysOnly
			p := newParallelReader(rd, 3)
			got := readAll(p, 1<<20)
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) || len(want) < 1000 {
				t.Fatalf("keysOnly %v from line %d: %d results, Reader %d", keysOnly, from.line, len(got), len(want))
			}
			for i := range want {
				if !reflect.DeepEqual(got[i], want[i]) {
					t.Fatalf("keysOnly %v from line %d: result %d is %+v, Reader's %+v", keysOnly, from.line, i, got[i], want[i])
				}
			}
		}
	}
}

// A read error ends the stream after the lines before it, as with Reader;
// Close stops the goroutines of a reader left midway.
func TestParallelReaderErrorAndClose(t *testing.T) {
	var b bytes.Buffer
	if _, err := neo4jtest.Write(&b, 2000); err != nil {
		t.Fatal(err)
	}
	in := func() io.Reader {
		return io.MultiReader(bytes.NewReader(b.Bytes()[:b.Len()/2]), iotest.ErrReader(errors.New("disk gone")))
	}
	want := readAll(NewReader(in(), 0, 0), 1<<20)
	p := newParallelReader(NewReader(in(), 0, 0), 2)
	got := readAll(p, 1<<20)
	p.Close()
	if !reflect.DeepEqual(got, want) || !strings.Contains(got[len(got)-1].err, "disk gone") {
		t.Fatalf("%d results ending %+v; Reader: %d ending %+v", len(got), got[len(got)-1], len(want), want[len(want)-1])
	}
	if rec, err := p.Next(); err == nil || !strings.Contains(err.Error(), "disk gone") {
		t.Fatalf("after the error: %+v %v", rec, err)
	}

	p = newParallelReader(NewReader(bytes.NewReader(b.Bytes()), 0, 0), 2)
	if got := readAll(p, 10); len(got) != 10 || got[9].err != "" {
		t.Fatalf("%+v", got)
	}
	done := make(chan error)
	go func() { done <- p.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close of a reader left midway did not return")
	}
}
