package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/engram-ops/engram-ops/ops/client"
	"github.com/engram-ops/engram-ops/ops/placement"
	"github.com/engram-ops/engram-ops/ops/server"
	"github.com/engram-ops/engram-ops/runbooks"
)

// shardsRunbook is the runbook section the long help of the placement
// and space commands embeds.
const (
	shardsRunbook = "scaling-and-capacity"
	shardsSection = "Shards behind HAProxy"
)

func shardsHelp(long string) string {
	if rb, err := runbooks.Get(shardsRunbook); err == nil {
		if sec, ok := rb.Section(shardsSection); ok {
			long += "\n\n" + sec
		}
	}
	return long
}

// placementCmd is `engram-ops placement`: render the router of a
// placement file (package ops/placement).
type placementCmd struct {
	app *app

	file string
	out  string
}

func newPlacementCmd(a *app) *placementCmd { return &placementCmd{app: a} }

func (c *placementCmd) command() *cobra.Command {
	group := &cobra.Command{
		Use:     "placement",
		Short:   "Place spaces on shards and render the HAProxy router in front of them",
		Example: `  engram-ops placement haproxy --placement placement.toml --out /etc/haproxy`,
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	render := &cobra.Command{
		Use:   "haproxy",
		Short: "Render haproxy.cfg and spaces.map (HAProxy 2.6) from a placement file",
		Long: shardsHelp(`Render an HAProxy 2.6 configuration (haproxy.cfg) and its space map (spaces.map) from a
placement file (TOML, strict; every problem is reported with its file:line). Requests are
routed by space (X-Memory-Space header, else the JSON body's memory_space_id or space,
else ?space=, the server's own order) through the map, which engram-ops space move
switches at run time. Writes go to the shard's primary; reads (the server's read routes)
go to its followers when the request carries X-Engram-Read-Stale: allow, else to the
primary. Servers are health-checked on /health; the stats socket has admin level for the
runtime API.

--output json prints {"config", "map", "map_path", "shards", "spaces"}.`),
		Example: `  engram-ops placement haproxy --placement placement.toml --out /etc/haproxy
  haproxy -c -f /etc/haproxy/haproxy.cfg`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return c.render() },
	}
	f := render.Flags()
	f.StringVar(&c.file, "placement", "", "the placement file (TOML)")
	f.StringVar(&c.out, "out", "", "directory to write haproxy.cfg and spaces.map into")
	group.AddCommand(render)
	return group
}

func (c *placementCmd) render() error {
	if c.file == "" || c.out == "" {
		return usagef("give the placement file and the output directory: --placement FILE --out DIR")
	}
	p, err := placement.Load(c.file)
	if err != nil {
		return usagef("%v", err)
	}
	r, err := placement.Render(p, placement.RenderOptions{Dir: c.out, Source: filepath.Base(c.file), Routes: placement.ServerRoutes(server.Routes())})
	if err != nil {
		return err
	}
	if err := placement.WriteFiles(c.out, r); err != nil {
		return fmt.Errorf("write the router's files: %w", err)
	}
	cfgPath, mapPath := filepath.Join(c.out, "haproxy.cfg"), filepath.Join(c.out, "spaces.map")
	if c.app.global.output == "json" {
		return c.app.printJSON(map[string]any{"config": cfgPath, "map": mapPath, "map_path": r.MapPath,
			"shards": len(p.Shards), "spaces": len(p.Spaces)})
	}
	if !c.app.global.quiet {
		fmt.Fprintf(c.app.stdout, "wrote %s and %s (%d shards, %d mapped spaces, default shard %s)\n", cfgPath, mapPath, len(p.Shards), len(p.Spaces), p.DefaultShard)
		if r.MapPath != mapPath {
			fmt.Fprintf(c.app.stdout, "the configuration reads the map from %s: install %s there\n", r.MapPath, mapPath)
		}
		fmt.Fprintf(c.app.stdout, "check it with: haproxy -c -f %s\n", cfgPath)
	}
	return nil
}

// spaceCmd is `engram-ops space`: operations on one space across servers.
type spaceCmd struct {
	app *app

	from, to  string
	token     string
	socket    string
	mapPath   string
	shard     string
	placement string
	pageSize  int
	timeout   time.Duration
	yes       bool
	dryRun    bool
	dropAssoc bool
}

func newSpaceCmd(a *app) *spaceCmd { return &spaceCmd{app: a} }

