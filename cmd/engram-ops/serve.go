package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/ops/config"
)

// serveCmd is `engram-ops serve`: its flags and what it needs.
type serveCmd struct {
	app *app

	configFile   string
	listen       string
	grpcListen   string
	dataDir      string
	durability   string
	logLevel     string
	logFormat    string
	noAutoCreate bool
	noAccessLog  bool
	noAuth       bool
	sets         []string

	backupTo         string
	backupInterval   string
	snapshotInterval string
	encryptRecipient string

	follow     string
	primaryURL string

	tlsCert     string
	tlsKey      string
	tlsClientCA string
}

func newServeCmd(a *app) *serveCmd { return &serveCmd{app: a} }

func (s *serveCmd) command() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the Engram server (REST API, gRPC, /metrics, health probes)",
		Long: `Run the Engram memory server: the Engram-compatible REST API, Prometheus /metrics and
health probes (/health, /health/alive, /health/ready, /api/v1/system/health), and
Engram's gRPC service engram.v1.EngramService on --grpc-listen (docs/grpc.md).

Configuration is read in this order, later sources winning:
  1. built-in defaults (data in ./engram-data, 127.0.0.1:7432, hashing embedder)
  2. the TOML file given by --config, else ./engram.toml if it exists
     (unknown keys are errors; check a file with "engram-ops validate config FILE")
  3. ENGRAM_* environment variables, one per key: the TOML path upper-cased with
     "_" (ENGRAM_LISTEN, ENGRAM_DATA_DIR, ENGRAM_LIMITS_MAX_BODY_BYTES, ...)
  4. the flags below, and --set key=value for any other key

Durability: "sync" (default) acknowledges a write only after the write-ahead log
is fsynced, so acknowledged writes survive kill -9. "relaxed" syncs once a second
and can lose the last second of acknowledged writes on a crash; the server warns
at startup when it is on.

Security: without API keys (auth.mode = "none", the default) the server must listen on
loopback, and answers only requests addressed to localhost, 127.0.0.1 or ::1. Any other
address needs auth.mode = "api_key" and keys from "engram-ops apikey create", or
--insecure-allow-no-auth, which warns at startup and in /api/v1/system/health.
See runbooks/security.md.

Followers: --follow URL serves reads from a copy of the primary whose archive (its
--backup-to) is at URL, applying what the primary ships there; writes answer 421
naming --primary-url. See runbooks/scaling-and-capacity.md, Followers.

Shutdown: SIGINT or SIGTERM stops accepting connections, drains in-flight requests
(server.shutdown_timeout) and closes the engine, which flushes to disk. A second
signal exits immediately.`,
		Example: `  # Defaults: ./engram-data, http://127.0.0.1:7432, built-in hashing embedder
  engram-ops serve

  # Another data directory, text logs (still loopback only: no keys needed)
  engram-ops serve --data-dir /var/lib/engram --log-format text

  # Reachable from other hosts: API keys required (create one first, server stopped)
  engram-ops apikey create --data-dir /var/lib/engram --name admin --permissions admin
  engram-ops serve --listen 0.0.0.0:7432 --data-dir /var/lib/engram --set auth.mode=api_key

  # A config file plus one override
  engram-ops serve --config /etc/engram/engram.toml --set limits.max_body_bytes=16777216

  # TLS, with client certificates required (mutual TLS); kill -HUP reloads the certificate
  engram-ops serve --tls-cert /etc/engram/tls.crt --tls-key /etc/engram/tls.key --tls-client-ca /etc/engram/clients-ca.pem

  # A read-only follower of a primary shipping to /srv/engram-archive
  engram-ops serve --data-dir /var/lib/engram-follower --listen 127.0.0.1:7433 --grpc-listen off \
    --follow file:///srv/engram-archive --primary-url http://127.0.0.1:7432

  # The same through the environment
  ENGRAM_AUTH_MODE=api_key ENGRAM_LISTEN=:7432 ENGRAM_DURABILITY=sync engram-ops serve`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return s.run(cmd.Context(), cmd.Flags()) },
	}
	f := cmd.Flags()
	f.StringVar(&s.configFile, "config", "", "TOML configuration file (default ./engram.toml if present)")
	f.StringVar(&s.listen, "listen", "", `address to listen on (default "127.0.0.1:7432")`)
	f.StringVar(&s.grpcListen, "grpc-listen", "", `address of Engram's gRPC service engram.v1.EngramService, or "off" (default "127.0.0.1:50051")`)
	f.StringVar(&s.dataDir, "data-dir", "", `data directory (default "./engram-data")`)
	f.StringVar(&s.durability, "durability", "", `sync or relaxed (default "sync")`)
	f.StringVar(&s.logLevel, "log-level", "", `debug, info, warn or error (default "info")`)
	f.StringVar(&s.logFormat, "log-format", "", `json, text or auto: json unless stderr is a terminal (default "auto")`)
	f.BoolVar(&s.noAutoCreate, "no-auto-create-spaces", false, "refuse writes to spaces that were not created with POST /api/v1/spaces")
	f.BoolVar(&s.noAccessLog, "no-access-log", false, "do not log one line per HTTP request")
	f.StringVar(&s.backupTo, "backup-to", "", "ship the change log and snapshots continuously to s3://bucket/prefix or file:///dir (the directory must exist: serve refuses a missing one)")
	f.StringVar(&s.backupInterval, "backup-interval", "", `how often new changes are shipped (default "1s")`)
	f.StringVar(&s.snapshotInterval, "snapshot-interval", "", `how often a snapshot is taken while shipping; 0s disables (default "1h")`)
	f.StringVar(&s.encryptRecipient, "encrypt-recipient", "", "age public key (age1...) backups are encrypted to")
	f.StringVar(&s.follow, "follow", "", "run as a read-only follower of the backup archive at s3://bucket/prefix or file:///dir (replica.follow): an empty --data-dir is seeded from its newest snapshot, then shipped changes are applied; writes answer 421")
	f.StringVar(&s.primaryURL, "primary-url", "", "the primary's base URL, named in a follower's 421 answer to writes (replica.primary_url)")
	f.BoolVar(&s.noAuth, "insecure-allow-no-auth", false, "INSECURE: serve without API keys on a non-loopback address (auth.insecure_allow_no_auth); warns at startup and in system health")
	f.StringVar(&s.tlsCert, "tls-cert", "", "serve over TLS (1.2+) with this PEM certificate (chain); reloaded on change and SIGHUP")
	f.StringVar(&s.tlsKey, "tls-key", "", "PEM private key of --tls-cert")
	f.StringVar(&s.tlsClientCA, "tls-client-ca", "", "require client certificates signed by these PEM CAs (mutual TLS)")
	f.StringArrayVar(&s.sets, "set", nil, "set any configuration key, e.g. --set index.ef_search=128 (repeatable)")
	return cmd
}

