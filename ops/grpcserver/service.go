package grpcserver

import (
	"context"
	"errors"
	"io"
	"sort"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/ops/api"
	"github.com/engram-ops/engram-ops/ops/metrics"
	"github.com/engram-ops/engram-ops/ops/server"
	engramv1 "github.com/engram-ops/engram-ops/proto/engram/v1"
)

// service implements engram.v1.EngramService over the REST server's RPC
// API. Every method that touches a space picks it with the caller's
// Space (key scope, rate limits) before calling the engine.
type service struct {
	rpc     server.RPC
	metrics *metrics.GRPC
}

var _ engramv1.EngramServiceServer = (*service)(nil)

// Defaults of Recognize and Reminisce, which have no REST route.
const (
	recognizeThreshold = 0.7 // Engram's threshold of text search
	recognizeResults   = 5
	reminisceResults   = 20
)

func (v *service) Remember(ctx context.Context, req *engramv1.RememberRequest) (*engramv1.RememberResponse, error) {
	space, err := callerOf(ctx).Space(req.GetMemorySpaceId())
	if err != nil {
		return nil, err
	}
	var res api.RememberResponse
	if ep := req.GetEpisode(); ep != nil {
		in, err := episodeRequest(ep)
		if err != nil {
			return nil, err
		}
		in.AutoLink, in.LinkThreshold = req.GetAutoLink(), linkThreshold(req.GetLinkThreshold())
		res, err = v.rpc.Episode(ctx, space, in)
		if err != nil {
			return nil, err
		}
	} else {
		in, err := rememberRequest(req.GetMemory())
		if err != nil {
			return nil, err
		}
		in.AutoLink, in.LinkThreshold = req.GetAutoLink(), linkThreshold(req.GetLinkThreshold())
		res, err = v.rpc.Remember(ctx, space, in)
		if err != nil {
			return nil, err
		}
	}
	links := make([]string, len(res.AutoLinks))
	for i, l := range res.AutoLinks {
		links[i] = l.TargetMemoryID
	}
	return &engramv1.RememberResponse{
		MemoryId:          res.MemoryID,
		StorageConfidence: confidenceOut(res.StorageConfidence),
		LinkedMemories:    links,
		InitialState:      engramv1.ConsolidationState_CONSOLIDATION_STATE_RECENT,
	}, nil
}

func (v *service) Recall(ctx context.Context, req *engramv1.RecallRequest) (*engramv1.RecallResponse, error) {
	space, err := callerOf(ctx).Space(req.GetMemorySpaceId())
	if err != nil {
		return nil, err
	}
	in, err := recallRequest(req)
	if err != nil {
		return nil, err
	}
	res, release, err := v.rpc.Recall(ctx, space, in)
	if err != nil {
		return nil, err
	}
	defer release()
	return recallOut(res, req.GetIncludeMetadata(), req.GetTraceActivation()), nil
}

func (v *service) Forget(ctx context.Context, req *engramv1.ForgetRequest) (*engramv1.ForgetResponse, error) {
	if req.GetPattern() != nil {
		return nil, unimplemented("Forget by pattern", "forget names one memory by memory_id")
	}
	switch req.GetMode() {
	case engramv1.ForgetMode_FORGET_MODE_UNSPECIFIED, engramv1.ForgetMode_FORGET_MODE_DELETE:
	default:
		return nil, unimplemented("Forget with mode "+req.GetMode().String(), "the engine deletes (FORGET_MODE_DELETE); it has no suppression or overwrite")
	}
	space, err := callerOf(ctx).Space(req.GetMemorySpaceId())
	if err != nil {
		return nil, err
	}
	if _, err := v.rpc.Forget(ctx, space, req.GetMemoryId()); err != nil {
		return nil, err
	}
	return &engramv1.ForgetResponse{
		MemoriesAffected: 1,
		ForgetConfidence: &engramv1.Confidence{Value: 1, Category: engramv1.ConfidenceCategory_CONFIDENCE_CATEGORY_CERTAIN, Reasoning: "The memory was deleted"},
		Reversible:       false,
	}, nil
}

