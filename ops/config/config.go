// Package config is engram-ops' configuration: the Config types with their
// TOML keys, the defaults `engram-ops serve` runs with, loading (TOML file,
// then ENGRAM_* environment, then --set / flags; unknown keys are errors),
// and validation that reports every problem at once with its key, value,
// allowed range and source. EngineOptions and EmbedderFactory translate it
// for the engine.
package config

import (
	"encoding"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/url"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"

	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/internal/stricttoml"
	"github.com/engram-ops/engram-ops/ops/embedder"
)

// DefaultFile is read when no --config is given and it exists.
const DefaultFile = "engram.toml"

// EnvPrefix prefixes every environment override: the TOML path upper-cased
// and joined with "_" (limits.max_body_bytes → ENGRAM_LIMITS_MAX_BODY_BYTES).
const EnvPrefix = "ENGRAM_"

// Config is the server configuration. Loading order: Defaults → TOML file →
// ENGRAM_* environment → command-line flags. Unknown TOML keys are errors.
type Config struct {
	// Listen is the TCP address of the REST API and /metrics.
	Listen string `toml:"listen" comment:"TCP address of the REST API, health probes and /metrics"`
	// DataDir holds the engine's data (created if missing).
	DataDir string `toml:"data_dir" comment:"data directory (created if missing)"`
	// Durability is sync (an acknowledged write survives kill -9) or relaxed
	// (writes are synced every second; a crash can lose the last second).
	Durability string `toml:"durability" comment:"sync | relaxed (relaxed may lose up to ~1s of acknowledged writes on a crash)"`
	// MinFreeSpace is kept free on the data directory's filesystem: the
	// storage engine cannot survive a failed log write, so writes are
	// refused (507) before the disk is full, and serve refuses to start
	// below it.
	MinFreeSpace ByteSize `toml:"min_free_space" comment:"free space kept on the data directory's filesystem: below it writes are refused (HTTP 507) and serve will not start, e.g. \"256MiB\"; 0 = no check"`

	Log       LogConfig       `toml:"log"`
	Spaces    SpacesConfig    `toml:"spaces"`
	Embedder  EmbedderConfig  `toml:"embedder"`
	Limits    LimitsConfig    `toml:"limits"`
	Index     IndexConfig     `toml:"index"`
	Tiers     TiersConfig     `toml:"tiers"`
	Server    ServerConfig    `toml:"server"`
	GRPC      GRPCConfig      `toml:"grpc"`
	TLS       TLSConfig       `toml:"tls"`
	Backup    BackupConfig    `toml:"backup"`
	Replica   ReplicaConfig   `toml:"replica"`
	ChangeLog ChangeLogConfig `toml:"changelog"`
	Metrics   MetricsConfig   `toml:"metrics"`
	Auth      AuthConfig      `toml:"auth"`
	RateLimit RateLimitConfig `toml:"rate_limit"`
	Audit     AuditConfig     `toml:"audit"`
	CORS      CORSConfig      `toml:"cors"`
	Streams   StreamsConfig   `toml:"streams"`
	// Consolidation schedules consolidation passes.
	Consolidation ConsolidationConfig `toml:"consolidation"`
	Testing       TestingConfig       `toml:"testing"`
}

// CORSConfig configures cross-origin requests from browsers. It is off (no
// CORS headers, preflights answered 405) until allowed_origins is set.
type CORSConfig struct {
	// AllowedOrigins are exact origins (scheme://host[:port]); "*" allows
	// every origin and is accepted only with auth.mode = api_key or a
	// loopback listen address.
	AllowedOrigins []string `toml:"allowed_origins" comment:"origins browsers may call from, exactly as sent (https://app.example.com); \"*\" = any origin (only with auth.mode = api_key or a loopback listen address); empty = CORS off"`
	// AllowedMethods and AllowedHeaders are what a preflight may ask for.
	AllowedMethods []string `toml:"allowed_methods" comment:"methods a preflight may ask for"`
	AllowedHeaders []string `toml:"allowed_headers" comment:"request headers a preflight may ask for (case-insensitive)"`
	// MaxAge is how long a browser may cache a preflight's answer.
	MaxAge Duration `toml:"max_age" comment:"how long browsers may cache a preflight answer"`
}

// Auth modes.
const (
	AuthNone   = "none"
	AuthAPIKey = "api_key"
)

// AuthConfig configures authentication (runbooks/security.md).
type AuthConfig struct {
	// Mode is none (loopback only: requests whose Host is not a loopback
	// name are refused) or api_key (every API route needs a key made by
	// `engram-ops apikey create`).
	Mode string `toml:"mode" comment:"none (allowed on a loopback listen address only) | api_key (keys from engram-ops apikey create)"`
	// Metrics is public (anyone who reaches the port may scrape /metrics)
	// or key (a read key is needed, as for the API).
	Metrics string `toml:"metrics" comment:"who may scrape /metrics when mode = api_key: public | key (any valid key)"`
	// InsecureAllowNoAuth lets mode = none listen on a non-loopback
	// address; the server then warns at startup and in system health.
	InsecureAllowNoAuth bool `toml:"insecure_allow_no_auth" comment:"INSECURE: allow mode = none on a non-loopback address (anyone who reaches the port can read and delete every space)"`
}

// RateLimitConfig configures per-space rate limiting (per-key rates are
// set on each key: apikey create --rate).
type RateLimitConfig struct {
	// Space is the requests per second each space may receive; 0 is no
	// limit.
	Space float64 `toml:"space" comment:"requests per second each space may receive (token bucket); 0 = no limit"`
	// SpaceBurst is how many requests a space may make at once above the
	// rate; 0 means the rate rounded up.
	SpaceBurst int `toml:"space_burst" comment:"requests a space may make at once above its rate; 0 = the rate rounded up"`
}

// AuditConfig configures the audit log: one JSON line per audited request.
type AuditConfig struct {
	// Path is the audit file, "-" for standard output, or empty: then only
	// admin operations are audited, to the server log.
	Path string `toml:"path" comment:"audit log file (JSON lines), \"-\" for standard output; empty: admin operations are audited to the server log only"`
	// MaxSize rotates the file when it would grow past it.
	MaxSize ByteSize `toml:"max_size" comment:"the audit file is rotated (path.1, path.2, ...) before it grows past this, e.g. \"100MiB\""`
	// Keep is how many rotated files are kept.
	Keep int `toml:"keep" comment:"how many rotated audit files are kept"`
	// Reads also audits reads (recall, get, list), not only writes,
	// forgets, admin operations and refused requests.
	Reads bool `toml:"reads" comment:"also audit reads (recall, get, list); writes, forgets, admin operations and refused requests are always audited"`
}

