package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/engram-ops/engram-ops/backup"
	"github.com/engram-ops/engram-ops/backup/target"
	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/core/apikey"
	"github.com/engram-ops/engram-ops/ops/api"
	"github.com/engram-ops/engram-ops/ops/config"
	"github.com/engram-ops/engram-ops/ops/grpcserver"
	"github.com/engram-ops/engram-ops/ops/metrics"
	"github.com/engram-ops/engram-ops/ops/server"
)

// startOptions are the optional parts of start.
type startOptions struct {
	// info identifies the binary (version in /health and engram_build_info).
	info server.BuildInfo
	// getenv reads the environment (the OpenAI API key's variable, GOGC,
	// GOMEMLIMIT, S3 settings); nil means os.Getenv.
	getenv func(string) string
	// stdout receives the audit log when audit.path = "-"; nil means
	// os.Stdout.
	stdout io.Writer
	// accessLogger receives the access log's lines (log.access); nil means
	// the logger start is given. serve hands it one that writes in batches.
	accessLogger *slog.Logger
	// reload asks for the TLS certificate to be read again (SIGHUP); nil:
	// never.
	reload <-chan os.Signal
}

// running is a started server: an open engine served on a bound address.
type running struct {
	srv *server.Server
	// debugAddr is the bound address of server.debug_listen, or nil.
	debugAddr net.Addr
	// grpc serves Engram's gRPC service on grpc.listen; nil when "off".
	grpc *grpcserver.Server

	done chan struct{}
	err  error
}

