package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/migrate"
	"github.com/engram-ops/engram-ops/migrate/neo4j"
	"github.com/engram-ops/engram-ops/migrate/postgres"
	"github.com/engram-ops/engram-ops/migrate/redis"
	"github.com/engram-ops/engram-ops/ops/client"
	"github.com/engram-ops/engram-ops/ops/config"
	"github.com/engram-ops/engram-ops/runbooks"
)

// migrateCmd is the `engram-ops migrate` group: flags and what a run
// needs. The pipeline is package migrate; this file opens the target (an
// engine on a stopped data directory, or a client of a server), draws
// progress and maps outcomes to exit codes.
type migrateCmd struct {
	app *app

	mappingPath   string
	target        string
	token         string
	dataDir       string
	space         string
	sourceName    string
	dryRun        bool
	restart       bool
	yes           bool
	maxRejects    int
	rejectFile    string
	metricsListen string
	printDefault  bool
	batchSize     int
	batchBytes    int
	retryFor      time.Duration
	sample        int64
	deferIndex    bool

	// migrate postgres
	pgDSN, pgDSNEnv, pgSchema string
	pgTables                  []string
	// migrate redis
	redis redisFlags
	// migrate neo4j
	neo4j neo4jFlags
	tls   tlsClientFlags
}

// redisFlags are the flags of the redis source.
type redisFlags struct {
	addr        string
	patterns    []string
	db          int
	user        string
	passwordEnv string
	count       int64
}

// neo4jFlags are the flags of the live Neo4j source.
type neo4jFlags struct {
	uri, user, passwordEnv, database string
	pageSize                         int
}

func newMigrateCmd(a *app) *migrateCmd { return &migrateCmd{app: a} }

// sourceKind builds a source from a subcommand's arguments.
type sourceKind struct {
	use, short string
	args       cobra.PositionalArgs
	open       func(args []string) (migrate.Source, string, error) // source, default source name
	space      string                                              // default target space
	runbook    string                                              // its runbook, in the long help
	flags      func(*pflag.FlagSet)                                // the source's own flags
}

