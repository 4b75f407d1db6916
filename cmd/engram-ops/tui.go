package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/spf13/cobra"

	"github.com/engram-ops/engram-ops/ops/client"
	"github.com/engram-ops/engram-ops/ops/placement"
	"github.com/engram-ops/engram-ops/runbooks"
	"github.com/engram-ops/engram-ops/tui"
)

// tuiCmd is `engram-ops tui`: the live status board of a running server.
type tuiCmd struct {
	app *app

	target     string
	refresh    time.Duration
	apiKeyEnv  string
	prometheus string
	once       bool
	tls        tlsClientFlags
	servers    []string // [SHARD=]URL: the shard board
	placement  string   // the placement file: the shard board of its servers
}

func newTuiCmd(a *app) *tuiCmd { return &tuiCmd{app: a} }

func (t *tuiCmd) command() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tui",
		Short: "Live status board of a running server",
		Long: `A terminal status board of a running engram-ops server: health, throughput,
error rate and p50/p95/p99 latency per operation (from histogram deltas between
scrapes of /metrics), memories per space and tier, tier utilisation, cache hit
rate, index backlog, disk free against the reserve, backup RPO and verification,
the alerts that would fire by the shipped rules' thresholds (or Prometheus' own
with --prometheus; the board's own, with Prometheus' error, while it does not
answer), and a migration or load test in progress.

Figures the board does not know show as "—" with the reason. While the server
does not answer, the header says so with the error and the time of the last
success, and polling backs off (doubling up to 30 s). NO_COLOR is honoured.

Keys: ? help, / filter spaces, tab next panel, ↑/↓ move, enter opens the selected
alert's runbook, :runbook NAME opens any runbook, esc back, r refresh now,
p pause, q or ctrl+c quit.

--once takes two scrapes --refresh apart (rates need two) and prints the board
once as plain text, or with --output json one snapshot as JSON, a stable shape
(fields are only added; unknown figures are null and "unknown" says why):

  {"target": URL, "time": RFC3339, "interval_seconds": N,
   "health": {"status": "ready|degraded|unhealthy|unreachable|error", "error",
              "version", "uptime_seconds", "last_success", "checks": [...]},
   "operations": [{"name", "total", "per_second", "error_ratio",
                   "p50_seconds", "p95_seconds", "p99_seconds"}],
   "spaces": [{"name", "memories", "tiers": {"hot","warm","cold"},
               "associations", "index_pending", "per_second"}],
   "tiers": [{"name", "bytes", "capacity_bytes", "utilisation"}],
   "cache_hit_ratio", "index_backlog",
   "disk": {"free_bytes", "total_bytes", "reserve_bytes", "data_bytes", "writes_refused"},
   "backup": [{"target", "rpo_seconds", "last_snapshot", "last_log", "shipped_sequence",
               "lag_sequences", "last_verified", "restore_drill_seconds", "errors"}],
   "alerts": [{"name", "severity", "state": "pending|firing", "labels", "summary",
               "since", "source": "rules|prometheus", "runbook"}],
   "migration": {"source", "records", "rejects", "per_second"} or null,
   "loadtest": {"spaces", "per_second"} or null,
   "unknown": {"field": "reason"}}

With several servers (--server, repeated, or --placement FILE naming every shard's
primary and followers) the board is the shard board instead: one line per server with
its shard, role (what the server reports: primary, fenced primary, or follower when its
health has a replica block), applied sequence (a follower's
engram_replica_applied_sequence, a primary's engram_changelog_sequence), lag
(engram_replica_lag_seconds), archive generation (engram_backup_generation or
engram_replica_generation; — without an archive) and whether it is up (see the runbook
scaling-and-capacity, "Shards behind HAProxy"). Keys: r refresh, q quit. --once polls
once; with --output json:

  {"time": RFC3339, "servers": [{"shard", "target", "role", "up", "status", "error",
   "applied_sequence", "lag_seconds", "generation"}], "unknown": {"field": "reason"}}

Exit status: 0 ok; 1 the server (with several: any server) could not be read
(--once) or the terminal failed; 2 a bad flag.`,
		Example: `  # The board of a local server
  engram-ops tui

  # A remote server with an API key, alerts from Prometheus
  ENGRAM_API_KEY=... engram-ops tui --target http://10.0.0.5:7432 --prometheus http://10.0.0.9:9090

  # A server serving TLS with a private CA
  engram-ops tui --target https://engram.internal:7432 --ca-file /etc/engram/ca.pem

  # One snapshot for a script
  engram-ops tui --once --output json | jq '.operations[] | {name, p99_seconds}'

  # Every shard's servers: role, applied sequence, lag
  engram-ops tui --placement placement.toml
  engram-ops tui --server a=http://10.0.0.1:7432 --server a=http://10.0.0.2:7432 --once`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(t.servers) > 0 || t.placement != "" {
				if cmd.Flags().Changed("target") || t.prometheus != "" {
					return usagef("--server and --placement show the shard board: drop --target and --prometheus")
				}
				return t.runShards(cmd.Context())
			}
			return t.run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&t.target, "target", "http://127.0.0.1:7432", "base URL of the server")
	f.DurationVar(&t.refresh, "refresh", 2*time.Second, "poll interval while the server answers")
	f.StringVar(&t.apiKeyEnv, "api-key-env", "ENGRAM_API_KEY", "name of the environment variable holding the API key (sent as Authorization: Bearer)")
	f.StringVar(&t.prometheus, "prometheus", "", "read alerts from this Prometheus (its /api/v1/alerts) instead of evaluating the shipped rules")
	t.tls.add(f)
	f.StringArrayVar(&t.servers, "server", nil, "[SHARD=]URL of a server for the shard board (repeatable)")
	f.StringVar(&t.placement, "placement", "", "the placement file (TOML): the shard board of every shard's primary and followers")
	f.BoolVar(&t.once, "once", false, "print the board once (two scrapes --refresh apart) and exit; with --output json, one JSON snapshot")
	return cmd
}

