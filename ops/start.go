package ops

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/engram-ops/engram-ops/backup"
	"github.com/engram-ops/engram-ops/core"
)

// StartOptions are the optional parts of Start.
type StartOptions struct {
	// Info identifies the binary (version in /health and engram_build_info).
	Info BuildInfo
	// Embedders builds embedders by name; nil means cfg.EmbedderFactory:
	// the built-in "hash" and the configured "openai".
	Embedders core.EmbedderFactory
	// Getenv reads the environment (the OpenAI API key's variable, GOGC,
	// GOMEMLIMIT); nil means os.Getenv.
	Getenv func(string) string
	// Registry receives the metrics; nil creates a fresh one.
	Registry *prometheus.Registry
	// OpenBackupTarget opens cfg.Backup.To; nil knows file:// only.
	OpenBackupTarget BackupOpener
	// AccessLogger receives the access log's lines (log.access); nil means
	// the logger Start is given. serve hands it one that writes in batches.
	AccessLogger *slog.Logger
}

// Running is a started server: an open engine served on a bound address.
type Running struct {
	Server   *Server
	Engine   *core.Engine
	Registry *prometheus.Registry
	// DebugAddr is the bound address of server.debug_listen, or nil.
	DebugAddr net.Addr

	done chan struct{}
	err  error
}

// Start validates cfg, opens the engine in cfg.DataDir, binds cfg.Listen
// and serves until ctx is cancelled. Then it stops accepting connections,
// drains in-flight requests (server.shutdown_timeout) and closes the engine
// (which flushes and syncs). Wait returns after all of that.
//
// Start returns once the address is bound, so Addr is valid immediately;
// end-to-end tests use listen = "127.0.0.1:0" and a temporary data_dir.
func Start(ctx context.Context, cfg Config, logger *slog.Logger, opts StartOptions) (*Running, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration:\n%w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	reg := opts.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	embedders := opts.Embedders
	if embedders == nil {
		embedders = cfg.EmbedderFactory(opts.Getenv)
	}
	applyGCSettings(cfg.Server, opts.Getenv, logger)
	engOpts := cfg.EngineOptions(logger.With("component", "engine"), embedders)
	eng, err := core.Open(cfg.DataDir, engOpts)
	if err != nil {
		return nil, fmt.Errorf("open data directory %s: %w", cfg.DataDir, err)
	}
	srvOpts := []Option{WithBuildInfo(opts.Info), WithAccessLogger(opts.AccessLogger)}
	var shipper *backup.Shipper
	if cfg.Backup.To != "" {
		if shipper, err = newShipper(ctx, cfg, eng, engOpts, reg, logger, opts.OpenBackupTarget); err != nil {
			return nil, errors.Join(err, eng.Close())
		}
		srvOpts = append(srvOpts, WithBackup(shipper))
	}
	srv, err := New(cfg, eng, logger, reg, srvOpts...)
	if err == nil {
		err = srv.Listen()
	}
	if err != nil {
		return nil, errors.Join(err, eng.Close())
	}
	r := &Running{Server: srv, Engine: eng, Registry: reg, done: make(chan struct{})}
	if cfg.Server.DebugListen != "" {
		if r.DebugAddr, err = startDebug(ctx, cfg.Server.DebugListen, logger); err != nil {
			return nil, errors.Join(err, srv.ln.Close(), eng.Close())
		}
	}
	shipped := make(chan struct{})
	if shipper != nil {
		// The shipper stops with ctx, shipping what is left, before the
		// engine closes.
		go func() {
			defer close(shipped)
			if err := shipper.Run(ctx); err != nil {
				logger.Error("backup shipping stopped", "err", err)
			}
		}()
	} else {
		close(shipped)
	}
	go func() {
		defer close(r.done)
		runErr := srv.Run(ctx)
		<-shipped
		closeErr := eng.Close()
		if closeErr != nil {
			closeErr = fmt.Errorf("close engine: %w", closeErr)
		}
		r.err = errors.Join(runErr, closeErr)
	}()
	return r, nil
}

// Addr is the bound address.
func (r *Running) Addr() net.Addr { return r.Server.Addr() }

// URL is the base URL of the REST API ("http://127.0.0.1:7432").
func (r *Running) URL() string { return "http://" + r.Addr().String() }

// Done is closed when the server has drained and the engine is closed.
func (r *Running) Done() <-chan struct{} { return r.done }

// Wait blocks until the server stopped (its context was cancelled or
// serving failed) and the engine is closed, and reports what went wrong.
func (r *Running) Wait() error {
	<-r.done
	return r.err
}

// applyGCSettings sets the garbage collector's pacing from server.gc_percent
// and server.memory_limit, unless GOGC or GOMEMLIMIT (which the runtime
// has already applied) say otherwise.
func applyGCSettings(c ServerConfig, getenv func(string) string, logger *slog.Logger) {
	if getenv == nil {
		getenv = os.Getenv
	}
	if v := getenv("GOGC"); v != "" {
		logger.Info("garbage collector pacing from the environment", "GOGC", v)
	} else {
		debug.SetGCPercent(c.GCPercent)
	}
	if v := getenv("GOMEMLIMIT"); v != "" {
		logger.Info("garbage collector memory limit from the environment", "GOMEMLIMIT", v)
	} else if c.MemoryLimit > 0 {
		debug.SetMemoryLimit(int64(c.MemoryLimit))
	}
}
