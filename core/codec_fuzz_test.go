package core

import (
	"bytes"
	"testing"
	"time"
)

func sampleChanges() []Change {
	now := time.Date(2026, 3, 4, 5, 6, 7, 8, time.UTC)
	imp := 0.8
	return []Change{
		{Seq: 1, Time: now, Op: OpCreateSpace, Space: "default", SpaceInfo: &SpaceInfo{Name: "default", Dimension: 4, Embedder: "hash", Fingerprint: "hash-v1/4", CreatedAt: now}},
		{Seq: 2, Time: now, Op: OpPutMemory, Space: "default", Memory: &Memory{ID: "m1", Content: "hello", Embedding: []float32{1, 0, 0.5, -1}, Confidence: 0.7, Type: Episodic,
			Tags: []string{"a", "b"}, Metadata: map[string]string{"k": "v"}, ObservedAt: now, StoredAt: now, LastAccess: now, Stability: time.Hour, Tier: TierWarm,
			Episode: &Episode{When: now, What: "hello", Who: []string{"x"}, Importance: &imp}}},
		{Seq: 3, Time: now, Op: OpDeleteMemory, Space: "default", ID: "m1"},
		{Seq: 4, Time: now, Op: OpPutAssociation, Space: "default", Association: &Association{From: "a", To: "b", Weight: 0.5, Kind: "related"}},
		{Seq: 5, Time: now, Op: OpSetCursor, Cursor: &Cursor{Source: "pg", Value: "42"}},
		{Seq: 6, Time: now, Op: OpTouch, Space: "default", Touches: []Touch{{ID: "m1", LastAccess: now, AccessCount: 3, Stability: 2 * time.Hour}}},
		{Seq: 7, Time: now, Op: OpSetSystem, System: &SystemRecord{Key: "apikey/k1", Value: []byte(`{"id":"k1"}`)}},
		{Seq: 8, Time: now, Op: OpSetSystem, System: &SystemRecord{Key: "apikey/k1"}},
	}
}

func TestChangeRoundTrip(t *testing.T) {
	for _, c := range sampleChanges() {
		b := EncodeChange(&c)
		got, err := DecodeChange(b)
		if err != nil {
			t.Fatalf("%v: %v", c.Op, err)
		}
		if !bytes.Equal(EncodeChange(&got), b) {
			t.Fatalf("%v: re-encoding differs", c.Op)
		}
		if got.Seq != c.Seq || got.Op != c.Op || !got.Time.Equal(c.Time) {
			t.Fatalf("%v: header %+v", c.Op, got)
		}
		// Every strict prefix is an error, never a panic or a silent success.
		for i := 0; i < len(b); i++ {
			if _, err := DecodeChange(b[:i]); err == nil {
				t.Fatalf("%v: truncated at %d decoded without error", c.Op, i)
			}
		}
	}
	newer := EncodeChange(&sampleChanges()[0])
	newer[0] = 9
	if _, err := DecodeChange(newer); CodeOf(err) != "UNSUPPORTED_FORMAT" {
		t.Fatalf("newer version: %v", err)
	}
}

func FuzzDecodeChange(f *testing.F) {
	for _, c := range sampleChanges() {
		f.Add(EncodeChange(&c))
	}
	f.Add([]byte{})
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeChange(b)
		if err != nil {
			return
		}
		// What decodes re-encodes to a value that decodes identically.
		again, err := DecodeChange(EncodeChange(&c))
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if again.Seq != c.Seq || again.Op != c.Op {
			t.Fatalf("unstable decode")
		}
	})
}

func FuzzDecodeRecord(f *testing.F) {
	for _, c := range sampleChanges() {
		if c.Memory != nil {
			f.Add(encodeRecord(&record{Memory: *c.Memory, slot: 7}))
		}
	}
	f.Add(encodeVector([]float32{1, 2, 3}))
	f.Add(encodeQuantized([]int8{1, -2, 3}, 0.5))
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, err := decodeRecord(b, "default", "id"); err == nil {
			if _, err := decodeRecord(encodeRecord(r), "default", "id"); err != nil {
				t.Fatalf("re-decode: %v", err)
			}
		}
		if v, err := decodeVector(b); err == nil && v.f32 == nil && v.q == nil && len(b) > 3 {
			_ = v.dim()
		}
		_, _, _ = decodeAssoc(b)
	})
}