func (m *migrateCmd) kinds() []sourceKind {
	return []sourceKind{{
		use:   "neo4j-export FILE",
		short: "Migrate an APOC apoc.export.json.all JSON-lines file",
		args:  cobra.ExactArgs(1),
		open: func(args []string) (migrate.Source, string, error) {
			st, err := os.Stat(args[0])
			if err != nil {
				return nil, "", usagef("the export %s: %v", args[0], err)
			}
			if st.IsDir() {
				return nil, "", usagef("the export %s is a directory; give the JSON-lines file", args[0])
			}
			return &neo4j.Export{Path: args[0]}, "neo4j-export:" + filepath.Base(args[0]), nil
		},
		space:   "neo4j",
		runbook: "migrate-neo4j",
	}, {
		use:   "neo4j",
		short: "Migrate a live Neo4j database over Bolt (nodes, then relationships)",
		args:  cobra.NoArgs,
		flags: func(f *pflag.FlagSet) {
			f.StringVar(&m.neo4j.uri, "uri", "", "Neo4j Bolt URI: bolt://HOST:7687 (bolt+s:// with TLS; neo4j:// routing URIs are passed to the driver)")
			f.StringVar(&m.neo4j.user, "user", "neo4j", "Neo4j user")
			f.StringVar(&m.neo4j.passwordEnv, "password-env", "", "name of the environment variable holding the password (never the password itself)")
			f.StringVar(&m.neo4j.database, "database", "", "database to read (default: the server's default database)")
			f.IntVar(&m.neo4j.pageSize, "page-size", neo4j.DefaultPageSize, "nodes or relationships per query (one read transaction each)")
		},
		space:   "neo4j",
		runbook: "migrate-neo4j",
		open: func([]string) (migrate.Source, string, error) {
			n := m.neo4j
			if n.uri == "" {
				return nil, "", usagef("give --uri bolt://HOST:PORT of the Neo4j server")
			}
			u, err := url.Parse(n.uri)
			if err != nil || u.Host == "" {
				return nil, "", usagef("--uri %q is not a Bolt URI: give bolt://HOST:PORT", n.uri)
			}
			if n.passwordEnv == "" {
				return nil, "", usagef("give --password-env NAME: the environment variable holding the password of --user %s", n.user)
			}
			pw := m.app.getenv(n.passwordEnv)
			if pw == "" {
				return nil, "", usagef("--password-env %s: the variable is not set (or empty)", n.passwordEnv)
			}
			if n.pageSize < 1 || n.pageSize > 100_000 {
				return nil, "", usagef("--page-size %d must be 1..100000", n.pageSize)
			}
			db := n.database
			if db == "" {
				db = "default"
			}
			return &neo4j.Bolt{URI: n.uri, User: n.user, Password: pw, Database: n.database, PageSize: n.pageSize},
				"neo4j:" + u.Host + "/" + db, nil
		},
	}, {
		use:   "postgres",
		short: "Migrate the tables of a PostgreSQL schema",
		args:  cobra.NoArgs,
		open: func([]string) (migrate.Source, string, error) {
			dsn := m.pgDSN
			switch {
			case dsn != "" && m.pgDSNEnv != "":
				return nil, "", usagef("give --dsn or --dsn-env, not both")
			case m.pgDSNEnv != "":
				if dsn = m.app.getenv(m.pgDSNEnv); dsn == "" {
					return nil, "", usagef("--dsn-env %s: the variable is unset or empty", m.pgDSNEnv)
				}
			case dsn == "":
				return nil, "", usagef("give the database: --dsn-env NAME (a variable holding the DSN) or --dsn DSN")
			}
			cfg, err := pgx.ParseConfig(dsn)
			if err != nil {
				return nil, "", usagef("the PostgreSQL DSN is not valid: %v", err)
			}
			schema := m.pgSchema
			if schema == "" {
				schema = postgres.DefaultSchema
			}
			return &postgres.Source{DSN: dsn, Schema: schema, Tables: m.pgTables}, "postgres:" + cfg.Database + "." + schema, nil
		},
		space:   "postgres",
		runbook: "migrate-postgresql",
		flags: func(f *pflag.FlagSet) {
			f.StringVar(&m.pgDSN, "dsn", "", "PostgreSQL connection string (postgres://USER@HOST:PORT/DB); prefer --dsn-env to keep a password out of argv")
			f.StringVar(&m.pgDSNEnv, "dsn-env", "", "name of an environment variable holding the connection string")
			f.StringVar(&m.pgSchema, "schema", postgres.DefaultSchema, "schema whose tables are migrated")
			f.StringSliceVar(&m.pgTables, "tables", nil, "migrate only these tables of the schema (comma-separated; default: every table)")
		},
	}, {
		use:   "redis",
		short: "Migrate the keys of a Redis database (SCAN per --pattern)",
		args:  cobra.NoArgs,
		flags: func(f *pflag.FlagSet) {
			f.StringVar(&m.redis.addr, "addr", "", "Redis server HOST:PORT")
			f.StringArrayVar(&m.redis.patterns, "pattern", nil, "SCAN MATCH pattern, one object each; repeat for several (default '*'); a key matching several belongs to the first")
			f.IntVar(&m.redis.db, "db", 0, "database number")
			f.StringVar(&m.redis.user, "user", "", "ACL user (default: the default user)")
			f.StringVar(&m.redis.passwordEnv, "password-env", "", "name of the environment variable holding the password (never the password itself)")
			f.Int64Var(&m.redis.count, "scan-count", redis.DefaultCount, "SCAN COUNT hint: keys per page, read pipelined (one round trip a page)")
		},
		space:   "redis",
		runbook: "migrate-redis",
		open: func([]string) (migrate.Source, string, error) {
			r := m.redis
			if r.addr == "" {
				return nil, "", usagef("give --addr HOST:PORT of the Redis server")
			}
			cfg := redis.Config{Addr: r.addr, DB: r.db, Username: r.user, Patterns: r.patterns, Count: r.count}
			if r.passwordEnv != "" {
				pw := m.app.getenv(r.passwordEnv)
				if pw == "" {
					return nil, "", usagef("--password-env %s: the variable is not set (or empty)", r.passwordEnv)
				}
				cfg.Password = pw
			}
			for _, p := range r.patterns {
				if p == "" {
					return nil, "", usagef("--pattern: an empty pattern matches no key; give a glob such as 'user:*'")
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			src, err := redis.Connect(ctx, cfg)
			if err != nil {
				return nil, "", err
			}
			return src, fmt.Sprintf("redis:%s/%d", r.addr, r.db), nil
		},
	}}
}

func (m *migrateCmd) command() *cobra.Command {
	long := `Bring records of another database into Engram: rows, keys, nodes and relationships
become memories and associations, through a declarative mapping file (TOML, strict) or the
default mapping (every field into content and metadata, the object as a tag, references and
relationships as associations; --print-default-mapping writes it out).

Batches go either to a running server (--target URL, POST /api/v1/memories/batch) or
straight into a stopped server's data directory (--data-dir; a directory a running server
holds is refused with DATA_DIR_IN_USE). Every batch stores the source position atomically
with its memories, so a migration killed at any moment resumes where it stopped when the
same command runs again: resume is the default, and --restart --yes starts over. Memory ids
derive from the object and the source key, so a replayed batch overwrites itself.

Every run ends with a reconciliation (counts and content checksums per object against what
is in Engram) and exits 3 when it does not match; "migrate verify" runs it on its own.
Records that cannot be mapped or are refused go to the reject file (--reject-file, JSON
lines: position, record, reason); --max-rejects N stops the run past N.

Exit status: 0 ok; 1 the migration failed or stopped (an unreachable source or target, wrong
credentials); 2 a bad flag or mapping file, or a source selection it cannot migrate (a missing
table, a table without a primary key); 3 the reconciliation did not match.

Runbooks: engram-ops runbook show migrate-postgresql (PostgreSQL), migrate-redis (Redis),
migrate-neo4j (below).`
	if rb, err := runbooks.Get("migrate-neo4j"); err == nil {
		long += "\n\n" + rb.Body
	}
	group := &cobra.Command{
		Use:   "migrate",
		Short: "Migrate from PostgreSQL, Redis or Neo4j (live or APOC exports): resumable, reconciled",
		Long:  long,
		Example: `  # See what would be written
  engram-ops migrate neo4j-export graph.jsonl --data-dir /var/lib/engram --dry-run

  # Migrate into a running server; kill it and run it again to resume
  engram-ops migrate neo4j-export graph.jsonl --mapping graph.toml --target http://127.0.0.1:7432

  # Check the result again later
  engram-ops migrate verify neo4j-export graph.jsonl --mapping graph.toml --target http://127.0.0.1:7432

  # A live Neo4j database over Bolt, the password in $NEO4J_PASSWORD
  engram-ops migrate neo4j --uri bolt://127.0.0.1:7687 --user neo4j --password-env NEO4J_PASSWORD --data-dir /var/lib/engram

  # The tables of a PostgreSQL schema (the DSN, with its password, in a variable)
  engram-ops migrate postgres --dsn-env PG_DSN --schema public --data-dir /var/lib/engram

  # Redis: the keys of two patterns, the password in $REDIS_PASSWORD
  engram-ops migrate redis --addr 127.0.0.1:6379 --pattern 'user:*' --pattern 'doc:*' --password-env REDIS_PASSWORD --data-dir /var/lib/engram`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Reconcile a source with what is in Engram (exit 3 unless it matches)",
		Example: `  engram-ops migrate verify neo4j-export graph.jsonl --data-dir /var/lib/engram
  engram-ops migrate verify neo4j-export graph.jsonl --target http://127.0.0.1:7432 --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	plan := &cobra.Command{
		Use:   "plan",
		Short: "Print a source's size and an estimated duration from a measured sample",
		Example: `  engram-ops migrate plan neo4j-export graph.jsonl
  engram-ops migrate plan neo4j-export graph.jsonl --sample 20000 --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	for _, k := range m.kinds() {
		k := k
		args := strings.TrimPrefix(k.use, strings.Fields(k.use)[0])
		switch k.use {
		case "postgres":
			args = " --dsn-env PG_DSN"
		case "redis":
			args = " --addr 127.0.0.1:6379 --pattern 'user:*'"
		case "neo4j":
			args = " --uri bolt://127.0.0.1:7687 --password-env NEO4J_PASSWORD"
		}
		run := &cobra.Command{
			Use: k.use, Short: k.short, Args: k.args,
			Example: fmt.Sprintf(`  engram-ops migrate %[1]s --data-dir /var/lib/engram --dry-run
  engram-ops migrate %[1]s --print-default-mapping > mapping.toml
  engram-ops migrate %[1]s --mapping mapping.toml --target http://127.0.0.1:7432 --reject-file rejects.jsonl`, strings.Fields(k.use)[0]+args),
			RunE: func(cmd *cobra.Command, args []string) error {
				m.defaults(cmd, k)
				return m.run(cmd.Context(), k, args)
			},
		}
		if rb, err := runbooks.Get(k.runbook); err == nil {
			run.Long = k.short + ".\n\n" + rb.Body
		}
		m.addCommon(run, k)
		f := run.Flags()
		f.BoolVar(&m.dryRun, "dry-run", false, "read the source and map it; write nothing; print counts and three example memories per object")
		f.BoolVar(&m.restart, "restart", false, "ignore the stored cursor and start from the beginning (needs --yes)")
		f.BoolVar(&m.yes, "yes", false, "confirm --restart")
		f.IntVar(&m.maxRejects, "max-rejects", 100, "stop once more records than this were rejected (-1: no limit)")
		f.StringVar(&m.rejectFile, "reject-file", "", "append rejected records here as JSON lines (default: <source name>.rejects.jsonl in the current directory)")
		f.StringVar(&m.metricsListen, "metrics-listen", "", "serve engram_migrate_* Prometheus metrics on this address (e.g. 127.0.0.1:9187)")
		f.BoolVar(&m.printDefault, "print-default-mapping", false, "write the default mapping for this source as a mapping file and exit")
		f.IntVar(&m.batchSize, "batch-size", 500, fmt.Sprintf("memories and associations per batch (with --data-dir: %d)", migrate.BulkBatchSize))
		f.IntVar(&m.batchBytes, "batch-bytes", 4<<20, fmt.Sprintf("estimated bytes per batch (with --data-dir: %d)", migrate.BulkBatchBytes))
		f.DurationVar(&m.retryFor, "retry-for", 10*time.Minute, "how long one batch is retried while the server answers 429/503")
		f.BoolVar(&m.deferIndex, "defer-index", false, "with --data-dir: end without building the ANN index; the server builds it when it starts (recall scans the memories exactly meanwhile)")
		group.AddCommand(run)

		v := &cobra.Command{
			Use: k.use, Short: "Reconcile " + strings.TrimPrefix(k.short, "Migrate ") + " with Engram", Args: k.args,
			Example: "  engram-ops migrate verify " + strings.Fields(k.use)[0] + args + " --data-dir /var/lib/engram",
			RunE: func(cmd *cobra.Command, args []string) error {
				m.defaults(cmd, k)
				return m.verify(cmd.Context(), k, args)
			},
		}
		m.addCommon(v, k)
		verify.AddCommand(v)

		p := &cobra.Command{
			Use: k.use, Short: "Size and estimated duration of migrating " + strings.TrimPrefix(k.short, "Migrate "), Args: k.args,
			Example: "  engram-ops migrate plan " + strings.Fields(k.use)[0] + args,
			RunE: func(cmd *cobra.Command, args []string) error {
				m.defaults(cmd, k)
				return m.plan(cmd.Context(), k, args)
			},
		}
		p.Flags().StringVar(&m.mappingPath, "mapping", "", "mapping file (TOML); default: the default mapping")
		p.Flags().StringVar(&m.space, "space", k.space, "target space of objects the mapping gives none")
		if k.flags != nil {
			k.flags(p.Flags())
		}
		p.Flags().Int64Var(&m.sample, "sample", 5000, "records to map and write into a temporary data directory to measure the rate")
		plan.AddCommand(p)
	}
	group.AddCommand(verify, plan)
	return group
}

func (m *migrateCmd) addCommon(cmd *cobra.Command, k sourceKind) {
	f := cmd.Flags()
	if k.flags != nil {
		k.flags(f)
	}
	f.StringVar(&m.mappingPath, "mapping", "", "mapping file (TOML); default: the default mapping")
	f.StringVar(&m.target, "target", "", "URL of a running server, e.g. http://127.0.0.1:7432")
	f.StringVar(&m.token, "token", "", "API key sent as Authorization: Bearer (default $ENGRAM_API_KEY)")
	m.tls.add(f)
	f.StringVar(&m.dataDir, "data-dir", "", "data directory of a stopped server (opened and locked here)")
	f.StringVar(&m.space, "space", k.space, "target space of objects the mapping gives none")
	f.StringVar(&m.sourceName, "source-name", "", "the name the resume cursor is stored under (default: the source type and its file or database and schema)")
}

// defaults sets what the kinds' flags default differently: all kinds bind
// one field, which holds the last registered default.
func (m *migrateCmd) defaults(cmd *cobra.Command, k sourceKind) {
	if !cmd.Flags().Changed("space") {
		m.space = k.space
	}
	if m.dataDir != "" && m.target == "" {
		if !cmd.Flags().Changed("batch-size") {
			m.batchSize = migrate.BulkBatchSize
		}
		if !cmd.Flags().Changed("batch-bytes") {
			m.batchBytes = migrate.BulkBatchBytes
		}
	}
}

// mapping loads and compiles the mapping for src.
func (m *migrateCmd) mapping(ctx context.Context, src migrate.Source) (*migrate.Mapping, []migrate.Object, error) {
	objs, err := src.Objects(ctx)
	if err != nil {
		return nil, nil, sourceError(err)
	}
	var f *migrate.MappingFile
	if m.mappingPath != "" {
		data, err := os.ReadFile(m.mappingPath)
		if err != nil {
			return nil, nil, usagef("read the mapping: %v", err)
		}
		if f, err = migrate.ParseMappingFile(data, m.mappingPath); err != nil {
			return nil, nil, usagef("the mapping file has problems:\n%v", err)
		}
	}
	mp, err := migrate.Compile(f, objs, m.space)
	if err != nil {
		return nil, nil, usagef("the mapping does not fit the source:\n%v", err)
	}
	return mp, objs, nil
}

// sourceError says what reading the source's objects failed on: a
// selection the source cannot migrate is a usage error (exit 2).
func sourceError(err error) error {
	if errors.Is(err, postgres.ErrSelection) {
		return usagef("read the source: %v", err)
	}
	return fmt.Errorf("read the source: %w", err)
}

// sink opens the target; close releases it.
func (m *migrateCmd) sink(ctx context.Context, onRetry func(error, time.Duration)) (migrate.Sink, func(), error) {
	switch {
	case m.target != "" && m.dataDir != "":
		return nil, nil, usagef("give --target URL or --data-dir DIR, not both")
	case m.target != "":
		token := m.token
		if token == "" {
			token = m.app.getenv("ENGRAM_API_KEY")
		}
		hc, err := m.tls.httpClient(m.app)
		if err != nil {
			return nil, nil, err
		}
		opts := []client.Option{client.WithUserAgent("engram-ops-migrate"), client.WithHTTPClient(hc)}
		if token != "" {
			opts = append(opts, client.WithToken(token))
		}
		c, err := client.New(m.target, opts...)
		if err != nil {
			return nil, nil, usagef("--target: %v", err)
		}
		if err := c.Ready(ctx); err != nil && client.StatusOf(err) == 0 {
			return nil, nil, fmt.Errorf("the server at %s is unreachable: %w (Try: check --target and that engram-ops serve runs)", m.target, err)
		}
		return &migrate.ClientSink{C: c, RetryFor: m.retryFor, OnRetry: onRetry}, func() {}, nil
	case m.dataDir != "":
		st, err := os.Stat(m.dataDir)
		if err != nil || !st.IsDir() {
			return nil, nil, usagef("--data-dir %s is not a directory", m.dataDir)
		}
		e, err := core.Open(m.dataDir, m.engineOptions())
		if err != nil {
			return nil, nil, fmt.Errorf("open the data directory %s (stop the server that uses it, or migrate with --target): %w", m.dataDir, err)
		}
		return &migrate.EngineSink{E: e}, func() { e.Close() }, nil
	}
	return nil, nil, usagef("give --target URL (a running server) or --data-dir DIR (a stopped server's data directory)")
}

// engineOptions are a server's defaults (the disk reserve, the cap on
// spaces, the embedders), without the background tier sweep: a migration
// into a data directory is held to what the server would hold it to. The
// engine runs as a bulk load (Index.Defer): no index insertion beside the
// commits and no bound on the index backlog; the run builds the index on
// every core once the load ends (or, with --defer-index, the server does
// when it opens the directory).
func (m *migrateCmd) engineOptions() core.Options {
	cfg := config.Default()
	o := cfg.EngineOptions(nil, cfg.EmbedderFactory(m.app.getenv))
	o.Tiers.SweepInterval = 0
	o.Index.Defer = true
	return o
}

// buildIndex ends a bulk load into a data directory: it builds the ANN
// index of what the engine has not indexed, unless --defer-index leaves
// that to the server.
func (m *migrateCmd) buildIndex(ctx context.Context, sink migrate.Sink) (*migrate.IndexBuild, error) {
	es, ok := sink.(*migrate.EngineSink)
	if !ok {
		return nil, nil
	}
	if m.deferIndex {
		n := 0
		for _, st := range es.E.Spaces() {
			n += st.IndexPending
		}
		return &migrate.IndexBuild{Deferred: true, Vectors: n}, nil
	}
	if !m.app.global.quiet && m.app.global.output != "json" {
		fmt.Fprintln(m.app.stderr, "building the ANN index on every core (the memories are stored; --defer-index leaves this to the server)")
	}
	start := time.Now()
	n, err := es.E.BuildIndex(ctx)
	if err != nil {
		return nil, fmt.Errorf("build the ANN index (the memories are stored; run the same command again, or start the server, to finish it): %w", err)
	}
	return &migrate.IndexBuild{Vectors: n, Seconds: time.Since(start).Seconds()}, nil
}

func (m *migrateCmd) run(ctx context.Context, k sourceKind, args []string) error {
	a := m.app
	src, defName, err := k.open(args)
	if err != nil {
		return err
	}
	defer closeSource(src)
	if m.sourceName == "" {
		m.sourceName = defName
	}
	if m.printDefault {
		objs, err := src.Objects(ctx)
		if err != nil {
			return sourceError(err)
		}
		b, err := migrate.MarshalMappingFile(migrate.DefaultMappingFile(objs, m.space))
		if err != nil {
			return err
		}
		_, err = a.stdout.Write(b)
		return err
	}
	if m.restart && !m.yes && !m.dryRun {
		return usagef("--restart writes every record again from the start: add --yes to confirm (or --dry-run to see what it would do)")
	}
	mp, _, err := m.mapping(ctx, src)
	if err != nil {
		return err
	}
	prog := m.progress()
	var sink migrate.Sink
	if m.target != "" || m.dataDir != "" || !m.dryRun {
		s, closeSink, err := m.sink(ctx, prog.retry)
		if err != nil {
			return err
		}
		defer closeSink()
		sink = s
	}
	o := migrate.Options{Source: src, SourceName: m.sourceName, Mapping: mp, Sink: sink, DryRun: m.dryRun, Restart: m.restart,
		BatchSize: m.batchSize, BatchBytes: m.batchBytes, MaxRejects: m.maxRejects, OnEvent: prog.event}
	if !m.dryRun {
		path := m.rejectFile
		if path == "" {
			path = safeFileName(m.sourceName) + ".rejects.jsonl"
		}
		rf := &lazyFile{path: path}
		defer rf.Close()
		o.Rejects = rf
	}
	if m.metricsListen != "" {
		reg := prometheus.NewRegistry()
		o.Metrics = migrate.NewMetrics(reg)
		l, err := net.Listen("tcp", m.metricsListen)
		if err != nil {
			return usagef("--metrics-listen %s: %v", m.metricsListen, err)
		}
		srv := &http.Server{Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(l)
		defer srv.Close()
	}
	sum, runErr := migrate.Run(ctx, o)
	prog.stop()
	if runErr == nil && !m.dryRun {
		ib, err := m.buildIndex(ctx, sink)
		if err != nil {
			return err
		}
		sum.Index = ib
	}
	if sum != nil {
		if err := m.printSummary(sum, o.Rejects); err != nil {
			return err
		}
	}
	if runErr != nil {
		if errors.Is(runErr, migrate.ErrMappingChanged) {
			return usagef("%v", runErr)
		}
		return fmt.Errorf("migration stopped: %w", runErr)
	}
	if m.dryRun {
		return nil
	}
	rep, err := migrate.Verify(ctx, src, mp, sink, m.sourceName)
	if err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	return m.printReconciliation(rep)
}

func (m *migrateCmd) verify(ctx context.Context, k sourceKind, args []string) error {
	src, defName, err := k.open(args)
	if err != nil {
		return err
	}
	defer closeSource(src)
	if m.sourceName == "" {
		m.sourceName = defName
	}
	mp, _, err := m.mapping(ctx, src)
	if err != nil {
		return err
	}
	sink, closeSink, err := m.sink(ctx, nil)
	if err != nil {
		return err
	}
	defer closeSink()
	rep, err := migrate.Verify(ctx, src, mp, sink, m.sourceName)
	if err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	return m.printReconciliation(rep)
}

func (m *migrateCmd) plan(ctx context.Context, k sourceKind, args []string) error {
	a := m.app
	src, _, err := k.open(args)
	if err != nil {
		return err
	}
	defer closeSource(src)
	mp, _, err := m.mapping(ctx, src)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "engram-migrate-plan-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	e, err := core.Open(dir, m.engineOptions())
	if err != nil {
		return fmt.Errorf("open a scratch data directory: %w", err)
	}
	defer e.Close()
	rep, err := migrate.Plan(ctx, src, mp, &migrate.EngineSink{E: e}, m.sample)
	if err != nil {
		return err
	}
	if a.global.output == "json" {
		return a.printJSON(rep)
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "OBJECT\tKIND\tRECORDS\tFIELDS")
	for _, o := range rep.Objects {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\n", o.Name, o.Kind, o.Count, len(o.Fields))
	}
	tw.Flush()
	fmt.Fprintf(a.stdout, "source: %d records, %d bytes\n", rep.Records, rep.Bytes)
	fmt.Fprintf(a.stdout, "sample: %d records mapped and written into a scratch data directory in %.2fs (%.0f records/s)\n", rep.SampleRecords, rep.SampleSeconds, rep.RecordsPerSecond)
	fmt.Fprintf(a.stdout, "estimate: %s into a data directory (a server target adds its HTTP cost)\n", (time.Duration(rep.EstimatedSeconds * float64(time.Second))).Round(time.Second))
	return nil
}

func (m *migrateCmd) printSummary(sum *migrate.Summary, rejects io.Writer) error {
	a := m.app
	if a.global.output == "json" {
		return a.printJSON(sum)
	}
	if a.global.quiet {
		return nil
	}
	verb := "migrated"
	if sum.DryRun {
		verb = "would migrate (dry run, nothing written)"
	}
	from := "from the start"
	if sum.Resumed {
		from = "resuming after " + sum.StartCursor
	} else if sum.StoredCursor != "" {
		from = "from the start (--restart; the stored cursor was " + sum.StoredCursor + ")"
	}
	fmt.Fprintf(a.stdout, "%s %s, %s\n", verb, sum.Source, from)
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "OBJECT\tKIND\tRECORDS\tMEMORIES\tASSOCIATIONS\tSKIPPED\tREJECTED")
	for _, o := range sum.Objects {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\n", o.Name, o.Kind, o.Records, o.Memories, o.Associations, o.Skipped, o.Rejects)
	}
	tw.Flush()
	fmt.Fprintf(a.stdout, "%d records, %d memories, %d associations, %d rejected, %d batches in %.2fs\n",
		sum.Records, sum.Memories, sum.Associations, sum.Rejects, sum.Batches, sum.Seconds)
	if ib := sum.Index; ib != nil && sum.Seconds > 0 {
		load := float64(sum.Records) / sum.Seconds
		if ib.Deferred {
			fmt.Fprintf(a.stdout, "load: %.0f records/s durable; ANN index deferred: %d memories wait for it, indexed when the server starts (recall scans them exactly meanwhile)\n", load, ib.Vectors)
		} else {
			fmt.Fprintf(a.stdout, "load: %.0f records/s durable; ANN index: %d vectors in %.2fs; end to end: %.0f records/s\n",
				load, ib.Vectors, ib.Seconds, float64(sum.Records)/(sum.Seconds+ib.Seconds))
		}
	}
	if lf, ok := rejects.(*lazyFile); ok && lf.f != nil {
		fmt.Fprintf(a.stdout, "rejected records: %s\n", lf.path)
	}
	if sum.DryRun {
		for _, o := range sum.Objects {
			for i, ex := range o.Examples {
				fmt.Fprintf(a.stdout, "\n%s example %d: id %s, tags %v\n  %s\n", o.Name, i+1, ex.ID, ex.Tags, strings.ReplaceAll(ex.Content, "\n", "\n  "))
			}
		}
	}
	return nil
}

func (m *migrateCmd) printReconciliation(rep *migrate.Reconciliation) error {
	a := m.app
	if a.global.output == "json" {
		if err := a.printJSON(rep); err != nil {
			return err
		}
	} else if !a.global.quiet {
		fmt.Fprintln(a.stdout, "reconciliation:")
		tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "OBJECT\tKIND\tEXPECTED\tFOUND\tMISSING\tDIFFERENT\tREJECTED\tCHECKSUM\tOK")
		for _, o := range rep.Objects {
			found, sum := "(space)", "-"
			if o.Found != nil {
				found = fmt.Sprint(*o.Found)
				sum = o.ExpectedChecksum
				if o.FoundChecksum != o.ExpectedChecksum {
					sum += "≠" + o.FoundChecksum
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%d\t%d\t%s\t%v\n", o.Name, o.Kind, o.Expected, found, o.Missing, o.Mismatched, o.Rejected, sum, o.OK)
		}
		tw.Flush()
		tw = tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "SPACE\tMEMORIES\tEXTRA\tASSOCIATIONS\tOK")
		for _, s := range rep.Spaces {
			fmt.Fprintf(tw, "%s\t%d/%d\t%d\t%d/%d\t%v\n", s.Name, s.FoundMemories, s.ExpectedMemories, s.Extra, s.FoundAssociations, s.ExpectedAssociations, s.OK)
		}
		tw.Flush()
	}
	if !rep.OK {
		var bad []string
		for _, o := range rep.Objects {
			if !o.OK {
				bad = append(bad, fmt.Sprintf("%s (%d missing, %d different, e.g. %s)", o.Name, o.Missing, o.Mismatched, strings.Join(o.Examples, ", ")))
			}
		}
		for _, s := range rep.Spaces {
			if !s.OK {
				bad = append(bad, fmt.Sprintf("space %s (memories %d of %d expected, %d extra; associations %d of %d)", s.Name, s.FoundMemories, s.ExpectedMemories, s.Extra, s.FoundAssociations, s.ExpectedAssociations))
			}
		}
		sort.Strings(bad)
		return &checkFailed{msg: "reconciliation failed: " + strings.Join(bad, "; ") + "\nTry: run the migration again (it resumes), and read the reject file"}
	}
	return nil
}

// migrateProgress renders events: bars per object on a terminal, a log
// line per ~2 seconds otherwise.
type migrateProgress struct {
	app   *app
	p     *mpb.Progress
	bars  map[string]*mpb.Bar
	last  time.Time
	start time.Time
}

func (m *migrateCmd) progress() *migrateProgress {
	pr := &migrateProgress{app: m.app, bars: map[string]*mpb.Bar{}, start: time.Now()}
	if m.app.global.output != "json" && !m.app.global.quiet && isTerminal(m.app.stderr) {
		pr.p = mpb.New(mpb.WithOutput(m.app.stderr), mpb.WithWidth(40))
	}
	return pr
}

func (p *migrateProgress) event(e migrate.Event) {
	if p.app.global.quiet || p.app.global.output == "json" {
		return
	}
	if p.p != nil {
		for _, o := range e.Objects {
			b := p.bars[o.Name]
			if b == nil {
				b = p.p.AddBar(max(o.Count, 1),
					mpb.PrependDecorators(decor.Name(o.Name, decor.WCSyncSpaceR), decor.CountersNoUnit("%d/%d", decor.WCSyncSpace)),
					mpb.AppendDecorators(decor.AverageSpeed(0, "%.0f rec/s", decor.WCSyncSpace), decor.AverageETA(decor.ET_STYLE_GO, decor.WCSyncSpace)))
				p.bars[o.Name] = b
			}
			b.SetCurrent(e.Counts[o.Name])
		}
		if e.Type == migrate.EventDone {
			for _, b := range p.bars {
				b.Abort(false)
			}
		}
		return
	}
	if e.Type == migrate.EventReject {
		fmt.Fprintf(p.app.stderr, "rejected %s: %s\n", e.Position, e.Message)
		return
	}
	if e.Type != migrate.EventBatch || time.Since(p.last) < 2*time.Second {
		return
	}
	p.last = time.Now()
	var total int64
	var parts []string
	for _, o := range e.Objects {
		total += e.Counts[o.Name]
		parts = append(parts, fmt.Sprintf("%s %d/%d", o.Name, e.Counts[o.Name], o.Count))
	}
	rate := float64(total) / time.Since(p.start).Seconds()
	fmt.Fprintf(p.app.stderr, "progress: %s; %.0f records/s; %d rejected; at %s\n", strings.Join(parts, ", "), rate, e.Rejects, e.Position)
}

func (p *migrateProgress) retry(err error, wait time.Duration) {
	if !p.app.global.quiet {
		fmt.Fprintf(p.app.stderr, "server busy (%v); retrying in %s\n", err, wait.Round(time.Millisecond))
	}
}

func (p *migrateProgress) stop() {
	if p.p != nil {
		p.p.Wait()
	}
}

// closeSource releases a source holding connections (Redis).
func closeSource(src migrate.Source) {
	if c, ok := src.(io.Closer); ok {
		c.Close()
	}
}

// lazyFile creates its file on the first write, appending.
type lazyFile struct {
	path string
	f    *os.File
}

func (l *lazyFile) Write(b []byte) (int, error) {
	if l.f == nil {
		f, err := os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return 0, err
		}
		l.f = f
	}
	return l.f.Write(b)
}

func (l *lazyFile) Close() error {
	if l.f == nil {
		return nil
	}
	if err := l.f.Sync(); err != nil {
		l.f.Close()
		return err
	}
	return l.f.Close()
}

func safeFileName(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == ':' || r < ' ' {
			return '_'
		}
		return r
	}, s)
}
