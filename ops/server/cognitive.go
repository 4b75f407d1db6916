package server

// Engram's cognitive routes: recognition, the query language (query.go,
// queryparse.go), probabilistic recall, pattern completion, introspection
// and the spreading probe. Each computes its figures from the engine's own
// results; docs/engram-compatibility.md says how, route by route.

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strings"

	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/ops/api"
)

// recognizeCandidates is how many of the closest memories a recognition
// reports.
const recognizeCandidates = 5

func (s *Server) cognitiveRoutes() {
	s.handle("POST "+api.PathRecognize, engineOp(s, opRecall, http.StatusOK, body[api.RecognizeRequest](s), s.recognize))
	s.queryRoutes()
	s.introspectRoutes()
	s.consolidationRoutes()
	s.handle("POST "+api.PathComplete, engineOp(s, opRecall, http.StatusOK, body[api.CompleteRequest](s), s.complete))
	s.handle("GET "+api.PathProbabilistic, engineOp(s, opRecall, http.StatusOK, query(s, probabilisticParams), s.probabilistic))
}

// checkThreshold refuses a similarity threshold outside -1..1.
func checkThreshold(name string, v float64) error {
	if math.IsNaN(v) || v < -1 || v > 1 {
		return httpErrorf(http.StatusBadRequest, "INVALID_THRESHOLD", "%s %v is outside -1..1 (a cosine similarity)", name, v).
			with("field", name)
	}
	return nil
}

// recognize answers whether a cue is familiar: a read-only similarity
// recall of the closest memories, recognized when the best cosine
// similarity reaches the threshold. Engram answers recognized = (input
// longer than 10 bytes) without looking at its store.
func (s *Server) recognize(ctx context.Context, space string, req *api.RecognizeRequest) (api.RecognizeResponse, error) {
	th := api.DefaultRecognizeThreshold
	if req.Threshold != nil {
		th = *req.Threshold
		if err := checkThreshold("threshold", th); err != nil {
			return api.RecognizeResponse{}, err
		}
	}
	if req.Embedding == nil && strings.TrimSpace(req.Input) == "" {
		return api.RecognizeResponse{}, httpErrorf(http.StatusBadRequest, "MISSING_CUE",
			"recognize needs input (text) or embedding (a vector of the space's dimension)")
	}
	// Threshold -1 admits every candidate: the answer reports the closest
	// memories and their similarity even when none is familiar.
	res, err := s.eng.Recall(ctx, space, core.RecallQuery{Text: req.Input, Embedding: req.Embedding,
		MaxResults: recognizeCandidates, Threshold: -1, Mode: core.ModeSimilarity, NoReinforce: true})
	if err != nil {
		return api.RecognizeResponse{}, err
	}
	defer res.Release()
	out := api.RecognizeResponse{Threshold: th, Space: space, SimilarPatterns: make([]api.RecognizedMemory, 0, len(res.Vivid)),
		MemoriesSearched: res.Searched, ProcessingTimeMS: float64(res.Took.Microseconds()) / 1000}
	for i := range res.Vivid {
		rc := &res.Vivid[i]
		out.SimilarPatterns = append(out.SimilarPatterns, api.RecognizedMemory{
			ID: rc.Memory.ID, Content: rc.Memory.Content, SimilarityScore: rc.Similarity,
			StoredConfidence: rc.Memory.Confidence, Retrievability: rc.Retrievability, AboveThreshold: rc.Similarity >= th,
		})
	}
	sort.SliceStable(out.SimilarPatterns, func(i, j int) bool {
		return out.SimilarPatterns[i].SimilarityScore > out.SimilarPatterns[j].SimilarityScore
	})
	best := 0.0
	if len(out.SimilarPatterns) > 0 {
		best = max(out.SimilarPatterns[0].SimilarityScore, 0)
		out.Recognized = out.SimilarPatterns[0].AboveThreshold
	}
	out.RecognitionConfidence = api.Confidence{Value: best, Category: api.Category(best),
		Reasoning: "cosine similarity of the closest memory to the cue"}
	switch {
	case len(out.SimilarPatterns) == 0:
		out.SystemMessage = "Not recognized: the space holds no memory to compare with."
	case out.Recognized:
		out.SystemMessage = fmt.Sprintf("Recognized: memory %s matches with similarity %.2f (threshold %.2f).",
			out.SimilarPatterns[0].ID, out.SimilarPatterns[0].SimilarityScore, th)
	default:
		out.SystemMessage = fmt.Sprintf("Not recognized: the closest memory, %s, has similarity %.2f, below the threshold %.2f.",
			out.SimilarPatterns[0].ID, out.SimilarPatterns[0].SimilarityScore, th)
	}
	return out, nil
}
