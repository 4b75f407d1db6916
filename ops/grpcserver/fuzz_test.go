package grpcserver

import (
	"testing"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	engramv1 "github.com/engram-ops/engram-ops/proto/engram/v1"
)

// FuzzDecodeRequests feeds arbitrary bytes through the server's codec and
// the conversions of Remember and Recall requests: a message either
// decodes and converts, or is refused with INVALID_MESSAGE, and nothing
// panics.
func FuzzDecodeRequests(f *testing.F) {
	for _, m := range []proto.Message{
		&engramv1.RememberRequest{MemorySpaceId: "a", MemoryType: &engramv1.RememberRequest_Memory{Memory: &engramv1.Memory{Content: "x", Embedding: []float32{1, 2}}}},
		&engramv1.RememberRequest{MemoryType: &engramv1.RememberRequest_Episode{Episode: &engramv1.Episode{What: "x"}}},
		&engramv1.RecallRequest{Cue: &engramv1.Cue{CueType: &engramv1.Cue_Semantic{Semantic: &engramv1.SemanticCue{Query: "q"}}}},
	} {
		b, _ := proto.Marshal(m)
		f.Add(b)
	}
	f.Add([]byte{0xff, 0xff, 0xff})
	c := newCodec()
	f.Fuzz(func(t *testing.T, b []byte) {
		rem := new(engramv1.RememberRequest)
		_ = c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, rem)
		if err := c.failed(rem); err == nil {
			if ep := rem.GetEpisode(); ep != nil {
				_, _ = episodeRequest(ep)
			} else {
				_, _ = rememberRequest(rem.GetMemory())
			}
		}
		rec := new(engramv1.RecallRequest)
		_ = c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, rec)
		if err := c.failed(rec); err == nil {
			_, _ = recallRequest(rec)
		}
	})
}