// MetricsConfig bounds what /metrics exports.
type MetricsConfig struct {
	// MaxSpaceLabels bounds the per-space series (engram_memories,
	// engram_memory_operation_*, ...): the spaces holding the most memories
	// are labelled by name, every other space is summed under
	// space="_other", so /metrics stays small with thousands of tenants.
	MaxSpaceLabels int `toml:"max_space_labels" comment:"how many spaces (those holding the most memories) get their own space label in /metrics; the rest are summed under space=\"_other\""`
}

// BackupConfig configures continuous backup shipping (see package backup).
type BackupConfig struct {
	To               string   `toml:"to" comment:"ship the change log and snapshots to s3://bucket/prefix or file:///dir (empty: no shipping)"`
	Interval         Duration `toml:"interval" comment:"how often new change-log entries are shipped"`
	SnapshotInterval Duration `toml:"snapshot_interval" comment:"how often a snapshot is taken while shipping; \"0s\" disables"`
	EncryptRecipient string   `toml:"encrypt_recipient" comment:"age public key (age1...) that backups are encrypted to (empty: not encrypted)"`
	// StartHold keeps writes refused at start until the shipper has read
	// the archive's head and confirmed this server still owns it (a
	// primary that was promoted over while it was down would otherwise
	// acknowledge writes nobody ships), but no longer than this.
	StartHold Duration `toml:"start_hold" comment:"at start, writes answer 503 BACKUP_STARTING until the shipper has confirmed this server's generation on the archive, for at most this long (then writes open and shipping keeps retrying); \"0s\" opens writes at once"`
}

// ChangeLogConfig configures change-log retention.
type ChangeLogConfig struct {
	Retention Duration `toml:"retention" comment:"change-log entries older than this are removed, except what backup shipping has not shipped yet; \"0s\" keeps everything"`
}

// LogConfig configures logging.
type LogConfig struct {
	Level  string `toml:"level" comment:"debug | info | warn | error"`
	Format string `toml:"format" comment:"json | text | auto (json unless stderr is a terminal)"`
	// Access logs one line per HTTP request (method, route, status,
	// duration, space; never bodies).
	Access bool `toml:"access" comment:"log one line per HTTP request"`
	// FlushInterval batches access lines into one write each; other lines
	// are written at once, after the batch, so the order holds.
	FlushInterval Duration `toml:"flush_interval" comment:"access lines are written in batches at most this old (one write per batch, not per request); \"0s\" writes each at once"`
}

// SpacesConfig configures memory spaces.
type SpacesConfig struct {
	AutoCreate       bool `toml:"auto_create" comment:"create a space on the first write to a new name"`
	DefaultDimension int  `toml:"default_dimension" comment:"embedding dimension of new spaces"`
}

// EmbedderConfig chooses the embedder of new spaces.
type EmbedderConfig struct {
	Default string       `toml:"default" comment:"hash (built in, lexical) | openai (an OpenAI-compatible HTTP API)"`
	OpenAI  OpenAIConfig `toml:"openai"`
}

// OpenAIConfig configures an OpenAI-compatible embeddings API.
type OpenAIConfig struct {
	BaseURL   string   `toml:"base_url" comment:"base URL of the embeddings API"`
	Model     string   `toml:"model" comment:"embedding model name sent to the API"`
	APIKeyEnv string   `toml:"api_key_env" comment:"name of the environment variable holding the API key"`
	Dimension int      `toml:"dimension" comment:"dimension the model returns"`
	Timeout   Duration `toml:"timeout" comment:"how long one embeddings request may take"`
}

// LimitsConfig bounds requests.
type LimitsConfig struct {
	MaxBodyBytes    int64 `toml:"max_body_bytes" comment:"largest accepted request body"`
	MaxContentBytes int   `toml:"max_content_bytes" comment:"largest memory content"`
	MaxResults      int   `toml:"max_results" comment:"largest max_results / limit a request may ask for"`
	MaxBatch        int   `toml:"max_batch" comment:"most memories plus associations in one batch"`
	MaxDimension    int   `toml:"max_dimension" comment:"largest embedding dimension of a space"`
	MaxSpaces       int   `toml:"max_spaces" comment:"most spaces that may exist: creating one more (explicitly or by a write to a new name) fails with 409 SPACE_LIMIT_REACHED"`
}

// IndexConfig tunes the ANN index.
type IndexConfig struct {
	ExactThreshold int `toml:"exact_threshold" comment:"spaces with fewer vectors are searched exactly"`
	M              int `toml:"m" comment:"HNSW neighbours per node"`
	EfConstruction int `toml:"ef_construction" comment:"HNSW candidate list size while inserting: higher builds a better graph, slower"`
	EfSearch       int `toml:"ef_search" comment:"HNSW candidate list size while searching: higher finds more true neighbours, slower"`
	// MaxPending bounds each space's backlog of not-yet-indexed memories,
	// which every recall scans exactly.
	MaxPending  int      `toml:"max_pending" comment:"most memories a space may have waiting for the ANN index (every recall scans them exactly); a write past it waits for the indexer, then is refused with 503 INDEX_BACKLOG; 0 turns the bound off"`
	PendingWait Duration `toml:"pending_wait" comment:"how long a write waits for room under max_pending before it is refused"`
}

// TiersConfig tunes decay and tiering.
type TiersConfig struct {
	HotCapacity   ByteSize `toml:"hot_capacity" comment:"bytes of the in-memory working set, e.g. \"64MiB\""`
	ColdBelow     float64  `toml:"cold_below" comment:"retrievability under which a memory moves to the cold tier"`
	SweepInterval Duration `toml:"sweep_interval" comment:"how often tiers are swept; \"0s\" disables the sweeper"`
}

// ServerConfig tunes the HTTP server.
type ServerConfig struct {
	ReadTimeout     Duration `toml:"read_timeout" comment:"longest time to read a request, body included"`
	WriteTimeout    Duration `toml:"write_timeout" comment:"longest time to write a response"`
	IdleTimeout     Duration `toml:"idle_timeout" comment:"how long an idle keep-alive connection stays open"`
	ShutdownTimeout Duration `toml:"shutdown_timeout" comment:"how long shutdown waits for in-flight requests"`
	// DebugListen serves Go's /debug/pprof profiles on a separate address,
	// so profiling is never reachable through the API's address.
	DebugListen string `toml:"debug_listen" comment:"address of the /debug/pprof profiling endpoint, loopback only (empty: off), e.g. 127.0.0.1:6060"`
	// GCPercent and MemoryLimit set the Go garbage collector's pacing
	// (GOGC and GOMEMLIMIT in the environment win). A large index is
	// mostly live data, and each collection marks all of it: a higher
	// percent collects less often at the cost of memory.
	GCPercent   int      `toml:"gc_percent" comment:"how far the Go heap may grow over live data between collections, in percent (GOGC wins when set)"`
	MemoryLimit ByteSize `toml:"memory_limit" comment:"soft limit on the Go heap, e.g. \"8GiB\": collections run more often near it (GOMEMLIMIT wins when set); 0 = none"`
	// MaxConnections caps the open client connections of the API's
	// address; a connection over the cap is answered 503 (plain HTTP) or
	// closed (TLS) at once and counted, never queued.
	MaxConnections int `toml:"max_connections" comment:"most open client connections; one more is refused at once (503 over plain HTTP, closed over TLS) and counted in engram_http_connections_refused_total; 0 = no cap"`
}

