// Package api holds the JSON wire types of engram-ops' REST API: every
// request and response body, the error envelope, route paths and header
// names. The server (package ops/server) and the client (package ops/client) both
// use these types, so the shapes cannot drift apart.
//
// Shapes follow Engram's server (see engram-rest-reference.md §2.2) where
// Engram has the endpoint; fields Engram does not have are additions, never
// renames. IDs are always JSON strings. Embeddings are []float32, written
// as arrays of numbers; the server also reads them as a base64 string of
// little-endian float32s (its codec lives in ops/server, not here).
// Numbers and booleans that are left out when zero are tagged omitzero,
// which encoding/json and go-json-experiment/json read the same way.
//
// This package imports only the standard library. It must not import core,
// net/http handlers, Prometheus or cobra: it is pure data.
package api

import (
	"strings"
	"time"
)

// Header and query names.
const (
	// HeaderSpace selects the memory space (Engram's routing header).
	HeaderSpace = "X-Memory-Space"
	// DefaultSpace is used when no space is given.
	DefaultSpace = "default"
	// ServiceName is reported by GET /health, as Engram does.
	ServiceName = "engram"
	// Implementation is GET /health's implementation field, which Engram
	// lacks: it tells the two servers apart (loadtest --target-kind auto).
	Implementation = "engram-ops"
)

// Route paths.
const (
	PathRemember     = "/api/v1/memories/remember"
	PathMemories     = "/api/v1/memories" // POST alias of remember; GET lists
	PathMemory       = "/api/v1/memories/{id}"
	PathBatch        = "/api/v1/memories/batch"
	PathBatchCursor  = "/api/v1/memories/batch/cursor"
	PathRecall       = "/api/v1/memories/recall"
	PathSearch       = "/api/v1/memories/search"
	PathEpisodes     = "/api/v1/episodes/remember"
	PathAssociations = "/api/v1/associations"
	PathSpaces       = "/api/v1/spaces"
	PathSpace        = "/api/v1/spaces/{name}"
	PathHealth       = "/health"
	PathHealthAlive  = "/health/alive"
	PathHealthReady  = "/health/ready"
	PathSystemHealth = "/api/v1/system/health"
	PathMetrics      = "/metrics"
	PathMetricsProm  = "/metrics/prometheus" // Engram's alias
	// PathAdminBackup: POST takes a snapshot of the running server to its
	// shipping target, GET reports shipping status.
	PathAdminBackup = "/api/v1/admin/backup"
	// PathAdminAPIKeys: GET lists keys (never secrets), POST creates one
	// (the token is in the answer only); PathAdminAPIKey DELETE revokes;
	// PathAdminAPIKeyRotate POST rotates with an overlap.
	PathAdminAPIKeys      = "/api/v1/admin/apikeys"
	PathAdminAPIKey       = "/api/v1/admin/apikeys/{id}"
	PathAdminAPIKeyRotate = "/api/v1/admin/apikeys/{id}/rotate"
	// PathOpenAPI is the OpenAPI 3.1 document of this API; PathDocs is a
	// page browsing it, with its assets under PathDocsAsset.
	PathOpenAPI   = "/api-docs/openapi.json"
	PathDocs      = "/docs"
	PathDocsAsset = "/docs/{asset}"
)

// ErrorEnvelope is the body of every error response: Engram's envelope,
// {"error":{…},"documentation":{…}}.
type ErrorEnvelope struct {
	Error         ErrorBody  `json:"error"`
	Documentation *ErrorDocs `json:"documentation,omitempty"`
}

// ErrorBody names the problem: a stable machine code, a message naming the
// problem and the limit, and structured details. educational_context
// (what the code means) and cognitive_guidance (how to fix it) are
// Engram's envelope fields; engram_code is the code Engram's server
// answers the same failure with, when it has one.
type ErrorBody struct {
	Code               string         `json:"code"`
	Message            string         `json:"message"`
	EducationalContext string         `json:"educational_context,omitempty"`
	CognitiveGuidance  string         `json:"cognitive_guidance,omitempty"`
	EngramCode         string         `json:"engram_code,omitempty"`
	Details            map[string]any `json:"details,omitempty"`
}