// start is the composition of `serve`: it validates cfg, sets the garbage
// collector's pacing, opens the engine in cfg.DataDir (a follower's, of
// cfg.Replica, seeded from its archive first and read-only), builds the
// backup shipper of cfg.Backup or the follower, binds cfg.Listen,
// cfg.GRPC.Listen and the debug listener, and serves until ctx is
// cancelled. Then it stops accepting connections,
// drains in-flight requests (server.shutdown_timeout), lets the shipper
// ship what is left and closes the engine (which flushes and syncs). Wait
// returns after all of that.
//
// start returns once the address is bound, so addr is valid immediately;
// tests use listen = "127.0.0.1:0" and a temporary data_dir.
func start(ctx context.Context, cfg config.Config, logger *slog.Logger, opts startOptions) (r *running, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration:\n%w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if opts.getenv == nil {
		opts.getenv = os.Getenv
	}
	applyGCSettings(cfg.Server, opts.getenv, logger)
	// An unusable certificate is a configuration error, found before the
	// engine is opened.
	var tlsState *server.TLS
	if cfg.TLS.CertFile != "" {
		if tlsState, err = server.LoadTLS(cfg.TLS); err != nil {
			return nil, &usageError{fmt.Errorf("%w\nTry: check tls.cert_file and tls.key_file (--tls-cert, --tls-key): PEM files of one certificate and its private key", err)}
		}
	}
	engOpts := cfg.EngineOptions(logger.With("component", "engine"), cfg.EmbedderFactory(opts.getenv))
	var followed *backup.Archive
	if cfg.Replica.Follow != "" {
		// A follower's empty data directory is seeded before it opens.
		if followed, err = followArchive(ctx, cfg, engOpts, logger, opts.getenv); err != nil {
			return nil, err
		}
	}
	eng, err := core.Open(cfg.DataDir, engOpts)
	if err != nil {
		return nil, fmt.Errorf("open data directory %s: %w", cfg.DataDir, err)
	}
	// Until serving starts, a failure closes what was opened.
	ctx, stop := context.WithCancel(ctx)
	var auditFile *server.AuditFile
	defer func() {
		if err != nil {
			stop()
			err = errors.Join(err, eng.Close())
			if auditFile != nil {
				err = errors.Join(err, auditFile.Close())
			}
		}
	}()
	// The API keys are read before serving: keys that cannot be read are a
	// refusal to start, never open access.
	keys, err := apikey.Open(eng)
	if err != nil {
		return nil, err
	}
	if cfg.Auth.Mode == config.AuthAPIKey && keys.Len() == 0 {
		logger.Warn("auth.mode = \"api_key\" but no API key exists: every API request will be refused. Create one: engram-ops apikey create --data-dir " + cfg.DataDir + " --name admin --permissions admin (with the server stopped)")
	}
	if host, _, _ := net.SplitHostPort(cfg.Listen); cfg.Auth.Mode == config.AuthNone && !config.IsLoopbackHost(host) {
		logger.Warn("INSECURE: NO AUTHENTICATION on a non-loopback address (--insecure-allow-no-auth): anyone who reaches " + cfg.Listen +
			" can read, overwrite and delete every space. Create keys (engram-ops apikey create) and set auth.mode = \"api_key\".")
	}
	reg := prometheus.NewRegistry()
	srvOpts := []server.Option{server.WithBuildInfo(opts.info), server.WithAccessLogger(opts.accessLogger), server.WithAPIKeys(keys), server.WithTLS(tlsState)}
	switch cfg.Audit.Path {
	case "":
	case "-":
		out := opts.stdout
		if out == nil {
			out = os.Stdout
		}
		srvOpts = append(srvOpts, server.WithAudit(out, cfg.Audit.Reads))
	default:
		af, err := server.NewAuditFile(cfg.Audit.Path, int64(cfg.Audit.MaxSize), cfg.Audit.Keep)
		if err != nil {
			return nil, err
		}
		auditFile = af
		srvOpts = append(srvOpts, server.WithAudit(af, cfg.Audit.Reads))
	}
	var shipper *backup.Shipper
	if cfg.Backup.To != "" {
		// onBackupFenced runs once when another primary was promoted and
		// this server's shipping stopped for good: the health check turns
		// unhealthy (shipperAdmin.Checks) and the engine refuses writes,
		// which could no longer reach the archive.
		var barrierMu sync.Mutex
		onBackupFenced := func(err error) {
			barrierMu.Lock()
			defer barrierMu.Unlock()
			eng.SetWriteBarrier(core.PrimaryFenced(err))
			logger.Error("backup fenced: another primary was promoted; this server refuses writes", "err", err)
		}
		// Until the shipper has read the archive's head and found this
		// server's generation current, a write could be acknowledged by a
		// primary that was promoted over while it was down, and never
		// shipped: writes wait (503, and /health/ready fails) for that,
		// for at most backup.start_hold.
		onBackupStarted := func() {}
		if hold := cfg.Backup.StartHold.Duration; hold > 0 {
			starting := core.BackupStarting(hold)
			eng.SetWriteBarrier(starting)
			var once sync.Once
			lift := func(confirmed bool) {
				once.Do(func() {
					barrierMu.Lock()
					defer barrierMu.Unlock()
					if eng.WriteBarrier() == error(starting) {
						eng.SetWriteBarrier(nil)
					}
					if !confirmed {
						logger.Warn("backup shipping has not confirmed this server's generation within backup.start_hold; accepting writes anyway", "start_hold", hold.String())
					}
				})
			}
			onBackupStarted = func() { lift(true) }
			time.AfterFunc(hold, func() { lift(false) })
		}
		if shipper, err = newShipper(ctx, cfg, eng, engOpts, reg, logger, opts.getenv, onBackupFenced, onBackupStarted); err != nil {
			return nil, err
		}
		srvOpts = append(srvOpts, server.WithBackup(shipperAdmin{shipper}))
	}
	var follower *backup.Follower
	if followed != nil {
		if follower, err = newFollower(cfg, followed, eng, keys, reg, logger); err != nil {
			return nil, err
		}
		srvOpts = append(srvOpts, server.WithReplica(followerState{follower}))
	}
	srv, err := server.New(cfg, eng, logger, reg, srvOpts...)
	if err != nil {
		return nil, err
	}
	r = &running{srv: srv, done: make(chan struct{})}
	if cfg.Server.DebugListen != "" {
		if r.debugAddr, err = startDebug(ctx, cfg.Server.DebugListen, logger); err != nil {
			return nil, err
		}
	}
	if err = srv.Listen(); err != nil {
		return nil, err
	}
	if cfg.GRPC.Listen != config.GRPCOff {
		if r.grpc, err = grpcserver.New(cfg, srv, logger, reg); err != nil {
			return nil, err
		}
		if err = r.grpc.Listen(); err != nil {
			return nil, err
		}
	}
	grpcDone := make(chan error, 1)
	if r.grpc != nil {
		go func() { grpcDone <- r.grpc.Run(ctx) }()
	} else {
		grpcDone <- nil
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
	} else if follower != nil {
		// The follower stops applying with ctx, before the engine closes.
		go func() {
			defer close(shipped)
			if err := follower.Run(ctx); err != nil {
				logger.Error("follower stopped applying the archive", "err", err)
			}
		}()
	} else {
		close(shipped)
	}
	if opts.reload != nil && srv.TLSEnabled() {
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-opts.reload:
					_ = srv.ReloadTLS() // logged and counted by the server
				}
			}
		}()
	}
	go func() {
		defer close(r.done)
		defer stop()
		runErr := srv.Run(ctx)
		stop() // a REST server that failed stops the gRPC one too
		runErr = errors.Join(runErr, <-grpcDone)
		<-shipped
		closeErr := eng.Close()
		if closeErr != nil {
			closeErr = fmt.Errorf("close engine: %w", closeErr)
		}
		if auditFile != nil {
			closeErr = errors.Join(closeErr, auditFile.Close())
		}
		r.err = errors.Join(runErr, closeErr)
	}()
	return r, nil
}

// addr is the bound address.
func (r *running) addr() net.Addr { return r.srv.Addr() }

// grpcAddr is the bound address of the gRPC service, or nil when it is
// off.
func (r *running) grpcAddr() net.Addr {
	if r.grpc == nil {
		return nil
	}
	return r.grpc.Addr()
}