// GRPCConfig configures Engram's gRPC service (engram.v1.EngramService),
// served beside the REST API with the same engine, keys, spaces, limits
// and TLS.
type GRPCConfig struct {
	// Listen is its TCP address; "off" serves no gRPC. Without API keys it
	// must be loopback, as listen must.
	Listen string `toml:"listen" comment:"TCP address of Engram's gRPC service engram.v1.EngramService (Engram's port is 50051); \"off\" = no gRPC"`
	// MaxReceiveBytes bounds one received message; a larger one is
	// refused with RESOURCE_EXHAUSTED before it is decoded.
	MaxReceiveBytes int64 `toml:"max_receive_bytes" comment:"largest gRPC message accepted; a larger one is refused (RESOURCE_EXHAUSTED)"`
}

// GRPCOff is grpc.listen's value that serves no gRPC.
const GRPCOff = "off"

// TLSConfig serves the API over TLS (1.2 or later) when CertFile and
// KeyFile are set, with mutual TLS when ClientCAFile is set too. The
// certificate and key are read again on SIGHUP and when either file
// changes; a reload that fails keeps the certificate in use.
type TLSConfig struct {
	CertFile     string `toml:"cert_file" comment:"PEM certificate (chain) the API is served with over TLS; empty: plain HTTP"`
	KeyFile      string `toml:"key_file" comment:"PEM private key of cert_file"`
	ClientCAFile string `toml:"client_ca_file" comment:"PEM CA certificates client certificates must chain to (mutual TLS: clients without one are refused); empty: no client certificates"`
	// ReloadInterval is how often cert_file and key_file are checked for a
	// change (modification time and size).
	ReloadInterval Duration `toml:"reload_interval" comment:"how often cert_file and key_file are checked for changes and reloaded; \"0s\": only on SIGHUP"`
}

// Default returns the configuration `engram-ops serve` runs with when
// nothing is configured. What the engine uses comes from
// core.DefaultOptions, and "off" is spelled the same way: 0 ("0s") turns
// off sweep_interval, changelog.retention, min_free_space,
// backup.snapshot_interval and memory_limit.
func Default() Config {
	d := core.DefaultOptions()
	return Config{
		Listen:       "127.0.0.1:7432",
		DataDir:      "./engram-data",
		Durability:   string(d.Durability),
		MinFreeSpace: ByteSize(d.MinFreeBytes),
		Log:          LogConfig{Level: "info", Format: "auto", Access: true, FlushInterval: Duration{100 * time.Millisecond}},
		Spaces:       SpacesConfig{AutoCreate: !d.NoAutoCreateSpaces, DefaultDimension: d.DefaultDimension},
		Embedder: EmbedderConfig{
			Default: d.DefaultEmbedder,
			OpenAI: OpenAIConfig{
				BaseURL:   "https://api.openai.com/v1",
				Model:     "text-embedding-3-small",
				APIKeyEnv: "OPENAI_API_KEY",
				Dimension: 1536,
				Timeout:   Duration{30 * time.Second},
			},
		},
		Limits: LimitsConfig{
			MaxBodyBytes:    8 << 20,
			MaxContentBytes: d.Limits.MaxContentBytes,
			MaxResults:      d.Limits.MaxResults,
			MaxBatch:        d.Limits.MaxBatch,
			MaxDimension:    d.Limits.MaxDimension,
			MaxSpaces:       d.Limits.MaxSpaces,
		},
		Index: IndexConfig{ExactThreshold: d.Index.ExactThreshold, M: d.Index.M,
			EfConstruction: d.Index.EfConstruction, EfSearch: d.Index.EfSearch,
			MaxPending: d.Index.MaxPending, PendingWait: Duration{d.Index.PendingWait}},
		Tiers: TiersConfig{HotCapacity: ByteSize(d.Tiers.HotCapacityBytes), ColdBelow: d.Tiers.ColdBelow,
			SweepInterval: Duration{d.Tiers.SweepInterval}},
		ChangeLog: ChangeLogConfig{Retention: Duration{d.ChangeLog.Retention}},
		Server: ServerConfig{
			ReadTimeout:     Duration{30 * time.Second},
			WriteTimeout:    Duration{60 * time.Second},
			IdleTimeout:     Duration{2 * time.Minute},
			ShutdownTimeout: Duration{30 * time.Second},
			GCPercent:       100,
			MaxConnections:  4096,
		},
		GRPC:    GRPCConfig{Listen: "127.0.0.1:50051", MaxReceiveBytes: 4 << 20},
		TLS:     TLSConfig{ReloadInterval: Duration{5 * time.Second}},
		Backup:  BackupConfig{Interval: Duration{time.Second}, SnapshotInterval: Duration{time.Hour}, StartHold: Duration{30 * time.Second}},
		Metrics: MetricsConfig{MaxSpaceLabels: 50},
		Auth:    AuthConfig{Mode: AuthNone, Metrics: "public"},
		Audit:   AuditConfig{MaxSize: 100 << 20, Keep: 5},
		CORS: CORSConfig{AllowedOrigins: []string{}, AllowedMethods: []string{"GET", "POST", "DELETE"},
			AllowedHeaders: []string{"Authorization", "Content-Type", "X-API-Key", "X-Memory-Space"}, MaxAge: Duration{10 * time.Minute}},
		Streams: defaultStreams(),
		Replica: defaultReplica(),
	}
}

