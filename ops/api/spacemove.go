package api

import "time"

// Moving a space between servers (engram-ops space move): the source holds
// writes to the space, its change log is read space by space, and the copy
// left behind is purged once the router sends the space elsewhere.
const (
	// PathAdminSpaceHold: POST holds writes to the space (answered 503
	// with Retry-After until released), DELETE releases them, GET shows
	// the hold. A hold lives in the server's memory only.
	PathAdminSpaceHold = "/api/v1/admin/spaces/{name}/hold"
	// PathAdminSpaceChanges: GET reads the change-log entries of one
	// space after a sequence (memories with their embeddings, forgets and
	// associations), in order.
	PathAdminSpaceChanges = "/api/v1/admin/spaces/{name}/changes"
	// PathAdminSpaceExport: GET streams every memory of the space (with
	// its embedding) as JSON lines: a SpaceExportHead, one BatchMemory per
	// memory, then a SpaceExportEnd.
	PathAdminSpaceExport = "/api/v1/admin/spaces/{name}/export"
	// PathAdminSpacePurge: POST forgets every memory of a held space (its
	// associations go with them).
	PathAdminSpacePurge = "/api/v1/admin/spaces/{name}/purge"
)

// HeaderReadStale lets a read be served by a follower behind the router
// (engram-ops placement haproxy) when its value is ReadStaleAllow.
const (
	HeaderReadStale = "X-Engram-Read-Stale"
	ReadStaleAllow  = "allow"
)

// SpaceHold is the answer of every method of PathAdminSpaceHold.
type SpaceHold struct {
	Space string `json:"space"`
	Held  bool   `json:"held"`
	// Since is when the hold began; absent when not held.
	Since *time.Time `json:"since,omitempty"`
	// Sequence is the engine's last durable sequence when the answer was
	// made: after POST, every acknowledged write to the space is at or
	// before it.
	Sequence uint64 `json:"sequence"`
	// RetryAfterSeconds is what held writes are told to wait.
	RetryAfterSeconds int `json:"retry_after_seconds"`
}

// Change-log operations of SpaceChange.Op.
const (
	ChangePutMemory      = "put_memory"
	ChangeDeleteMemory   = "delete_memory"
	ChangePutAssociation = "put_association"
)

// SpaceChange is one change-log entry of a space, in the shapes a batch
// writes. Exactly one of Memory, ID and Association is set, by Op.
type SpaceChange struct {
	Sequence    uint64            `json:"sequence"`
	Op          string            `json:"op"`
	Memory      *BatchMemory      `json:"memory,omitempty"`
	ID          string            `json:"id,omitempty"`
	Association *BatchAssociation `json:"association,omitempty"`
}

// SpaceChanges is the body of GET PathAdminSpaceChanges: the space's
// entries after After, up to Next. Next < Head means more may follow:
// ask again with after=Next.
type SpaceChanges struct {
	Space   string        `json:"space"`
	After   uint64        `json:"after"`
	Next    uint64        `json:"next"`
	Head    uint64        `json:"head"`
	Changes []SpaceChange `json:"changes"`
}

// SpacePurge is the answer of POST PathAdminSpacePurge.
type SpacePurge struct {
	Space     string `json:"space"`
	Forgotten int    `json:"forgotten"`
	Sequence  uint64 `json:"sequence"`
}

// SpaceExportHead is the first line of an export: the engine's last
// durable sequence before the memories were read (the change log after it
// carries every change the export may have missed).
type SpaceExportHead struct {
	Space    string `json:"space"`
	Sequence uint64 `json:"sequence"`
	// Memories is the space's count when the export began.
	Memories int64 `json:"memories"`
}

// SpaceExportEnd is the last line of a complete export.
type SpaceExportEnd struct {
	End      bool `json:"end"`
	Exported int  `json:"exported"`
	// Error is set when the export stopped part way.
	Error string `json:"error,omitempty"`
}