// url is the base URL of the REST API ("http://127.0.0.1:7432", or
// https:// over TLS).
func (r *running) url() string {
	if r.srv.TLSEnabled() {
		return "https://" + r.addr().String()
	}
	return "http://" + r.addr().String()
}

// wait blocks until the server stopped (its context was cancelled or
// serving failed) and the engine is closed, and reports what went wrong.
func (r *running) wait() error {
	<-r.done
	return r.err
}

// newShipper builds the backup shipper of cfg.Backup, registering the
// engram_backup_* metrics on reg. The target is opened by backup/target
// (S3 settings from getenv). Unusable encryption or an unopenable target
// is a refusal to start.
func newShipper(ctx context.Context, cfg config.Config, eng *core.Engine, engOpts core.Options, reg prometheus.Registerer, logger *slog.Logger,
	getenv func(string) string, onFenced func(error), onStarted func()) (*backup.Shipper, error) {
	store, err := target.Open(ctx, cfg.Backup.To, target.Options{}, getenv)
	if err != nil {
		return nil, fmt.Errorf("backup.to: %w", err)
	}
	var recipients []string
	if cfg.Backup.EncryptRecipient != "" {
		recipients = []string{cfg.Backup.EncryptRecipient}
	}
	codec, err := backup.NewCodec(recipients, nil)
	if err != nil {
		return nil, fmt.Errorf("backup.encrypt_recipient: %w", err)
	}
	obs, err := metrics.NewBackup(reg, store.String())
	if err != nil {
		return nil, fmt.Errorf("register backup metrics: %w", err)
	}
	a, err := backup.New(store, backup.Options{Codec: codec, EngineOptions: engOpts, Observer: obs,
		Logger: logger.With("component", "backup")})
	if err != nil {
		return nil, err
	}
	// A data directory promoted by `engram-ops promote` ships as the
	// generation it claimed.
	gen, err := backup.ReadGeneration(cfg.DataDir, store.String())
	if err != nil {
		return nil, err
	}
	return a.NewShipper(eng, backup.ShipperOptions{Interval: cfg.Backup.Interval.Duration,
		SnapshotInterval: cfg.Backup.SnapshotInterval.Duration, Generation: gen, OnFenced: onFenced, OnStarted: onStarted}), nil
}

// shipperAdmin is the server's view of the backup shipper (its admin
// backup endpoint).
type shipperAdmin struct{ sh *backup.Shipper }

func (a shipperAdmin) Snapshot(ctx context.Context) (api.BackupSnapshotResponse, error) {
	res, err := a.sh.Snapshot(ctx)
	if err != nil {
		return api.BackupSnapshotResponse{}, err
	}
	return snapshotResponse(res, a.sh.Status().Target), nil
}

func (a shipperAdmin) Status() any { return a.sh.Status() }

// Health is the backup block of /api/v1/system/health.
func (a shipperAdmin) Health() api.BackupState {
	st := a.sh.Status()
	b := api.BackupState{Configured: true, ShippedSequence: &st.ShippedSequence, LagSeconds: &st.RPOSeconds}
	lag := uint64(0)
	if st.EngineSequence > st.ShippedSequence {
		lag = st.EngineSequence - st.ShippedSequence
	}
	b.LagSequences = &lag
	// The later of the last shipped segment and the last snapshot: a
	// snapshot taken after a change ships it too.
	last := st.LastLogSuccess
	if st.LastSnapshotAt.After(last) {
		last = st.LastSnapshotAt
	}
	if !last.IsZero() {
		b.LastSuccess = &last
	}
	return b
}

// Checks adds an unhealthy "backup_fencing" check once shipping was fenced.
func (a shipperAdmin) Checks() []api.HealthCheck {
	st := a.sh.Status()
	if !st.Fenced {
		return nil
	}
	return []api.HealthCheck{{Name: "backup_fencing", Status: "unhealthy",
		Message: fmt.Sprintf("another primary was promoted: %s is at generation %d and this server (generation %d) no longer ships its writes there; writes accepted now are not backed up. Try: stop this server and make it a follower, or restore its data directory from the archive",
			st.Target, st.CurrentGeneration, st.Generation),
		Figures: map[string]float64{"generation": float64(st.Generation), "current_generation": float64(st.CurrentGeneration)}}}
}

// snapshotResponse reports a snapshot stored on target.
func snapshotResponse(res *backup.SnapshotResult, target string) api.BackupSnapshotResponse {
	m := res.Manifest
	return api.BackupSnapshotResponse{ID: m.ID, Sequence: m.Sequence, Target: target, Files: len(m.Files),
		UploadedFiles: res.UploadedFiles, UploadedBytes: res.UploadedBytes, PlainBytes: m.PlainBytes(),
		Memories: m.Memories(), Seconds: res.Took.Seconds()}
}

// applyGCSettings sets the garbage collector's pacing from server.gc_percent
// and server.memory_limit, unless GOGC or GOMEMLIMIT (which the runtime
// has already applied) say otherwise.
func applyGCSettings(c config.ServerConfig, getenv func(string) string, logger *slog.Logger) {
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
