package grpcserver

import (
	"strings"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/ops/api"
	"github.com/engram-ops/engram-ops/ops/server"
	engramv1 "github.com/engram-ops/engram-ops/proto/engram/v1"
)

// Conversions between Engram's messages and the REST request and response
// types, so that a gRPC call goes through the REST handlers' engine calls
// and validation. They copy and rename; the engine validates the values.

// memoryType is the REST name of a memory type ("" when unspecified; an
// unknown number is passed on for the engine to refuse by name).
func memoryType(t engramv1.MemoryType) string {
	if t == engramv1.MemoryType_MEMORY_TYPE_UNSPECIFIED {
		return ""
	}
	return strings.ToLower(strings.TrimPrefix(t.String(), "MEMORY_TYPE_"))
}

func memoryTypeOut(s string) engramv1.MemoryType {
	return engramv1.MemoryType(engramv1.MemoryType_value["MEMORY_TYPE_"+strings.ToUpper(s)])
}

// timestamp checks a timestamp field: unset is nil, an out-of-range one
// is REST's INVALID_TIME.
func timestamp(field string, ts *timestamppb.Timestamp) error {
	if ts == nil {
		return nil
	}
	if err := ts.CheckValid(); err != nil {
		return server.InvalidArgument("INVALID_TIME", "%s is not a valid time: %v", field, err)
	}
	return nil
}

func rememberRequest(m *engramv1.Memory) (*api.RememberRequest, error) {
	in := &api.RememberRequest{
		ID:         m.GetId(),
		Content:    m.GetContent(),
		Embedding:  m.GetEmbedding(),
		Tags:       m.GetTags(),
		MemoryType: memoryType(m.GetMemoryType()),
		Metadata:   m.GetMetadata(),
	}
	if c := m.GetConfidence(); c != nil {
		v := float64(c.GetValue())
		in.Confidence = &v
		in.ConfidenceReasoning = c.GetReasoning()
	}
	if err := timestamp("memory.created_at", m.GetCreatedAt()); err != nil {
		return nil, err
	}
	in.Timestamp = timeOf(m.GetCreatedAt())
	return in, nil
}

func episodeRequest(ep *engramv1.Episode) (*api.EpisodeRequest, error) {
	if err := timestamp("episode.when", ep.GetWhen()); err != nil {
		return nil, err
	}
	in := &api.EpisodeRequest{
		ID:            ep.GetId(),
		When:          timeOf(ep.GetWhen()),
		What:          ep.GetWhat(),
		WhereLocation: ep.GetWhereLocation(),
		Who:           ep.GetWho(),
		Why:           ep.GetWhy(),
		How:           ep.GetHow(),
		Embedding:     ep.GetEmbedding(),
	}
	if v := ep.GetEmotionalValence(); v != 0 {
		f := float64(v)
		in.EmotionalValence = &f
	}
	// importance is the episode's confidence; Engram's encoding_confidence
	// stands in when importance is unset.
	if v := ep.GetImportance(); v != 0 {
		f := float64(v)
		in.Importance = &f
	} else if c := ep.GetEncodingConfidence(); c != nil {
		f := float64(c.GetValue())
		in.Importance = &f
	}
	return in, nil
}

// linkThreshold is link_threshold as REST holds it: 0 (proto3's unset) is
// the engine's default.
func linkThreshold(t float32) *float64 {
	if t == 0 {
		return nil
	}
	f := float64(t)
	return &f
}