// validateCORS checks the [cors] section: exact origins, "*" only where a
// key is needed or the server is reachable from this host only.
func (c *Config) validateCORS(bad func(key string, value any, allowed string, args ...any)) {
	for _, o := range c.CORS.AllowedOrigins {
		if o == "*" {
			host, _, _ := net.SplitHostPort(c.Listen)
			if c.Auth.Mode != AuthAPIKey && !IsLoopbackHost(host) {
				bad("cors.allowed_origins", o, "\"*\" (any origin) needs auth.mode = %q or a loopback listen address: without a key any web page could call this server", AuthAPIKey)
			}
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil || o != strings.ToLower(o) {
			bad("cors.allowed_origins", o, "must be \"*\" or an origin as browsers send it: lower-case scheme://host[:port], no path (e.g. https://app.example.com)")
		}
	}
	for _, m := range c.CORS.AllowedMethods {
		switch m {
		case "GET", "POST", "DELETE", "PUT", "PATCH", "HEAD":
		default:
			bad("cors.allowed_methods", m, "must be upper-case methods among GET, POST, DELETE, PUT, PATCH, HEAD")
		}
	}
	for _, h := range c.CORS.AllowedHeaders {
		if h == "" || strings.ContainsAny(h, " ,:\t") {
			bad("cors.allowed_headers", h, "must be header names")
		}
	}
	if d := c.CORS.MaxAge.Duration; d < 0 || d > 24*time.Hour {
		bad("cors.max_age", c.CORS.MaxAge, "must be in 0s..24h")
	}
}

// IsLoopbackHost reports whether host (a name or address, without port)
// is loopback: localhost, 127.0.0.0/8 or ::1.
func IsLoopbackHost(host string) bool {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") || strings.EqualFold(host, "localhost.") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Problem is one problem found in a configuration: the key, the bad
// value and what is allowed. Validate and the loaders return them joined
// with errors.Join.
type Problem struct {
	Key     string // TOML path, e.g. limits.max_body_bytes
	Value   any    // the offending value (nil when not applicable)
	Allowed string // the allowed range or set
	Source  string // where the value came from, e.g. a file:line or an env var
}

func (p *Problem) Error() string {
	var b strings.Builder
	if p.Source != "" {
		b.WriteString(p.Source)
		b.WriteString(": ")
	}
	b.WriteString(p.Key)
	if p.Value != nil {
		fmt.Fprintf(&b, " = %s", formatValue(p.Value))
	}
	b.WriteString(": ")
	b.WriteString(p.Allowed)
	return b.String()
}

func formatValue(v any) string {
	switch x := v.(type) {
	case string:
		return strconv.Quote(x)
	case Duration:
		return strconv.Quote(x.String())
	case ByteSize:
		return strconv.FormatInt(int64(x), 10)
	}
	return fmt.Sprint(v)
}

// Problems splits an error returned by Validate or a loader into its
// individual problems (for printing one per line).
func Problems(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, Problems(e)...)
		}
		return out
	}
	return []error{err}
}

