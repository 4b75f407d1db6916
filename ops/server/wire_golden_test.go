package server

import (
	"bytes"
	"flag"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/engram-ops/engram-ops/ops/api"
	"github.com/engram-ops/engram-ops/ops/api/apijson"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// wireSamples are responses that exercise every encoding rule the wire
// depends on: HTML-safe and JS-safe escaping, invalid UTF-8, nil slices as
// null next to empty ones, omitempty on each kind of field, map key order,
// float64 and float32 in both notations, and times with zones.
func wireSamples() map[string]any {
	t0 := time.Date(2025, 1, 2, 15, 4, 5, 123456789, time.UTC)
	t1 := time.Date(2024, 12, 31, 23, 0, 0, 0, time.FixedZone("", 5*3600+30*60))
	f := func(v float64) *float64 { return &v }
	u := func(v uint64) *uint64 { return &v }
	yes := true
	vec := make([]float32, 768)
	for i := range vec {
		vec[i] = float32(math.Sin(float64(i)+0.5)) * 0.036
	}
	vec[0], vec[1], vec[2], vec[3], vec[4] = 1e-7, -2.5e21, 0, float32(math.Copysign(0, -1)), 1.0/3
	mem := func(id string) api.RecalledMemory {
		return api.RecalledMemory{
			ID: id, Content: "a <b> & \"c\"\n\u2028\u2029 é \xff",
			Confidence:      api.Confidence{Value: 0.75, Category: "High", Reasoning: "r"},
			ActivationLevel: 0.123456789012345, SimilarityScore: 1e-7, Retrievability: 1e21, StoredConfidence: 1,
			RetrievalPath: "direct", ObservedAt: t0, LastAccess: t1, Tags: []string{}, MemoryType: "semantic",
			Tier: "hot", RelevanceExplanation: "x",
		}
	}
	withPath := mem("m2")
	withPath.Path = []string{"m1", "m2"}
	withPath.Tags = nil
	withPath.Metadata = map[string]string{"z": "1", "a": "<2>", "m": ""}
	return map[string]any{
		"recall": api.RecallResponse{
			Memories: api.RecallGroups{
				Vivid:         []api.RecalledMemory{mem("m1"), withPath},
				Associated:    []api.RecalledMemory{},
				Reconstructed: nil,
			},
			RecallConfidence: api.Confidence{Value: 0.5, Category: "Medium"},
			QueryAnalysis:    api.QueryAnalysis{UnderstoodIntent: "vector", Suggestions: nil},
			Metadata:         api.RecallMetadata{TookMS: 0.0421, TotalMemoriesSearched: 20000, Activated: 3, Mode: "similarity", Space: "default", Deep: true, Returned: 2},
			SystemMessage:    "ok",
		},
		"recall_empty": api.RecallResponse{QueryAnalysis: api.QueryAnalysis{Suggestions: []string{"try <this>"}}},
		"remember": api.RememberResponse{
			MemoryID: "m1", StorageConfidence: api.Confidence{Value: 0.9, Category: "High"}, ConsolidationState: "Recent",
			ObservedAt: t1, StoredAt: t0, Links: api.Links{Self: "/api/v1/memories/m1"},
			AutoLinks: []api.AutoLink{{TargetMemoryID: "m0", SimilarityScore: 0.91}}, Created: true, Sequence: 42, Space: "default",
		},
		"remember_nil_links": api.RememberResponse{MemoryID: "m1", ObservedAt: t0, StoredAt: t0},
		"list_vectors": api.ListResponse{
			Memories: []api.ListedMemory{
				{ID: "a", Content: "x", Confidence: 0.5, Timestamp: t0, Tags: nil, Tier: "hot", Embedding: vec},
				{ID: "b", Content: "y", Timestamp: t1, Tags: []string{"t"}, Tier: "warm", Embedding: []float32{}},
				{ID: "c", Timestamp: t0, Tier: "cold"},
			},
			Count: 3, Pagination: api.Pagination{Limit: 10, Returned: 3, HasMore: true},
			TierCounts: api.TierCounts{Hot: 1, Warm: 1, Cold: 1, Total: 3},
		},
		"list_empty": api.ListResponse{Memories: nil, SystemMessage: "capped"},
		"memory": api.Memory{
			ID: "m1", Content: "c", Confidence: 0.5, Timestamp: t0, Tags: []string{"a"}, Metadata: map[string]string{"k": "v"},
			Episode:    &api.Episode{When: t1, What: "w", Who: []string{"me"}, Importance: f(0.25)},
			ObservedAt: t0, StoredAt: t0, LastAccess: t0, AccessCount: 3, StabilityHours: 24.5, Retrievability: 0.999,
			Tier: "hot", Sequence: 7, Space: "s", Embedding: []float32{0.1, -0.2, 3e-8},
		},
		"error": envelope(400, api.ErrorBody{Code: "INVALID_FIELD_TYPE", Message: "field \"<x>\" must be a number",
			Details: map[string]any{"field": "memories[3].embedding", "offset": int64(17), "limit": 1 << 20, "ratio": 0.5,
				"accepted": []string{"a", "b"}, "none": []string(nil), "nested": map[string]any{"b": 1, "a": nil}}}),
		"error_no_details": envelope(404, api.ErrorBody{Code: "NOT_FOUND", Message: "memory \"x\" not found"}),
		"health":           api.Health{Status: "healthy", Service: api.ServiceName, Version: "v1.2.3", Timestamp: t0, Implementation: api.Implementation},
		"health_unhealthy": api.Health{Status: "unhealthy", Service: api.ServiceName, Timestamp: t0, Implementation: api.Implementation,
			Error: &api.ErrorBody{Code: "ENGINE_CLOSED", Message: "closed"}},
		"probe": api.Probe{Status: "ready"},
		"system_health": api.SystemHealth{
			Status: "degraded", Timestamp: t0, Version: "v", UptimeSeconds: 12.5,
			Checks: []api.HealthCheck{{Name: "disk", Status: "degraded", Message: "m", LatencySeconds: 1e-6,
				Figures: map[string]float64{"free_bytes": 1e10, "ratio": 0.05}}, {Name: "wal", Status: "healthy"}},
			Spaces:    nil,
			Changelog: api.ChangelogState{Sequence: 9},
			Backup:    api.BackupState{Configured: true, ShippedSequence: u(8), LagSequences: u(1), LagSeconds: f(2.5), LastSuccess: &t1},
		},
		"spaces": api.SpacesResponse{Spaces: []api.Space{
			{ID: "default", Dimension: 768, Embedder: "none", CreatedAt: t0, Created: &yes},
			{ID: "b", CreatedAt: t1},
		}},
		"batch":       api.BatchResponse{MemoryIDs: nil, Associations: 0, Sequence: 1, Space: "s"},
		"search":      api.SearchResponse{Memories: []api.SearchHit{{ID: "a", Timestamp: t0, Tags: nil}}, Total: 1},
		"forget":      api.ForgetResponse{Status: "forgotten", MemoryID: "m", Space: "s", Sequence: 3},
		"association": api.AssociationResponse{Status: "associated", From: "a", To: "b", Weight: 0.7, Space: "s"},
		"backup":      api.BackupSnapshotResponse{ID: "snap", Sequence: 5, Target: "file:///x", Seconds: 0.001},
	}
}

// TestWireGolden: every response is written byte for byte as the golden
// files hold it, so a change of encoder cannot change the wire.
func TestWireGolden(t *testing.T) {
	for name, v := range wireSamples() {
		var buf bytes.Buffer
		if err := apijson.Encode(&buf, v); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		path := filepath.Join("testdata", "wire", name+".json")
		if *update {
			if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%s: %v (run with -update to create)", name, err)
		}
		if !bytes.Equal(buf.Bytes(), want) {
			t.Errorf("%s: bytes differ\ngot  %s\nwant %s", name, buf.Bytes(), want)
		}
	}
	// A value with no JSON form is an error (writeJSON answers 500).
	var buf bytes.Buffer
	if err := apijson.Encode(&buf, api.RecallResponse{Metadata: api.RecallMetadata{TookMS: math.NaN()}}); err == nil {
		t.Errorf("a NaN was encoded: %s", buf.Bytes())
	}
}
