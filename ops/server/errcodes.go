package server

import (
	"net/http"

	"github.com/engram-ops/engram-ops/ops/api"
)

// errorCode documents one error code the server can emit: its status, what
// it means, how to fix it, and the code Engram's server answers the same
// failure with. The envelope's educational_context and cognitive_guidance
// are its meaning and fix; docs/reference/error-codes.md is generated from
// this table (go test ./ops/server -run TestErrorCodeDoc -update), and
// TestErrorCodesComplete fails when a code in the source is missing here.
type errorCode struct {
	Code    string
	Status  int
	Meaning string
	Fix     string
	// Engram is Engram's code for the same failure; "" when Engram has
	// none (the failure cannot happen there, or it answers without the
	// envelope: see EngramNote).
	Engram     string
	EngramNote string
}

// Engram's codes (engram-rest-reference.md §1.4).
const (
	engramInvalidInput   = "INVALID_MEMORY_INPUT"
	engramBadRequest     = "BAD_REQUEST"
	engramUnauthorized   = "UNAUTHORIZED"
	engramForbidden      = "FORBIDDEN"
	engramMemoryNotFound = "MEMORY_NOT_FOUND"
	engramNotFound       = "RESOURCE_NOT_FOUND"
	engramValidation     = "MEMORY_VALIDATION_ERROR"
	engramSystemError    = "MEMORY_SYSTEM_ERROR"
	engramUnavailable    = "MEMORY_CLUSTER_UNAVAILABLE"
	engramNotImplemented = "NOT_IMPLEMENTED"

	plainText = "Engram answers this failure in plain text (an axum extractor rejection), not in the envelope"
)

