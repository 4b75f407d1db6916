package server

import (
	"sort"
	"strings"
)

// RouteAccess is one route of the auth route table (routeAccess) and who
// may call it: "public", "read", "write", "admin" or "metrics".
type RouteAccess struct {
	Method, Path, Access string
}

// Routes lists the auth route table, sorted, for tools outside the
// server that must tell reads from writes (the HAProxy renderer of
// engram-ops placement).
func Routes() []RouteAccess {
	out := make([]RouteAccess, 0, len(routeAccess))
	for p, a := range routeAccess {
		m, path, _ := strings.Cut(p, " ")
		out = append(out, RouteAccess{Method: m, Path: path, Access: a.String()})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Path != out[j].Path {
			return out[i].Path < out[j].Path
		}
		return out[i].Method < out[j].Method
	})
	return out
}