// Validate returns every problem of c at once (errors.Join of
// *Problem), or nil.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key string, value any, allowed string, args ...any) {
		errs = append(errs, &Problem{Key: key, Value: value, Allowed: fmt.Sprintf(allowed, args...)})
	}
	if host, port, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen", c.Listen, "must be host:port, e.g. 127.0.0.1:7432 or :7432 (%v)", err)
	} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		bad("listen", c.Listen, "port must be a number in 0..65535")
	} else if host != "" && net.ParseIP(host) == nil && !validHostname(host) {
		bad("listen", c.Listen, "host %q is neither an IP address nor a host name", host)
	}
	if d := c.Server.DebugListen; d != "" {
		if host, port, err := net.SplitHostPort(d); err != nil {
			bad("server.debug_listen", d, "must be host:port on loopback, e.g. 127.0.0.1:6060 (%v)", err)
		} else if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			bad("server.debug_listen", d, "host must be a loopback address (127.0.0.1, ::1 or localhost): profiles expose internals")
		} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
			bad("server.debug_listen", d, "port must be a number in 0..65535")
		}
	}
	if strings.TrimSpace(c.DataDir) == "" {
		bad("data_dir", c.DataDir, "must name a directory")
	}
	switch c.Durability {
	case string(core.DurabilitySync), string(core.DurabilityRelaxed):
	default:
		bad("durability", c.Durability, "must be one of sync, relaxed")
	}
	if c.MinFreeSpace < 0 || c.MinFreeSpace > 1<<40 {
		bad("min_free_space", c.MinFreeSpace, "must be in 0..1TiB (bytes, or a string such as \"256MiB\"; 0 = no check)")
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", c.Log.Level, "must be one of debug, info, warn, error")
	}
	switch c.Log.Format {
	case "json", "text", "auto":
	default:
		bad("log.format", c.Log.Format, "must be one of json, text, auto")
	}
	if d := c.Log.FlushInterval.Duration; d < 0 || d > 10*time.Second {
		bad("log.flush_interval", c.Log.FlushInterval, "must be in [0s, 10s]")
	}
	maxDim := c.Limits.MaxDimension
	if maxDim < 1 || maxDim > 65536 {
		bad("limits.max_dimension", maxDim, "must be in 1..65536")
		maxDim = 65536
	}
	if d := c.Spaces.DefaultDimension; d < 1 || d > maxDim {
		bad("spaces.default_dimension", d, "must be in 1..%d (limits.max_dimension)", maxDim)
	}
	switch c.Embedder.Default {
	case "hash":
	case "openai":
		o := c.Embedder.OpenAI
		if u, err := url.Parse(o.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("embedder.openai.base_url", o.BaseURL, "must be an http:// or https:// URL")
		}
		if strings.TrimSpace(o.Model) == "" {
			bad("embedder.openai.model", o.Model, "must name the embedding model")
		}
		if o.Dimension < 1 || o.Dimension > maxDim {
			bad("embedder.openai.dimension", o.Dimension, "must be in 1..%d (limits.max_dimension)", maxDim)
		}
		if strings.TrimSpace(o.APIKeyEnv) == "" {
			bad("embedder.openai.api_key_env", o.APIKeyEnv, "must name the environment variable holding the API key")
		}
		if o.Timeout.Duration <= 0 || o.Timeout.Duration > 10*time.Minute {
			bad("embedder.openai.timeout", o.Timeout, "must be in (0s, 10m]")
		}
		if o.Dimension != c.Spaces.DefaultDimension {
			bad("spaces.default_dimension", c.Spaces.DefaultDimension,
				"must equal embedder.openai.dimension (%d) when embedder.default = \"openai\"", o.Dimension)
		}
	default:
		bad("embedder.default", c.Embedder.Default, "must be one of hash, openai")
	}
	// Ask the embedder itself whether it supports the default dimension
	// (the hashing embedder has its own range), so a bad combination fails
	// here rather than on the first write to a new space.
	if !problemFor(errs, "embedder.", "spaces.default_dimension", "limits.max_dimension") {
		if _, err := c.EmbedderFactory(func(string) string { return "" })(c.Embedder.Default, c.Spaces.DefaultDimension); err != nil {
			msg := err.Error()
			var ce *core.Error
			if errors.As(err, &ce) {
				msg = ce.Message
			}
			bad("spaces.default_dimension", c.Spaces.DefaultDimension, "the %s embedder refuses it: %s", c.Embedder.Default, msg)
		}
	}
	l := c.Limits
	bodyOK := l.MaxBodyBytes >= 1024 && l.MaxBodyBytes <= 1<<30
	if !bodyOK {
		bad("limits.max_body_bytes", l.MaxBodyBytes, "must be in 1024..%d (1 GiB)", int64(1<<30))
	}
	// Against an invalid max_body_bytes the bound would be that value's
	// knock-on, about a key the user may never have set.
	if l.MaxContentBytes < 1 || bodyOK && int64(l.MaxContentBytes) > l.MaxBodyBytes {
		bad("limits.max_content_bytes", l.MaxContentBytes, "must be in 1..%d (limits.max_body_bytes)", l.MaxBodyBytes)
	}
	if l.MaxResults < 1 || l.MaxResults > 100_000 {
		bad("limits.max_results", l.MaxResults, "must be in 1..100000")
	}
	if l.MaxBatch < 1 || l.MaxBatch > 1_000_000 {
		bad("limits.max_batch", l.MaxBatch, "must be in 1..1000000")
	}
	if l.MaxSpaces < 1 || l.MaxSpaces > 1_000_000 {
		bad("limits.max_spaces", l.MaxSpaces, "must be in 1..1000000")
	}
	if n := c.Metrics.MaxSpaceLabels; n < 0 || n > 10_000 {
		bad("metrics.max_space_labels", n, "must be in 0..10000 (0: every space under space=\"_other\")")
	}
	x := c.Index
	if x.ExactThreshold < 0 || x.ExactThreshold > 10_000_000 {
		bad("index.exact_threshold", x.ExactThreshold, "must be in 0..10000000")
	}
	if x.M < 2 || x.M > 128 {
		bad("index.m", x.M, "must be in 2..128")
	}
	if x.EfConstruction < 1 || x.EfConstruction > 4096 {
		bad("index.ef_construction", x.EfConstruction, "must be in 1..4096")
	}
	if x.EfSearch < 1 || x.EfSearch > 4096 {
		bad("index.ef_search", x.EfSearch, "must be in 1..4096")
	}
	if x.MaxPending < 0 || x.MaxPending > 10_000_000 {
		bad("index.max_pending", x.MaxPending, "must be in 0..10000000 (0: no bound)")
	}
	if x.PendingWait.Duration < time.Millisecond || x.PendingWait.Duration > 10*time.Minute {
		bad("index.pending_wait", x.PendingWait, "must be in 1ms..10m")
	}
	t := c.Tiers
	if t.HotCapacity < 1<<20 || t.HotCapacity > 1<<40 {
		bad("tiers.hot_capacity", t.HotCapacity, "must be in 1MiB..1TiB (bytes, or a string such as \"256MiB\")")
	}
	if math.IsNaN(t.ColdBelow) || t.ColdBelow <= 0 || t.ColdBelow >= 1 {
		bad("tiers.cold_below", t.ColdBelow, "must be in (0, 1)")
	}
	if d := c.ChangeLog.Retention.Duration; d != 0 && (d < time.Minute || d > 10*365*24*time.Hour) {
		bad("changelog.retention", c.ChangeLog.Retention, "must be 0s (keep everything) or in 1m..87600h")
	}
	if d := t.SweepInterval.Duration; d != 0 && (d < time.Second || d > 24*time.Hour) {
		bad("tiers.sweep_interval", t.SweepInterval, "must be 0s (disabled) or in 1s..24h")
	}
	for _, d := range []struct {
		key string
		v   Duration
	}{
		{"server.read_timeout", c.Server.ReadTimeout},
		{"server.write_timeout", c.Server.WriteTimeout},
		{"server.idle_timeout", c.Server.IdleTimeout},
		{"server.shutdown_timeout", c.Server.ShutdownTimeout},
	} {
		if d.v.Duration <= 0 || d.v.Duration > time.Hour {
			bad(d.key, d.v, "must be in (0s, 1h]")
		}
	}
	if g := c.Server.GCPercent; g < 25 || g > 10000 {
		bad("server.gc_percent", g, "must be in 25..10000")
	}
	if m := c.Server.MemoryLimit; m != 0 && (m < 64<<20 || m > 1<<50) {
		bad("server.memory_limit", m, "must be 0 (none) or in 64MiB..1PiB")
	}
	if n := c.Server.MaxConnections; n < 0 || n > 1_000_000 {
		bad("server.max_connections", n, "must be 0 (no cap) or in 1..1000000")
	}
	switch t := c.TLS; {
	case t.CertFile != "" && t.KeyFile == "":
		bad("tls.key_file", t.KeyFile, "must name the private key of tls.cert_file (%s)", t.CertFile)
	case t.CertFile == "" && t.KeyFile != "":
		bad("tls.cert_file", t.CertFile, "must name the certificate of tls.key_file (%s)", t.KeyFile)
	case t.CertFile == "" && t.ClientCAFile != "":
		bad("tls.client_ca_file", t.ClientCAFile, "needs tls.cert_file and tls.key_file: mutual TLS is TLS")
	}
	if d := c.TLS.ReloadInterval.Duration; d != 0 && (d < 100*time.Millisecond || d > time.Hour) {
		bad("tls.reload_interval", c.TLS.ReloadInterval, "must be 0s (SIGHUP only) or in 100ms..1h")
	}
	if to := c.Backup.To; to != "" && !strings.HasPrefix(to, "s3://") && !strings.HasPrefix(to, "file://") {
		bad("backup.to", to, "must be s3://bucket/prefix or file:///dir")
	}
	if d := c.Backup.Interval.Duration; d < 10*time.Millisecond || d > time.Hour {
		bad("backup.interval", c.Backup.Interval, "must be in 10ms..1h")
	}
	if d := c.Backup.SnapshotInterval.Duration; d != 0 && (d < time.Second || d > 30*24*time.Hour) {
		bad("backup.snapshot_interval", c.Backup.SnapshotInterval, "must be 0s (disabled) or in 1s..720h")
	}
	if r := c.Backup.EncryptRecipient; r != "" && !strings.HasPrefix(r, "age1") {
		bad("backup.encrypt_recipient", r, "must be an age X25519 public key (age1...)")
	}
	if g := c.GRPC.Listen; g != GRPCOff {
		if host, port, err := net.SplitHostPort(g); err != nil {
			bad("grpc.listen", g, "must be host:port, e.g. 127.0.0.1:50051, or \"off\" (%v)", err)
		} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
			bad("grpc.listen", g, "port must be a number in 0..65535")
		} else if host != "" && net.ParseIP(host) == nil && !validHostname(host) {
			bad("grpc.listen", g, "host %q is neither an IP address nor a host name", host)
		} else if c.Auth.Mode == AuthNone && !IsLoopbackHost(host) && !c.Auth.InsecureAllowNoAuth {
			bad("grpc.listen", g, "must be a loopback address with auth.mode = %q: anyone who reaches it could read and delete every space. "+
				"Set auth.mode = \"api_key\" (keys from engram-ops apikey create), listen on 127.0.0.1, or --insecure-allow-no-auth", AuthNone)
		}
	}
	if m := c.GRPC.MaxReceiveBytes; m < 1024 || m > 1<<30 {
		bad("grpc.max_receive_bytes", m, "must be in 1024..%d (1 GiB)", int64(1<<30))
	}
	switch c.Auth.Mode {
	case AuthAPIKey:
	case AuthNone:
		if host, _, err := net.SplitHostPort(c.Listen); err == nil && !IsLoopbackHost(host) && !c.Auth.InsecureAllowNoAuth {
			bad("auth.mode", c.Auth.Mode, "must be %q when listening on %s, which is not a loopback address: anyone who reaches it could read and delete every space. "+
				"Create a key (engram-ops apikey create --data-dir DIR --name admin --permissions admin) and set auth.mode = \"api_key\", "+
				"or listen on 127.0.0.1; --insecure-allow-no-auth (auth.insecure_allow_no_auth) overrides this", AuthAPIKey, c.Listen)
		}
	default:
		bad("auth.mode", c.Auth.Mode, "must be one of none, api_key")
	}
	switch c.Auth.Metrics {
	case "public", "key":
	default:
		bad("auth.metrics", c.Auth.Metrics, "must be one of public, key")
	}
	c.validateCORS(bad)
	c.validateStreams(bad)
	c.validateConsolidation(bad)
	c.validateReplica(bad)
	if r := c.RateLimit.Space; math.IsNaN(r) || r < 0 || r > 1e6 {
		bad("rate_limit.space", r, "must be in 0..1000000 requests per second (0: no limit)")
	}
	if b := c.RateLimit.SpaceBurst; b < 0 || b > 1e6 {
		bad("rate_limit.space_burst", b, "must be in 0..1000000 (0: the rate rounded up)")
	}
	if m := c.Audit.MaxSize; m < 1<<10 || m > 1<<40 {
		bad("audit.max_size", m, "must be in 1KiB..1TiB")
	}
	if k := c.Audit.Keep; k < 0 || k > 1000 {
		bad("audit.keep", k, "must be in 0..1000")
	}
	return errors.Join(errs...)
}