var errorCodes = []errorCode{
	// Request syntax (HTTP layer).
	{"INVALID_JSON", 400, "The body is not one well-formed JSON object: a syntax error, a truncated body, or data after the object.", "Send exactly one JSON object; the message names the byte offset.", engramBadRequest, plainText},
	{"INVALID_MESSAGE", 400, "A gRPC request is not a valid protobuf message of the method's request type.", "Send the message generated from proto/engram/v1 for the method called.", engramBadRequest, "Engram's gRPC server answers INTERNAL"},
	{"DUPLICATE_FIELD", 400, "A field appears twice in the body.", "Send each field once.", engramBadRequest, "Engram keeps one of the two values silently"},
	{"UNKNOWN_FIELD", 400, "The body has a field this request does not have (a typo, or a field of another request). Engram's own field names are accepted (docs/engram-compatibility.md).", "Use one of the accepted fields the message lists.", engramBadRequest, "Engram ignores unknown fields silently"},
	{"CONFLICTING_FIELDS", 400, "An Engram alias and the field it stands for (for example where and where_location) were both given, with different values.", "Send one of the two.", engramBadRequest, "Engram reads only its own name and drops the other"},
	{"INVALID_FIELD_TYPE", 400, "A field has the wrong JSON type (for example a number where a string belongs).", "Send the type the message names.", engramBadRequest, "Engram answers 422 in plain text"},
	{"INVALID_NUMBER", 400, "A number is not finite or does not fit its field (an integer field given a fraction, a float32 overflow).", "Send a finite number in range.", engramBadRequest, plainText},
	{"INVALID_TIME", 400, "A time field is not an RFC 3339 string.", "Send a time such as 2025-01-02T15:04:05Z.", engramBadRequest, "Engram answers 422 in plain text"},
	{"EMPTY_BODY", 400, "The request has no body.", "Send a JSON object.", engramBadRequest, plainText},
	{"BODY_READ_FAILED", 400, "The body could not be read: the client closed or reset the connection, or it did not arrive within server.read_timeout.", "Send the whole body promptly; check proxies and the client's timeouts.", engramBadRequest, plainText},
	{"BODY_TOO_LARGE", 413, "The body exceeds limits.max_body_bytes.", "Send a smaller body, or split a batch; the message names the limit.", engramInvalidInput, "Engram has no body limit of its own; its content limit is INVALID_MEMORY_INPUT"},
	{"UNSUPPORTED_MEDIA_TYPE", 415, "The body is not declared as JSON.", "Send Content-Type: application/json.", engramBadRequest, "Engram answers 415 in plain text"},
	{"INVALID_PARAMETER", 400, "A query parameter's value cannot be parsed (not a number, a boolean, a time or a JSON array where one is expected).", "Send the form the message names.", engramBadRequest, plainText},
	{"UNKNOWN_PARAMETER", 400, "The query has a parameter this route does not take (Engram's names are accepted: docs/engram-compatibility.md).", "Use one of the parameters the message lists.", engramBadRequest, "Engram ignores unknown parameters silently"},
	{"DUPLICATE_PARAMETER", 400, "A single-valued query parameter is repeated.", "Send it once.", engramBadRequest, "Engram keeps one of the values silently"},
	{"MISSING_PARAMETER", 400, "A required query parameter is missing.", "Add the parameter the message names.", engramInvalidInput, ""},
	{"DUPLICATE_HEADER", 400, "A single-valued header (Content-Type, X-Memory-Space) is repeated.", "Send it once.", engramBadRequest, ""},
	{"BAD_REQUEST", 400, "The request line or a header line is not valid HTTP/1.1.", "Fix the client or proxy sending it.", engramBadRequest, plainText},
	{"HEADERS_TOO_LARGE", 431, "The request line and headers exceed the server's header limit.", "Send fewer or smaller headers.", "", "Engram answers 431 without a body"},
	{"UNSUPPORTED_TRANSFER_ENCODING", 501, "The request's Transfer-Encoding is not supported.", "Send the body with a Content-Length or chunked.", engramNotImplemented, ""},
	{"HTTP_VERSION_NOT_SUPPORTED", 505, "The request's protocol version is not supported.", "Send HTTP/1.1 or HTTP/1.0.", "", "Engram answers without a body"},
	{"NOT_FOUND", 404, "No route has this path.", "Check the path against the REST API reference; docs/engram-compatibility.md lists Engram's routes not served yet.", engramNotFound, "Engram answers 404 without a body"},
	{"CORS_ORIGIN_NOT_ALLOWED", 403, "A browser preflight (OPTIONS) came from an origin not in cors.allowed_origins, or asked for a method or header not allowed.", "Add the origin (and method or header) to the [cors] section of the configuration.", engramForbidden, "Engram allows every origin"},
	{"METHOD_NOT_ALLOWED", 405, "The route exists but not with this method; the Allow header lists the methods.", "Use one of the methods in Allow.", "", "Engram answers 405 without a body"},

	// Authentication and authorisation.
	{"UNAUTHORIZED", 401, "The request needs an API key and the one given was refused.", "Send a valid key as Authorization: Bearer <key>.", engramUnauthorized, ""},
	{"MISSING_API_KEY", 401, "Authentication is on and the request carries no API key.", "Send a key as Authorization: Bearer <key> (create one with engram-ops apikey create).", engramUnauthorized, ""},
	{"MALFORMED_API_KEY", 401, "The Authorization header does not hold a key of the expected form.", "Send the token exactly as engram-ops apikey create printed it.", engramUnauthorized, ""},
	{"INVALID_API_KEY", 401, "The key is unknown or its secret is wrong (one answer for both).", "Check the token; create a new key if it was lost.", engramUnauthorized, ""},
	{"API_KEY_EXPIRED", 401, "The key's expiry has passed.", "Rotate or create a key.", engramUnauthorized, ""},
	{"API_KEY_REVOKED", 401, "The key was revoked (or its rotation overlap ended).", "Use the key that replaced it.", engramUnauthorized, ""},
	{"FORBIDDEN", 403, "The key lacks the permission this route needs (read, write or admin).", "Use a key with that permission.", engramForbidden, ""},
	{"FORBIDDEN_SPACE", 403, "The key is scoped to other spaces.", "Use a key scoped to this space, or one for every space.", engramForbidden, ""},
	{"HOST_NOT_ALLOWED", 421, "Without authentication the server answers only requests addressed to a loopback host name (protection against DNS rebinding).", "Address the server as localhost or 127.0.0.1, or turn authentication on.", "", "Engram does not check Host"},
	{"RATE_LIMITED", 429, "The key's request rate was exceeded; Retry-After says when to retry.", "Retry after the delay, or raise the key's rate.", "", "Engram does not rate-limit"},
	{"API_KEY_NOT_FOUND", 404, "No API key has this id.", "List keys with GET /api/v1/admin/apikeys.", engramNotFound, "Engram has no key management API"},
	{"SPACE_HELD", 503, "Writes to the space are held while it moves to another server (engram-ops space move); reads are served.", "Retry after Retry-After through the router, which sends the space to its new server once the move switches it.", "", "Engram has no space moves"},
	{"SPACE_NOT_HELD", 409, "A space is purged only while its writes are held.", "Hold it first (POST /api/v1/admin/spaces/{name}/hold); engram-ops space move does both.", "", "Engram has no space moves"},
	{"CHANGE_LOG_UNAVAILABLE", 501, "The server's engine keeps no change log to read a space from.", "Move the space from a server on the engram-ops engine.", "", "Engram has no space moves"},
	{"APIKEYS_NOT_CONFIGURED", 409, "API key management needs authentication turned on.", "Set auth = \"api_key\" in the configuration.", "", "Engram has no key management API"},
	{"INVALID_API_KEY_SPEC", 400, "A key to create names an unknown permission, an invalid space, a negative expiry or rate.", "Fix the field the message names.", engramBadRequest, "Engram has no key management API"},

	// Memory fields (the engine's validation).
	{"EMPTY_CONTENT", 400, "The content (or an episode's what) is empty or blank.", "Send non-blank content.", engramInvalidInput, ""},
	{"CONTENT_TOO_LARGE", 413, "The content exceeds limits.max_content_bytes.", "Send shorter content or raise the limit.", engramInvalidInput, "Engram's limit is 100 000 bytes, answered with 400"},
	{"INVALID_CONFIDENCE", 400, "A confidence is outside 0..1 where it is not clamped (batch memories, association weights).", "Send a value in 0..1. remember and episodes clamp as Engram does.", engramInvalidInput, "Engram clamps every confidence"},
	{"INVALID_EMBEDDING_DIMENSION", 400, "The vector's length is not the space's dimension.", "Send a vector of the dimension the message names, or use another space.", engramInvalidInput, ""},
	{"INVALID_EMBEDDING_VALUE", 400, "The vector has a non-finite value (NaN or infinity).", "Send finite numbers.", engramInvalidInput, ""},
	{"INVALID_ID", 400, "A memory id is empty, too long or has characters outside the allowed set.", "Use the id form the message names.", engramInvalidInput, "Engram does not validate ids"},
	{"DUPLICATE_ID", 400, "A batch names the same id twice.", "Send each id once per batch.", engramInvalidInput, ""},
	{"INVALID_MEMORY_TYPE", 400, "memory_type is not semantic, episodic or procedural.", "Use one of the three.", engramInvalidInput, "Engram drops memory_type"},
	{"INVALID_EPISODE", 400, "An episode lacks when, or has a non-finite number.", "Send when as an RFC 3339 time and finite numbers.", engramInvalidInput, "Engram answers 422 in plain text for a missing when"},
	{"INVALID_TAG", 400, "A tag is empty or too long.", "Send tags within the limit the message names.", engramInvalidInput, "Engram drops tags"},
	{"TOO_MANY_TAGS", 400, "More tags than the limit.", "Send fewer tags.", engramInvalidInput, "Engram drops tags"},
	{"INVALID_METADATA", 400, "A metadata key or value is empty or too long.", "Send metadata within the limits the message names.", engramInvalidInput, ""},
	{"TOO_MANY_METADATA", 400, "More metadata entries than the limit.", "Send fewer entries.", engramInvalidInput, ""},
	{"INVALID_LINK_THRESHOLD", 400, "link_threshold is not a finite number in range.", "Send a cosine similarity in -1..1.", engramInvalidInput, ""},
	{"EMPTY_BATCH", 400, "A batch has no memories.", "Send at least one memory.", engramInvalidInput, "Engram has no batch route"},
	{"BATCH_TOO_LARGE", 413, "A batch has more memories than the limit.", "Split the batch.", engramInvalidInput, "Engram has no batch route"},
	{"INVALID_CURSOR", 400, "A batch cursor has an empty or too long source or value.", "Send a cursor within the limits the message names.", engramInvalidInput, "Engram has no batch route"},
	{"CURSOR_NOT_FOUND", 404, "No cursor is stored for this source.", "Start the import from the beginning.", engramNotFound, "Engram has no batch route"},
	{"INVALID_ASSOCIATION", 400, "An association links a memory to itself or lacks from or to.", "Send two different memory ids.", engramInvalidInput, "Engram has no association route"},
	{"INVALID_WEIGHT", 400, "An association weight is not in (0, 1].", "Send a weight in (0, 1].", engramInvalidInput, "Engram has no association route"},

	// Recall and listing.
	{"MISSING_CUE", 400, "A recall has neither query nor embedding.", "Send query (text) or embedding (a vector).", engramInvalidInput, "Engram answers 400 for a missing cue"},
	{"INVALID_MODE", 400, "mode is not similarity, spreading or hybrid.", "Use one of the three.", engramInvalidInput, ""},
	{"INVALID_THRESHOLD", 400, "threshold (or confidence_threshold) is not a finite number in range.", "Send a value in the range the message names.", engramInvalidInput, ""},
	{"INVALID_MAX_RESULTS", 400, "max_results is above limits.max_results.", "Ask for fewer results, or page with GET /api/v1/memories.", engramInvalidInput, "Engram truncates silently"},
	{"INVALID_MAX_HOPS", 400, "max_hops is out of range.", "Send a value in the range the message names.", engramInvalidInput, ""},
	{"INVALID_HOP_DECAY", 400, "The per-hop decay is out of range.", "Send a value in the range the message names.", engramInvalidInput, ""},
	{"INVALID_ACTIVATION_THRESHOLD", 400, "The activation threshold is out of range.", "Send a value in the range the message names.", engramInvalidInput, ""},
	{"INVALID_TIME_RANGE", 400, "from_time is after to_time.", "Swap or fix the bounds.", engramInvalidInput, "Engram ignores the time range"},
	{"INVALID_TIER", 400, "tier is not hot, warm, cold or all.", "Use one of the four.", engramBadRequest, ""},
	{"INVALID_OFFSET", 400, "offset is negative or beyond the limit.", "Send a non-negative offset.", engramBadRequest, ""},
	{"QUERY_SYNTAX_ERROR", 400, "The query language statement does not parse; the message and details give the line, column and what was found.", "Fix the statement at the position named; docs/query-language.md has the grammar.", engramBadRequest, ""},
	{"QUERY_NOT_SUPPORTED", 400, "The statement uses a construct of Engram's query language this server does not run (PREDICT, IMAGINE, CONSOLIDATE, BASE_RATE); details name it and its position.", "Use RECALL or SPREAD (docs/query-language.md).", engramSystemError, "Engram parses these and answers 500 (PREDICT) or a fixed result that reads nothing from the store"},
	{"QUERY_TOO_COMPLEX", 400, "The statement's cost is above the limit of 100000 (SPREAD costs 1000·2^hops, so MAX_HOPS 7 or more).", "Ask for fewer hops or fewer conditions.", engramBadRequest, ""},
	{"CONSOLIDATION_NOT_FOUND", 404, "No memory written by consolidation has this id in this space.", "List the beliefs with GET /api/v1/consolidations.", "CONSOLIDATION_NOT_FOUND", ""},
	{"MEMORY_NOT_FOUND", 404, "No memory has this id in this space (or it was forgotten).", "Check the id and the space (X-Memory-Space header or ?space=).", engramMemoryNotFound, ""},

	// Spaces.
	{"INVALID_SPACE", 400, "The space name is not 3-64 characters of a-z, 0-9, - and _.", "Use a valid space name.", engramInvalidInput, ""},
	{"SPACE_NOT_FOUND", 404, "The space does not exist and spaces are not created on first use (spaces.auto_create = false).", "Create it with POST /api/v1/spaces, or turn auto-create on.", engramNotFound, "Engram creates every valid space on first use"},
	{"SPACE_EXISTS", 409, "A space with this name exists with another dimension or embedder.", "Use the existing settings, or another name.", "", "Engram's space creation is idempotent and has no settings"},
	{"SPACE_LIMIT_REACHED", 409, "The number of spaces reached limits.max_spaces.", "Raise the limit or reuse a space.", "", "Engram has no space limit"},
	{"INVALID_DIMENSION", 400, "A space's dimension is out of range.", "Send a dimension in the range the message names.", engramInvalidInput, "Engram's dimension is fixed at 768"},
	{"UNKNOWN_EMBEDDER", 400, "The space names an embedder this server does not have.", "Use one of the configured embedders.", engramInvalidInput, ""},
	{"EMBEDDER_MISMATCH", 409, "The space was created with another embedder, or a stored vector does not match the configured embedder's fingerprint.", "Use the space's embedder, or re-embed into a new space.", "", "Engram has one fixed embedding per server"},

	// Engine state.
	{"INSUFFICIENT_STORAGE", 507, "The data disk's free space is below the reserve; writes are refused, reads still work.", "Free disk space or grow the volume (engram-ops runbook show serving, Disk space).", engramSystemError, ""},
	{"TOO_MANY_STREAMS", 503, "The server holds streams.max_subscribers open event streams; this one was refused.", "Retry after Retry-After; close streams you no longer read or raise streams.max_subscribers.", engramUnavailable, ""},
	{"TOO_MANY_CONNECTIONS", 503, "The server holds server.max_connections open connections; this one was refused at once.", "Retry after Retry-After; close idle connections or raise server.max_connections.", engramUnavailable, ""},
	{"INDEX_BACKLOG", 503, "The space's index backlog stayed at index.max_pending for index.pending_wait (or was twice the bound); the write was not stored.", "Retry after Retry-After; slow the writers (the sustained write rate is the indexing rate; alert IndexBacklogRefusingWrites).", engramUnavailable, ""},
	{"READ_ONLY_REPLICA", 421, "This server is a read-only follower (serve --follow): it applies its primary's shipped change log and refuses writes; the message and details.primary name the primary (replica.primary_url).", "Send writes to the primary named; read from the follower.", "", "Engram has no replicas"},
	{"BACKUP_STARTING", 503, "A server that ships to a backup archive refuses writes at start until its shipper has read the archive's head and found this server's generation current (a primary promoted over while this one was down would otherwise acknowledge writes nobody ships); backup.start_hold bounds the wait, and /health/ready fails meanwhile.", "Retry after Retry-After; if it lasts, the backup target is unreachable (the log says why) and writes open when backup.start_hold ends.", "", "Engram has no backups"},
	{"PRIMARY_FENCED", 421, "This server was a primary, but another primary was promoted over its backup archive (engram-ops promote): its shipping is fenced, so it refuses writes, which the archive and the new primary would never see.", "Send writes to the new primary; make this server a follower of it or restore its data directory from the archive (runbooks/scaling-and-capacity.md, Promotion and fencing).", "", "Engram has no replicas"},
	{"REPLICA_NOT_READY", 503, "A follower's readiness: it lags its archive by more than replica.max_lag, has not read the archive's head for that long, or stopped applying (a missing or damaged segment, or an archive rewound behind it); the message says which.", "Read the follower's replica health block and log; runbooks/scaling-and-capacity.md, Followers.", "", "Engram has no replicas"},
	{"ENGINE_CLOSED", 503, "The engine is shutting down.", "Retry against the restarted server.", engramUnavailable, ""},
	{"CANCELLED", 503, "The request was cancelled (the client went away or a deadline passed) before it completed.", "Retry; raise the client's timeout if it was the deadline.", engramUnavailable, ""},
	{"EMBEDDER_FAILED", 503, "The configured embedder (an HTTP embedding service) failed or timed out.", "Check the embedding service; retry.", engramSystemError, ""},
	{"CONCURRENT_UPDATE", 409, "Another write changed the same memory at the same time.", "Retry the write.", engramSystemError, ""},
	{"DATA_DIR_IN_USE", 503, "Another process holds the data directory's lock.", "Stop the other process, or use another data directory.", engramSystemError, ""},
	{"NOT_A_DATA_DIR", 400, "The directory given is not an engram-ops data directory (it has no db/ directory); only offline commands (validate data) report it.", "Check the path: it is the directory serve's --data-dir names.", engramInvalidInput, ""},
	{"STORAGE_CORRUPT", 500, "A stored record cannot be decoded.", "Restore from a backup (engram-ops runbook show disaster-recovery); the server log names the file.", engramSystemError, ""},
	{"STORAGE_ERROR", 500, "The storage engine failed a read or write.", "Read the server log; check the disk.", engramSystemError, ""},
	{"UNSUPPORTED_FORMAT", 500, "A stored record or change-log entry is of a newer format than this binary reads.", "Run the newer binary that wrote it.", engramSystemError, ""},
	{"INTERNAL", 500, "An unexpected failure (a bug); the server log has the details.", "Report it with the server log's lines.", engramSystemError, ""},
	{"INVALID_OPTION", 400, "An engine option is invalid (at open, from the configuration).", "Fix the configuration key the message names.", "", "not an HTTP answer in Engram"},
	{"INVALID_SYSTEM_KEY", 400, "A system record key is empty, too long or holds NUL.", "Internal use; report it.", "", "Engram has no system records"},
	{"SYSTEM_RECORD_TOO_LARGE", 413, "A system record exceeds its limit.", "Internal use; report it.", "", "Engram has no system records"},

	// Change log, restore and replay (backup/PITR).
	{"CHANGE_LOG_TRUNCATED", 409, "The change log no longer holds the sequence asked for (it was truncated after a backup).", "Take a new base snapshot.", "", "Engram has no change log"},
	{"SEQUENCE_GAP", 409, "A replayed change does not follow the last applied sequence.", "Replay from the missing sequence (engram-ops runbook show disaster-recovery).", "", "Engram has no change log"},
	{"UNKNOWN_CHANGE", 400, "A replayed change has an unknown operation.", "Restore with the binary that wrote the log.", "", "Engram has no change log"},
	{"REPLAY_UNKNOWN_SPACE", 409, "A replayed change names a space the target does not have.", "Replay from a base that has the space.", "", "Engram has no change log"},
	{"REPLAY_MISSING_VECTOR", 409, "A replayed change refers to a vector the target does not have.", "Replay from a complete base.", "", "Engram has no change log"},
	{"BACKUP_NOT_CONFIGURED", 409, "The server was started without a backup target.", "Start serve with --backup-to.", "", "Engram has no backup API"},
	{"BACKUP_FAILED", 500, "The snapshot or its upload failed.", "Read the message and the server log; check the target's credentials and space.", engramSystemError, "Engram has no backup API"},

	// Test-only fault injection.
	{"FAULT_INJECTION_DISABLED", 403, "Fault injection is off (testing.faults = false).", "Turn it on only in tests.", "", "test-only; Engram has no fault injection"},
	{"INVALID_FAULT", 400, "A fault to inject is not understood.", "Send a fault the message lists.", "", "test-only; Engram has no fault injection"},
	{"INJECTED_FAULT", 500, "A fault injected by a test.", "Clear the injected faults.", engramSystemError, ""},
}

