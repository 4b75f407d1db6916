package attack

import (
	"context"
	"errors"
	"net"
	"strings"
	"syscall"
)

// ErrorKind names a transport failure for the errors-by-kind table:
// "timeout", "canceled", "connection refused", "connection reset", "no
// local ports", "network", "bad response" (a body that did not decode) or
// "transport".
func ErrorKind(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "no local ports"
	}
	var ne net.Error
	if errors.As(err, &ne) {
		if ne.Timeout() {
			return "timeout"
		}
		return "network"
	}
	if strings.Contains(err.Error(), "decode") {
		return "bad response"
	}
	return "transport"
}
