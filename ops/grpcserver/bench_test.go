package grpcserver

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/engram-ops/engram-ops/internal/testsupport"
	"github.com/engram-ops/engram-ops/ops/api"
	"github.com/engram-ops/engram-ops/ops/client"
	"github.com/engram-ops/engram-ops/ops/config"
	"github.com/engram-ops/engram-ops/ops/server"
	engramv1 "github.com/engram-ops/engram-ops/proto/engram/v1"
)

// benchClients is every protocol's number of concurrent clients.
const benchClients = 16

// BenchmarkProtocols times remember and recall over REST (the project's
// client, JSON over HTTP/1.1), unary gRPC and gRPC streams, against one
// server (one engine, REST and gRPC on real loopback listeners) in the
// same run, each with benchClients concurrent clients that each keep one
// request in flight; "stream-pipelined" lets each client's stream run
// ahead of the answers. Remembers are durable (sync). docs/benchmarks.md
// reports the ratios of the ops/s figures to REST's.
//
//	go test -run '^$' -bench Protocols -benchtime 3s ./ops/grpcserver/
func BenchmarkProtocols(b *testing.B) {
	cfg := config.Default()
	cfg.Listen, cfg.GRPC.Listen, cfg.DataDir = "127.0.0.1:0", "127.0.0.1:0", b.TempDir()
	cfg.Log.Access = false
	eng := testsupport.OpenEngine(b, cfg.DataDir)
	reg := prometheus.NewRegistry()
	rest, err := server.New(cfg, eng, nil, reg)
	if err != nil {
		b.Fatal(err)
	}
	g, err := New(cfg, rest, nil, reg)
	if err != nil {
		b.Fatal(err)
	}
	if err := rest.Listen(); err != nil {
		b.Fatal(err)
	}
	if err := g.Listen(); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = rest.Run(ctx) }()
	go func() { defer wg.Done(); _ = g.Run(ctx) }()
	defer func() { cancel(); wg.Wait() }()

	rc, err := client.New("http://"+rest.Addr().String(), client.WithSpace("bench"))
	if err != nil {
		b.Fatal(err)
	}
	conn, err := grpc.NewClient(g.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	gc := engramv1.NewEngramServiceClient(conn)

	var seq atomic.Int64
	content := func() string {
		n := seq.Add(1)
		return fmt.Sprintf("memory %d about the deploy of service %d and disk %d", n, n%97, n%13)
	}
	// Each remember benchmark writes to a space of its own; recalls search
	// the fixed seeded space "bench", so earlier benchmarks do not change
	// what later ones do.
	var writeSpace string
	var runs int
	grpcRemember := func() *engramv1.RememberRequest {
		return &engramv1.RememberRequest{MemorySpaceId: writeSpace, MemoryType: &engramv1.RememberRequest_Memory{Memory: &engramv1.Memory{Content: content()}}}
	}
	grpcRecall := func() *engramv1.RecallRequest {
		return &engramv1.RecallRequest{MemorySpaceId: "bench", MaxResults: 10,
			Cue: &engramv1.Cue{CueType: &engramv1.Cue_Semantic{Semantic: &engramv1.SemanticCue{Query: fmt.Sprintf("deploy of service %d", seq.Add(1)%97)}}}}
	}
	for range 2000 {
		if _, err := rc.Remember(ctx, api.RememberRequest{Content: content()}); err != nil {
			b.Fatal(err)
		}
	}
	// settle waits until every space's index has caught up, so that no
	// benchmark pays for the indexing of an earlier one's writes.
	settle := func(b *testing.B) {
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			pending := 0
			for _, st := range eng.Spaces() {
				pending += st.IndexPending
			}
			if pending == 0 {
				return
			}
		}
		b.Fatal("the index did not catch up within a minute")
	}

	run := func(b *testing.B, each func(pb *testing.PB) error) {
		runs++
		writeSpace = fmt.Sprintf("%s-%d", strings.ReplaceAll(strings.TrimPrefix(b.Name(), "BenchmarkProtocols/"), "/", "-"), runs)
		settle(b)
		b.ResetTimer()
		b.SetParallelism((benchClients + 1) / 2) // RunParallel starts parallelism × GOMAXPROCS
		b.RunParallel(func(pb *testing.PB) {
			if err := each(pb); err != nil {
				b.Error(err)
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	}
	lockstep := func(open func() (grpc.ClientStream, error), msg func() any, reply func() any) func(pb *testing.PB) error {
		return func(pb *testing.PB) error {
			s, err := open()
			if err != nil {
				return err
			}
			for pb.Next() {
				if err := s.SendMsg(msg()); err != nil {
					return err
				}
				if err := s.RecvMsg(reply()); err != nil {
					return err
				}
			}
			return s.CloseSend()
		}
	}
	pipelined := func(open func() (grpc.ClientStream, error), msg func() any, reply func() any) func(pb *testing.PB) error {
		return func(pb *testing.PB) error {
			s, err := open()
			if err != nil {
				return err
			}
			got := make(chan error, 1)
			go func() {
				for {
					if err := s.RecvMsg(reply()); err != nil {
						if err == io.EOF {
							err = nil
						}
						got <- err
						return
					}
				}
			}()
			for pb.Next() {
				if err := s.SendMsg(msg()); err != nil {
					return err
				}
			}
			if err := s.CloseSend(); err != nil {
				return err
			}
			return <-got
		}
	}
	openRemember := func() (grpc.ClientStream, error) { return gc.StreamingRemember(ctx) }
	openRecall := func() (grpc.ClientStream, error) { return gc.StreamingRecall(ctx) }
	newRememberReply := func() any { return new(engramv1.RememberResponse) }
	newRecallReply := func() any { return new(engramv1.RecallResponse) }

	b.Run("remember/rest", func(b *testing.B) {
		run(b, func(pb *testing.PB) error {
			wc := rc.WithSpace(writeSpace)
			for pb.Next() {
				if _, err := wc.Remember(ctx, api.RememberRequest{Content: content()}); err != nil {
					return err
				}
			}
			return nil
		})
	})
	b.Run("remember/grpc-unary", func(b *testing.B) {
		run(b, func(pb *testing.PB) error {
			for pb.Next() {
				if _, err := gc.Remember(ctx, grpcRemember()); err != nil {
					return err
				}
			}
			return nil
		})
	})
	b.Run("remember/grpc-stream", func(b *testing.B) {
		run(b, lockstep(openRemember, func() any { return grpcRemember() }, newRememberReply))
	})
	b.Run("remember/grpc-stream-pipelined", func(b *testing.B) {
		run(b, pipelined(openRemember, func() any { return grpcRemember() }, newRememberReply))
	})
	b.Run("recall/rest", func(b *testing.B) {
		run(b, func(pb *testing.PB) error {
			for pb.Next() {
				if _, err := rc.Recall(ctx, api.RecallRequest{Query: fmt.Sprintf("deploy of service %d", seq.Add(1)%97), MaxResults: 10, Mode: "similarity"}); err != nil {
					return err
				}
			}
			return nil
		})
	})
	b.Run("recall/grpc-unary", func(b *testing.B) {
		run(b, func(pb *testing.PB) error {
			for pb.Next() {
				if _, err := gc.Recall(ctx, grpcRecall()); err != nil {
					return err
				}
			}
			return nil
		})
	})
	b.Run("recall/grpc-stream", func(b *testing.B) {
		run(b, lockstep(openRecall, func() any { return grpcRecall() }, newRecallReply))
	})
	b.Run("recall/grpc-stream-pipelined", func(b *testing.B) {
		run(b, pipelined(openRecall, func() any { return grpcRecall() }, newRecallReply))
	})
}
