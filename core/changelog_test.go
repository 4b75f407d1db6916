package core_test

import (
	"testing"
	"time"

	"github.com/engram-ops/engram-ops/core"
)

func TestChangeLogRetentionKeepsHoldAndNewest(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	opts := func(o *core.Options) { o.Now = clock; o.ChangeLog.Retention = time.Hour }
	e := open(t, dir, opts)
	for i := range 10 { // sequence 1 creates the space; memories are 2..11, a minute apart
		remember(t, e, "default", facts[i%len(facts)])
		now = now.Add(time.Minute)
	}
	now = now.Add(time.Hour) // all ten are now older than the retention
	e.HoldChangeLog(4)       // a consumer still needs 4 onwards
	if n, err := e.ApplyChangeLogRetention(); err != nil || n != 3 {
		t.Fatalf("retention with hold 4: removed %d (%v), want 3", n, err)
	}
	if first, last := e.ChangeLogRange(); first != 4 || last != 11 {
		t.Fatalf("range %d..%d, want 4..11", first, last)
	}
	if _, err := e.ChangesSince(1, 0); core.CodeOf(err) != "CHANGE_LOG_TRUNCATED" {
		t.Fatalf("reading removed entries: %v", err)
	}
	if ch, err := e.ChangesSince(3, 0); err != nil || len(ch) != 8 || ch[0].Seq != 4 {
		t.Fatalf("reading from the hold: %d changes, %v", len(ch), err)
	}
	e.HoldChangeLog(0)
	if n, err := e.ApplyChangeLogRetention(); err != nil || n != 7 {
		t.Fatalf("retention without hold: removed %d (%v), want 7 (the newest stays)", n, err)
	}
	if first, last := e.ChangeLogRange(); first != 11 || last != 11 {
		t.Fatalf("range %d..%d, want 11..11", first, last)
	}
	// The data is untouched and the next sequence follows on, also after
	// a reopen.
	if st, _ := e.Space("default"); st.Total() != 10 {
		t.Fatalf("memories after truncation: %d", st.Total())
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e = open(t, dir, opts)
	defer e.Close()
	if first, last := e.ChangeLogRange(); first != 11 || last != 11 {
		t.Fatalf("after reopen: range %d..%d, want 11..11", first, last)
	}
	res := remember(t, e, "default", "one more")
	if res.Seq != 12 {
		t.Fatalf("next sequence %d, want 12", res.Seq)
	}
	if _, err := e.ChangesSince(5, 0); core.CodeOf(err) != "CHANGE_LOG_TRUNCATED" {
		t.Fatalf("after reopen, reading removed entries: %v", err)
	}
}
