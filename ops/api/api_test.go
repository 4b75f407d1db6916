package api

import (
	"encoding/json"
	"testing"
)

func TestCategory(t *testing.T) {
	for v, want := range map[float64]string{1: "High", 0.71: "High", 0.7: "Medium", 0.41: "Medium", 0.4: "Low", 0: "Low"} {
		if got := Category(v); got != want {
			t.Errorf("Category(%v) = %s, want %s", v, got, want)
		}
	}
}

func TestBodySpace(t *testing.T) {
	if s := (SpaceFields{MemorySpaceID: " a ", Space: "b"}).BodySpace(); s != "a" {
		t.Errorf("memory_space_id must win: %q", s)
	}
	if s := (SpaceFields{Space: "b"}).BodySpace(); s != "b" {
		t.Errorf("space: %q", s)
	}
}

// TestIDsAreStrings: ids are JSON strings everywhere.
func TestIDsAreStrings(t *testing.T) {
	b, _ := json.Marshal(RememberResponse{MemoryID: "123"})
	var m map[string]any
	json.Unmarshal(b, &m)
	if _, ok := m["memory_id"].(string); !ok {
		t.Errorf("memory_id is not a string: %s", b)
	}
}
