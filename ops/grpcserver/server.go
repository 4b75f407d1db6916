// Package grpcserver serves Engram's gRPC service, engram.v1.EngramService
// (proto/engram/v1), beside the REST API: the same engine calls, key
// checks, spaces, rate limits, metrics and error codes, through the REST
// server's RPC API (ops/server). Calls with no engine behaviour behind
// them answer UNIMPLEMENTED saying so. grpc.health.v1 and server
// reflection are served too, without a key.
//
// Errors carry REST's code and message: the status message is
// "CODE: message" and an ErrorInfo detail has the code as its reason and
// REST's details as metadata. Status codes follow REST's statuses (400
// InvalidArgument, 401 Unauthenticated, 403 PermissionDenied, 404
// NotFound, 409 FailedPrecondition, 413 InvalidArgument, 429 and 507
// ResourceExhausted, 503 Unavailable, 501 Unimplemented, other 5xx
// Internal); a deadline that passes cancels the engine call and answers
// DeadlineExceeded. A message over grpc.max_receive_bytes is refused
// (ResourceExhausted) before it is decoded.
package grpcserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/engram-ops/engram-ops/ops/config"
	"github.com/engram-ops/engram-ops/ops/metrics"
	"github.com/engram-ops/engram-ops/ops/server"
	engramv1 "github.com/engram-ops/engram-ops/proto/engram/v1"
)

// Server is the gRPC listener of one REST server's engine.
type Server struct {
	cfg     config.Config
	rpc     server.RPC
	log     *slog.Logger
	metrics *metrics.GRPC
	gs      *grpc.Server
	health  *health.Server
	codec   *codec

	mu sync.Mutex
	ln net.Listener
}

// New builds the gRPC service of rest's engine on cfg.GRPC, registering
// engram_grpc_* on reg. It serves TLS when rest does, with its
// certificate.
func New(cfg config.Config, rest *server.Server, logger *slog.Logger, reg prometheus.Registerer) (*Server, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m, err := metrics.NewGRPC(reg)
	if err != nil {
		return nil, fmt.Errorf("register gRPC metrics: %w", err)
	}
	s := &Server{cfg: cfg, rpc: rest.RPC(), log: logger, metrics: m, health: health.NewServer(), codec: newCodec()}
	opts := []grpc.ServerOption{
		grpc.ForceServerCodecV2(s.codec),
		grpc.MaxRecvMsgSize(int(cfg.GRPC.MaxReceiveBytes)),
		grpc.ChainUnaryInterceptor(s.unary),
		grpc.ChainStreamInterceptor(s.stream),
	}
	if tc := s.rpc.TLSConfig(); tc != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(tc)))
	}
	s.gs = grpc.NewServer(opts...)
	engramv1.RegisterEngramServiceServer(s.gs, &service{rpc: s.rpc, metrics: m})
	healthpb.RegisterHealthServer(s.gs, s.health)
	reflection.Register(s.gs)
	return s, nil
}

// Listen binds grpc.listen. Call it before Serve to learn Addr (tests use
// 127.0.0.1:0).
func (s *Server) Listen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return nil
	}
	ln, err := net.Listen("tcp", s.cfg.GRPC.Listen)
	if err != nil {
		return fmt.Errorf("gRPC: listen on %s: %w (is another server using it? set grpc.listen / --grpc-listen, or \"off\")", s.cfg.GRPC.Listen, err)
	}
	s.ln = ln
	return nil
}

// Addr is the bound address (nil before Listen).
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Run serves until ctx is cancelled, then stops accepting calls and waits
// for those in flight (open streams included) for at most
// server.shutdown_timeout before cutting them. It returns nil after a
// clean stop.
func (s *Server) Run(ctx context.Context) error {
	if err := s.Listen(); err != nil {
		return err
	}
	hctx, stopHealth := context.WithCancel(ctx)
	defer stopHealth()
	s.setReady()
	go s.watchReady(hctx)
	errc := make(chan error, 1)
	go func() { errc <- s.gs.Serve(s.ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("gRPC: %w", err)
	case <-ctx.Done():
	}
	stopHealth()
	s.health.Shutdown()
	stopped := make(chan struct{})
	go func() { s.gs.GracefulStop(); close(stopped) }()
	t := time.NewTimer(s.cfg.Server.ShutdownTimeout.Duration)
	defer t.Stop()
	select {
	case <-stopped:
	case <-t.C:
		s.gs.Stop()
		<-stopped
		s.log.Warn("gRPC calls still running after server.shutdown_timeout were cut", "timeout", s.cfg.Server.ShutdownTimeout.String())
	}
	if err := <-errc; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("gRPC: %w", err)
	}
	return nil
}

// readyInterval is how often the health service checks the engine.
const readyInterval = time.Second

// watchReady keeps grpc.health.v1's answer at the engine's readiness (what
// REST's /health/ready answers): SERVING while the engine is ready,
// NOT_SERVING otherwise.
func (s *Server) watchReady(ctx context.Context) {
	t := time.NewTicker(readyInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.setReady()
		}
	}
}

func (s *Server) setReady() {
	st := healthpb.HealthCheckResponse_SERVING
	if s.rpc.Engine().Ready() != nil {
		st = healthpb.HealthCheckResponse_NOT_SERVING
	}
	s.health.SetServingStatus("", st)
	s.health.SetServingStatus(engramv1.EngramService_ServiceDesc.ServiceName, st)
}