func (v *service) Recognize(ctx context.Context, req *engramv1.RecognizeRequest) (*engramv1.RecognizeResponse, error) {
	space, err := callerOf(ctx).Space(req.GetMemorySpaceId())
	if err != nil {
		return nil, err
	}
	in := &api.RecallRequest{Mode: string(core.ModeSimilarity), MaxResults: recognizeResults}
	switch {
	case req.GetMemory() != nil:
		in.Query, in.Embedding = req.GetMemory().GetContent(), req.GetMemory().GetEmbedding()
	case req.GetEmbedding() != nil:
		in.Embedding = req.GetEmbedding().GetValues()
	default:
		in.Query = req.GetContent()
	}
	threshold := float64(req.GetRecognitionThreshold())
	if threshold == 0 {
		threshold = recognizeThreshold
	}
	res, release, err := v.rpc.Recall(ctx, space, in)
	if err != nil {
		return nil, err
	}
	defer release()
	out := &engramv1.RecognizeResponse{SimilarMemories: []*engramv1.Memory{}}
	var best float64
	for i := range res.Memories.Vivid {
		m := &res.Memories.Vivid[i]
		best = max(best, m.SimilarityScore)
		out.SimilarMemories = append(out.SimilarMemories, memoryOut(m, false))
	}
	out.FamiliarityScore = float32(best)
	out.Recognized = best >= threshold
	out.RecognitionConfidence = confidenceOut(api.Confidence{Value: best, Category: api.Category(best),
		Reasoning: "Highest cosine similarity of a stored memory to the input"})
	return out, nil
}

func (v *service) Experience(ctx context.Context, req *engramv1.ExperienceRequest) (*engramv1.ExperienceResponse, error) {
	c := callerOf(ctx)
	space, err := c.Space(req.GetMemorySpaceId())
	if err != nil {
		return nil, err
	}
	in, err := episodeRequest(req.GetEpisode())
	if err != nil {
		return nil, err
	}
	res, err := v.rpc.Episode(ctx, space, in)
	if err != nil {
		return nil, err
	}
	out := &engramv1.ExperienceResponse{EpisodeId: res.MemoryID, EncodingQuality: confidenceOut(res.StorageConfidence),
		State: engramv1.ConsolidationState_CONSOLIDATION_STATE_RECENT}
	for _, to := range req.GetContextLinks() {
		if _, err := c.Space(space); err != nil {
			return nil, err
		}
		if _, err := v.rpc.Associate(ctx, space, &api.AssociationRequest{From: res.MemoryID, To: to, Weight: contextLinkWeight, Kind: "context"}); err != nil {
			return nil, err
		}
		out.ContextLinksCreated++
	}
	return out, nil
}

// contextLinkWeight is the weight of an Experience's context link.
const contextLinkWeight = 0.5

func (v *service) Reminisce(ctx context.Context, req *engramv1.ReminisceRequest) (*engramv1.ReminisceResponse, error) {
	in := &api.RecallRequest{Mode: string(core.ModeSimilarity), MaxResults: reminisceResults,
		FromTime: timeOf(req.GetTimeWindowStart()), ToTime: timeOf(req.GetTimeWindowEnd())}
	switch {
	case req.GetAboutTopic() != "":
		in.Query = req.GetAboutTopic()
	case req.GetAtLocation() != "":
		in.Query = req.GetAtLocation()
	case req.GetWithPeople() != nil:
		in.Query = strings.Join(req.GetWithPeople().GetPeople(), " ")
	case req.GetAroundTime() != nil:
		return nil, unimplemented("Reminisce by around_time alone", "the engine recalls by text or vector: send about_topic with time_window_start and time_window_end")
	}
	space, err := callerOf(ctx).Space(req.GetMemorySpaceId())
	if err != nil {
		return nil, err
	}
	res, release, err := v.rpc.Recall(ctx, space, in)
	if err != nil {
		return nil, err
	}
	defer release()
	out := &engramv1.ReminisceResponse{Episodes: []*engramv1.Episode{}, RecallVividness: confidenceOut(res.RecallConfidence)}
	themes := map[string]bool{}
	var valence float64
	var valenced int
	for i := range res.Memories.Vivid {
		r := &res.Memories.Vivid[i]
		if r.MemoryType != string(core.Episodic) {
			continue
		}
		m, err := v.rpc.Get(ctx, space, r.ID)
		if err != nil {
			if core.CodeOf(err) == "MEMORY_NOT_FOUND" {
				continue // forgotten since the recall
			}
			return nil, err
		}
		out.Episodes = append(out.Episodes, episodeOut(&m, r.Confidence))
		for _, t := range m.Tags {
			themes[t] = true
		}
		if m.Episode != nil && m.Episode.EmotionalValence != nil {
			valence += *m.Episode.EmotionalValence
			valenced++
		}
	}
	for t := range themes {
		out.MemoryThemes = append(out.MemoryThemes, t)
	}
	sort.Strings(out.MemoryThemes)
	if req.GetIncludeEmotional() && valenced > 0 {
		out.EmotionalSummary = map[string]float32{"mean_valence": float32(valence / float64(valenced)), "episodes_with_valence": float32(valenced)}
	}
	return out, nil
}

