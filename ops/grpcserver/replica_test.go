package grpcserver

import (
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/engram-ops/engram-ops/core"
	engramv1 "github.com/engram-ops/engram-ops/proto/engram/v1"
)

// On a follower a gRPC write answers FAILED_PRECONDITION with REST's
// READ_ONLY_REPLICA, naming the primary in the message and the error
// details, and reads are still served.
func TestFollowerRefusesGRPCWrites(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	const primary = "http://primary:7432"
	f.eng.SetWriteBarrier(core.ReadOnlyReplica(primary))
	_, err := f.c.Remember(ctx, &engramv1.RememberRequest{MemorySpaceId: "tenant-a",
		MemoryType: &engramv1.RememberRequest_Memory{Memory: &engramv1.Memory{Content: "a write sent to a follower"}}})
	st := wantStatus(t, err, codes.FailedPrecondition, "READ_ONLY_REPLICA")
	if info := errorInfo(st); info == nil || info.GetMetadata()["primary"] != primary {
		t.Fatalf("error details %v, want primary %s", info, primary)
	}
	if _, err := f.c.Recall(ctx, &engramv1.RecallRequest{MemorySpaceId: "tenant-a",
		Cue: &engramv1.Cue{CueType: &engramv1.Cue_Semantic{Semantic: &engramv1.SemanticCue{Query: "anything"}}}}); err != nil {
		t.Fatalf("recall on a follower: %v", err)
	}
}
