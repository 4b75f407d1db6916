package grpcserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	rpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/core/apikey"
	"github.com/engram-ops/engram-ops/internal/testsupport"
	"github.com/engram-ops/engram-ops/ops/config"
	"github.com/engram-ops/engram-ops/ops/server"
	engramv1 "github.com/engram-ops/engram-ops/proto/engram/v1"
)

// fixture is a REST server and its gRPC service on real loopback
// listeners, over one engine, with a real gRPC client.
type fixture struct {
	c    engramv1.EngramServiceClient
	conn *grpc.ClientConn
	eng  *core.Engine
	rest *server.Server
	url  string // REST base URL (httptest)
	reg  *prometheus.Registry
	keys *apikey.Store
}

func newFixture(t *testing.T, mods ...func(*config.Config)) *fixture {
	t.Helper()
	return newFixtureWith(t, nil, mods...)
}

// newFixtureWith is newFixture with options for the REST server.
func newFixtureWith(t *testing.T, opts []server.Option, mods ...func(*config.Config)) *fixture {
	t.Helper()
	cfg := config.Default()
	cfg.Listen, cfg.GRPC.Listen, cfg.DataDir = "127.0.0.1:0", "127.0.0.1:0", t.TempDir()
	cfg.Log.Access = false
	for _, m := range mods {
		m(&cfg)
	}
	eng := testsupport.OpenEngine(t, cfg.DataDir, func(o *core.Options) { o.NoAutoCreateSpaces = !cfg.Spaces.AutoCreate })
	keys, err := apikey.Open(eng)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	rest, err := server.New(cfg, eng, nil, reg, append([]server.Option{server.WithAPIKeys(keys)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(cfg, rest, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	hs := httptest.NewServer(rest.Handler())
	conn, err := grpc.NewClient(g.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(64<<20)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		hs.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return &fixture{c: engramv1.NewEngramServiceClient(conn), conn: conn, eng: eng, rest: rest, url: hs.URL, reg: reg, keys: keys}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// wantStatus fails unless err is a status of code whose message starts
// with REST's error code restCode.
func wantStatus(t *testing.T, err error, code codes.Code, restCode string) *status.Status {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok || st.Code() != code || !strings.HasPrefix(st.Message(), restCode+": ") {
		t.Fatalf("got %v; want %s with message %q…", err, code, restCode+": ")
	}
	return st
}

func memCount(t *testing.T, eng *core.Engine, space string) int64 {
	t.Helper()
	st, err := eng.Space(space)
	if err != nil {
		return 0
	}
	return st.Total()
}

func TestRememberRecallRoundTrip(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	res, err := f.c.Remember(ctx, &engramv1.RememberRequest{
		MemorySpaceId: "tenant-a",
		MemoryType: &engramv1.RememberRequest_Memory{Memory: &engramv1.Memory{
			Content: "the deploy failed because the disk was full", Tags: []string{"ops"},
			Confidence: &engramv1.Confidence{Value: 0.9}, MemoryType: engramv1.MemoryType_MEMORY_TYPE_SEMANTIC,
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.GetMemoryId() == "" || res.GetStorageConfidence().GetValue() != 0.9 ||
		res.GetStorageConfidence().GetCategory() != engramv1.ConfidenceCategory_CONFIDENCE_CATEGORY_HIGH {
		t.Fatalf("remember answered %v", res)
	}
	// The memory is in the engine, in the named space.
	m, err := f.eng.Get(ctx, "tenant-a", res.GetMemoryId(), false)
	if err != nil || m.Content != "the deploy failed because the disk was full" || m.Tags[0] != "ops" || m.Type != core.Semantic {
		t.Fatalf("stored %+v, %v", m, err)
	}
	rec, err := f.c.Recall(ctx, &engramv1.RecallRequest{MemorySpaceId: "tenant-a",
		Cue: &engramv1.Cue{CueType: &engramv1.Cue_Semantic{Semantic: &engramv1.SemanticCue{Query: "disk full deploy"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.GetMemories()) != 1 || rec.GetMemories()[0].GetId() != res.GetMemoryId() || rec.GetMemories()[0].GetContent() != m.Content {
		t.Fatalf("recall answered %v", rec)
	}
	// Another space does not see it.
	rec, err = f.c.Recall(ctx, &engramv1.RecallRequest{MemorySpaceId: "tenant-b",
		Cue: &engramv1.Cue{CueType: &engramv1.Cue_Semantic{Semantic: &engramv1.SemanticCue{Query: "disk full deploy"}}}})
	if err != nil || len(rec.GetMemories()) != 0 {
		t.Fatalf("recall in another space: %v, %v", rec, err)
	}
}

func TestStreamingRememberStoresEveryMessage(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	stream, err := f.c.StreamingRemember(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const n = 50
	ids := map[string]bool{}
	var wg sync.WaitGroup
	wg.Add(1)
	var recvErr error
	go func() {
		defer wg.Done()
		for {
			r, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				recvErr = err
				return
			}
			ids[r.GetMemoryId()] = true
		}
	}()
	for i := range n {
		if err := stream.Send(&engramv1.RememberRequest{MemorySpaceId: "stream", MemoryType: &engramv1.RememberRequest_Memory{
			Memory: &engramv1.Memory{Id: fmt.Sprintf("m%03d", i), Content: fmt.Sprintf("streamed memory number %d", i)}}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if recvErr != nil {
		t.Fatal(recvErr)
	}
	if len(ids) != n || memCount(t, f.eng, "stream") != n {
		t.Fatalf("%d answers, %d stored; want %d", len(ids), memCount(t, f.eng, "stream"), n)
	}
	for i := range n {
		if _, err := f.eng.Get(ctx, "stream", fmt.Sprintf("m%03d", i), false); err != nil {
			t.Fatal(err)
		}
	}
	// The stream is counted once, its messages each.
	if got := f.metric(t, "engram_grpc_stream_messages_total", "StreamingRemember", "received"); got != n {
		t.Errorf("received messages counted %v, want %d", got, n)
	}
}

// metric is the value of the counter name whose label values include
// labels.
func (f *fixture) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			values := map[string]bool{}
			for _, lp := range m.GetLabel() {
				values[lp.GetValue()] = true
			}
			for _, l := range labels {
				if !values[l] {
					continue next
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no %s%v", name, labels)
	return 0
}

func TestAuth(t *testing.T) {
	f := newFixture(t, func(c *config.Config) { c.Auth.Mode = config.AuthAPIKey })
	ctx := ctxT(t)
	mk := func(spec apikey.Spec) string {
		tok, _, err := f.keys.Create(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	write := mk(apikey.Spec{Name: "w", Permissions: []apikey.Permission{apikey.Write}, Spaces: []string{"tenant-a"}})
	read := mk(apikey.Spec{Name: "r", Permissions: []apikey.Permission{apikey.Read}})
	req := &engramv1.RememberRequest{MemorySpaceId: "tenant-a", MemoryType: &engramv1.RememberRequest_Memory{Memory: &engramv1.Memory{Content: "secret"}}}
	with := func(tok string) context.Context {
		return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
	}

	_, err := f.c.Remember(ctx, req)
	wantStatus(t, err, codes.Unauthenticated, "MISSING_API_KEY")
	_, err = f.c.Remember(with("engram_key_nonsense"), req)
	wantStatus(t, err, codes.Unauthenticated, "MALFORMED_API_KEY")
	_, err = f.c.Remember(with(read), req)
	wantStatus(t, err, codes.PermissionDenied, "FORBIDDEN")
	other := &engramv1.RememberRequest{MemorySpaceId: "tenant-b", MemoryType: req.MemoryType}
	_, err = f.c.Remember(with(write), other)
	st := wantStatus(t, err, codes.PermissionDenied, "FORBIDDEN_SPACE")
	if ei := errorInfo(st); ei == nil || ei.GetReason() != "FORBIDDEN_SPACE" || ei.GetDomain() != errorDomain {
		t.Errorf("details %v", st.Details())
	}
	// A stream is refused before its first message.
	stream, err := f.c.StreamingRemember(ctx)
	if err == nil {
		_ = stream.Send(req)
		_, err = stream.Recv()
	}
	wantStatus(t, err, codes.Unauthenticated, "MISSING_API_KEY")
	if n := memCount(t, f.eng, "tenant-a") + memCount(t, f.eng, "tenant-b"); n != 0 {
		t.Fatalf("%d memories written by refused calls", n)
	}
	if _, err := f.c.Remember(with(write), req); err != nil {
		t.Fatal(err)
	}
	// x-api-key is read as REST reads X-API-Key.
	if _, err := f.c.Recall(metadata.AppendToOutgoingContext(ctx, "x-api-key", read), &engramv1.RecallRequest{MemorySpaceId: "tenant-a",
		Cue: &engramv1.Cue{CueType: &engramv1.Cue_Semantic{Semantic: &engramv1.SemanticCue{Query: "secret"}}}}); err != nil {
		t.Fatal(err)
	}
	// Health answers without a key.
	hr, err := healthpb.NewHealthClient(f.conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || hr.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v, %v", hr, err)
	}
}

func errorInfo(st *status.Status) *errdetails.ErrorInfo {
	for _, d := range st.Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok {
			return ei
		}
	}
	return nil
}

// TestBadInputSameAsREST sends the same bad input over gRPC and REST: the
// gRPC status carries REST's code and message, and nothing is written.
func TestBadInputSameAsREST(t *testing.T) {
	f := newFixture(t, func(c *config.Config) { c.GRPC.MaxReceiveBytes = 64 << 10 })
	ctx := ctxT(t)
	cases := []struct {
		name     string
		req      *engramv1.RememberRequest
		restBody string
		restCode string
	}{
		{"empty content", &engramv1.RememberRequest{MemoryType: &engramv1.RememberRequest_Memory{Memory: &engramv1.Memory{Content: "  "}}},
			`{"content":"  "}`, "EMPTY_CONTENT"},
		{"no memory at all", &engramv1.RememberRequest{}, `{"content":""}`, "EMPTY_CONTENT"},
		{"bad space", &engramv1.RememberRequest{MemorySpaceId: "NO!", MemoryType: &engramv1.RememberRequest_Memory{Memory: &engramv1.Memory{Content: "x"}}},
			`{"content":"x","memory_space_id":"NO!"}`, "INVALID_SPACE"},
		{"wrong dimension", &engramv1.RememberRequest{MemoryType: &engramv1.RememberRequest_Memory{Memory: &engramv1.Memory{Content: "x", Embedding: []float32{1, 2, 3}}}},
			`{"content":"x","embedding":[1,2,3]}`, "INVALID_EMBEDDING_DIMENSION"},
		{"working memory type", &engramv1.RememberRequest{MemoryType: &engramv1.RememberRequest_Memory{Memory: &engramv1.Memory{Content: "x", MemoryType: engramv1.MemoryType_MEMORY_TYPE_WORKING}}},
			`{"content":"x","memory_type":"working"}`, "INVALID_MEMORY_TYPE"},
		{"episode without when", &engramv1.RememberRequest{MemoryType: &engramv1.RememberRequest_Episode{Episode: &engramv1.Episode{What: "x"}}},
			"", "INVALID_EPISODE"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.c.Remember(ctx, tc.req)
			st := wantStatus(t, err, codes.InvalidArgument, tc.restCode)
			if tc.restBody != "" {
				resp, err := http.Post(f.url+"/api/v1/memories/remember", "application/json", strings.NewReader(tc.restBody))
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				msg := strings.TrimPrefix(st.Message(), tc.restCode+": ")
				if resp.StatusCode != 400 || !bytes.Contains(b, []byte(`"code":"`+tc.restCode+`"`)) || !bytes.Contains(b, []byte(jsonString(msg))) {
					t.Errorf("REST answered %d %s; gRPC message %q", resp.StatusCode, b, msg)
				}
			}
		})
	}
	// A message over grpc.max_receive_bytes is refused before decoding.
	big := &engramv1.RememberRequest{MemoryType: &engramv1.RememberRequest_Memory{Memory: &engramv1.Memory{Content: strings.Repeat("x", 100<<10)}}}
	_, err := f.c.Remember(ctx, big)
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("oversized message: %v, want ResourceExhausted", err)
	}
	// Bytes that are not a RememberRequest.
	err = f.conn.Invoke(ctx, "/engram.v1.EngramService/Remember", &rawBytes{0xff, 0xff, 0xff}, new(rawBytes), grpc.ForceCodecV2(rawCodec{}))
	wantStatus(t, err, codes.InvalidArgument, "INVALID_MESSAGE")
	for _, sp := range []string{"default", "NO!"} {
		if n := memCount(t, f.eng, sp); n != 0 {
			t.Fatalf("%d memories written in %s by refused calls", n, sp)
		}
	}
	// A recall without a cue is REST's MISSING_CUE.
	_, err = f.c.Recall(ctx, &engramv1.RecallRequest{})
	wantStatus(t, err, codes.InvalidArgument, "MISSING_CUE")
}

// jsonString is s as the JSON encoder writes it inside a string (the
// characters REST's messages hold).
func jsonString(s string) string {
	return strings.NewReplacer(`"`, `\"`, "<", `\u003c`, ">", `\u003e`, "&", `\u0026`).Replace(s)
}

// rawBytes is sent as they are with rawCodec.
type rawBytes []byte

// rawCodec sends rawBytes unencoded, as a broken client would.
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*v.(*rawBytes))}, nil
}
func (rawCodec) Unmarshal(mem.BufferSlice, any) error { return nil }
func (rawCodec) Name() string                         { return "proto" }

func TestUnimplementedAndUnknown(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	_, err := f.c.Consolidate(ctx, &engramv1.ConsolidateRequest{})
	st, _ := status.FromError(err)
	if st.Code() != codes.Unimplemented || !strings.Contains(st.Message(), "does not serve Consolidate") {
		t.Fatalf("Consolidate: %v", err)
	}
	_, err = f.c.Forget(ctx, &engramv1.ForgetRequest{Target: &engramv1.ForgetRequest_MemoryId{MemoryId: "x"}, Mode: engramv1.ForgetMode_FORGET_MODE_SUPPRESS})
	if status.Code(err) != codes.Unimplemented {
		t.Fatalf("Forget SUPPRESS: %v", err)
	}
	err = f.conn.Invoke(ctx, "/engram.v1.EngramService/NoSuchMethod", &engramv1.RememberRequest{}, new(engramv1.RememberResponse))
	if status.Code(err) != codes.Unimplemented {
		t.Fatalf("unknown method: %v", err)
	}
	err = f.conn.Invoke(ctx, "/engram.v9.Nothing/Call", &engramv1.RememberRequest{}, new(engramv1.RememberResponse))
	if status.Code(err) != codes.Unimplemented {
		t.Fatalf("unknown service: %v", err)
	}
}

func TestHealthAndReflection(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	for _, svc := range []string{"", "engram.v1.EngramService"} {
		hr, err := healthpb.NewHealthClient(f.conn).Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || hr.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("health %q: %v, %v", svc, hr, err)
		}
	}
	rc, err := rpb.NewServerReflectionClient(f.conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Send(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	resp, err := rc.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	if !strings.Contains(strings.Join(names, ","), "engram.v1.EngramService") {
		t.Fatalf("reflection lists %v", names)
	}
}

// TestDeadlineCancelsEngineCall: a call whose deadline passes while the
// engine is slow (test-only fault injection) answers DeadlineExceeded and
// writes nothing.
func TestDeadlineCancelsEngineCall(t *testing.T) {
	f := newFixture(t, func(c *config.Config) { c.Testing.FaultInjection = true })
	resp, err := http.Post(f.url+server.PathAdminFaults, "application/json",
		strings.NewReader(`{"operations":["remember"],"latency":"5s"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("set fault: %d", resp.StatusCode)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = f.c.Remember(ctx, &engramv1.RememberRequest{MemoryType: &engramv1.RememberRequest_Memory{Memory: &engramv1.Memory{Id: "late", Content: "too slow"}}})
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("got %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("the call took %v: the engine call was not cancelled", d)
	}
	time.Sleep(100 * time.Millisecond)
	if _, err := f.eng.Get(context.Background(), "default", "late", false); core.CodeOf(err) != "MEMORY_NOT_FOUND" {
		t.Fatalf("the cancelled write is there: %v", err)
	}
}

// TestMethodAccess: every EngramService method is either in writes or a
// read; the write list names only real methods.
func TestMethodAccess(t *testing.T) {
	methods := map[string]bool{}
	for _, m := range engramv1.EngramService_ServiceDesc.Methods {
		methods[m.MethodName] = true
	}
	for _, s := range engramv1.EngramService_ServiceDesc.Streams {
		methods[s.StreamName] = true
	}
	for w := range writes {
		if !methods[w] {
			t.Errorf("writes names %s, which EngramService lacks", w)
		}
	}
	for _, w := range []string{"Remember", "StreamingRemember", "Forget", "Experience", "Associate"} {
		if !writes[w] {
			t.Errorf("%s writes but needs only a read key", w)
		}
	}
}

// TestRateLimitPerMessage: each call, and each message of a stream, takes
// a token of the space's rate, as each REST request does.
func TestRateLimitPerMessage(t *testing.T) {
	f := newFixture(t, func(c *config.Config) { c.RateLimit.Space, c.RateLimit.SpaceBurst = 0.001, 2 })
	ctx := ctxT(t)
	req := func(id string) *engramv1.RememberRequest {
		return &engramv1.RememberRequest{MemorySpaceId: "limited", MemoryType: &engramv1.RememberRequest_Memory{Memory: &engramv1.Memory{Id: id, Content: "x " + id}}}
	}
	if _, err := f.c.Remember(ctx, req("a")); err != nil {
		t.Fatal(err)
	}
	stream, err := f.c.StreamingRemember(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The space exists now: its own bucket holds the burst of 2.
	for _, id := range []string{"b", "c", "d"} {
		if err := stream.Send(req(id)); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		if _, err := stream.Recv(); err != nil {
			t.Fatal(err)
		}
	}
	_, err = stream.Recv()
	wantStatus(t, err, codes.ResourceExhausted, "RATE_LIMITED")
	if n := memCount(t, f.eng, "limited"); n != 3 {
		t.Fatalf("%d memories stored, want 3", n)
	}
}

// TestTLS: with a certificate configured, gRPC is served over TLS with it;
// a plaintext client is refused.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testsupport.NewCA(t, dir, "ca")
	kp := ca.Issue(t, dir, "server", testsupport.CertOptions{})
	var addr string
	f := newFixture(t, func(c *config.Config) { c.TLS.CertFile, c.TLS.KeyFile = kp.CertFile, kp.KeyFile })
	addr = f.conn.Target()
	ctx := ctxT(t)
	creds, err := credentials.NewClientTLSFromFile(ca.File, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := engramv1.NewEngramServiceClient(conn).Remember(ctx, &engramv1.RememberRequest{
		MemoryType: &engramv1.RememberRequest_Memory{Memory: &engramv1.Memory{Content: "over TLS"}}}); err != nil {
		t.Fatal(err)
	}
	// f.c dials without TLS.
	if _, err := f.c.Remember(ctx, &engramv1.RememberRequest{MemoryType: &engramv1.RememberRequest_Memory{Memory: &engramv1.Memory{Content: "plain"}}}); status.Code(err) != codes.Unavailable {
		t.Fatalf("plaintext call to a TLS server: %v", err)
	}
}

// TestUnknownSpace: with spaces.auto_create off, a write to a space that
// does not exist is REST's SPACE_NOT_FOUND, and creates nothing.
func TestUnknownSpace(t *testing.T) {
	f := newFixture(t, func(c *config.Config) { c.Spaces.AutoCreate = false })
	ctx := ctxT(t)
	_, err := f.c.Remember(ctx, &engramv1.RememberRequest{MemorySpaceId: "nowhere",
		MemoryType: &engramv1.RememberRequest_Memory{Memory: &engramv1.Memory{Content: "lost"}}})
	wantStatus(t, err, codes.NotFound, "SPACE_NOT_FOUND")
	if _, err := f.eng.Space("nowhere"); err == nil {
		t.Fatal("the refused write created the space")
	}
}

// TestEveryRPCIsServed: every RPC of the descriptor is answered by this
// package (the generated stubs that answer "method X not implemented" are
// stripped by scripts/protogen.sh, and service must implement the whole
// interface to compile).
// An RPC without an engine counterpart answers NOT_IMPLEMENTED naming what
// serves it instead.
func TestEveryRPCIsServed(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	generated := func(name string, err error) {
		t.Helper()
		if msg := status.Convert(err).Message(); msg == "method "+name+" not implemented" {
			t.Errorf("%s reached the generated stub: %v", name, err)
		} else if status.Code(err) == codes.Unimplemented && !strings.Contains(msg, "NOT_IMPLEMENTED: engram-ops does not serve") {
			t.Errorf("%s: unimplemented without naming what serves it: %v", name, err)
		}
	}
	desc := engramv1.EngramService_ServiceDesc
	for _, m := range desc.Methods {
		req := rawBytes{}
		err := f.conn.Invoke(ctx, "/"+desc.ServiceName+"/"+m.MethodName, &req, new(rawBytes), grpc.ForceCodecV2(rawCodec{}))
		generated(m.MethodName, err)
	}
	for _, s := range desc.Streams {
		sd := s
		st, err := f.conn.NewStream(ctx, &sd, "/"+desc.ServiceName+"/"+s.StreamName, grpc.ForceCodecV2(rawCodec{}))
		if err != nil {
			generated(s.StreamName, err)
			continue
		}
		if !s.ClientStreams {
			req := rawBytes{}
			if err := st.SendMsg(&req); err != nil {
				generated(s.StreamName, err)
			}
		}
		if err := st.CloseSend(); err != nil {
			t.Fatal(err)
		}
		err = st.RecvMsg(new(rawBytes))
		for err == nil {
			err = st.RecvMsg(new(rawBytes))
		}
		generated(s.StreamName, err)
	}
	if len(desc.Methods)+len(desc.Streams) < 20 {
		t.Fatalf("the descriptor lists %d RPCs", len(desc.Methods)+len(desc.Streams))
	}
}

// TestAuditLog: gRPC calls reach the audit log under REST's rules and in
// its format: a write names its key, space and memory ids (a stream's,
// all of them, in one line), a refused call its reason, and a read is not
// audited without audit.reads.
func TestAuditLog(t *testing.T) {
	var buf testsupport.SyncBuffer
	f := newFixtureWith(t, []server.Option{server.WithAudit(&buf, false)}, func(c *config.Config) { c.Auth.Mode = config.AuthAPIKey })
	ctx := ctxT(t)
	write, writeKey, err := f.keys.Create(ctx, apikey.Spec{Name: "w", Permissions: []apikey.Permission{apikey.Write}, Spaces: []string{"tenant-a"}})
	if err != nil {
		t.Fatal(err)
	}
	read, _, err := f.keys.Create(ctx, apikey.Spec{Name: "r", Permissions: []apikey.Permission{apikey.Read}})
	if err != nil {
		t.Fatal(err)
	}
	with := func(tok string) context.Context {
		return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
	}
	remember := func(id string) *engramv1.RememberRequest {
		return &engramv1.RememberRequest{MemorySpaceId: "tenant-a", MemoryType: &engramv1.RememberRequest_Memory{Memory: &engramv1.Memory{Id: id, Content: "audited " + id}}}
	}

	if _, err := f.c.Remember(with(write), remember("g-1")); err != nil {
		t.Fatal(err)
	}
	if _, err := f.c.Recall(with(read), &engramv1.RecallRequest{MemorySpaceId: "tenant-a",
		Cue: &engramv1.Cue{CueType: &engramv1.Cue_Semantic{Semantic: &engramv1.SemanticCue{Query: "audited"}}}}); err != nil {
		t.Fatal(err)
	}
	_, err = f.c.Remember(with(read), remember("g-refused"))
	wantStatus(t, err, codes.PermissionDenied, "FORBIDDEN")
	stream, err := f.c.StreamingRemember(with(write))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"s-1", "s-2", "s-3"} {
		if err := stream.Send(remember(id)); err != nil {
			t.Fatal(err)
		}
		if _, err := stream.Recv(); err != nil {
			t.Fatal(err)
		}
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("stream end: %v", err)
	}

	var lines []server.AuditRecord
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var rec server.AuditRecord
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("audit line %q: %v", l, err)
		}
		lines = append(lines, rec)
	}
	if len(lines) != 3 {
		t.Fatalf("%d audit lines, want 3 (the read is not audited):\n%s", len(lines), buf.String())
	}
	w, refused, st := lines[0], lines[1], lines[2]
	if w.Method != "gRPC" || w.Route != "/engram.v1.EngramService/Remember" || w.Key != writeKey.ID || w.Space != "tenant-a" ||
		!slices.Equal(w.IDs, []string{"g-1"}) || w.Outcome != "ok" || w.Status != 200 || w.Remote == "" {
		t.Errorf("write line %+v", w)
	}
	if refused.Route != "/engram.v1.EngramService/Remember" || refused.Outcome != "refused" || refused.Reason != "forbidden" || refused.Status != 403 || len(refused.IDs) != 0 {
		t.Errorf("refused line %+v", refused)
	}
	if st.Route != "/engram.v1.EngramService/StreamingRemember" || !slices.Equal(st.IDs, []string{"s-1", "s-2", "s-3"}) || st.Outcome != "ok" {
		t.Errorf("stream line %+v", st)
	}
	if strings.Contains(buf.String(), write[len(write)-12:]) || strings.Contains(buf.String(), read[len(read)-12:]) {
		t.Fatal("the audit log holds a secret")
	}
}

// TestAccessLog: with log.access, each EngramService call writes one
// access-log line, as a REST request does, with the gRPC code beside the
// REST status; health checks write none.
func TestAccessLog(t *testing.T) {
	var buf testsupport.SyncBuffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	f := newFixtureWith(t, []server.Option{server.WithAccessLogger(logger)}, func(c *config.Config) { c.Log.Access = true })
	ctx := ctxT(t)
	if _, err := f.c.Remember(ctx, &engramv1.RememberRequest{MemorySpaceId: "logged",
		MemoryType: &engramv1.RememberRequest_Memory{Memory: &engramv1.Memory{Content: "a logged call"}}}); err != nil {
		t.Fatal(err)
	}
	_, err := f.c.Forget(ctx, &engramv1.ForgetRequest{MemorySpaceId: "logged", Target: &engramv1.ForgetRequest_MemoryId{MemoryId: "absent"}})
	wantStatus(t, err, codes.NotFound, "MEMORY_NOT_FOUND")
	if _, err := healthpb.NewHealthClient(f.conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	type line struct {
		Msg, Method, Route, Code, Space string
		Status                          int
		DurationMS                      float64 `json:"duration_ms"`
	}
	var lines []line
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var x line
		if err := json.Unmarshal([]byte(l), &x); err != nil {
			t.Fatalf("access line %q: %v", l, err)
		}
		lines = append(lines, x)
	}
	if len(lines) != 2 {
		t.Fatalf("%d access lines, want 2 (health checks are not logged):\n%s", len(lines), buf.String())
	}
	if l := lines[0]; l.Msg != "grpc call" || l.Method != "gRPC" || l.Route != "/engram.v1.EngramService/Remember" || l.Code != "OK" ||
		l.Status != 200 || l.Space != "logged" || l.DurationMS <= 0 {
		t.Errorf("remember line %+v", l)
	}
	if l := lines[1]; l.Route != "/engram.v1.EngramService/Forget" || l.Code != "NotFound" || l.Status != 404 {
		t.Errorf("forget line %+v", l)
	}
}