func (v *service) Associate(ctx context.Context, req *engramv1.AssociateRequest) (*engramv1.AssociateResponse, error) {
	space, err := callerOf(ctx).Space(req.GetMemorySpaceId())
	if err != nil {
		return nil, err
	}
	kind := ""
	if t := req.GetAssociationType(); t != engramv1.AssociationType_ASSOCIATION_TYPE_UNSPECIFIED {
		kind = strings.ToLower(strings.TrimPrefix(t.String(), "ASSOCIATION_TYPE_"))
	}
	res, err := v.rpc.Associate(ctx, space, &api.AssociationRequest{From: req.GetSourceMemory(), To: req.GetTargetMemory(),
		Weight: float64(req.GetStrength()), Kind: kind})
	if err != nil {
		return nil, err
	}
	return &engramv1.AssociateResponse{Created: true, FinalStrength: float32(res.Weight), AffectedPaths: []string{res.From + " → " + res.To}}, nil
}

func (v *service) Introspect(ctx context.Context, req *engramv1.IntrospectRequest) (*engramv1.IntrospectResponse, error) {
	c := callerOf(ctx)
	eng := v.rpc.Engine()
	var stats []core.SpaceStats
	if name := req.GetMemorySpaceId(); name != "" {
		space, err := c.Space(name)
		if err != nil {
			return nil, err
		}
		st, err := eng.Space(space)
		if err != nil {
			return nil, err
		}
		stats = append(stats, st)
	} else {
		for _, st := range eng.Spaces() {
			if c.Visible(st.Name) {
				stats = append(stats, st)
			}
		}
	}
	all := map[string]float32{"spaces": float32(len(stats))}
	var total, assoc int64
	for _, st := range stats {
		for t, n := range st.Memories {
			all["memories_"+core.Tier(t).String()] += float32(n)
		}
		all["index_pending"] += float32(st.IndexPending)
		total += st.Total()
		assoc += st.Associations
	}
	all["memories"], all["associations"] = float32(total), float32(assoc)
	out := &engramv1.IntrospectResponse{Metrics: all, ActiveProcesses: []string{}}
	if names := req.GetMetrics(); len(names) > 0 {
		out.Metrics = map[string]float32{}
		for _, n := range names {
			if f, ok := all[n]; ok {
				out.Metrics[n] = f
			}
		}
	}
	if req.GetIncludeHealth() {
		h := &engramv1.HealthStatus{Healthy: true, Summary: "engine ready", Components: map[string]*engramv1.ComponentHealth{}}
		eh := &engramv1.ComponentHealth{Operational: true, Performance: 1, StatusMessage: "ready"}
		if err := eng.Ready(); err != nil {
			h.Healthy, h.Summary = false, "engine not ready"
			_, code, msg, _ := server.ErrorOf(err)
			eh = &engramv1.ComponentHealth{Operational: false, StatusMessage: code + ": " + msg}
		}
		h.Components["engine"] = eh
		out.Health = h
	}
	if req.GetIncludeStatistics() {
		out.Statistics = &engramv1.MemoryStatistics{TotalMemories: total, TotalAssociations: assoc, ByType: map[string]int64{}}
	}
	return out, nil
}

func (v *service) StreamingRemember(stream engramv1.EngramService_StreamingRememberServer) error {
	return eachMessage(stream, v.Remember)
}