// ErrorDocs is the envelope's documentation object: Engram's keys, and the
// entry of the error's code in the error code reference.
type ErrorDocs struct {
	APIGuide       string `json:"api_guide"`
	MemoryConcepts string `json:"memory_concepts"`
	Examples       string `json:"examples"`
	ErrorCode      string `json:"error_code"`
}

// Confidence is Engram's confidence object.
type Confidence struct {
	Value     float64 `json:"value"`
	Category  string  `json:"category"`
	Reasoning string  `json:"reasoning"`
}

// Category is Engram's confidence category: above 0.7 High, above 0.4
// Medium, otherwise Low.
func Category(v float64) string {
	switch {
	case v > 0.7:
		return "High"
	case v > 0.4:
		return "Medium"
	}
	return "Low"
}

// SpaceFields are the body fields Engram clients use to pick a space on
// writes. The X-Memory-Space header wins over all; memory_space_id wins
// over space. memory_space is an alias of memory_space_id (Engram's docs
// use both names); the server folds it into MemorySpaceID.
type SpaceFields struct {
	MemorySpaceID string `json:"memory_space_id,omitempty"`
	MemorySpace   string `json:"memory_space,omitempty"`
	Space         string `json:"space,omitempty"`
}

// BodySpace returns the space named in the body, if any.
func (s SpaceFields) BodySpace() string {
	if v := strings.TrimSpace(s.MemorySpaceID); v != "" {
		return v
	}
	if v := strings.TrimSpace(s.MemorySpace); v != "" {
		return v
	}
	return strings.TrimSpace(s.Space)
}

// RememberRequest is the body of POST /api/v1/memories/remember.
type RememberRequest struct {
	ID                  string            `json:"id,omitempty"`
	Content             string            `json:"content"`
	Embedding           []float32         `json:"embedding,omitempty"`
	Confidence          *float64          `json:"confidence,omitempty"`
	ConfidenceReasoning string            `json:"confidence_reasoning,omitempty"`
	Tags                []string          `json:"tags,omitempty"`
	MemoryType          string            `json:"memory_type,omitempty"`
	Timestamp           *time.Time        `json:"timestamp,omitempty"`
	Metadata            map[string]string `json:"metadata,omitempty"`
	AutoLink            bool              `json:"auto_link,omitzero"`
	LinkThreshold       *float64          `json:"link_threshold,omitempty"`
	SpaceFields
}

// EpisodeRequest is Engram's episode shape (POST /api/v1/episodes/remember).
// importance becomes the memory's confidence; what becomes its content.
// where and confidence are the names Engram's README, quickstart and demo
// send: aliases of where_location and importance, folded into them by the
// server.
type EpisodeRequest struct {
	ID               string            `json:"id,omitempty"`
	When             *time.Time        `json:"when"`
	What             string            `json:"what"`
	WhereLocation    string            `json:"where_location,omitempty"`
	Where            string            `json:"where,omitempty"`
	Confidence       *float64          `json:"confidence,omitempty"`
	Who              []string          `json:"who,omitempty"`
	Why              string            `json:"why,omitempty"`
	How              string            `json:"how,omitempty"`
	Embedding        []float32         `json:"embedding,omitempty"`
	EmotionalValence *float64          `json:"emotional_valence,omitempty"`
	Importance       *float64          `json:"importance,omitempty"`
	Tags             []string          `json:"tags,omitempty"`
	Metadata         map[string]string `json:"metadata,omitempty"`
	AutoLink         bool              `json:"auto_link,omitzero"`
	LinkThreshold    *float64          `json:"link_threshold,omitempty"`
	SpaceFields
}

// AutoLink is an association created by auto-linking on remember.
type AutoLink struct {
	TargetMemoryID  string  `json:"target_memory_id"`
	SimilarityScore float64 `json:"similarity_score"`
}

// RememberResponse is the 201 body of remember and episode writes.
type RememberResponse struct {
	MemoryID           string     `json:"memory_id"`
	StorageConfidence  Confidence `json:"storage_confidence"`
	ConsolidationState string     `json:"consolidation_state"`
	ObservedAt         time.Time  `json:"observed_at"`
	StoredAt           time.Time  `json:"stored_at"`
	Links              Links      `json:"links"`
	AutoLinks          []AutoLink `json:"auto_links"`
	// Created is false when an existing id was overwritten.
	Created bool `json:"created"`
	// Sequence is the change-log sequence of the write.
	Sequence      uint64 `json:"sequence"`
	Space         string `json:"space"`
	SystemMessage string `json:"system_message"`
}

