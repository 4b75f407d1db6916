package api

import "time"

// Engram's cognitive routes: recognition, the query language, probabilistic
// recall, pattern completion and introspection. Shapes follow Engram's
// (engram-rest-reference.md §2) with every figure computed from the engine.

// Route paths of the cognitive routes.
const (
	PathRecognize = "/api/v1/memories/recognize"
)

// RecognizeRequest is the body of POST /api/v1/memories/recognize: is
// input (or embedding, when given) familiar? threshold is the minimum
// cosine similarity of the best match for recognition (default
// DefaultRecognizeThreshold).
type RecognizeRequest struct {
	Input     string    `json:"input"`
	Embedding []float32 `json:"embedding,omitempty"`
	Threshold *float64  `json:"threshold,omitempty"`
	SpaceFields
}

// DefaultRecognizeThreshold is recognition's default similarity threshold.
const DefaultRecognizeThreshold = 0.7

// RecognizeResponse answers a recognition: recognized is true when the
// best match's similarity is at least threshold; similar_patterns are the
// closest memories, best first, each saying whether it passed.
type RecognizeResponse struct {
	Recognized            bool               `json:"recognized"`
	RecognitionConfidence Confidence         `json:"recognition_confidence"`
	Threshold             float64            `json:"threshold"`
	SimilarPatterns       []RecognizedMemory `json:"similar_patterns"`
	MemoriesSearched      int                `json:"memories_searched"`
	ProcessingTimeMS      float64            `json:"processing_time_ms"`
	Space                 string             `json:"space"`
	SystemMessage         string             `json:"system_message"`
}

// RecognizedMemory is one memory close to a recognition cue.
type RecognizedMemory struct {
	ID               string  `json:"id"`
	Content          string  `json:"content"`
	SimilarityScore  float64 `json:"similarity_score"`
	StoredConfidence float64 `json:"stored_confidence"`
	Retrievability   float64 `json:"retrievability"`
	AboveThreshold   bool    `json:"above_threshold"`
}

// Paths of the query language.
const (
	PathQuery        = "/api/v1/query"
	PathQueryExecute = "/api/v1/query/execute" // Engram's quickstart's path
)

// QueryRequest is the body of POST /api/v1/query: one statement of the
// query language (docs/query-language.md). query is the name Engram's
// quickstart sends; it is an alias of query_text.
type QueryRequest struct {
	QueryText     string `json:"query_text"`
	Query         string `json:"query,omitempty"`
	MemorySpaceID string `json:"memory_space_id,omitempty"`
	MemorySpace   string `json:"memory_space,omitempty"`
}

// QueryResponse is Engram's answer to a query, with additions: the
// statement that ran, its cost and the space.
type QueryResponse struct {
	Episodes            []QueryEpisode      `json:"episodes"`
	AggregateConfidence AggregateConfidence `json:"aggregate_confidence"`
	TotalCount          int                 `json:"total_count"`
	ExecutionTimeMS     float64             `json:"execution_time_ms"`
	Statement           string              `json:"statement"`
	Cost                int                 `json:"cost"`
	Space               string              `json:"space"`
	SystemMessage       string              `json:"system_message"`
}

// QueryEpisode is one result of a query: Engram's episode fields, and the
// figures its confidence comes from.
type QueryEpisode struct {
	ID                 string    `json:"id"`
	When               time.Time `json:"when"`
	What               string    `json:"what"`
	WhereLocation      string    `json:"where_location,omitempty"`
	Who                []string  `json:"who,omitempty"`
	Confidence         float64   `json:"confidence"`
	ConfidenceCategory string    `json:"confidence_category"`
	StoredConfidence   float64   `json:"stored_confidence"`
	SimilarityScore    float64   `json:"similarity_score,omitzero"`
	ActivationLevel    float64   `json:"activation_level,omitzero"`
	Retrievability     float64   `json:"retrievability"`
	Path               []string  `json:"path,omitempty"`
	Tags               []string  `json:"tags"`
}

