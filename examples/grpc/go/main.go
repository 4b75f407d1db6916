// Command grpc-example is Engram's gRPC API from Go: remember with
// confidence and tags, recall by a partial cue (direct matches and those
// reached through associations), episodes, associations and spreading
// activation, spaces, a batch over a stream, forget, an API key, and a
// refused request's status. It talks to `engram-ops serve` (gRPC on
// 127.0.0.1:50051 by default) with code generated from proto/engram/v1.
//
//	go run ./examples/grpc/go [-addr 127.0.0.1:50051] [-space example]
//
// With auth.mode = "api_key", put a write key in ENGRAM_API_KEY.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	engramv1 "github.com/engram-ops/engram-ops/proto/engram/v1"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:50051", "gRPC address of engram-ops serve")
	space := flag.String("space", "example-grpc-go", "memory space to use")
	flag.Parse()
	if err := run(*addr, *space, os.Getenv("ENGRAM_API_KEY")); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run(addr, space, key string) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	c := engramv1.NewEngramServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if key != "" {
		// The API key travels in the authorization metadata, as over REST.
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+key)
	}

	// Remember with a confidence and tags, in a space of our own.
	remember := func(id, content string, conf float32, tags ...string) error {
		res, err := c.Remember(ctx, &engramv1.RememberRequest{MemorySpaceId: space,
			MemoryType: &engramv1.RememberRequest_Memory{Memory: &engramv1.Memory{
				Id: id, Content: content, Tags: tags, Confidence: &engramv1.Confidence{Value: conf},
			}}})
		if err != nil {
			return err
		}
		fmt.Printf("remembered %s (confidence %.2f)\n", res.GetMemoryId(), res.GetStorageConfidence().GetValue())
		return nil
	}
	if err := remember("deploy-failed", "the deploy of the billing service failed because the disk was full", 0.9, "ops", "incident"); err != nil {
		return err
	}
	if err := remember("disk-alert", "an alert fires when a data disk is above 90 percent", 0.8, "ops"); err != nil {
		return err
	}

	// An episode: what happened, when, where, who.
	ep, err := c.Experience(ctx, &engramv1.ExperienceRequest{MemorySpaceId: space, Episode: &engramv1.Episode{
		Id: "postmortem", What: "postmortem meeting about the billing outage", When: timestamppb.Now(),
		WhereLocation: "room 4", Who: []string{"ana", "bo"}, Importance: 0.7,
	}})
	if err != nil {
		return err
	}
	fmt.Printf("experienced %s\n", ep.GetEpisodeId())

	// An association, so that spreading activation can reach the alert.
	if _, err := c.Associate(ctx, &engramv1.AssociateRequest{MemorySpaceId: space, SourceMemory: "deploy-failed", TargetMemory: "disk-alert",
		Strength: 0.8, AssociationType: engramv1.AssociationType_ASSOCIATION_TYPE_CAUSAL}); err != nil {
		return err
	}
	fmt.Println("associated deploy-failed -> disk-alert")

	// Recall by a partial cue with spreading activation: direct matches,
	// then memories reached through associations.
	rec, err := c.Recall(ctx, &engramv1.RecallRequest{MemorySpaceId: space, TraceActivation: true, Cue: &engramv1.Cue{
		SpreadActivation: true, CueType: &engramv1.Cue_Semantic{Semantic: &engramv1.SemanticCue{Query: "billing deploy failed"}}}})
	if err != nil {
		return err
	}
	var direct, associated int
	for i, m := range rec.GetMemories() {
		kind := "vivid"
		if i < len(rec.GetTraces()) && len(rec.GetTraces()[i].GetActivationPath()) > 1 {
			kind, associated = "associated", associated+1
		} else {
			direct++
		}
		fmt.Printf("  %-10s %s (%.2f)\n", kind, m.GetId(), m.GetConfidence().GetValue())
	}
	fmt.Printf("recall: %d vivid, %d associated\n", direct, associated)

	// A batch over one stream: one answer per memory, in order.
	stream, err := c.StreamingRemember(ctx)
	if err != nil {
		return err
	}
	for i := range 3 {
		if err := stream.Send(&engramv1.RememberRequest{MemorySpaceId: space, MemoryType: &engramv1.RememberRequest_Memory{
			Memory: &engramv1.Memory{Id: fmt.Sprintf("batch-%d", i), Content: fmt.Sprintf("imported note number %d", i)}}}); err != nil {
			return err
		}
	}
	if err := stream.CloseSend(); err != nil {
		return err
	}
	n := 0
	for {
		if _, err := stream.Recv(); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return err
		}
		n++
	}
	fmt.Printf("batch: %d remembered\n", n)

	// Forget one memory.
	if _, err := c.Forget(ctx, &engramv1.ForgetRequest{MemorySpaceId: space, Target: &engramv1.ForgetRequest_MemoryId{MemoryId: "batch-0"}}); err != nil {
		return err
	}
	fmt.Println("forgot batch-0")

	// A bad request: the status carries REST's error code and message.
	_, err = c.Remember(ctx, &engramv1.RememberRequest{MemorySpaceId: space, MemoryType: &engramv1.RememberRequest_Memory{Memory: &engramv1.Memory{Content: " "}}})
	st, _ := status.FromError(err)
	fmt.Printf("refused: %s %s\n", st.Code(), st.Message())
	return nil
}