// Links are related resources of a written memory.
type Links struct {
	Self string `json:"self"`
}

// AssociationRequest is the body of POST /api/v1/associations and one
// element of a batch's associations.
type AssociationRequest struct {
	From   string  `json:"from"`
	To     string  `json:"to"`
	Weight float64 `json:"weight"`
	Kind   string  `json:"kind,omitempty"`
	SpaceFields
}

// AssociationResponse is the 201 body of POST /api/v1/associations.
type AssociationResponse struct {
	Status   string  `json:"status"` // "associated"
	From     string  `json:"from"`
	To       string  `json:"to"`
	Weight   float64 `json:"weight"`
	Kind     string  `json:"kind"`
	Space    string  `json:"space"`
	Sequence uint64  `json:"sequence"`
}

// Cursor is an importer's resume position.
type Cursor struct {
	Source string `json:"source"`
	Value  string `json:"value"`
}

// BatchAssociation is one association inside a batch.
type BatchAssociation struct {
	From   string  `json:"from"`
	To     string  `json:"to"`
	Weight float64 `json:"weight"`
	Kind   string  `json:"kind,omitempty"`
}

// BatchRequest is the body of POST /api/v1/memories/batch: memories and
// associations written atomically, with an optional cursor stored in the
// same atomic write. Per-memory space fields are not allowed: a batch
// targets one space.
type BatchRequest struct {
	Memories     []BatchMemory      `json:"memories"`
	Associations []BatchAssociation `json:"associations,omitempty"`
	Cursor       *Cursor            `json:"cursor,omitempty"`
	SpaceFields
}

// BatchMemory is one memory of a batch (the remember shape without space
// fields).
type BatchMemory struct {
	ID                  string            `json:"id,omitempty"`
	Content             string            `json:"content"`
	Embedding           []float32         `json:"embedding,omitempty"`
	Confidence          *float64          `json:"confidence,omitempty"`
	ConfidenceReasoning string            `json:"confidence_reasoning,omitempty"`
	Tags                []string          `json:"tags,omitempty"`
	MemoryType          string            `json:"memory_type,omitempty"`
	Timestamp           *time.Time        `json:"timestamp,omitempty"`
	Metadata            map[string]string `json:"metadata,omitempty"`
}

// BatchResponse is the 201 body of a batch.
type BatchResponse struct {
	MemoryIDs    []string `json:"memory_ids"`
	Associations int      `json:"associations"`
	Sequence     uint64   `json:"sequence"`
	Space        string   `json:"space"`
}

// CursorResponse is the body of GET /api/v1/memories/batch/cursor.
type CursorResponse = Cursor

// RecallRequest is the body of POST /api/v1/memories/recall; GET takes the
// same fields as query parameters (embedding as a JSON array string,
// required_tags comma-separated, times in RFC 3339).
//
// query (text) or embedding (vector of the space's dimension) is the cue.
// Zero values take the engine's defaults (max_results 10, mode hybrid, and a
// similarity threshold per cue kind). from_time/to_time bound
// observed_at; deep also searches the cold tier exactly; trace_activation
// adds each result's path; include_metadata adds each result's stored
// metadata map (the response's metadata block is always present).
// confidence_threshold (Engram's docs) is an alias of threshold;
// excluded_tags and location are accepted and not applied, as Engram does,
// and the answer's suggestions say so.
type RecallRequest struct {
	Query               string     `json:"query,omitempty"`
	Embedding           []float32  `json:"embedding,omitempty"`
	MaxResults          int        `json:"max_results,omitzero"`
	Threshold           float64    `json:"threshold,omitzero"`
	ConfidenceThreshold float64    `json:"confidence_threshold,omitzero"`
	ExcludedTags        []string   `json:"excluded_tags,omitempty"`
	Location            string     `json:"location,omitempty"`
	RequiredTags        []string   `json:"required_tags,omitempty"`
	FromTime            *time.Time `json:"from_time,omitempty"`
	ToTime              *time.Time `json:"to_time,omitempty"`
	Mode                string     `json:"mode,omitempty"` // similarity | spreading | hybrid
	TraceActivation     bool       `json:"trace_activation,omitzero"`
	Deep                bool       `json:"deep,omitzero"`
	IncludeMetadata     bool       `json:"include_metadata,omitzero"`
	SpaceFields
}