func recallRequest(req *engramv1.RecallRequest) (*api.RecallRequest, error) {
	in := &api.RecallRequest{
		MaxResults:      int(req.GetMaxResults()),
		IncludeMetadata: req.GetIncludeMetadata(),
		TraceActivation: req.GetTraceActivation(),
		Mode:            string(core.ModeSimilarity),
	}
	cue := req.GetCue()
	if cue == nil {
		return in, nil // the engine answers MISSING_CUE, as REST does
	}
	if in.MaxResults == 0 {
		in.MaxResults = int(cue.GetMaxResults())
	}
	if cue.GetSpreadActivation() {
		in.Mode = string(core.ModeHybrid)
	}
	var threshold float32
	if t := cue.GetThreshold(); t != nil {
		threshold = t.GetValue()
	}
	switch c := cue.GetCueType().(type) {
	case *engramv1.Cue_Semantic:
		if len(c.Semantic.GetExcludedTags()) > 0 {
			return nil, unimplemented("Recall with excluded_tags", "the engine filters by required_tags only")
		}
		in.Query, in.RequiredTags = c.Semantic.GetQuery(), c.Semantic.GetRequiredTags()
		if threshold == 0 {
			threshold = c.Semantic.GetFuzzyThreshold()
		}
	case *engramv1.Cue_Embedding:
		in.Embedding = c.Embedding.GetVector()
		if threshold == 0 {
			threshold = c.Embedding.GetSimilarityThreshold()
		}
	case *engramv1.Cue_Context:
		if c.Context.GetLocation() != "" || len(c.Context.GetParticipants()) > 0 {
			return nil, unimplemented("Recall by a context cue's location or participants", "recall by text (a semantic cue) within time_start..time_end")
		}
		for _, f := range []struct {
			name string
			ts   *timestamppb.Timestamp
		}{{"cue.context.time_start", c.Context.GetTimeStart()}, {"cue.context.time_end", c.Context.GetTimeEnd()}} {
			if err := timestamp(f.name, f.ts); err != nil {
				return nil, err
			}
		}
		in.FromTime, in.ToTime = timeOf(c.Context.GetTimeStart()), timeOf(c.Context.GetTimeEnd())
	case *engramv1.Cue_Temporal:
		return nil, unimplemented("Recall by a temporal cue", "the engine recalls by text or vector, optionally within a time range (a context cue)")
	case *engramv1.Cue_Pattern:
		return nil, unimplemented("Recall by a pattern cue", "not mapped to gRPC: pattern completion runs over REST, POST /api/v1/complete")
	}
	in.Threshold = float64(threshold)
	return in, nil
}

func confidenceOut(c api.Confidence) *engramv1.Confidence {
	return &engramv1.Confidence{Value: float32(c.Value), Category: categoryOut(c.Category), Reasoning: c.Reasoning}
}

func categoryOut(c string) engramv1.ConfidenceCategory {
	return engramv1.ConfidenceCategory(engramv1.ConfidenceCategory_value["CONFIDENCE_CATEGORY_"+strings.ToUpper(c)])
}

// memoryOut is one recall result as Engram's Memory: confidence is the
// result's score, activation its activation level.
func memoryOut(m *api.RecalledMemory, withMeta bool) *engramv1.Memory {
	out := &engramv1.Memory{
		Id:         m.ID,
		Content:    m.Content,
		Activation: float32(m.ActivationLevel),
		Confidence: confidenceOut(m.Confidence),
		LastAccess: timestamppb.New(m.LastAccess),
		CreatedAt:  timestamppb.New(m.ObservedAt),
		Tags:       m.Tags,
		MemoryType: memoryTypeOut(m.MemoryType),
	}
	if withMeta {
		out.Metadata = m.Metadata
	}
	return out
}

func recallOut(res *api.RecallResponse, withMeta, trace bool) *engramv1.RecallResponse {
	n := len(res.Memories.Vivid) + len(res.Memories.Associated)
	out := &engramv1.RecallResponse{
		Memories:         make([]*engramv1.Memory, 0, n),
		RecallConfidence: confidenceOut(res.RecallConfidence),
	}
	var sum float64
	var longest []string
	for _, group := range [][]api.RecalledMemory{res.Memories.Vivid, res.Memories.Associated} {
		for i := range group {
			m := &group[i]
			out.Memories = append(out.Memories, memoryOut(m, withMeta))
			sum += m.ActivationLevel
			if trace {
				out.Traces = append(out.Traces, &engramv1.ActivationTrace{MemoryId: m.ID, ActivationLevel: float32(m.ActivationLevel),
					ActivationPath: m.Path, Timestamp: timestamppb.New(m.LastAccess)})
				if len(m.Path) > len(longest) {
					longest = m.Path
				}
			}
		}
	}
	md := &engramv1.RecallMetadata{
		TotalActivated: int32(res.Metadata.Activated),
		AboveThreshold: int32(n),
		RecallTimeMs:   int64(res.Metadata.TookMS),
		ActivationPath: longest,
	}
	if n > 0 {
		md.AvgActivation = float32(sum / float64(n))
	}
	out.Metadata = md
	return out
}

// episodeOut is a stored episode as Engram's Episode; conf is its recall
// score.
func episodeOut(m *api.Memory, conf api.Confidence) *engramv1.Episode {
	out := &engramv1.Episode{Id: m.ID, What: m.Content, EncodingConfidence: confidenceOut(conf),
		ConsolidationState: engramv1.ConsolidationState_CONSOLIDATION_STATE_RECENT}
	if ep := m.Episode; ep != nil {
		out.When = timestamppb.New(ep.When)
		out.What = ep.What
		out.WhereLocation, out.Who, out.Why, out.How = ep.WhereLocation, ep.Who, ep.Why, ep.How
		if ep.EmotionalValence != nil {
			out.EmotionalValence = float32(*ep.EmotionalValence)
		}
		if ep.Importance != nil {
			out.Importance = float32(*ep.Importance)
		}
	}
	return out
}