// loadConfig applies defaults, file, environment and flags, and validates.
func (s *serveCmd) loadConfig(flags *pflag.FlagSet) (config.Config, string, error) {
	cfg, file, loadErr := config.Load(s.configFile, s.app.getenv)
	errs := []error{loadErr}
	set := func(flag, key, value string) {
		if flags.Changed(flag) {
			if err := cfg.Set(key, value); err != nil {
				errs = append(errs, fmt.Errorf("--%s: %w", flag, err))
			}
		}
	}
	set("listen", "listen", s.listen)
	set("grpc-listen", "grpc.listen", s.grpcListen)
	set("data-dir", "data_dir", s.dataDir)
	set("durability", "durability", s.durability)
	set("log-level", "log.level", s.logLevel)
	set("log-format", "log.format", s.logFormat)
	set("backup-to", "backup.to", s.backupTo)
	set("backup-interval", "backup.interval", s.backupInterval)
	set("snapshot-interval", "backup.snapshot_interval", s.snapshotInterval)
	set("encrypt-recipient", "backup.encrypt_recipient", s.encryptRecipient)
	set("follow", "replica.follow", s.follow)
	set("primary-url", "replica.primary_url", s.primaryURL)
	set("tls-cert", "tls.cert_file", s.tlsCert)
	set("tls-key", "tls.key_file", s.tlsKey)
	set("tls-client-ca", "tls.client_ca_file", s.tlsClientCA)
	if flags.Changed("no-auto-create-spaces") {
		cfg.Spaces.AutoCreate = !s.noAutoCreate
	}
	if flags.Changed("insecure-allow-no-auth") {
		cfg.Auth.InsecureAllowNoAuth = s.noAuth
	}
	if flags.Changed("no-access-log") {
		cfg.Log.Access = !s.noAccessLog
	}
	for _, kv := range s.sets {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			errs = append(errs, fmt.Errorf("--set %q: want key=value, e.g. --set index.ef_search=128", kv))
			continue
		}
		if err := cfg.Set(strings.TrimSpace(k), v); err != nil {
			errs = append(errs, fmt.Errorf("--set %s: %w (keys: %s)", k, err, strings.Join(config.Keys(), ", ")))
		}
	}
	// Report every problem at once: loading, flags and validation.
	errs = append(errs, cfg.Validate())
	if err := errors.Join(errs...); err != nil {
		return cfg, file, &usageError{fmt.Errorf("invalid configuration:\n%s", indentProblems(err))}
	}
	return cfg, file, nil
}