// RecallResponse is Engram's recall body with real values.
type RecallResponse struct {
	Memories         RecallGroups   `json:"memories"`
	RecallConfidence Confidence     `json:"recall_confidence"`
	QueryAnalysis    QueryAnalysis  `json:"query_analysis"`
	Metadata         RecallMetadata `json:"metadata"`
	SystemMessage    string         `json:"system_message"`
}

// RecallGroups groups results like Engram: vivid are direct matches,
// associated were reached by spreading activation. reconstructed is always
// empty (pattern completion is not part of recall).
type RecallGroups struct {
	Vivid         []RecalledMemory `json:"vivid"`
	Associated    []RecalledMemory `json:"associated"`
	Reconstructed []RecalledMemory `json:"reconstructed"`
}

// RecalledMemory is one recall result.
type RecalledMemory struct {
	ID                   string            `json:"id"`
	Content              string            `json:"content"`
	Confidence           Confidence        `json:"confidence"`
	ActivationLevel      float64           `json:"activation_level"`
	SimilarityScore      float64           `json:"similarity_score"`
	Retrievability       float64           `json:"retrievability"`
	StoredConfidence     float64           `json:"stored_confidence"`
	RetrievalPath        string            `json:"retrieval_path"`
	Path                 []string          `json:"path,omitempty"`
	ObservedAt           time.Time         `json:"observed_at"`
	LastAccess           time.Time         `json:"last_access"`
	Tags                 []string          `json:"tags"`
	MemoryType           string            `json:"memory_type"`
	Tier                 string            `json:"tier"`
	RelevanceExplanation string            `json:"relevance_explanation"`
	Metadata             map[string]string `json:"metadata,omitempty"`
}

// QueryAnalysis is Engram's query analysis block.
type QueryAnalysis struct {
	UnderstoodIntent string   `json:"understood_intent"`
	SearchStrategy   string   `json:"search_strategy"`
	CognitiveLoad    string   `json:"cognitive_load"`
	Suggestions      []string `json:"suggestions"`
}

// RecallMetadata reports what the recall did.
type RecallMetadata struct {
	TookMS                float64 `json:"took_ms"`
	TotalMemoriesSearched int     `json:"total_memories_searched"`
	Activated             int     `json:"activated"`
	Mode                  string  `json:"mode"`
	Space                 string  `json:"space"`
	Deep                  bool    `json:"deep"`
	Returned              int     `json:"returned"`
}

// SearchResponse is Engram's search body.
type SearchResponse struct {
	Memories []SearchHit `json:"memories"`
	Total    int         `json:"total"`
}

// SearchHit is one search result.
type SearchHit struct {
	ID              string    `json:"id"`
	Content         string    `json:"content"`
	Confidence      float64   `json:"confidence"`
	SimilarityScore float64   `json:"similarity_score"`
	MemoryType      string    `json:"memory_type"`
	Timestamp       time.Time `json:"timestamp"`
	Tags            []string  `json:"tags"`
}

// Episode holds the who/what/when fields of an episodic memory.
type Episode struct {
	When             time.Time `json:"when"`
	What             string    `json:"what"`
	WhereLocation    string    `json:"where_location,omitempty"`
	Who              []string  `json:"who,omitempty"`
	Why              string    `json:"why,omitempty"`
	How              string    `json:"how,omitempty"`
	EmotionalValence *float64  `json:"emotional_valence,omitempty"`
	Importance       *float64  `json:"importance,omitempty"`
}

// Memory is one stored memory (GET /api/v1/memories/{id}). The first five
// fields are Engram's shape; timestamp is observed_at.
type Memory struct {
	ID             string            `json:"id"`
	Content        string            `json:"content"`
	Confidence     float64           `json:"confidence"`
	Timestamp      time.Time         `json:"timestamp"`
	MemoryType     string            `json:"memory_type"`
	Tags           []string          `json:"tags"`
	Metadata       map[string]string `json:"metadata,omitempty"`
	Episode        *Episode          `json:"episode,omitempty"`
	ObservedAt     time.Time         `json:"observed_at"`
	StoredAt       time.Time         `json:"stored_at"`
	LastAccess     time.Time         `json:"last_access"`
	AccessCount    uint64            `json:"access_count"`
	StabilityHours float64           `json:"stability_hours"`
	Retrievability float64           `json:"retrievability"`
	Tier           string            `json:"tier"`
	Sequence       uint64            `json:"sequence"`
	Space          string            `json:"space"`
	Embedding      []float32         `json:"embedding,omitempty"`
}

