package core

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// ErrorKind classifies an engine error so a transport can map it to a status
// without parsing messages.
type ErrorKind uint8

const (
	KindInternal    ErrorKind = iota // a bug or an I/O failure
	KindInvalid                      // bad input (400)
	KindNotFound                     // unknown memory or space (404)
	KindConflict                     // state conflict (409)
	KindTooLarge                     // over a configured bound (413)
	KindUnavailable                  // closed or not ready (503)
	// KindInsufficientStorage: the data directory's filesystem is under
	// its reserve, so writes are refused (507).
	KindInsufficientStorage
	// KindReadOnly: the engine refuses writes (its write barrier is up,
	// e.g. on a follower); writes belong to another server (421).
	KindReadOnly
)

func (k ErrorKind) String() string {
	switch k {
	case KindInvalid:
		return "invalid"
	case KindNotFound:
		return "not_found"
	case KindConflict:
		return "conflict"
	case KindTooLarge:
		return "too_large"
	case KindUnavailable:
		return "unavailable"
	case KindInsufficientStorage:
		return "insufficient_storage"
	case KindReadOnly:
		return "read_only"
	}
	return "internal"
}

// Error is the engine's error: a kind, a stable machine code such as
// INVALID_CONFIDENCE, a message naming the problem and the limit, and details.
type Error struct {
	Kind    ErrorKind
	Code    string
	Message string
	Details map[string]any
	Err     error // wrapped cause, if any
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf builds an *Error.
func Errorf(kind ErrorKind, code, format string, args ...any) *Error {
	return &Error{Kind: kind, Code: code, Message: fmt.Sprintf(format, args...)}
}

// WithDetails returns a copy of e with the given key/value details added
// (a copy, so shared errors such as ErrClosed are never mutated).
func (e *Error) WithDetails(kv ...any) *Error {
	c := *e
	c.Details = make(map[string]any, len(e.Details)+len(kv)/2)
	for k, v := range e.Details {
		c.Details[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		c.Details[fmt.Sprint(kv[i])] = kv[i+1]
	}
	return &c
}

// internalf wraps an unexpected failure.
func internalf(err error, format string, args ...any) *Error {
	code := "STORAGE_ERROR"
	if pebble.IsCorruptionError(err) {
		code = "STORAGE_CORRUPT" // a checksum failed: restore, do not retry
	}
	return &Error{Kind: KindInternal, Code: code, Message: fmt.Sprintf(format, args...), Err: err}
}

// ErrClosed is returned by every method after Close.
var ErrClosed = &Error{Kind: KindUnavailable, Code: "ENGINE_CLOSED", Message: "engine is closed"}

// KindOf returns the kind of err (KindInternal for foreign errors).
func KindOf(err error) ErrorKind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindInternal
}

// CodeOf returns the machine code of err ("INTERNAL" for foreign errors).
func CodeOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return "INTERNAL"
}
