package grpcserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/engram-ops/engram-ops/ops/server"
	engramv1 "github.com/engram-ops/engram-ops/proto/engram/v1"
)

// servicePrefix starts the full method name of every EngramService call.
var servicePrefix = "/" + engramv1.EngramService_ServiceDesc.ServiceName + "/"

// writes are the EngramService methods that need a write key; every
// other method needs a read key (TestMethodAccess checks the list against
// the service).
var writes = map[string]bool{
	"Remember": true, "StreamingRemember": true, "Forget": true, "Experience": true, "Associate": true,
	"Consolidate": true, "Dream": true, "MemoryFlow": true, "ObserveStream": true, "MemoryStream": true,
	"RebalanceSpaces": true, "MigrateSpace": true, "ApplyReplicationBatch": true,
}

// callerOf is the authenticated caller the interceptor put in ctx.
func callerOf(ctx context.Context) *server.Caller { return server.CallerFrom(ctx) }

// splitMethod splits "/pkg.Service/Method" into its service and method.
func splitMethod(full string) (string, string) {
	svc, m, _ := strings.Cut(strings.TrimPrefix(full, "/"), "/")
	return svc, m
}

// authenticate checks an EngramService call's key; the health and
// reflection services are public, as REST's health probes are.
func (s *Server) authenticate(ctx context.Context, full string) (context.Context, error) {
	method, ok := strings.CutPrefix(full, servicePrefix)
	if !ok {
		return ctx, nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	c, err := s.rpc.Authenticate(md.Get("authorization"), md.Get("x-api-key"), writes[method], full)
	if err != nil {
		return ctx, err
	}
	return server.WithCaller(ctx, c), nil
}

// done writes an EngramService call's access-log and audit lines (REST's
// rules and formats; method "gRPC", route the full method name). err is
// the call's error before toStatus, final after it.
func (s *Server) done(ctx context.Context, full string, err, final error, start time.Time) {
	method, ok := strings.CutPrefix(full, servicePrefix)
	if !ok {
		return // health and reflection
	}
	c := server.Call{Caller: callerOf(ctx), Method: "gRPC", Route: full, Write: writes[method], Code: status.Code(final).String(),
		When: start, Took: time.Since(start)}
	c.Status, c.Reason = outcome(ctx, err)
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		c.Remote = p.Addr.String()
	}
	s.rpc.CallDone(ctx, c)
}

// outcome is the REST status of a call's error and, for a refused key,
// its reason (as REST's audit line has them).
func outcome(ctx context.Context, err error) (httpStatus int, reason string) {
	if err == nil {
		return http.StatusOK, ""
	}
	if st, ok := err.(interface{ GRPCStatus() *status.Status }); ok {
		switch st.GRPCStatus().Code() {
		case codes.InvalidArgument:
			return http.StatusBadRequest, ""
		case codes.ResourceExhausted:
			return http.StatusRequestEntityTooLarge, ""
		case codes.Unimplemented:
			return http.StatusNotImplemented, ""
		}
		return http.StatusInternalServerError, ""
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return http.StatusGatewayTimeout, ""
	}
	httpStatus, _, _, details := server.ErrorOf(err)
	if r, ok := details["reason"].(string); ok && (httpStatus == http.StatusUnauthorized || httpStatus == http.StatusForbidden) {
		reason = r
	}
	return httpStatus, reason
}

func (s *Server) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	start := time.Now()
	s.metrics.Started()
	svc, method := splitMethod(info.FullMethod)
	bad := s.codec.failed(req)
	ctx, err = s.authenticate(ctx, info.FullMethod)
	if err == nil {
		err = bad
	}
	if err == nil {
		resp, err = s.guard(ctx, info.FullMethod, func() (any, error) { return handler(ctx, req) })
	}
	final := toStatus(ctx, err)
	s.done(ctx, info.FullMethod, err, final, start)
	s.metrics.Finished(svc, method, status.Code(final).String(), time.Since(start))
	return resp, final
}