// ListResponse is Engram's list body.
type ListResponse struct {
	Memories   []ListedMemory `json:"memories"`
	Count      int            `json:"count"`
	Pagination Pagination     `json:"pagination"`
	TierCounts TierCounts     `json:"tier_counts"`
	// SystemMessage says when the request's limit was above the maximum
	// and the page was capped (an addition to Engram's body).
	SystemMessage string `json:"system_message,omitempty"`
}

// ListedMemory is one element of a list page.
type ListedMemory struct {
	ID         string    `json:"id"`
	Content    string    `json:"content"`
	Confidence float64   `json:"confidence"`
	Timestamp  time.Time `json:"timestamp"`
	MemoryType string    `json:"memory_type"`
	Tags       []string  `json:"tags"`
	Tier       string    `json:"tier"`
	Embedding  []float32 `json:"embedding,omitempty"`
}

// Pagination describes a list page.
type Pagination struct {
	Offset   int  `json:"offset"`
	Limit    int  `json:"limit"`
	Returned int  `json:"returned"`
	HasMore  bool `json:"has_more"`
}

// TierCounts counts memories per tier.
type TierCounts struct {
	Hot   int64 `json:"hot"`
	Warm  int64 `json:"warm"`
	Cold  int64 `json:"cold"`
	Total int64 `json:"total"`
}

// ListOptions are the query parameters of GET /api/v1/memories.
type ListOptions struct {
	Tier              string // hot, warm, cold or all (default all)
	Offset            int
	Limit             int
	IncludeEmbeddings bool
}

// ForgetResponse is the body of DELETE /api/v1/memories/{id}.
type ForgetResponse struct {
	Status   string `json:"status"` // "forgotten"
	MemoryID string `json:"memory_id"`
	Space    string `json:"space"`
	Sequence uint64 `json:"sequence"`
}

// CreateSpaceRequest is the body of POST /api/v1/spaces.
type CreateSpaceRequest struct {
	ID        string `json:"id"`
	Dimension int    `json:"dimension,omitzero"`
	Embedder  string `json:"embedder,omitempty"`
}

// Space describes a space with its counts.
type Space struct {
	ID           string     `json:"id"`
	Dimension    int        `json:"dimension"`
	Embedder     string     `json:"embedder"`
	Fingerprint  string     `json:"embedder_fingerprint"`
	CreatedAt    time.Time  `json:"created_at"`
	Memories     TierCounts `json:"memories"`
	Associations int64      `json:"associations"`
	IndexPending int        `json:"index_pending"`
	// Created is set only in the response of POST /api/v1/spaces.
	Created *bool `json:"created,omitempty"`
}

// SpacesResponse is the body of GET /api/v1/spaces.
type SpacesResponse struct {
	Spaces []Space `json:"spaces"`
}

// Health is the body of GET /health (Engram's shape). When the status is
// unhealthy (503), Error says why.
type Health struct {
	Status    string    `json:"status"` // healthy | unhealthy
	Service   string    `json:"service"`
	Version   string    `json:"version"`
	Timestamp time.Time `json:"timestamp"`
	// Implementation is api.Implementation on engram-ops; Engram's
	// /health has no such field.
	Implementation string     `json:"implementation,omitempty"`
	Error          *ErrorBody `json:"error,omitempty"`
	// Replica is set on a follower (serve --follow) only.
	Replica *ReplicaState `json:"replica,omitempty"`
}

// Probe is the body of /health/alive and /health/ready.
type Probe struct {
	Status string     `json:"status"` // alive | ready | not_ready
	Error  *ErrorBody `json:"error,omitempty"`
}