// problemFor reports whether errs has a problem for a key with one of the
// given prefixes.
func problemFor(errs []error, prefixes ...string) bool {
	for _, e := range errs {
		if p, ok := e.(*Problem); ok {
			for _, pre := range prefixes {
				if strings.HasPrefix(p.Key, pre) {
					return true
				}
			}
		}
	}
	return false
}

func validHostname(h string) bool {
	if len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// EngineOptions turns the configuration into core.Options: the engine's
// defaults with every configured value over them (both spell "off" as 0).
// embedders may be nil (only the built-in hashing embedder).
func (c *Config) EngineOptions(logger *slog.Logger, embedders core.EmbedderFactory) core.Options {
	o := core.DefaultOptions()
	o.Durability = core.Durability(c.Durability)
	o.DefaultDimension = c.Spaces.DefaultDimension
	o.DefaultEmbedder = c.Embedder.Default
	o.NoAutoCreateSpaces = !c.Spaces.AutoCreate
	o.Embedders = embedders
	o.Limits.MaxContentBytes = c.Limits.MaxContentBytes
	o.Limits.MaxDimension = c.Limits.MaxDimension
	o.Limits.MaxResults = c.Limits.MaxResults
	o.Limits.MaxBatch = c.Limits.MaxBatch
	o.Limits.MaxSpaces = c.Limits.MaxSpaces
	o.Index.ExactThreshold = c.Index.ExactThreshold
	o.Index.M = c.Index.M
	o.Index.EfConstruction = c.Index.EfConstruction
	o.Index.EfSearch = c.Index.EfSearch
	o.Index.MaxPending = c.Index.MaxPending
	o.Index.PendingWait = c.Index.PendingWait.Duration
	o.Tiers.HotCapacityBytes = int64(c.Tiers.HotCapacity)
	o.Tiers.ColdBelow = c.Tiers.ColdBelow
	o.Tiers.SweepInterval = c.Tiers.SweepInterval.Duration
	o.ChangeLog.Retention = c.ChangeLog.Retention.Duration
	o.Logger = logger
	o.MinFreeBytes = int64(c.MinFreeSpace)
	return o
}

// EmbedderFactory builds the embedders spaces can use: the built-in "hash"
// and the OpenAI-compatible "openai" of [embedder.openai], whose API key is
// read through getenv from the variable named by api_key_env (nil getenv:
// os.Getenv). The key is never logged.
func (c *Config) EmbedderFactory(getenv func(string) string) core.EmbedderFactory {
	if getenv == nil {
		getenv = os.Getenv
	}
	o := c.Embedder.OpenAI
	return embedder.NewFactory(&embedder.OpenAIConfig{
		BaseURL:   o.BaseURL,
		Model:     o.Model,
		APIKey:    getenv(o.APIKeyEnv),
		APIKeyEnv: o.APIKeyEnv,
		Dimension: o.Dimension,
		Timeout:   o.Timeout.Duration,
	})
}

// LoadFile decodes the TOML file at path over c (strictly: unknown keys are
// errors). Every unknown key is reported; a syntax or type error stops
// decoding at that point and names the line and column.
func (c *Config) LoadFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("read config file: %w", err)
	}
	defer f.Close()
	return c.Decode(f, path)
}

// Decode decodes TOML from r over c; name labels problems (a file name).
func (c *Config) Decode(r io.Reader, name string) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	// The decoder stops at the first value of the wrong type: try each
	// known key alone first, report every one that does not decode, and
	// decode the document without them, so every problem is reported at
	// once and none is a knock-on of another.
	var doc map[string]any
	var typeErrs []error
	orig := data
	if toml.Unmarshal(data, &doc) == nil {
		for _, key := range leafKeys(doc, nil) {
			ft, known := fieldType(key)
			if !known {
				continue // unknown keys are reported by the strict decode
			}
			val, _ := lookupKey(doc, key)
			single, err := toml.Marshal(nest(key, val))
			if err != nil {
				continue
			}
			probe := Default()
			if ps := stricttoml.Decode(single, &probe); ps != nil {
				typeErrs = append(typeErrs, &Problem{Key: strings.Join(key, "."), Value: val, Allowed: typeMessage(ps[0], ft),
					Source: fmt.Sprintf("%s:%d", name, keyLine(data, key))})
				deleteKey(doc, key)
			}
		}
		if len(typeErrs) > 0 {
			if data, err = toml.Marshal(doc); err != nil {
				return errors.Join(append(typeErrs, err)...)
			}
		}
	}
	if ps := stricttoml.Decode(data, c); ps != nil {
		if len(typeErrs) > 0 {
			// Positions in the re-encoded document are not the file's.
			for _, p := range Problems(decodeProblems(ps, name)) {
				if pr, ok := p.(*Problem); ok && pr.Key != "" && !strings.HasPrefix(pr.Key, "(") {
					pr.Source = fmt.Sprintf("%s:%d", name, keyLine(orig, strings.Split(pr.Key, ".")))
				}
				typeErrs = append(typeErrs, p)
			}
			return errors.Join(typeErrs...)
		}
		return decodeProblems(ps, name)
	}
	return errors.Join(typeErrs...)
}

