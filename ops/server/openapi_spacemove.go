package server

import "github.com/engram-ops/engram-ops/ops/api"

// The OpenAPI description of the space move routes (spacemove.go).
var spaceMoveRouteDocs = []routeDoc{
	{Pattern: "GET " + api.PathAdminSpaceHold, Tag: "admin", Summary: "Show whether writes to a space are held",
		OK: ok(api.SpaceHold{}, "the hold"), Errors: []int{400}, Example: example{Path: "/api/v1/admin/spaces/tenant-a/hold"}},
	{Pattern: "POST " + api.PathAdminSpaceHold, Tag: "admin", Summary: "Hold writes to a space (space move)",
		Desc: "Waits for the writes in flight, then answers every write to the space with 503 SPACE_HELD and Retry-After until released; reads are served. The answer's sequence bounds every acknowledged write to the space. The hold is recorded in the data directory before it is answered and outlives a restart of the server.",
		OK:   ok(api.SpaceHold{}, "the space is held"), Errors: []int{400, 404}, Example: example{Path: "/api/v1/admin/spaces/tenant-a/hold"}},
	{Pattern: "GET " + api.PathAdminSpaceChanges, Tag: "admin", Summary: "Read a space's change log",
		Desc: "The space's memories (with embeddings), forgets and associations written after a sequence, in order, in the shapes a batch writes. next < head: ask again with after=next.",
		Query: []paramDoc{{"after", "integer", "change-log sequence to start after (default 0: from the beginning)", false},
			{"limit", "integer", "at most this many entries (default 500, at most 5000)", false}},
		OK: ok(api.SpaceChanges{}, "the entries"), Errors: []int{400, 404, 409, 501}, Example: example{Path: "/api/v1/admin/spaces/tenant-a/changes?after=0&limit=10"}},
	{Pattern: "GET " + api.PathAdminSpaceExport, Tag: "admin", Summary: "Export a space's memories as JSON lines",
		Desc: "A head line (space, sequence, memories), one line per memory with its embedding in the shape a batch writes, then an end line (end, exported, error). The change log after the head's sequence carries what the export may have missed.",
		OK:   []respDoc{{Status: 200, ContentType: "application/x-ndjson", Desc: "the memories"}}, Errors: []int{400, 404, 501}, Example: example{Path: "/api/v1/admin/spaces/tenant-a/export"}},
	{Pattern: "POST " + api.PathAdminSpacePurge, Tag: "admin", Summary: "Forget every memory of a held space",
		Desc: "The last step of a space move, once the router sends the space elsewhere; refused with 409 unless the space is held.",
		OK:   ok(api.SpacePurge{}, "the memories forgotten"), Errors: []int{400, 404, 409}, Example: example{Path: "/api/v1/admin/spaces/tenant-a/purge"}},
	{Pattern: "DELETE " + api.PathAdminSpaceHold, Tag: "admin", Summary: "Release writes to a space",
		OK: ok(api.SpaceHold{}, "the space is not held"), Errors: []int{400}, Example: example{Path: "/api/v1/admin/spaces/tenant-a/hold"}},
}