// SystemHealth is the body of GET /api/v1/system/health.
type SystemHealth struct {
	Status        string         `json:"status"` // healthy | degraded | unhealthy
	Timestamp     time.Time      `json:"timestamp"`
	Version       string         `json:"version"`
	UptimeSeconds float64        `json:"uptime_seconds"`
	Checks        []HealthCheck  `json:"checks"`
	Spaces        []SpaceHealth  `json:"spaces"`
	Changelog     ChangelogState `json:"changelog"`
	// Durability is sync or relaxed (what an acknowledged write means);
	// empty when the engine is not ready.
	Durability string      `json:"durability,omitempty"`
	Backup     BackupState `json:"backup"`
	// Replica is set on a follower (serve --follow) only.
	Replica *ReplicaState `json:"replica,omitempty"`
	Error   *ErrorBody    `json:"error,omitempty"`
}

// HealthCheck is one check of system health, with the figures it judged.
type HealthCheck struct {
	Name           string             `json:"name"`
	Status         string             `json:"status"` // healthy | degraded | unhealthy
	Message        string             `json:"message"`
	LatencySeconds float64            `json:"latency_seconds"`
	Figures        map[string]float64 `json:"figures,omitempty"`
}

// SpaceHealth reports one space's counts.
type SpaceHealth struct {
	Space        string     `json:"space"`
	Memories     int64      `json:"memories"`
	Tiers        TierCounts `json:"tiers"`
	Associations int64      `json:"associations"`
	IndexPending int        `json:"index_pending"`
	Dimension    int        `json:"dimension"`
	Fingerprint  string     `json:"embedder_fingerprint"`
}

// ChangelogState reports the change log.
type ChangelogState struct {
	Sequence uint64 `json:"sequence"`
}

// BackupState reports backup shipping. Every field is null until a backup
// component reports real figures.
type BackupState struct {
	Configured      bool       `json:"configured"`
	ShippedSequence *uint64    `json:"shipped_sequence"`
	LagSequences    *uint64    `json:"lag_sequences"`
	LagSeconds      *float64   `json:"lag_seconds"`
	LastSuccess     *time.Time `json:"last_success"`
}

// BackupSnapshotResponse is the body of POST /api/v1/admin/backup (and the
// JSON output of `engram-ops backup create`).
type BackupSnapshotResponse struct {
	ID            string  `json:"id"`
	Sequence      uint64  `json:"sequence"`
	Target        string  `json:"target"`
	Files         int     `json:"files"`
	UploadedFiles int     `json:"uploaded_files"`
	UploadedBytes int64   `json:"uploaded_bytes"`
	PlainBytes    int64   `json:"plain_bytes"`
	Memories      int64   `json:"memories"`
	Seconds       float64 `json:"seconds"`
}

// HeaderAPIKey carries an API key (Authorization: Bearer works too).
const HeaderAPIKey = "X-API-Key"

// APIKey describes a stored API key; the secret is never part of it.
type APIKey struct {
	ID          string     `json:"id"`
	Name        string     `json:"name"`
	Permissions []string   `json:"permissions"`
	Spaces      []string   `json:"spaces"` // empty: every space
	Rate        string     `json:"rate,omitempty"`
	State       string     `json:"state"` // active | expired | revoked
	Created     time.Time  `json:"created"`
	Expires     *time.Time `json:"expires,omitempty"`
	Revoked     *time.Time `json:"revoked,omitempty"`
	RotatedFrom string     `json:"rotated_from,omitempty"`
}

// APIKeyCreateRequest is the body of POST /api/v1/admin/apikeys.
type APIKeyCreateRequest struct {
	Name        string   `json:"name"`
	Permissions []string `json:"permissions"`
	Spaces      []string `json:"spaces,omitempty"`
	Expires     string   `json:"expires,omitempty"` // e.g. "90d"
	Rate        string   `json:"rate,omitempty"`    // e.g. "100/s"
}

// APIKeyRotateRequest is the body of POST /api/v1/admin/apikeys/{id}/rotate.
type APIKeyRotateRequest struct {
	Overlap string `json:"overlap"` // how long the old key stays valid, e.g. "24h"
}

// APIKeyCreated answers a create or rotate: the token is shown only here.
type APIKeyCreated struct {
	Key   APIKey `json:"key"`
	Token string `json:"token"`
}

// APIKeyList answers GET /api/v1/admin/apikeys.
type APIKeyList struct {
	Keys []APIKey `json:"keys"`
}