func (v *service) StreamingRecall(stream engramv1.EngramService_StreamingRecallServer) error {
	return eachMessage(stream, v.Recall)
}

// eachMessage answers every message of a bidirectional stream with call, in
// order, until the client closes its side; the first error ends the stream.
func eachMessage[Req, Resp any](stream grpc.BidiStreamingServer[Req, Resp], call func(context.Context, *Req) (*Resp, error)) error {
	ctx := stream.Context()
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		resp, err := call(ctx, req)
		if err != nil {
			return err
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}

// The calls below are not served over gRPC; each says why and what to use.

func (v *service) Consolidate(context.Context, *engramv1.ConsolidateRequest) (*engramv1.ConsolidateResponse, error) {
	return nil, unimplemented("Consolidate", "not mapped to gRPC: a consolidation pass runs over REST, POST /api/v1/episodes/replay (docs/engram-compatibility.md, Consolidation)")
}

func (v *service) Dream(*engramv1.DreamRequest, engramv1.EngramService_DreamServer) error {
	return unimplemented("Dream", "Dream's generative replay has no engine counterpart; POST /api/v1/episodes/replay runs a consolidation pass over REST")
}

func (v *service) Complete(context.Context, *engramv1.CompleteRequest) (*engramv1.CompleteResponse, error) {
	return nil, unimplemented("Complete", "not mapped to gRPC: pattern completion runs over REST, POST /api/v1/complete")
}

func (v *service) ExecuteQuery(context.Context, *engramv1.QueryRequest) (*engramv1.QueryResponse, error) {
	return nil, unimplemented("ExecuteQuery", "not mapped to gRPC: the query language runs over REST, POST /api/v1/query (docs/query-language.md)")
}

func (v *service) Stream(*engramv1.StreamRequest, engramv1.EngramService_StreamServer) error {
	return unimplemented("Stream", "not mapped to gRPC: the activity feed is served as server-sent events, GET /api/v1/stream/activities")
}

func (v *service) RebalanceSpaces(context.Context, *engramv1.RebalanceRequest) (*engramv1.RebalanceResponse, error) {
	return nil, unimplemented("RebalanceSpaces", "spaces are placed on shards by a placement file behind HAProxy: engram-ops placement haproxy (runbooks/scaling-and-capacity.md, Shards behind HAProxy)")
}

func (v *service) MigrateSpace(context.Context, *engramv1.MigrateSpaceRpcRequest) (*engramv1.MigrateSpaceRpcResponse, error) {
	return nil, unimplemented("MigrateSpace", "a space moves between shards with engram-ops space move NAME --from URL --to URL")
}

func (v *service) ApplyReplicationBatch(context.Context, *engramv1.ApplyReplicationBatchRequest) (*engramv1.ApplyReplicationBatchResponse, error) {
	return nil, unimplemented("ApplyReplicationBatch", "nothing is pushed to a replica: followers apply the change log the primary ships to its archive (serve --follow)")
}

func (v *service) GetReplicationStatus(context.Context, *engramv1.ReplicationStatusRequest) (*engramv1.ReplicationStatusResponse, error) {
	return nil, unimplemented("GetReplicationStatus", "a follower reports its replication state over REST, GET /api/v1/system/health (replica), and in the engram_replica_* metrics")
}

func (v *service) MemoryFlow(engramv1.EngramService_MemoryFlowServer) error {
	return unimplemented("MemoryFlow", "use StreamingRemember and StreamingRecall")
}

func (v *service) ObserveStream(engramv1.EngramService_ObserveStreamServer) error {
	return unimplemented("ObserveStream", "use StreamingRemember")
}

func (v *service) RecallStream(*engramv1.StreamingRecallRequest, engramv1.EngramService_RecallStreamServer) error {
	return unimplemented("RecallStream", "use StreamingRecall")
}

func (v *service) MemoryStream(engramv1.EngramService_MemoryStreamServer) error {
	return unimplemented("MemoryStream", "use StreamingRemember and StreamingRecall")
}

// timeOf is a timestamp as the REST types hold it (nil when unset).
func timeOf(ts *timestamppb.Timestamp) *time.Time {
	if ts == nil {
		return nil
	}
	t := ts.AsTime()
	return &t
}
