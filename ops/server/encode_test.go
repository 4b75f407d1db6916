package server

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/engram-ops/engram-ops/ops/api"
)

// TestEncodeJSONTakesTheAppendPathAndFallsBack: a response with AppendJSON
// is written byte for byte as encoding/json writes it, and one AppendJSON
// refuses still gets encoding/json's error (writeJSON turns it into a 500).
func TestEncodeJSONTakesTheAppendPathAndFallsBack(t *testing.T) {
	resp := api.RecallResponse{
		Memories:      api.RecallGroups{Vivid: []api.RecalledMemory{{ID: "m1", Content: "a <b> & c", ObservedAt: time.Unix(1700000000, 5).UTC(), Tags: []string{}}}},
		SystemMessage: "ok",
	}
	var got, want bytes.Buffer
	if err := encodeJSON(&got, resp); err != nil {
		t.Fatal(err)
	}
	if err := json.NewEncoder(&want).Encode(resp); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Fatalf("got  %s\nwant %s", got.Bytes(), want.Bytes())
	}
	resp.Metadata.TookMS = math.NaN()
	got.Reset()
	if err := encodeJSON(&got, resp); err == nil {
		t.Fatalf("a NaN was encoded: %s", got.Bytes())
	}
}