func (s *Server) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	start := time.Now()
	s.metrics.Started()
	svc, method := splitMethod(info.FullMethod)
	ctx, err := s.authenticate(ss.Context(), info.FullMethod)
	if err == nil {
		_, err = s.guard(ctx, info.FullMethod, func() (any, error) {
			return nil, handler(srv, &countedStream{ServerStream: ss, ctx: ctx, s: s, svc: svc, method: method})
		})
	}
	final := toStatus(ctx, err)
	s.done(ctx, info.FullMethod, err, final, start)
	s.metrics.Finished(svc, method, status.Code(final).String(), time.Since(start))
	return final
}

// guard runs a call's handler, turning a panic into a logged Internal
// status (as REST turns one into a 500) instead of a crashed server.
func (s *Server) guard(ctx context.Context, full string, f func() (any, error)) (resp any, err error) {
	defer func() {
		if v := recover(); v != nil {
			s.log.LogAttrs(ctx, slog.LevelError, "gRPC handler panic (a bug)", slog.String("method", full),
				slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
			resp, err = nil, status.Error(codes.Internal, "INTERNAL: internal error (a bug); the server log has the details")
		}
	}()
	return f()
}

// countedStream counts a stream's messages and carries the caller.
type countedStream struct {
	grpc.ServerStream
	ctx         context.Context
	s           *Server
	svc, method string
}

func (c *countedStream) Context() context.Context { return c.ctx }

func (c *countedStream) RecvMsg(m any) error {
	err := c.ServerStream.RecvMsg(m)
	if err == nil {
		err = c.s.codec.failed(m)
	}
	if err == nil {
		c.s.metrics.StreamMessage(c.svc, c.method, "received")
	}
	return err
}

func (c *countedStream) SendMsg(m any) error {
	err := c.ServerStream.SendMsg(m)
	if err == nil {
		c.s.metrics.StreamMessage(c.svc, c.method, "sent")
	}
	return err
}

// errorDomain is the domain of the ErrorInfo detail of every error.
const errorDomain = "engram-ops"

// toStatus turns a call's error into its gRPC status: REST's code and
// message for the REST layer's and the engine's errors, DeadlineExceeded
// or Canceled when the call's context ended it. Statuses pass unchanged.
func toStatus(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := err.(interface{ GRPCStatus() *status.Status }); ok {
		return err
	}
	if errors.Is(err, context.DeadlineExceeded) || (errors.Is(err, context.Canceled) && ctx.Err() != nil) {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
			return status.Error(codes.DeadlineExceeded, "CANCELLED: the call's deadline passed before the engine call completed; it was cancelled")
		}
		return status.Error(codes.Canceled, "CANCELLED: the call was cancelled before the engine call completed")
	}
	httpStatus, code, msg, details := server.ErrorOf(err)
	st := status.New(grpcCode(httpStatus), code+": "+msg)
	info := &errdetails.ErrorInfo{Reason: code, Domain: errorDomain}
	if len(details) > 0 {
		info.Metadata = make(map[string]string, len(details))
		keys := make([]string, 0, len(details))
		for k := range details {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			info.Metadata[k] = fmt.Sprint(details[k])
		}
	}
	if withInfo, derr := st.WithDetails(info); derr == nil {
		st = withInfo
	}
	return st.Err()
}

// grpcCode is the gRPC code of a REST status.
func grpcCode(httpStatus int) codes.Code {
	switch httpStatus {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		return codes.InvalidArgument
	case http.StatusUnauthorized:
		return codes.Unauthenticated
	case http.StatusForbidden:
		return codes.PermissionDenied
	case http.StatusNotFound:
		return codes.NotFound
	case http.StatusConflict, http.StatusMisdirectedRequest: // 421: a follower's READ_ONLY_REPLICA
		return codes.FailedPrecondition
	case http.StatusTooManyRequests, http.StatusInsufficientStorage:
		return codes.ResourceExhausted
	case http.StatusServiceUnavailable:
		return codes.Unavailable
	case http.StatusNotImplemented:
		return codes.Unimplemented
	}
	return codes.Internal
}

// unimplemented is the answer of a call with no engine behaviour behind it.
func unimplemented(method, why string) error {
	return status.Errorf(codes.Unimplemented, "NOT_IMPLEMENTED: engram-ops does not serve %s: %s", method, why)
}