// clientOptions are the API key and TLS settings every server is read with.
func (t *tuiCmd) clientOptions() ([]client.Option, error) {
	a := t.app
	var opts []client.Option
	if t.apiKeyEnv != "" {
		if key := a.getenv(t.apiKeyEnv); key != "" {
			opts = append(opts, client.WithToken(key))
		}
	}
	hc, err := t.tls.httpClient(a)
	if err != nil {
		return nil, err
	}
	return append(opts, client.WithHTTPClient(hc), client.WithUserAgent("engram-ops-tui")), nil
}

func (t *tuiCmd) checkRefresh() error {
	if t.refresh < 100*time.Millisecond || t.refresh > time.Hour {
		return usagef("--refresh %s: use between 100ms and 1h", t.refresh)
	}
	return nil
}

func (t *tuiCmd) run(ctx context.Context) error {
	a := t.app
	if err := t.checkRefresh(); err != nil {
		return err
	}
	opts, err := t.clientOptions()
	if err != nil {
		return err
	}
	c, err := client.New(t.target, opts...)
	if err != nil {
		return usagef("--target: %v", err)
	}
	rules, err := tui.ShippedRules()
	if err != nil {
		return fmt.Errorf("reading the shipped alert rules: %w", err)
	}
	var alerts tui.AlertSource
	if t.prometheus != "" {
		if _, err := client.New(t.prometheus); err != nil {
			return usagef("--prometheus: %v", err)
		}
		alerts = tui.PrometheusAlerts{URL: t.prometheus}
	}
	sc := tui.NewScraper(tui.ClientSource{C: c}, alerts, rules)
	color := a.useColor(a.stdout)

	if t.once {
		return t.runOnce(ctx, sc, color)
	}
	if !isTerminal(a.stdout) {
		return usagef("the board needs a terminal on stdout; use --once (with --output json for scripts)")
	}
	m := tui.New(sc, tui.Config{
		Refresh: t.refresh,
		Styles:  tui.NewStyles(a.stdout, color),
		Runbook: func(name string) (string, string, error) {
			rb, err := runbooks.Get(name)
			return rb.Title, rb.Body, err
		},
	})
	return t.runProgram(ctx, m)
}

