package neo4j

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"testing"

	"github.com/engram-ops/engram-ops/migrate"
)

// FuzzReader: any bytes read as records or bad records (never a panic or a
// fatal error), line numbers only grow, reopening at any record's cursor
// yields exactly the records that followed it, and the parallel decode
// yields what Reader does.
func FuzzReader(f *testing.F) {
	f.Add([]byte(`{"type":"node","id":"0","labels":["User"],"properties":{"a":[1,2.5,null,{"b":"c"}]}}` + "\n" +
		`{"type":"relationship","id":"0","label":"KNOWS","properties":{},"start":{"id":"0","labels":["User"]},"end":{"id":"1","labels":[]}}`))
	f.Add([]byte("{\"type\":\"node\",\"id\":1}\r\n\n{bad\n"))
	f.Add([]byte(`{"type":"node","id":"1","properties":{"x":1e999}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		read := func(off int64, line int64) ([]string, []string) {
			rd := NewReader(bytes.NewReader(data[off:]), line, off)
			var keys, cursors []string
			for {
				rec, err := rd.Next()
				if err == io.EOF {
					return keys, cursors
				}
				var bad *migrate.BadRecordError
				if errors.As(err, &bad) {
					keys = append(keys, "bad:"+bad.Position)
					cursors = append(cursors, bad.Cursor)
					continue
				}
				if err != nil {
					t.Fatalf("fatal error on in-memory input: %v", err)
				}
				keys = append(keys, rec.Object+"/"+rec.Key+"@"+rec.Position)
				cursors = append(cursors, rec.Cursor)
			}
		}
		keys, cursors := read(0, 0)
		// Decoded on several goroutines: the same results in the same order.
		par := newParallelReader(NewReader(bytes.NewReader(data), 0, 0), 2)
		defer par.Close()
		if got, want := readAll(par, 1<<20), readAll(NewReader(bytes.NewReader(data), 0, 0), 1<<20); !reflect.DeepEqual(got, want) {
			t.Fatalf("decoded in parallel: %+v\nReader: %+v", got, want)
		}
		for i, c := range cursors {
			var line, off int64
			if _, err := fmtSscan(c, &line, &off); err != nil {
				t.Fatalf("cursor %q: %v", c, err)
			}
			rest, _ := read(off, line)
			if len(rest) != len(keys)-i-1 {
				t.Fatalf("resuming at %s yields %d records, want %d", c, len(rest), len(keys)-i-1)
			}
			for j := range rest {
				if rest[j] != keys[i+1+j] {
					t.Fatalf("resuming at %s: record %d is %s, want %s", c, j, rest[j], keys[i+1+j])
				}
			}
		}
	})
}

// FuzzParse: the one-pass line decoder gives exactly what the two-pass one
// gives, records and errors alike.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"type":"node","id":"0","labels":["User","Admin"],"properties":{"a":[1,2.5,null,{"b":"c"}],"n":12345678901234567}}`))
	f.Add([]byte(`{"type":"relationship","id":7,"label":"KNOWS","properties":null,"start":{"id":"0","labels":["User"]},"end":{"id":"1","labels":[]}}`))
	f.Add([]byte(`{"type":"node","id":"a\u00e9\xff","properties":[1]}`))
	f.Add([]byte(`{"type":"node","id":"1","properties":{"x":1e999}} {}`))
	f.Add([]byte(`{"type":"node","id":"1","id":null,"properties":{},"properties":"x"}`))
	f.Add([]byte(`null`))
	f.Add([]byte("{\"type\":\"node\",\"id\":\"1\"} x\n{\"type\":\"node\",\"id\":\"2\"}\n{\"type\":\"node\",\"id\":3}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		// One reader for all lines: its decoder is reused from line to
		// line.
		rd := NewReader(bytes.NewReader(nil), 3, 100)
		keys := NewReader(bytes.NewReader(nil), 3, 100)
		keys.keysOnly = true
		for _, line := range bytes.Split(data, []byte("\n")) {
			got, gotErr := rd.parse(line)
			want, wantErr := rd.parseSlow(line)
			if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
				t.Fatalf("line %q: error %v, want %v", line, gotErr, wantErr)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("line %q: record %#v, want %#v", line, got, want)
			}
			// Names only: the same record with nil values.
			k, kErr := keys.parse(line)
			if fmt.Sprint(kErr) != fmt.Sprint(wantErr) {
				t.Fatalf("line %q: keys-only error %v, want %v", line, kErr, wantErr)
			}
			if kErr == nil {
				for f := range want.Fields {
					want.Fields[f] = nil
				}
			}
			if !reflect.DeepEqual(k, want) {
				t.Fatalf("line %q: keys-only record %#v, want %#v", line, k, want)
			}
		}
	})
}

func fmtSscan(c string, line, off *int64) (int, error) { return fmt.Sscanf(c, "%d:%d", line, off) }
