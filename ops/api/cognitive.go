package api

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