// leafKeys lists the paths of doc's non-table values.
func leafKeys(doc map[string]any, prefix []string) [][]string {
	var out [][]string
	keys := make([]string, 0, len(doc))
	for k := range doc {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p := append(append([]string(nil), prefix...), k)
		if m, ok := doc[k].(map[string]any); ok {
			out = append(out, leafKeys(m, p)...)
			continue
		}
		out = append(out, p)
	}
	return out
}

// nest builds the document {key[0]: {key[1]: … val}}.
func nest(key []string, val any) map[string]any {
	m := map[string]any{key[len(key)-1]: val}
	for i := len(key) - 2; i >= 0; i-- {
		m = map[string]any{key[i]: m}
	}
	return m
}

// typeMessage says what a key takes, in words rather than Go types.
func typeMessage(p stricttoml.Problem, ft reflect.Type) string {
	if p.Unknown {
		return "unknown key " + p.Key
	}
	msg := strings.TrimPrefix(p.Msg, "toml: ")
	if strings.Contains(msg, "cannot decode TOML") || strings.Contains(msg, "struct field") || strings.Contains(msg, "cannot store") {
		return "must be " + withArticle(TypeName(ft))
	}
	return msg
}

func withArticle(s string) string {
	if strings.ContainsRune("aeiou", rune(s[0])) {
		return "an " + s
	}
	return "a " + s
}

// keyLine finds the line of the original file that assigns key (the
// document is re-encoded between attempts, so its positions differ).
func keyLine(data []byte, key []string) int {
	table, leaf := strings.Join(key[:len(key)-1], "."), key[len(key)-1]
	cur := ""
	for i, line := range strings.Split(string(data), "\n") {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "[") && strings.HasSuffix(t, "]") {
			cur = strings.Trim(t, "[] ")
			continue
		}
		if k, _, ok := strings.Cut(t, "="); ok && cur == table && strings.Trim(strings.TrimSpace(k), `"'`) == leaf {
			return i + 1
		}
	}
	return 0
}

// fieldType is the Go type of the configuration field at a TOML path.
func fieldType(key []string) (reflect.Type, bool) {
	var out reflect.Type
	walkConfig(reflect.ValueOf(&Config{}).Elem(), nil, func(path []string, v reflect.Value) {
		if strings.Join(path, ".") == strings.Join(key, ".") {
			out = v.Type()
		}
	})
	return out, out != nil
}

func lookupKey(doc map[string]any, key []string) (any, bool) {
	var cur any = doc
	for _, k := range key {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[k]; !ok {
			return nil, false
		}
	}
	return cur, true
}

func deleteKey(doc map[string]any, key []string) bool {
	m := doc
	for _, k := range key[:len(key)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			return false
		}
		m = next
	}
	if _, ok := m[key[len(key)-1]]; !ok {
		return false
	}
	delete(m, key[len(key)-1])
	return true
}

// decodeProblems turns what the strict decoder found into Problems.
func decodeProblems(ps []stricttoml.Problem, name string) error {
	errs := make([]error, 0, len(ps))
	for _, p := range ps {
		switch {
		case p.Unknown:
			errs = append(errs, &Problem{
				Key:     p.Key,
				Allowed: "unknown key (`engram-ops config example` prints every valid key)",
				Source:  fmt.Sprintf("%s:%d:%d", name, p.Line, p.Col),
			})
		case p.Line > 0:
			key := p.Key
			if key == "" {
				key = "(syntax)"
			}
			errs = append(errs, &Problem{Key: key, Allowed: p.Msg, Source: fmt.Sprintf("%s:%d:%d", name, p.Line, p.Col)})
		default:
			errs = append(errs, &Problem{Key: "(file)", Allowed: p.Msg, Source: name})
		}
	}
	if len(errs) == 1 {
		return errs[0]
	}
	return errors.Join(errs...)
}

// Load builds the configuration from defaults, then the TOML file
// (path, or ./engram.toml when path is "" and that file exists), then the
// ENGRAM_* environment read through getenv. It returns the file it read
// ("" if none) and every problem found while loading; the caller applies
// flags and then calls Validate.
func Load(path string, getenv func(string) string) (Config, string, error) {
	c := Default()
	var errs []error
	if path == "" {
		if _, err := os.Stat(DefaultFile); err == nil {
			path = DefaultFile
		}
	}
	if path != "" {
		if err := c.LoadFile(path); err != nil {
			errs = append(errs, err)
		}
	}
	if getenv != nil {
		if err := c.ApplyEnv(getenv); err != nil {
			errs = append(errs, err)
		}
	}
	return c, path, errors.Join(errs...)
}

// EnvVar is one ENGRAM_* override the configuration understands.
type EnvVar struct {
	Name string // ENGRAM_LIMITS_MAX_BODY_BYTES
	Key  string // limits.max_body_bytes
}

// EnvVars lists every environment override, derived mechanically from the
// TOML paths of Config's scalar fields.
func EnvVars() []EnvVar {
	var out []EnvVar
	walkConfig(reflect.ValueOf(&Config{}).Elem(), nil, func(path []string, _ reflect.Value) {
		out = append(out, EnvVar{Name: envName(path), Key: strings.Join(path, ".")})
	})
	return out
}

func envName(path []string) string {
	return EnvPrefix + strings.ToUpper(strings.Join(path, "_"))
}

// ApplyEnv overrides c with every ENGRAM_* variable getenv returns a
// non-empty value for. Every unparsable value is reported.
func (c *Config) ApplyEnv(getenv func(string) string) error {
	var errs []error
	walkConfig(reflect.ValueOf(c).Elem(), nil, func(path []string, v reflect.Value) {
		name := envName(path)
		raw := getenv(name)
		if raw == "" {
			return
		}
		if err := setScalar(v, raw); err != nil {
			errs = append(errs, &Problem{Key: strings.Join(path, "."), Value: raw, Allowed: err.Error(), Source: name})
		}
	})
	return errors.Join(errs...)
}

// Set assigns a value given as text (a flag or env value) to the TOML key.
func (c *Config) Set(key, raw string) error {
	var found bool
	var err error
	walkConfig(reflect.ValueOf(c).Elem(), nil, func(path []string, v reflect.Value) {
		if strings.Join(path, ".") == key {
			found = true
			if e := setScalar(v, raw); e != nil {
				err = &Problem{Key: key, Value: raw, Allowed: e.Error()}
			}
		}
	})
	if !found {
		return fmt.Errorf("unknown configuration key %q", key)
	}
	return err
}

