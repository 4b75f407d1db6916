package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/engram-ops/engram-ops/ops/client"
	"github.com/engram-ops/engram-ops/tui"
)

// statusCmd is `engram-ops status`: one screen about a running server.
type statusCmd struct {
	app *app

	target    string
	apiKeyEnv string
	interval  time.Duration
}

func newStatusCmd(a *app) *statusCmd { return &statusCmd{app: a} }

func (s *statusCmd) command() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status",
		Short: "One screen of a running server's health, data, disk, backup and traffic",
		Long: `One screen about a running server: its health verdict and failing checks,
version and uptime, durability mode, change-log sequence, spaces with their
memories per tier, disk free against the reserve (min_free_space), backup RPO and
last snapshot, and request rates. Rates come from two scrapes of /metrics
--interval apart ("--interval 0" takes one and leaves rates out).

With --output json the report is a stable shape (fields are only added; a figure
the server does not report is null):

  {"target", "time", "health": "healthy|degraded|unhealthy|unreachable|error",
   "error", "version", "uptime_seconds", "durability", "changelog_sequence",
   "checks": [{"name", "status", "message"}],
   "spaces": [{"name", "memories", "hot", "warm", "cold", "associations", "index_pending"}],
   "disk": {"free_bytes", "total_bytes", "reserve_bytes", "data_bytes", "writes_refused"},
   "backup": {"configured", "targets": [{"target", "rpo_seconds", "last_snapshot",
              "last_log", "shipped_sequence", "lag_sequences", "last_verified",
              "restore_drill_seconds", "errors"}]},
   "requests": {"interval_seconds", "per_second",
                "operations": [{"name", "per_second", "error_ratio", "p99_seconds"}]} or null}

Exit status: 0 when the server answered (whatever its health), 1 when it could
not be reached or read (the JSON form is still printed, health "unreachable"),
2 a bad flag. For checks that judge, use engram-ops diagnose health.`,
		Example: `  engram-ops status
  engram-ops status --target http://10.0.0.5:7432 --output json | jq .disk`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return s.run(cmd.Context()) },
	}
	f := cmd.Flags()
	f.StringVar(&s.target, "target", "http://127.0.0.1:7432", "base URL of the server")
	f.StringVar(&s.apiKeyEnv, "api-key-env", "ENGRAM_API_KEY", "name of the environment variable holding the API key")
	f.DurationVar(&s.interval, "interval", time.Second, "time between the two /metrics scrapes request rates come from; 0 takes one")
	return cmd
}

// serverClient is a client of target with the API key from the
// environment variable apiKeyEnv, when set.
func (a *app) serverClient(target, apiKeyEnv, agent string) (*client.Client, error) {
	opts := []client.Option{client.WithHTTPClient(&http.Client{Transport: client.DefaultTransport()}), client.WithUserAgent(agent)}
	if apiKeyEnv != "" {
		if key := a.getenv(apiKeyEnv); key != "" {
			opts = append(opts, client.WithToken(key))
		}
	}
	c, err := client.New(target, opts...)
	if err != nil {
		return nil, usagef("--target: %v", err)
	}
	return c, nil
}

// statusReport is the --output json shape of status.
type statusReport struct {
	Target            string          `json:"target"`
	Time              time.Time       `json:"time"`
	Health            string          `json:"health"`
	Error             string          `json:"error,omitempty"`
	Version           string          `json:"version"`
	UptimeSeconds     *float64        `json:"uptime_seconds"`
	Durability        *string         `json:"durability"`
	ChangelogSequence *uint64         `json:"changelog_sequence"`
	Checks            []statusCheck   `json:"checks"`
	Spaces            []statusSpace   `json:"spaces"`
	Disk              tui.Disk        `json:"disk"`
	Backup            statusBackup    `json:"backup"`
	Requests          *statusRequests `json:"requests"`
}

type statusCheck struct {
	Name    string `json:"name"`
	Status  string `json:"status"`
	Message string `json:"message"`
}

type statusSpace struct {
	Name         string `json:"name"`
	Memories     int64  `json:"memories"`
	Hot          int64  `json:"hot"`
	Warm         int64  `json:"warm"`
	Cold         int64  `json:"cold"`
	Associations int64  `json:"associations"`
	IndexPending int    `json:"index_pending"`
}

type statusBackup struct {
	Configured bool         `json:"configured"`
	Targets    []tui.Backup `json:"targets"`
}

type statusRequests struct {
	IntervalSeconds float64    `json:"interval_seconds"`
	PerSecond       float64    `json:"per_second"`
	Operations      []statusOp `json:"operations"`
}