var errorCodeIndex = func() map[string]*errorCode {
	m := make(map[string]*errorCode, len(errorCodes))
	for i := range errorCodes {
		m[errorCodes[i].Code] = &errorCodes[i]
	}
	return m
}()

// errorDocs is the envelope's documentation object: Engram's three keys,
// pointing at this project's documents, and the code's own entry.
func errorDocs(code string) *api.ErrorDocs {
	return &api.ErrorDocs{
		APIGuide:       "docs/engram-compatibility.md",
		MemoryConcepts: "README.md#decay-and-tiers",
		Examples:       "docs/engram-compatibility.md#replayed-calls",
		ErrorCode:      "docs/reference/error-codes.md#" + code,
	}
}

// describe fills the Engram envelope fields of body from the table.
func describe(status int, body *api.ErrorBody) {
	if c, ok := errorCodeIndex[body.Code]; ok {
		body.EducationalContext = c.Meaning
		body.CognitiveGuidance = c.Fix
		body.EngramCode = c.Engram
		return
	}
	body.EducationalContext = http.StatusText(status)
	body.CognitiveGuidance = "See docs/reference/error-codes.md."
}

// envelope is the full error envelope of body.
func envelope(status int, body api.ErrorBody) api.ErrorEnvelope {
	describe(status, &body)
	return api.ErrorEnvelope{Error: body, Documentation: errorDocs(body.Code)}
}
