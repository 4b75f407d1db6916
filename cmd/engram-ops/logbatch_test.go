package main

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// countingWriter records each write separately.
type countingWriter struct {
	mu     sync.Mutex
	writes []string
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes = append(c.writes, string(p))
	return len(p), nil
}

func (c *countingWriter) snapshot() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.writes...)
}

func TestLineBatcherWritesABatchAfterTheInterval(t *testing.T) {
	w := &countingWriter{}
	b := newLineBatcher(w, 50*time.Millisecond)
	defer b.Close()
	for i := range 100 {
		fmt.Fprintf(b, "access %d\n", i)
	}
	if got := w.snapshot(); len(got) != 0 {
		t.Fatalf("lines written before the interval: %d writes", len(got))
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(w.snapshot()) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	got := w.snapshot()
	if len(got) != 1 || strings.Count(got[0], "\n") != 100 || !strings.HasPrefix(got[0], "access 0\n") || !strings.HasSuffix(got[0], "access 99\n") {
		t.Fatalf("want the 100 lines in order in one write, got %d writes: %q", len(got), got)
	}
	// The timer re-arms for the next batch.
	fmt.Fprintf(b, "access 100\n")
	for len(w.snapshot()) == 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := w.snapshot(); len(got) != 2 || got[1] != "access 100\n" {
		t.Fatalf("second batch: %q", got)
	}
}

func TestLineBatcherImmediateLinesKeepTheOrder(t *testing.T) {
	w := &countingWriter{}
	b := newLineBatcher(w, time.Hour)
	defer b.Close()
	im := b.Immediate()
	fmt.Fprint(im, "serving\n") // nothing held: written alone
	fmt.Fprint(b, "access 1\n")
	fmt.Fprint(b, "access 2\n")
	fmt.Fprint(im, "warn\n") // takes the held lines with it, after them
	fmt.Fprint(b, "access 3\n")
	want := []string{"serving\n", "access 1\naccess 2\nwarn\n"}
	if got := w.snapshot(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("writes %q, want %q", got, want)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(b, "after close\n") // written through
	want = append(want, "access 3\n", "after close\n")
	if got := w.snapshot(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("writes %q, want %q", got, want)
	}
}

func TestLineBatcherBoundsWhatItHolds(t *testing.T) {
	w := &countingWriter{}
	b := newLineBatcher(w, time.Hour)
	defer b.Close()
	line := strings.Repeat("x", 1023) + "\n"
	for range maxLogBatch / len(line) {
		fmt.Fprint(b, line)
	}
	got := w.snapshot()
	if len(got) != 1 || len(got[0]) != maxLogBatch {
		t.Fatalf("a full batch must be written at once: %d writes", len(got))
	}
}

func TestLineBatcherConcurrentWritersLoseNothing(t *testing.T) {
	var out bytes.Buffer
	var mu sync.Mutex
	w := writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return out.Write(p) })
	b := newLineBatcher(w, time.Millisecond)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				if i%50 == 0 {
					fmt.Fprintf(b.Immediate(), "g%d i%d\n", g, i)
				} else {
					fmt.Fprintf(b, "g%d i%d\n", g, i)
				}
			}
		}()
	}
	wg.Wait()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 8*500 {
		t.Fatalf("%d lines, want %d", len(lines), 8*500)
	}
	next := map[string]int{}
	for _, l := range lines {
		var g, i int
		if _, err := fmt.Sscanf(l, "g%d i%d", &g, &i); err != nil {
			t.Fatalf("torn line %q", l)
		}
		if k := fmt.Sprint(g); i != next[k] {
			t.Fatalf("goroutine %d: line %d after %d", g, i, next[k]-1)
		} else {
			next[k]++
		}
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