// AggregateConfidence is an interval over a result set's confidences.
type AggregateConfidence struct {
	LowerBound float64 `json:"lower_bound"`
	Mean       float64 `json:"mean"`
	UpperBound float64 `json:"upper_bound"`
	Width      float64 `json:"width"`
}

// QueryCategory is the query language's confidence category (Engram's,
// which differs from Category): 0 None, below 0.3 Low, below 0.7 Medium,
// below 1 High, otherwise Certain.
func QueryCategory(v float64) string {
	switch {
	case v <= 0:
		return "None"
	case v < 0.3:
		return "Low"
	case v < 0.7:
		return "Medium"
	case v < 1:
		return "High"
	}
	return "Certain"
}

// PathProbabilistic is Engram's probabilistic recall: GET recall's
// parameters plus include_evidence and include_uncertainty.
const PathProbabilistic = "/api/v1/query/probabilistic"

// ProbabilisticResponse is a recall with its confidence interval and,
// when asked for, the evidence and the uncertainty behind it.
type ProbabilisticResponse struct {
	Memories           []RecalledMemory    `json:"memories"`
	ConfidenceInterval ConfidenceInterval  `json:"confidence_interval"`
	EvidenceChain      []Evidence          `json:"evidence_chain,omitempty"`
	UncertaintySources []UncertaintySource `json:"uncertainty_sources,omitempty"`
	Metadata           RecallMetadata      `json:"metadata"`
	SystemMessage      string              `json:"system_message"`
}

// ConfidenceInterval is the interval of a result set's confidences around
// its point estimate.
type ConfidenceInterval struct {
	Lower float64 `json:"lower"`
	Upper float64 `json:"upper"`
	Point float64 `json:"point"`
	Width float64 `json:"width"`
}

// Evidence is one contribution to a recall's results: source_type is
// direct_match, vector_similarity, spreading_activation or temporal_decay.
type Evidence struct {
	SourceType  string  `json:"source_type"`
	Strength    float64 `json:"strength"`
	Description string  `json:"description"`
}

// UncertaintySource is one reason the results may be off: source_type is
// system_pressure, spreading_activation_noise, temporal_decay_unknown or
// measurement_error; impact is in 0..1.
type UncertaintySource struct {
	SourceType  string  `json:"source_type"`
	Impact      float64 `json:"impact"`
	Explanation string  `json:"explanation"`
}

// Paths of introspection and the spreading probe.
const (
	PathIntrospect      = "/api/v1/system/introspect"
	PathHealthSpreading = "/health/spreading"
)

// Introspection is GET /api/v1/system/introspect: the server's own
// figures. total_nodes and avg_recall_time_ms are Engram's names.
type Introspection struct {
	Timestamp       time.Time          `json:"timestamp"`
	UptimeSeconds   float64            `json:"uptime_seconds"`
	Version         string             `json:"version"`
	TotalNodes      int64              `json:"total_nodes"`
	TotalEdges      int64              `json:"total_edges"`
	AvgRecallTimeMS float64            `json:"avg_recall_time_ms"`
	Spaces          []IntrospectSpace  `json:"spaces"`
	Operations      []OperationLatency `json:"operations"`
	Storage         IntrospectStorage  `json:"storage"`
	Runtime         IntrospectRuntime  `json:"runtime"`
	Requests        IntrospectRequests `json:"requests"`
}

// IntrospectSpace is one space's counts and index state.
type IntrospectSpace struct {
	Space        string     `json:"space"`
	Memories     TierCounts `json:"memories"`
	Associations int64      `json:"associations"`
	IndexPending int        `json:"index_pending"`
	Dimension    int        `json:"dimension"`
	Embedder     string     `json:"embedder"`
}

// OperationLatency is one engine operation's latency since the server
// started, from engram_memory_operation_duration_seconds (quantiles are
// estimated from its buckets as histogram_quantile does).
type OperationLatency struct {
	Operation string  `json:"operation"`
	Count     uint64  `json:"count"`
	AvgMS     float64 `json:"avg_ms"`
	P50MS     float64 `json:"p50_ms"`
	P90MS     float64 `json:"p90_ms"`
	P99MS     float64 `json:"p99_ms"`
}