func (c *spaceCmd) command() *cobra.Command {
	group := &cobra.Command{
		Use:     "space",
		Short:   "Move a space between servers (shards behind HAProxy)",
		Example: `  engram-ops space move tenant-b --from http://10.0.0.1:7432 --to http://10.0.1.1:7432 --haproxy-socket /run/engram-router/admin.sock --map /etc/haproxy/spaces.map --to-shard b --yes`,
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	move := &cobra.Command{
		Use:   "move NAME",
		Short: "Copy a space to another server, switch the router to it, purge the source",
		Long: shardsHelp(`Move a space from one server to another without losing a write:

 1. copy the space's change log (memories with embeddings, forgets, associations) from
    the source to the destination through POST /api/v1/memories/batch, ids preserved, a
    cursor stored with every batch so an interrupted move resumes when run again; when
    the log no longer reaches back to the space's beginning (changelog.retention), the
    memories are exported first and the log copied from there (associations older than
    the log cannot be read: such a move needs --drop-old-associations);
 2. hold writes to the space on the source (they get 503 SPACE_HELD with Retry-After;
    reads are served) once the writes in flight finish;
 3. copy what changed since the first pass, so the destination equals the source;
 4. switch the router's map entry (HAProxy runtime API "set map", then the map file, so
    a reload keeps it); held writes retried through the router reach the destination;
 5. purge the source's copy and release the hold.

Without --haproxy-socket nothing is switched and the source keeps the hold (recorded in
its data directory, so a restart keeps it too), so writes sent there are refused rather
than lost.
The time writes were held is printed (held_ms in --output json).

Exit status: 0 moved (or, with --dry-run, planned); 1 the move failed (rerun it to
resume); 2 a bad flag.`),
		Example: `  # What would be copied and switched
  engram-ops space move tenant-b --from http://10.0.0.1:7432 --to http://10.0.1.1:7432 --placement placement.toml --haproxy-socket /run/engram-router/admin.sock --dry-run

  # Move it (the destination's shard name from the placement file)
  engram-ops space move tenant-b --from http://10.0.0.1:7432 --to http://10.0.1.1:7432 --placement placement.toml --haproxy-socket /run/engram-router/admin.sock --yes`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return c.move(cmd.Context(), args[0]) },
	}
	f := move.Flags()
	f.StringVar(&c.from, "from", "", "URL of the server that holds the space")
	f.StringVar(&c.to, "to", "", "URL of the server to move it to")
	f.StringVar(&c.token, "token", "", "admin API key for both servers, sent as Authorization: Bearer (default $ENGRAM_API_KEY)")
	f.StringVar(&c.socket, "haproxy-socket", "", "HAProxy's stats socket (a Unix socket path or ipv4@HOST:PORT) to switch the space's route")
	f.StringVar(&c.mapPath, "map", "", "the map file HAProxy's configuration names (default: the placement file's router.map_file)")
	f.StringVar(&c.shard, "to-shard", "", "the destination's shard name in the map (default: the shard of the placement file whose primary is --to)")
	f.StringVar(&c.placement, "placement", "", "the placement file, to find --map and --to-shard")
	f.IntVar(&c.pageSize, "page-size", 500, "change-log entries copied per batch")
	f.DurationVar(&c.timeout, "timeout", 30*time.Second, "timeout of each request to a server")
	f.BoolVar(&c.yes, "yes", false, "move without asking (the source's copy is purged)")
	f.BoolVar(&c.dryRun, "dry-run", false, "print what would be copied and switched, change nothing")
	f.BoolVar(&c.dropAssoc, "drop-old-associations", false, "move a space whose change log no longer reaches back to its beginning, dropping its associations older than the log")
	group.AddCommand(move)
	return group
}