type statusOp struct {
	Name       string   `json:"name"`
	PerSecond  *float64 `json:"per_second"`
	ErrorRatio *float64 `json:"error_ratio"`
	P99Seconds *float64 `json:"p99_seconds"`
}

func (s *statusCmd) run(ctx context.Context) error {
	a := s.app
	if s.interval < 0 || s.interval > time.Minute {
		return usagef("--interval %s: use between 0 (no rates) and 1m", s.interval)
	}
	c, err := a.serverClient(s.target, s.apiKeyEnv, "engram-ops-status")
	if err != nil {
		return err
	}
	rep := gatherStatus(ctx, c, s.interval)
	if a.global.output == "json" {
		if err := a.printJSON(rep); err != nil {
			return err
		}
	} else if rep.Health != "unreachable" {
		renderStatus(a.stdout, rep)
	}
	if rep.Health == "unreachable" || rep.Health == "error" {
		return fmt.Errorf("cannot read the server at %s: %s. Try: is it running there? engram-ops diagnose health --target %s --data-dir DIR checks the host",
			s.target, rep.Error, s.target)
	}
	return nil
}

// gatherStatus reads the health report once and /metrics twice, interval
// apart (once when interval is 0).
func gatherStatus(ctx context.Context, c *client.Client, interval time.Duration) statusReport {
	rep := statusReport{Target: c.BaseURL(), Time: time.Now().UTC(), Checks: []statusCheck{}, Spaces: []statusSpace{},
		Backup: statusBackup{Targets: []tui.Backup{}}}
	hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	h, herr := c.SystemHealth(hctx)
	cancel()
	if herr != nil && (h == nil || h.Status == "") {
		rep.Health = "unreachable"
		if client.StatusOf(herr) != 0 {
			rep.Health = "error"
		}
		rep.Error = herr.Error()
		return rep
	}
	rep.Health, rep.Version = h.Status, h.Version
	if h.UptimeSeconds > 0 {
		u := h.UptimeSeconds
		rep.UptimeSeconds = &u
	}
	if h.Durability != "" {
		d := h.Durability
		rep.Durability = &d
	}
	if h.Error == nil {
		seq := h.Changelog.Sequence
		rep.ChangelogSequence = &seq
	}
	for _, ch := range h.Checks {
		rep.Checks = append(rep.Checks, statusCheck{Name: ch.Name, Status: ch.Status, Message: ch.Message})
	}
	for _, sp := range h.Spaces {
		rep.Spaces = append(rep.Spaces, statusSpace{Name: sp.Space, Memories: sp.Memories, Hot: sp.Tiers.Hot, Warm: sp.Tiers.Warm,
			Cold: sp.Tiers.Cold, Associations: sp.Associations, IndexPending: sp.IndexPending})
	}
	rep.Backup.Configured = h.Backup.Configured

	snap, err := scrapeTwice(ctx, c, interval)
	if err != nil {
		rep.Error = "metrics: " + err.Error()
		return rep
	}
	rep.Disk = snap.Disk
	rep.Backup.Targets = append(rep.Backup.Targets, snap.Backup...)
	// The health report's backup.configured stays false while the server
	// ships; its backup metrics say it does.
	rep.Backup.Configured = rep.Backup.Configured || len(rep.Backup.Targets) > 0
	if snap.IntervalSeconds > 0 {
		r := &statusRequests{IntervalSeconds: snap.IntervalSeconds, Operations: []statusOp{}}
		for _, op := range snap.Operations {
			if op.PerSecond != nil {
				r.PerSecond += *op.PerSecond
			}
			r.Operations = append(r.Operations, statusOp{Name: op.Name, PerSecond: op.PerSecond, ErrorRatio: op.ErrorRatio, P99Seconds: op.P99})
		}
		rep.Requests = r
	}
	return rep
}

// scrapeTwice polls the server through the board's scraper twice,
// interval apart (once when interval is 0), and returns the last snapshot.
func scrapeTwice(ctx context.Context, c *client.Client, interval time.Duration) (tui.Snapshot, error) {
	sc := tui.NewScraper(tui.ClientSource{C: c}, nil, nil)
	poll := func() tui.Snapshot {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return sc.Poll(pctx)
	}
	snap := poll()
	if sc.Failures() == 0 && interval > 0 {
		select {
		case <-ctx.Done():
			return snap, ctx.Err()
		case <-time.After(interval):
		}
		snap = poll()
	}
	if sc.Failures() > 0 {
		return snap, fmt.Errorf("%s", snap.Health.Error)
	}
	return snap, nil
}