// Keys lists every TOML key of the configuration, sorted.
func Keys() []string {
	var out []string
	for _, e := range EnvVars() {
		out = append(out, e.Key)
	}
	sort.Strings(out)
	return out
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

// walkConfig calls f for every scalar leaf (or TextUnmarshaler) of v with
// its TOML path. It is the one table of keys that the environment, --set,
// `config example` and validation share. A generic layering library
// (koanf with mapstructure) was weighed against it and kept out: it maps an
// environment name back to a key by splitting on "_" (so
// ENGRAM_LIMITS_MAX_SPACES became limits.max.spaces, an unknown key), it
// drops the file:line:col of unknown keys, and its type errors quote
// strconv; undoing each needs this same table of keys.
func walkConfig(v reflect.Value, path []string, f func(path []string, v reflect.Value)) {
	walkDocs(v, path, func(p []string, _ reflect.StructField, fv reflect.Value) { f(p, fv) })
}

func setScalar(v reflect.Value, raw string) error {
	if v.CanAddr() {
		if u, ok := v.Addr().Interface().(encoding.TextUnmarshaler); ok {
			return u.UnmarshalText([]byte(raw))
		}
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(raw)
	case reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return fmt.Errorf("must be true or false")
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(strings.ReplaceAll(raw, "_", ""), 10, 64)
		if err != nil {
			return fmt.Errorf("must be an integer")
		}
		v.SetInt(n)
	case reflect.Float64:
		x, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			return fmt.Errorf("must be a number")
		}
		v.SetFloat(x)
	default:
		return fmt.Errorf("cannot be set from text (kind %s)", v.Kind())
	}
	return nil
}

// TestingConfig holds switches that exist for tests only. Never enable them
// in production.
type TestingConfig struct {
	// FaultInjection enables POST /api/v1/admin/faults (added latency and
	// injected errors for chosen operations).
	FaultInjection bool `toml:"fault_injection" comment:"TEST ONLY: enable POST /api/v1/admin/faults (injected latency and errors); never in production"`
}

// Duration is a time.Duration written as a Go duration string ("30s").
type Duration struct{ time.Duration }

// UnmarshalText parses a duration such as "30s" or "1m30s".
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(strings.TrimSpace(string(b)))
	if err != nil {
		return fmt.Errorf("must be a duration such as \"30s\" or \"5m\" (%v)", err)
	}
	d.Duration = v
	return nil
}

// MarshalText formats the duration.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// ByteSize is a number of bytes, written as an integer or a string with a
// unit: "512KiB", "64MiB", "2GiB", "1GB" (powers of 1000 for kB/MB/GB/TB).
type ByteSize int64

// UnmarshalText parses a size such as "64MiB" or "1048576".
func (b *ByteSize) UnmarshalText(t []byte) error {
	n, err := ParseByteSize(string(t))
	if err != nil {
		return err
	}
	*b = ByteSize(n)
	return nil
}

// MarshalText formats the size in the largest exact binary unit.
func (b ByteSize) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

func (b ByteSize) String() string {
	n := int64(b)
	for _, u := range []struct {
		s string
		v int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n != 0 && n%u.v == 0 {
			return strconv.FormatInt(n/u.v, 10) + u.s
		}
	}
	return strconv.FormatInt(n, 10)
}

// ParseByteSize parses "64MiB", "1GB", "1048576" (bytes).
func ParseByteSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '_') {
		i++
	}
	num, unit := strings.ReplaceAll(s[:i], "_", ""), strings.TrimSpace(s[i:])
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("must be a size such as \"64MiB\", \"1GB\" or a number of bytes")
	}
	mult := map[string]int64{
		"": 1, "B": 1,
		"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40,
		"kB": 1e3, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
	}[unit]
	if mult == 0 {
		return 0, fmt.Errorf("unit %q is not one of B, KiB, MiB, GiB, TiB, kB, MB, GB, TB", unit)
	}
	if n > math.MaxInt64/mult {
		return 0, fmt.Errorf("size %q overflows", s)
	}
	return n * mult, nil
}

// Encode writes c as TOML (used to print the effective configuration).
func (c *Config) Encode(w io.Writer) error {
	enc := toml.NewEncoder(w)
	enc.SetIndentTables(true)
	return enc.Encode(c)
}

// KeyDoc documents one configuration key, for the configuration reference.
type KeyDoc struct {
	Key     string // limits.max_body_bytes
	Env     string // ENGRAM_LIMITS_MAX_BODY_BYTES
	Type    string // what a value is, in words: "integer", "duration (e.g. \"30s\")", …
	Default string // the default, as TOML would spell it
	Comment string // the key's comment in the example configuration
}

// Reference lists every key with its type, default and comment, in the
// order of the example configuration.
func Reference() []KeyDoc {
	var out []KeyDoc
	d := Default()
	walkDocs(reflect.ValueOf(&d).Elem(), nil, func(path []string, sf reflect.StructField, v reflect.Value) {
		out = append(out, KeyDoc{Key: strings.Join(path, "."), Env: envName(path), Type: TypeName(v.Type()),
			Default: defaultText(v), Comment: sf.Tag.Get("comment")})
	})
	return out
}

// walkDocs is walkConfig with each leaf's struct field.
func walkDocs(v reflect.Value, path []string, f func(path []string, sf reflect.StructField, v reflect.Value)) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		tag := strings.Split(sf.Tag.Get("toml"), ",")[0]
		if tag == "" || tag == "-" {
			continue
		}
		fv := v.Field(i)
		p := append(append([]string(nil), path...), tag)
		if fv.Kind() == reflect.Struct && !reflect.PointerTo(fv.Type()).Implements(textUnmarshaler) {
			walkDocs(fv, p, f)
			continue
		}
		f(p, sf, fv)
	}
}

// TypeName says in words what a value of a configuration field's type is.
func TypeName(t reflect.Type) string {
	switch t {
	case reflect.TypeFor[Duration]():
		return `duration (e.g. "30s", "5m")`
	case reflect.TypeFor[ByteSize]():
		return `size (e.g. "256MiB", or bytes)`
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean (true or false)"
	case reflect.Int, reflect.Int64:
		return "integer"
	case reflect.Float64:
		return "number"
	case reflect.Slice:
		return "list of " + TypeName(t.Elem()) + "s"
	}
	return t.Kind().String()
}

func defaultText(v reflect.Value) string {
	if m, ok := v.Interface().(encoding.TextMarshaler); ok {
		b, err := m.MarshalText()
		if err == nil {
			return strconv.Quote(string(b))
		}
	}
	switch v.Kind() {
	case reflect.String:
		return strconv.Quote(v.String())
	case reflect.Slice:
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = defaultText(v.Index(i))
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	return fmt.Sprint(v.Interface())
}