// IntrospectStorage describes the storage engine.
type IntrospectStorage struct {
	DiskBytes         int64      `json:"disk_bytes"`
	TierBytes         TierCounts `json:"tier_bytes"`
	ChangelogSequence uint64     `json:"changelog_sequence"`
	Durability        string     `json:"durability"`
	CacheHitRatio     float64    `json:"cache_hit_ratio"`
	Compactions       int64      `json:"compactions"`
	DiskFreeBytes     int64      `json:"disk_free_bytes"`
}

// IntrospectRuntime describes the process.
type IntrospectRuntime struct {
	Goroutines      int     `json:"goroutines"`
	MemoryBytes     float64 `json:"memory_bytes"`
	HeapObjectBytes float64 `json:"heap_object_bytes"`
}

// IntrospectRequests counts the last minute's requests.
type IntrospectRequests struct {
	LastMinute             int64 `json:"last_minute"`
	ServerErrorsLastMinute int64 `json:"server_errors_last_minute"`
}

// SpreadingHealth is GET /health/spreading: a spreading activation run
// over stored associations, with its latency.
type SpreadingHealth struct {
	Status    string    `json:"status"` // healthy | degraded | unhealthy
	Message   string    `json:"message"`
	LatencyMS float64   `json:"latency_ms"`
	Sources   int       `json:"sources_tried"`
	Reached   int       `json:"memories_reached"`
	Timestamp time.Time `json:"timestamp"`
}

// PathComplete is pattern completion: a partial episode completed from
// the stored memories that match it.
const PathComplete = "/api/v1/complete"

// CompleteRequest is the body of POST /api/v1/complete (the shape of
// Engram's quickstart). params.num_hypotheses is how many matching
// memories are considered (default 3); ca3_sparsity and ca1_threshold are
// accepted and not applied (the completion is a recall, not an attractor
// network), and the answer says so.
type CompleteRequest struct {
	Partial PartialEpisode  `json:"partial"`
	Params  *CompleteParams `json:"params,omitempty"`
	SpaceFields
}

// PartialEpisode is an episode with fields missing (absent, null or "").
type PartialEpisode struct {
	What          string     `json:"what,omitempty"`
	When          *time.Time `json:"when,omitempty"`
	Where         string     `json:"where,omitempty"`
	WhereLocation string     `json:"where_location,omitempty"`
	Who           []string   `json:"who,omitempty"`
	Why           string     `json:"why,omitempty"`
	How           string     `json:"how,omitempty"`
}

// CompleteParams are Engram's completion parameters.
type CompleteParams struct {
	CA3Sparsity   *float64 `json:"ca3_sparsity,omitempty"`
	CA1Threshold  *float64 `json:"ca1_threshold,omitempty"`
	NumHypotheses int      `json:"num_hypotheses,omitzero"`
}

// CompleteResponse is a completed episode: every field with its
// confidence and where it came from ("provided", or the id of the memory
// it was filled from), and the other matching memories as alternatives.
type CompleteResponse struct {
	Completed            CompletedEpisode   `json:"completed"`
	Source               string             `json:"source"` // Reconstructed | Unchanged | Unmatched
	CompletionConfidence float64            `json:"completion_confidence"`
	FieldConfidence      map[string]float64 `json:"field_confidence"`
	FieldSources         map[string]string  `json:"field_sources"`
	MissingFields        []string           `json:"missing_fields"`
	Alternatives         []CompletionMatch  `json:"alternatives"`
	Space                string             `json:"space"`
	SystemMessage        string             `json:"system_message"`
}