func indentProblems(err error) string {
	var b strings.Builder
	for i, p := range config.Problems(err) {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString("  - ")
		b.WriteString(p.Error())
	}
	return b.String()
}

func (s *serveCmd) run(ctx context.Context, flags *pflag.FlagSet) error {
	cfg, file, err := s.loadConfig(flags)
	if err != nil {
		return err
	}
	out, access := s.app.stderr, io.Writer(nil)
	if cfg.Log.Access && cfg.Log.FlushInterval.Duration > 0 {
		batch := newLineBatcher(s.app.stderr, cfg.Log.FlushInterval.Duration)
		defer batch.Close() // after the last line below
		out, access = batch.Immediate(), batch
	}
	newLogger, err := newLoggers(cfg.Log, s.app.stderr, s.app.global.quiet)
	if err != nil {
		return err
	}
	logger := newLogger(out)
	var accessLogger *slog.Logger
	if access != nil {
		accessLogger = newLogger(access)
	}
	if cfg.Durability == "relaxed" {
		logger.Warn("DURABILITY IS RELAXED: writes are acknowledged before they reach disk and are synced once a second; " +
			"a crash or power loss can lose up to ~1s of acknowledged writes. Set durability = \"sync\" for production.")
	}
	var reload chan os.Signal
	if cfg.TLS.CertFile != "" && s.app.notifyReload != nil {
		reload = make(chan os.Signal, 1)
		defer s.app.notifyReload(reload)()
	}
	running, err := start(ctx, cfg, logger, startOptions{info: s.app.build, getenv: s.app.getenv, accessLogger: accessLogger,
		stdout: s.app.stdout, reload: reload})
	if err != nil {
		return err
	}
	dataDir := cfg.DataDir
	if abs, err := filepath.Abs(dataDir); err == nil {
		dataDir = abs
	}
	if file == "" {
		file = "(none: defaults, environment and flags)"
	}
	logger.Info("engram-ops serving",
		"url", running.url(),
		"addr", running.addr().String(),
		"grpc_addr", addrString(running.grpcAddr()),
		"data_dir", dataDir,
		"durability", cfg.Durability,
		"min_free_space", cfg.MinFreeSpace.String(),
		"config", file,
		"version", s.app.build.Version)
	// Writes stop at the reserve: say so at start while there is time.
	if free, _, err := core.FilesystemSpace(dataDir); err == nil && cfg.MinFreeSpace > 0 && free < 2*int64(cfg.MinFreeSpace) {
		logger.Warn("the data directory's filesystem is close to the reserve: writes will be refused (507) once free space falls under min_free_space",
			"free_bytes", free, "min_free_bytes", int64(cfg.MinFreeSpace))
	}
	if s.app.onServing != nil {
		s.app.onServing(running.addr())
	}
	err = running.wait()
	if err != nil {
		logger.Error("engram-ops stopped with an error", "err", err)
		return err
	}
	logger.Info("engram-ops stopped: in-flight requests drained, engine closed")
	return nil
}

// addrString is a bound address, or "off" for none.
func addrString(a net.Addr) string {
	if a == nil {
		return config.GRPCOff
	}
	return a.String()
}

// newLoggers returns what builds the server's slog loggers, each writing to
// its own writer: JSON unless format is text, or auto with a terminal on
// term (stderr, which every writer ends in). --quiet raises the level to
// warn.
func newLoggers(c config.LogConfig, term io.Writer, quiet bool) (func(w io.Writer) *slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.Level)); err != nil {
		return nil, usagef("log.level %q: must be debug, info, warn or error", c.Level)
	}
	if quiet && level < slog.LevelWarn {
		level = slog.LevelWarn
	}
	opts := &slog.HandlerOptions{Level: level}
	text := c.Format == "text" || (c.Format == "auto" && isTerminal(term))
	return func(w io.Writer) *slog.Logger {
		if text {
			return slog.New(slog.NewTextHandler(w, opts))
		}
		return slog.New(slog.NewJSONHandler(w, opts))
	}, nil
}
