package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/ops/api"
)

// httpError is an error raised by the HTTP layer itself (JSON syntax,
// unknown fields, content type, body size, query parameters, routing).
// Engine errors stay *core.Error and are mapped by kind.
type httpError struct {
	status  int
	code    string
	message string
	details map[string]any
	// header is set on the response (Retry-After of a 429,
	// WWW-Authenticate of a 401).
	header map[string]string
}

func (e *httpError) Error() string { return e.message }

func httpErrorf(status int, code, format string, args ...any) *httpError {
	return &httpError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

func (e *httpError) with(kv ...any) *httpError {
	if e.details == nil {
		e.details = map[string]any{}
	}
	for i := 0; i+1 < len(kv); i += 2 {
		e.details[fmt.Sprint(kv[i])] = kv[i+1]
	}
	return e
}

// statusOfKind maps an engine error kind to its HTTP status.
func statusOfKind(k core.ErrorKind) int {
	switch k {
	case core.KindInvalid:
		return http.StatusBadRequest
	case core.KindNotFound:
		return http.StatusNotFound
	case core.KindConflict:
		return http.StatusConflict
	case core.KindTooLarge:
		return http.StatusRequestEntityTooLarge
	case core.KindUnavailable:
		return http.StatusServiceUnavailable
	case core.KindInsufficientStorage:
		return http.StatusInsufficientStorage
	case core.KindReadOnly:
		return http.StatusMisdirectedRequest
	}
	return http.StatusInternalServerError
}

// retryAfterSeconds is sent with every 503.
const retryAfterSeconds = 1

// maxMessageBytes bounds an error message. Messages repeat parts of the
// request (see echo); this keeps one that repeats too much bounded too.
const maxMessageBytes = 2048

// errorResponse turns any error into its status and envelope body.
// Internal errors never expose their wrapped cause (it is logged instead).
func errorResponse(err error) (int, api.ErrorBody) {
	status, body := errorBody(err)
	describe(status, &body)
	if len(body.Message) > maxMessageBytes {
		body.Message = truncateString(body.Message, maxMessageBytes) + "(message of " + strconv.Itoa(len(body.Message)) + " bytes cut)"
	}
	for _, v := range body.Details {
		if s, ok := v.(string); ok && len(s) > maxEcho {
			// A copy: the map may belong to an error that is reused.
			d := make(map[string]any, len(body.Details))
			for k, v := range body.Details {
				if s, ok := v.(string); ok {
					v = echo(s)
				}
				d[k] = v
			}
			body.Details = d
			break
		}
	}
	return status, body
}

func errorBody(err error) (int, api.ErrorBody) {
	var he *httpError
	if errors.As(err, &he) {
		return he.status, api.ErrorBody{Code: he.code, Message: he.message, Details: he.details}
	}
	var ce *core.Error
	if errors.As(err, &ce) {
		body := api.ErrorBody{Code: ce.Code, Message: ce.Message, Details: ce.Details}
		if body.Code == "" {
			body.Code = "INTERNAL"
		}
		if body.Message == "" {
			body.Message = ce.Kind.String()
		}
		return statusOfKind(ce.Kind), body
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return http.StatusServiceUnavailable, api.ErrorBody{Code: "CANCELLED", Message: "the request was cancelled before it completed"}
	}
	return http.StatusInternalServerError, api.ErrorBody{Code: "INTERNAL", Message: "internal error; the server log has the details"}
}

// writeError writes the error envelope. It must be the only write of the
// response.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, body := errorResponse(err)
	// A 507 is a state of the disk, which the engine logs once when it
	// begins and once when it ends, and INDEX_BACKLOG a state of the
	// indexer, counted in engram_index_backlog_refused_writes_total: one
	// line per refused write would fill the log disk too.
	if status >= 500 && status != http.StatusInsufficientStorage && body.Code != "INDEX_BACKLOG" {
		level := slog.LevelError
		if status == http.StatusServiceUnavailable {
			level = slog.LevelWarn
		}
		s.log.LogAttrs(r.Context(), level, "request failed",
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", status), slog.String("code", body.Code), slog.String("err", err.Error()))
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds))
	}
	var he *httpError
	if errors.As(err, &he) {
		for k, v := range he.header {
			w.Header().Set(k, v)
		}
	}
	s.writeJSON(w, status, api.ErrorEnvelope{Error: body, Documentation: errorDocs(body.Code)})
}
