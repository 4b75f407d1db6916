package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/engram-ops/engram-ops/ops/api"
	engramv1 "github.com/engram-ops/engram-ops/proto/engram/v1"
)

// TestServeGRPC: serve binds --grpc-listen, says where in its start line,
// and a memory remembered over gRPC is recalled over REST.
func TestServeGRPC(t *testing.T) {
	p := startServe(t, t.TempDir())
	var addr string
	for _, l := range p.logLines() {
		if l["msg"] == "engram-ops serving" {
			addr, _ = l["grpc_addr"].(string)
		}
	}
	if addr == "" || addr == "off" {
		t.Fatalf("no grpc_addr in the start line:\n%s", p.stderr.String())
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := engramv1.NewEngramServiceClient(conn).Remember(ctx, &engramv1.RememberRequest{MemorySpaceId: "grpc",
		MemoryType: &engramv1.RememberRequest_Memory{Memory: &engramv1.Memory{Content: "written over gRPC"}}})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := p.c.Recall(ctx, api.RecallRequest{Query: "written over gRPC", SpaceFields: api.SpaceFields{MemorySpaceID: "grpc"}})
	if err != nil || len(rec.Memories.Vivid) != 1 || rec.Memories.Vivid[0].ID != res.GetMemoryId() {
		t.Fatalf("REST recall of a gRPC write: %+v, %v", rec, err)
	}
}

// TestServeGRPCOpenListenRefused: without keys, gRPC on a non-loopback
// address is refused as the REST address is.
func TestServeGRPCOpenListenRefused(t *testing.T) {
	code, _, errOut := runCLI(t, nil, "serve", "--listen", "127.0.0.1:0", "--grpc-listen", "0.0.0.0:0", "--data-dir", t.TempDir())
	if code != exitUsage || !strings.Contains(errOut, "grpc.listen") || !strings.Contains(errOut, "loopback") {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
	code, _, errOut = runCLI(t, nil, "serve", "--listen", "127.0.0.1:0", "--grpc-listen", "nonsense", "--data-dir", t.TempDir())
	if code != exitUsage || !strings.Contains(errOut, "grpc.listen") {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
}