// CompletedEpisode is the completed episode; confidence is the
// completion's.
type CompletedEpisode struct {
	What       string     `json:"what"`
	When       *time.Time `json:"when"`
	Where      string     `json:"where,omitempty"`
	Who        []string   `json:"who,omitempty"`
	Why        string     `json:"why,omitempty"`
	How        string     `json:"how,omitempty"`
	Confidence float64    `json:"confidence"`
}

// CompletionMatch is one stored memory matching the partial episode.
type CompletionMatch struct {
	ID              string     `json:"id"`
	What            string     `json:"what"`
	When            *time.Time `json:"when,omitempty"`
	Where           string     `json:"where,omitempty"`
	SimilarityScore float64    `json:"similarity_score"`
	Confidence      float64    `json:"confidence"`
}

// Paths of consolidation: POST replay runs a consolidation pass over a
// space's episodes; GET consolidations lists the semantic memories
// (beliefs) passes wrote.
const (
	PathReplay         = "/api/v1/episodes/replay"
	PathConsolidations = "/api/v1/consolidations"
	PathConsolidation  = "/api/v1/consolidations/{id}"
)

// ReplayRequest is the body of POST /api/v1/episodes/replay. Episodes
// whose embeddings have cosine similarity at least min_similarity
// (default 0.8) to a group's centroid join it; a group of at least
// min_episodes (default 2) becomes one semantic memory.
type ReplayRequest struct {
	MinSimilarity float64 `json:"min_similarity,omitzero"`
	MinEpisodes   int     `json:"min_episodes,omitzero"`
	SpaceFields
}

// ReplayResponse summarises one consolidation pass.
type ReplayResponse struct {
	RunID           string   `json:"run_id"`
	Space           string   `json:"space"`
	EpisodesScanned int      `json:"episodes_scanned"`
	Groups          int      `json:"groups"`
	BeliefsWritten  int      `json:"beliefs_written"`
	Beliefs         []string `json:"beliefs"`
	DurationMS      float64  `json:"duration_ms"`
	SystemMessage   string   `json:"system_message"`
}

// ConsolidationsResponse is Engram's consolidation snapshot: the beliefs
// of the space, strongest first, and the server's replay statistics.
type ConsolidationsResponse struct {
	GeneratedAt time.Time          `json:"generated_at"`
	Beliefs     []Belief           `json:"beliefs"`
	Stats       ConsolidationStats `json:"stats"`
}

// Belief is a semantic memory written by consolidation, with the episodes
// it was formed from.
type Belief struct {
	ID               string      `json:"id"`
	Content          string      `json:"content"`
	Strength         float64     `json:"strength"`
	SchemaConfidence Confidence  `json:"schema_confidence"`
	LastConsolidated time.Time   `json:"last_consolidated"`
	Citations        []Citation  `json:"citations"`
	Stats            BeliefStats `json:"stats"`
}

// Citation is one episode a belief rests on.
type Citation struct {
	EpisodeID          string    `json:"episode_id"`
	ObservedAt         time.Time `json:"observed_at"`
	StoredAt           time.Time `json:"stored_at"`
	LastAccess         time.Time `json:"last_access"`
	EncodingConfidence float64   `json:"encoding_confidence"`
	ReinforcementCount uint64    `json:"reinforcement_count"`
	ContentPreview     string    `json:"content_preview"`
}

// BeliefStats describes a belief's sources.
type BeliefStats struct {
	EpisodeCount            int     `json:"episode_count"`
	AverageSourceConfidence float64 `json:"average_source_confidence"`
	FreshnessHours          float64 `json:"freshness_hours"`
}

// ConsolidationStats counts the passes this server ran since it started.
type ConsolidationStats struct {
	TotalReplays             uint64     `json:"total_replays"`
	SuccessfulConsolidations uint64     `json:"successful_consolidations"`
	FailedConsolidations     uint64     `json:"failed_consolidations"`
	AverageReplaySpeed       float64    `json:"average_replay_speed"` // episodes per second
	TotalPatternsExtracted   uint64     `json:"total_patterns_extracted"`
	LastReplayTimestamp      *time.Time `json:"last_replay_timestamp"`
}