func (c *spaceCmd) move(ctx context.Context, name string) error {
	if c.from == "" || c.to == "" {
		return usagef("give the source and the destination: --from URL --to URL")
	}
	if strings.TrimRight(c.from, "/") == strings.TrimRight(c.to, "/") {
		return usagef("--from and --to are the same server (%s)", c.from)
	}
	c.from, c.to = strings.TrimRight(c.from, "/"), strings.TrimRight(c.to, "/")
	if c.pageSize < 1 || c.pageSize > 5000 {
		return usagef("--page-size %d must be 1..5000", c.pageSize)
	}
	if !c.yes && !c.dryRun {
		return usagef("moving %s purges it on %s once copied: add --yes, or --dry-run to see the plan", name, c.from)
	}
	if c.placement != "" {
		p, err := placement.Load(c.placement)
		if err != nil {
			return usagef("%v", err)
		}
		if c.mapPath == "" {
			if c.mapPath, err = p.MapPath(filepath.Dir(c.placement)); err != nil {
				return usagef("%v", err)
			}
		}
		if c.shard == "" {
			s, ok := p.ShardByURL(c.to)
			if !ok {
				return usagef("no shard of %s has the primary %s: give --to-shard", c.placement, c.to)
			}
			c.shard = s.Name
		}
	}
	var router *placement.Runtime
	if c.socket != "" {
		if c.mapPath == "" || c.shard == "" {
			return usagef("--haproxy-socket needs the map file and the destination's shard: --map PATH --to-shard NAME, or --placement FILE")
		}
		if _, err := os.Stat(c.mapPath); err != nil {
			return usagef("the map file: %v", err)
		}
		router = &placement.Runtime{Addr: c.socket}
	}
	token := c.token
	if token == "" {
		token = c.app.getenv("ENGRAM_API_KEY")
	}
	var opts []client.Option
	opts = append(opts, client.WithUserAgent("engram-ops-space-move"),
		client.WithHTTPClient(&http.Client{Timeout: c.timeout, Transport: client.DefaultTransport()}))
	if token != "" {
		opts = append(opts, client.WithToken(token))
	}
	src, err := client.New(c.from, opts...)
	if err != nil {
		return usagef("--from: %v", err)
	}
	dst, err := client.New(c.to, opts...)
	if err != nil {
		return usagef("--to: %v", err)
	}
	progress := func(format string, args ...any) {
		if !c.app.global.quiet && c.app.global.output != "json" {
			fmt.Fprintf(c.app.stderr, format+"\n", args...)
		}
	}
	rep, err := placement.Move(ctx, placement.MoveOptions{Space: name, From: src, To: dst, FromURL: c.from,
		Router: router, MapPath: c.mapPath, Shard: c.shard, PageSize: c.pageSize, DryRun: c.dryRun, DropOldAssociations: c.dropAssoc, Progress: progress})
	if err != nil {
		return err
	}
	if c.app.global.output == "json" {
		return c.app.printJSON(rep)
	}
	if c.app.global.quiet {
		return nil
	}
	w := c.app.stdout
	if rep.DryRun {
		fmt.Fprintf(w, "would move space %s (%d memories, %d associations) from %s to %s\n", name, rep.Memories, rep.Associations, c.from, c.to)
		if rep.Resumed {
			fmt.Fprintf(w, "would resume after sequence %d (an unfinished move is recorded on the destination)\n", rep.ResumeAt)
		}
		if rep.Mode == "export" {
			fmt.Fprintf(w, "would export %d memories (the change log no longer reaches back to the space's beginning), then copy the change log after the export\n", rep.Exported)
		} else {
			fmt.Fprintf(w, "would copy %d change-log entries\n", rep.Copied)
		}
		fmt.Fprintf(w, "would then hold writes on the source and copy the rest\n")
		if router != nil {
			from := rep.SwitchFrom
			if from == "" {
				from = "(unmapped: the default shard)"
			}
			fmt.Fprintf(w, "would switch %s in %s: %s → %s (set map on %s, then the map file)\n", name, c.mapPath, from, c.shard, c.socket)
		} else {
			fmt.Fprintf(w, "would switch no router (no --haproxy-socket): the source would keep the hold\n")
		}
		fmt.Fprintf(w, "would purge %s on %s\n", name, c.from)
		return nil
	}
	if rep.Exported > 0 {
		fmt.Fprintf(w, "exported %d memories\n", rep.Exported)
	}
	fmt.Fprintf(w, "moved space %s from %s to %s: %d change-log entries copied, %d while held\n", name, c.from, c.to, rep.Copied, rep.Delta)
	if rep.Switched {
		fmt.Fprintf(w, "writes to %s were held for %.1f ms\n", name, rep.HeldMillis)
		fmt.Fprintf(w, "router: %s → shard %s (runtime map and %s)\n", name, c.shard, c.mapPath)
	} else {
		fmt.Fprintf(w, "writes to %s stay held on the source (no router was switched; %.1f ms from the hold to the purge): point its clients at %s\n", name, rep.HeldMillis, c.to)
	}
	fmt.Fprintf(w, "purged %d memories on the source\n", rep.Purged)
	return nil
}