// runProgram runs a board full screen until it quits.
func (t *tuiCmd) runProgram(ctx context.Context, m tea.Model) error {
	a := t.app
	in := a.stdin
	if f, ok := in.(*os.File); !ok || !isTerminal(f) {
		in = nil // bubbletea opens the controlling terminal
	}
	// The renderer wakes FPS times a second even when nothing changed; 10
	// keeps keys responsive and the idle board cheap.
	popts := []tea.ProgramOption{tea.WithAltScreen(), tea.WithFPS(10), tea.WithContext(ctx), tea.WithOutput(a.stdout)}
	if in != nil {
		popts = append(popts, tea.WithInput(in))
	}
	if _, err := tea.NewProgram(m, popts...).Run(); err != nil && !errors.Is(err, tea.ErrProgramKilled) {
		return fmt.Errorf("tui: %w", err)
	}
	return nil
}

// runOnce takes two scrapes --refresh apart and prints the second.
func (t *tuiCmd) runOnce(ctx context.Context, sc *tui.Scraper, color bool) error {
	a := t.app
	poll := func() tui.Snapshot {
		pctx, cancel := context.WithTimeout(ctx, max(5*time.Second, t.refresh))
		defer cancel()
		return sc.Poll(pctx)
	}
	snap := poll()
	if sc.Failures() == 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(t.refresh):
		}
		snap = poll()
	}
	if a.global.output == "json" {
		if err := a.printJSON(snap); err != nil {
			return err
		}
	} else {
		fmt.Fprint(a.stdout, tui.Render(snap, 100, tui.NewStyles(a.stdout, color)))
	}
	if sc.Failures() > 0 {
		return fmt.Errorf("could not read %s: %s", t.target, snap.Health.Error)
	}
	return nil
}

// members are the servers of the shard board: the placement file's
// primaries and followers, or --server's.
func (t *tuiCmd) members() ([]tui.Member, error) {
	opts, err := t.clientOptions()
	if err != nil {
		return nil, err
	}
	var out []tui.Member
	add := func(shard, role, u, from string) error {
		c, err := client.New(u, opts...)
		if err != nil {
			return usagef("%s %q: %v", from, u, err)
		}
		out = append(out, tui.Member{Shard: shard, Role: role, Source: tui.ClientSource{C: c}})
		return nil
	}
	if t.placement != "" {
		if len(t.servers) > 0 {
			return nil, usagef("give either --placement or --server, not both")
		}
		p, err := placement.Load(t.placement)
		if err != nil {
			return nil, usagef("%v", err)
		}
		for _, s := range p.Shards {
			if err := add(s.Name, "primary", s.Primary, t.placement); err != nil {
				return nil, err
			}
			for _, f := range s.Followers {
				if err := add(s.Name, "follower", f, t.placement); err != nil {
					return nil, err
				}
			}
		}
		return out, nil
	}
	for _, sv := range t.servers {
		shard, u := "", sv
		if name, rest, ok := strings.Cut(sv, "="); ok && !strings.Contains(name, "://") {
			if name == "" {
				return nil, usagef("--server %q: the shard before = is empty (use [SHARD=]URL)", sv)
			}
			shard, u = name, rest
		}
		if err := add(shard, "", u, "--server"); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// runShards is the shard board: live, or polled once with --once.
func (t *tuiCmd) runShards(ctx context.Context) error {
	a := t.app
	if err := t.checkRefresh(); err != nil {
		return err
	}
	members, err := t.members()
	if err != nil {
		return err
	}
	sc := tui.NewShardScraper(members)
	st := tui.NewStyles(a.stdout, a.useColor(a.stdout))
	if t.once {
		pctx, cancel := context.WithTimeout(ctx, max(5*time.Second, t.refresh))
		snap := sc.Poll(pctx)
		cancel()
		if a.global.output == "json" {
			if err := a.printJSON(snap); err != nil {
				return err
			}
		} else {
			fmt.Fprint(a.stdout, tui.RenderShards(snap, 100, st))
		}
		if n := sc.Down(); n > 0 {
			var down []string
			for _, s := range snap.Servers {
				if !s.Up {
					down = append(down, s.Target+" ("+s.Error+")")
				}
			}
			return fmt.Errorf("could not read %d of %d servers: %s", n, len(snap.Servers), strings.Join(down, ", "))
		}
		return nil
	}
	if !isTerminal(a.stdout) {
		return usagef("the board needs a terminal on stdout; use --once (with --output json for scripts)")
	}
	return t.runProgram(ctx, tui.NewShardModel(sc, t.refresh, st))
}