// renderStatus writes the text form of rep.
func renderStatus(w io.Writer, rep statusReport) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "target\t%s\n", rep.Target)
	fmt.Fprintf(tw, "health\t%s\n", rep.Health)
	if rep.Error != "" {
		fmt.Fprintf(tw, "error\t%s\n", rep.Error)
	}
	for _, c := range rep.Checks {
		if c.Status != "healthy" {
			fmt.Fprintf(tw, "  %s\t%s: %s\n", c.Name, c.Status, c.Message)
		}
	}
	uptime := "unknown"
	if rep.UptimeSeconds != nil {
		uptime = (time.Duration(*rep.UptimeSeconds) * time.Second).String()
	}
	fmt.Fprintf(tw, "version\t%s (up %s)\n", rep.Version, uptime)
	fmt.Fprintf(tw, "durability\t%s\n", orUnknown(rep.Durability))
	seq := "unknown"
	if rep.ChangelogSequence != nil {
		seq = strconv.FormatUint(*rep.ChangelogSequence, 10)
	}
	fmt.Fprintf(tw, "change log\tsequence %s\n", seq)
	fmt.Fprintf(tw, "disk\t%s\n", diskLine(rep.Disk))
	switch {
	case !rep.Backup.Configured && len(rep.Backup.Targets) == 0:
		fmt.Fprintf(tw, "backup\tnot configured (serve --backup-to)\n")
	case len(rep.Backup.Targets) == 0:
		fmt.Fprintf(tw, "backup\tconfigured, no figures yet\n")
	}
	for _, b := range rep.Backup.Targets {
		fmt.Fprintf(tw, "backup\t%s: RPO %s, last snapshot %s, shipped sequence %s, %s errors\n",
			b.Target, optSeconds(b.RPOSeconds), optTime(b.LastSnapshot), optNum(b.ShippedSequence), strconv.FormatFloat(b.Errors, 'f', -1, 64))
	}
	if r := rep.Requests; r != nil {
		var ops []string
		for _, op := range r.Operations {
			if op.PerSecond != nil && *op.PerSecond > 0 {
				ops = append(ops, fmt.Sprintf("%s %s/s", op.Name, rate(*op.PerSecond)))
			}
		}
		detail := ""
		if len(ops) > 0 {
			detail = " (" + strings.Join(ops, ", ") + ")"
		}
		fmt.Fprintf(tw, "requests\t%s/s over %s%s\n", rate(r.PerSecond), time.Duration(r.IntervalSeconds*float64(time.Second)).Round(time.Millisecond), detail)
	} else {
		fmt.Fprintf(tw, "requests\tnot measured (--interval 0)\n")
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SPACE\tMEMORIES\tHOT\tWARM\tCOLD\tASSOCIATIONS\tINDEX PENDING")
	for _, sp := range rep.Spaces {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\n", sp.Name, sp.Memories, sp.Hot, sp.Warm, sp.Cold, sp.Associations, sp.IndexPending)
	}
	if len(rep.Spaces) == 0 {
		fmt.Fprintln(tw, "(no spaces)")
	}
	_ = tw.Flush()
}

func diskLine(d tui.Disk) string {
	if d.FreeBytes == nil {
		return "unknown (the server exports no free-space figures)"
	}
	s := iec(*d.FreeBytes) + " free"
	if d.TotalBytes != nil {
		s += " of " + iec(*d.TotalBytes)
	}
	if d.ReserveBytes != nil {
		if *d.ReserveBytes > 0 {
			s += ", reserve " + iec(*d.ReserveBytes) + " (min_free_space)"
		} else {
			s += ", no reserve (min_free_space = 0)"
		}
	}
	if d.DataBytes != nil {
		s += ", data " + iec(*d.DataBytes)
	}
	if d.WritesRefused {
		s += "; WRITES REFUSED: free space is under the reserve"
	}
	return s
}

func orUnknown(s *string) string {
	if s == nil {
		return "unknown"
	}
	return *s
}

func optSeconds(v *float64) string {
	if v == nil {
		return "unknown"
	}
	return (time.Duration(*v * float64(time.Second))).Round(time.Millisecond).String()
}

func optTime(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}

func optNum(v *float64) string {
	if v == nil {
		return "unknown"
	}
	return strconv.FormatFloat(*v, 'f', -1, 64)
}

// rate formats a per-second figure: 0, 0.5, 12, 1234.
func rate(v float64) string {
	if v < 10 && v != math.Trunc(v) {
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

// iec formats a byte count in binary units: 512 B, 1.5 GiB.
func iec(v float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if i == 0 {
		return strconv.FormatFloat(v, 'f', 0, 64) + " B"
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + " " + units[i]
}
