package migrate

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/engram-ops/engram-ops/ops/client"
)

// sliceSource yields fixed records.
type sliceSource struct{ recs []Record }

func (s *sliceSource) Kind() string { return "test" }
func (s *sliceSource) Objects(context.Context) ([]Object, error) {
	return []Object{{Name: "T", Kind: Entity, Count: int64(len(s.recs)), Fields: []string{"v"}}}, nil
}
func (s *sliceSource) Open(_ context.Context, cursor string) (RecordIterator, error) {
	i := 0
	for i < len(s.recs) && cursor != "" && s.recs[i].Cursor <= cursor {
		i++
	}
	return &sliceIter{recs: s.recs[i:]}, nil
}

type sliceIter struct{ recs []Record }

func (it *sliceIter) Next() (Record, error) {
	if len(it.recs) == 0 {
		return Record{}, io.EOF
	}
	r := it.recs[0]
	it.recs = it.recs[1:]
	return r, nil
}
func (it *sliceIter) Close() error { return nil }

func testSource(n int) *sliceSource {
	s := &sliceSource{}
	for i := 0; i < n; i++ {
		k := string(rune('a' + i))
		s.recs = append(s.recs, Record{Object: "T", Key: k, Fields: map[string]any{"v": int64(i)}, Cursor: k, Position: "record " + k})
	}
	return s
}

// fakeServer answers the batch endpoint with the given statuses in turn
// (then 201), and everything else the way a fresh server does.
func fakeServer(t *testing.T, statuses ...int) (*client.Client, *atomic.Int64) {
	var batches atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.HasSuffix(r.URL.Path, "/batch/cursor"):
			w.WriteHeader(404)
			io.WriteString(w, `{"error":{"code":"CURSOR_NOT_FOUND","message":"no cursor"}}`)
		case r.URL.Path == "/api/v1/spaces":
			w.WriteHeader(201)
			io.WriteString(w, `{"id":"neo4j"}`)
		case strings.HasSuffix(r.URL.Path, "/memories/batch"):
			n := int(batches.Add(1)) - 1
			if n < len(statuses) {
				w.Header().Set("Retry-After", "0")
				w.WriteHeader(statuses[n])
				io.WriteString(w, `{"error":{"code":"INSUFFICIENT_STORAGE","message":"free disk 1 MiB is under the reserve 512 MiB"}}`)
				return
			}
			w.WriteHeader(201)
			io.WriteString(w, `{"memory_ids":[],"associations":0,"sequence":1,"space":"neo4j"}`)
		default:
			w.WriteHeader(404)
		}
	}))
	t.Cleanup(ts.Close)
	c, err := client.New(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	return c, &batches
}

func compileTest(t *testing.T, src Source) *Mapping {
	objs, _ := src.Objects(context.Background())
	m, err := Compile(nil, objs, "neo4j")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// 429 and 503 are retried with backoff; the run then completes.
func TestClientSinkRetries(t *testing.T) {
	c, batches := fakeServer(t, 429, 503, 429)
	var waits []time.Duration
	sink := &ClientSink{C: c, sleep: func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }}
	src := testSource(3)
	sum, err := Run(context.Background(), Options{Source: src, SourceName: "s", Mapping: compileTest(t, src), Sink: sink})
	if err != nil || sum.Memories != 3 || !sum.Complete {
		t.Fatalf("%+v %v", sum, err)
	}
	if batches.Load() != 4 || len(waits) != 3 {
		t.Fatalf("%d batch requests, %d waits", batches.Load(), len(waits))
	}
}

// 507 stops the run at once with the server's message.
func TestClientSink507Stops(t *testing.T) {
	c, batches := fakeServer(t, 507)
	sink := &ClientSink{C: c, sleep: func(context.Context, time.Duration) error { t.Fatal("507 was retried"); return nil }}
	src := testSource(3)
	_, err := Run(context.Background(), Options{Source: src, SourceName: "s", Mapping: compileTest(t, src), Sink: sink})
	var stop *StopError
	if !errors.As(err, &stop) || !strings.Contains(err.Error(), "free disk 1 MiB is under the reserve 512 MiB") {
		t.Fatalf("err %v", err)
	}
	if batches.Load() != 1 {
		t.Fatalf("%d batch requests", batches.Load())
	}
}

func TestTemplate(t *testing.T) {
	rec := &Record{Object: "User", Key: "7", Fields: map[string]any{"name": "ann", "n": int64(3), "m": map[string]any{"a": 1.5}, "l": []any{"x", nil}, "z": nil}}
	for src, want := range map[string]string{
		"{name} #{n}":          "ann #3",
		"{{{_object}}}:{_key}": "{User}:7",
		"{m.a} {m.b} {z}{l}":   `1.5  ["x",null]`,
		"{*}":                  "l: [\"x\",null]\nm: {\"a\":1.5}\nn: 3\nname: ann\nz: ",
	} {
		tm, err := parseTemplate(src)
		if err != nil {
			t.Fatal(err)
		}
		if got := tm.render(rec); got != want {
			t.Errorf("%q rendered %q, want %q", src, got, want)
		}
	}
	for _, bad := range []string{"{", "}", "{a", "{}", "{a..b}", "x{a{b}}"} {
		if _, err := parseTemplate(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}
