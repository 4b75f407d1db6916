package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/spf13/cobra"

	"github.com/engram-ops/engram-ops/ops/api"
	"github.com/engram-ops/engram-ops/ops/client"
	"github.com/engram-ops/engram-ops/ops/config"
	"github.com/engram-ops/engram-ops/tui"
)

// diagnoseCmd is the `engram-ops diagnose` group: health checks of a
// server and its host, and the support bundle.
type diagnoseCmd struct {
	app *app

	target     string
	apiKeyEnv  string
	dataDir    string
	configPath string
	strict     bool

	host diagnoseHost
}

// diagnoseHost is what the checks read from the machine; tests replace
// parts of it (a nearly full filesystem, a lock holder, DAMON's state).
type diagnoseHost struct {
	now        func() time.Time
	filesystem func(path string) (fsStats, error)
	fileLimit  func() (soft, hard uint64, err error)
	lockHolder func(lockFile string) (pid int, err error)
	damonDir   string // DAMON's sysfs admin directory of kernel threads
}

// fsStats describes the filesystem of a data directory.
type fsStats struct {
	FreeBytes, TotalBytes   int64
	FreeInodes, TotalInodes uint64
}

func newDiagnoseCmd(a *app) *diagnoseCmd {
	return &diagnoseCmd{app: a, host: diagnoseHost{
		now:        time.Now,
		filesystem: hostFilesystem,
		fileLimit:  hostOpenFileLimit,
		lockHolder: hostLockHolder,
		damonDir:   "/sys/kernel/mm/damon/admin/kdamonds",
	}}
}

func (d *diagnoseCmd) command() *cobra.Command {
	group := &cobra.Command{
		Use:   "diagnose",
		Short: "Check a server and its host, or collect a support bundle",
		Example: `  engram-ops diagnose health --data-dir /var/lib/engram
  engram-ops diagnose bundle --data-dir /var/lib/engram --out engram-support.tar.gz`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	health := &cobra.Command{
		Use:   "health",
		Short: "Run every health check and print PASS / WARN / FAIL with the fix and the runbook section",
		Long: `Check a server and the host it runs on, each check printing PASS, WARN or FAIL
(SKIP when it could not run, saying why), the fix, and the runbook section that
explains it (engram-ops runbook show NAME).

Against the server at --target: reachability, readiness, every check of the
server's own health report, memory against its configured limit (GOMEMLIMIT /
server.memory_limit), the latency of a probe recall (asking for a threshold no
memory meets, so nothing is reinforced), metric sanity, backup freshness and RPO,
open files against the limit, and clock skew (the server's Date header against
this host's clock).

On this host, with --data-dir (else the data_dir of --config, or ./engram.toml
when it exists): the filesystem's free space against the reserve (min_free_space)
and its free inodes, the directory's permissions, which process holds the storage
engine's lock, this shell's open-file limit when the server does not answer, and
the kernel's DAMON reclaim, which stalls a core (runbook serving, "Stalls the
host's kernel causes").

When the server does not answer, reachability FAILs, the checks that need it are
skipped, and the host checks still run: they say whether a process still holds
the data directory (a hung server) or none does (a stopped one).

--output json prints {"target", "data_dir", "time", "checks": [{"name", "status",
"message", "fix", "runbook", "section"}], "summary": {"pass", "warn", "fail",
"skip"}}.

Exit status: 0 when no check FAILs (and none WARNs with --strict), 3 otherwise,
2 a bad flag.`,
		Example: `  engram-ops diagnose health --data-dir /var/lib/engram
  engram-ops diagnose health --target http://10.0.0.5:7432 --strict --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return d.runHealth(cmd.Context()) },
	}
	d.addFlags(health)
	health.Flags().BoolVar(&d.strict, "strict", false, "exit 3 on a WARN too")
	group.AddCommand(health, d.bundleCommand())
	return group
}

func (d *diagnoseCmd) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&d.target, "target", "http://127.0.0.1:7432", "base URL of the server")
	f.StringVar(&d.apiKeyEnv, "api-key-env", "ENGRAM_API_KEY", "name of the environment variable holding the API key")
	f.StringVar(&d.dataDir, "data-dir", "", "the server's data directory on this host (default: data_dir of --config)")
	f.StringVar(&d.configPath, "config", "", "the server's configuration file (reserve, data directory)")
}

// Check outcomes.
const (
	diagPass = "PASS"
	diagWarn = "WARN"
	diagFail = "FAIL"
	diagSkip = "SKIP"
)

// diagCheck is one check's outcome.
type diagCheck struct {
	Name    string `json:"name"`
	Status  string `json:"status"`
	Message string `json:"message"`
	Fix     string `json:"fix,omitempty"`
	Runbook string `json:"runbook,omitempty"`
	Section string `json:"section,omitempty"`
}

// diagReport is the --output json shape of diagnose health.
type diagReport struct {
	Target  string      `json:"target"`
	DataDir string      `json:"data_dir"`
	Time    time.Time   `json:"time"`
	Checks  []diagCheck `json:"checks"`
	Summary struct {
		Pass int `json:"pass"`
		Warn int `json:"warn"`
		Fail int `json:"fail"`
		Skip int `json:"skip"`
	} `json:"summary"`
}

// runbookRef names a runbook and a heading in it.
type runbookRef struct{ name, section string }

// diagRunbooks is where each check's fix is explained; a test checks that
// every section exists.
var diagRunbooks = map[string]runbookRef{
	"reachability":      {"alerts/EngramDown", "First checks"},
	"readiness":         {"alerts/EngramDown", "Mitigation"},
	"server engine":     {"disaster-recovery", "Corruption (the data directory is damaged, the server will not start)"},
	"server storage":    {"serving", "Disk space"},
	"server index":      {"alerts/IndexBacklogGrowing", "Mitigation"},
	"server error_rate": {"alerts/HighErrorRate", "First checks"},
	"server background": {"serving", "Logs"},
	"server security":   {"security", "Exposure"},
	"server":            {"serving", "Check"},
	"disk space":        {"serving", "Disk space"},
	"inodes":            {"serving", "Disk space"},
	"permissions":       {"serving", "Data directory"},
	"lock holder":       {"serving", "Data directory"},
	"open files":        {"serving", "Open files"},
	"memory":            {"serving", "Memory and garbage collection"},
	"probe recall":      {"alerts/HighRecallLatency", "First checks"},
	"metrics":           {"serving", "Check"},
	"backup":            {"alerts/BackupRPOHigh", "Mitigation"},
	"backup none":       {"disaster-recovery", "Retention and routine checks"},
	"clock skew":        {"serving", "Clock"},
	"kernel reclaim":    {"serving", "Stalls the host's kernel causes"},
}

// add appends a check, with the runbook section of key (its name when
// key is "").
func (r *diagReport) add(name, status, msg, fix, key string) {
	if key == "" {
		key = name
	}
	c := diagCheck{Name: name, Status: status, Message: msg, Fix: fix}
	if ref, ok := diagRunbooks[key]; ok && status != diagPass && status != diagSkip {
		c.Runbook, c.Section = ref.name, ref.section
	}
	r.Checks = append(r.Checks, c)
}

// Thresholds of the checks this command judges itself.
const (
	probeRecallWarn  = 250 * time.Millisecond
	probeRecallFail  = 5 * time.Second
	clockSkewWarn    = 2 * time.Second
	clockSkewFail    = 5 * time.Minute
	backupRPOWarn    = 300  // seconds: alert BackupRPOHigh
	backupRPOFail    = 3600 // seconds
	snapshotStale    = 26 * time.Hour
	minOpenFiles     = 4096
	inodesWarnShare  = 0.05
	inodesFailShare  = 0.01
	fileUseWarnShare = 0.8
	fileUseFailShare = 0.95
)

// server is what diagnose read from the server.
type serverView struct {
	reachable bool
	err       error
	date      time.Time     // the Date header of the liveness answer
	rtt       time.Duration // of the liveness request
	health    *api.SystemHealth
	metrics   []byte
	fams      map[string]*dto.MetricFamily
	snap      tui.Snapshot
}

func (d *diagnoseCmd) runHealth(ctx context.Context) error {
	a := d.app
	rep, err := d.diagnose(ctx)
	if err != nil {
		return err
	}
	if a.global.output == "json" {
		if err := a.printJSON(rep); err != nil {
			return err
		}
	} else {
		d.render(a.stdout, rep)
	}
	switch {
	case rep.Summary.Fail > 0:
		return &checkFailed{msg: fmt.Sprintf("diagnose: %d check(s) FAILED, %d WARNED", rep.Summary.Fail, rep.Summary.Warn)}
	case d.strict && rep.Summary.Warn > 0:
		return &checkFailed{msg: fmt.Sprintf("diagnose: %d check(s) WARNED (--strict)", rep.Summary.Warn)}
	}
	return nil
}

// diagnose runs every check.
func (d *diagnoseCmd) diagnose(ctx context.Context) (*diagReport, error) {
	cfg, dataDir, err := d.loadConfig()
	if err != nil {
		return nil, err
	}
	c, err := d.app.serverClient(d.target, d.apiKeyEnv, "engram-ops-diagnose")
	if err != nil {
		return nil, err
	}
	rep := &diagReport{Target: c.BaseURL(), DataDir: dataDir, Time: d.host.now().UTC()}
	sv := d.readServer(ctx, c)
	d.serverChecks(ctx, rep, c, sv)
	d.hostChecks(rep, sv, cfg, dataDir)
	rep.tally()
	return rep, nil
}

// tally counts the checks by outcome into Summary.
func (r *diagReport) tally() {
	for _, ch := range r.Checks {
		switch ch.Status {
		case diagPass:
			r.Summary.Pass++
		case diagWarn:
			r.Summary.Warn++
		case diagFail:
			r.Summary.Fail++
		default:
			r.Summary.Skip++
		}
	}
}

// loadConfig reads --config (else ./engram.toml when it exists) and the
// environment, for the reserve and the data directory. Problems in the
// file do not stop diagnose: the defaults stand in for what is unreadable.
func (d *diagnoseCmd) loadConfig() (config.Config, string, error) {
	cfg, file, err := config.Load(d.configPath, d.app.getenv)
	if err != nil && d.configPath != "" {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return cfg, "", usagef("--config: %v", err)
		}
	}
	dir := d.dataDir
	if dir == "" && file != "" {
		dir = cfg.DataDir // relative to the working directory, as serve reads it
	}
	return cfg, dir, nil
}

// readServer fetches liveness (with its Date header), the health report
// and /metrics.
func (d *diagnoseCmd) readServer(ctx context.Context, c *client.Client) *serverView {
	sv := &serverView{}
	hc := &http.Client{Timeout: 5 * time.Second, Transport: client.DefaultTransport()}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.BaseURL()+api.PathHealthAlive, nil)
	if err != nil {
		sv.err = err
		return sv
	}
	t0 := d.host.now()
	resp, err := hc.Do(req)
	if err != nil {
		sv.err = err
		return sv
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	sv.rtt = d.host.now().Sub(t0)
	if resp.StatusCode != http.StatusOK {
		sv.err = fmt.Errorf("%s answered %s: is --target an engram-ops server?", api.PathHealthAlive, resp.Status)
		return sv
	}
	sv.reachable = true
	if t, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
		sv.date = t
	}
	hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	h, herr := c.SystemHealth(hctx)
	if h != nil && h.Status != "" {
		sv.health = h
	} else if herr != nil {
		sv.err = herr
	}
	if body, merr := c.Metrics(hctx); merr == nil {
		sv.metrics = body
		sv.fams, merr = tui.ParseMetrics(tui.Exposition{Body: body}) // Metrics asks for text
		if merr != nil {
			sv.err = errors.Join(sv.err, merr)
		}
	} else {
		sv.err = errors.Join(sv.err, merr)
	}
	sc := tui.NewScraper(tui.ClientSource{C: c}, nil, nil)
	sv.snap = sc.Observe(d.host.now(), sv.health, herr, tui.Exposition{Body: sv.metrics}, nil)
	return sv
}

func (d *diagnoseCmd) serverChecks(ctx context.Context, rep *diagReport, c *client.Client, sv *serverView) {
	if !sv.reachable {
		rep.add("reachability", diagFail, fmt.Sprintf("no answer at %s: %v", c.BaseURL(), sv.err),
			"start the server (engram-ops serve), or point --target at it; the host checks below say whether a process still holds the data directory", "")
		// Open files are judged against this shell's limit in the host checks.
		for _, n := range []string{"readiness", "server report", "memory", "probe recall", "metrics", "backup", "clock skew"} {
			rep.add(n, diagSkip, "the server does not answer", "", "")
		}
		return
	}
	rep.add("reachability", diagPass, fmt.Sprintf("the server answers at %s (%s)", c.BaseURL(), sv.rtt.Round(time.Millisecond)), "", "")

	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := c.Ready(rctx); err != nil {
		rep.add("readiness", diagFail, "not ready: "+err.Error(), "read the server log; the report below names the failing part", "")
	} else {
		rep.add("readiness", diagPass, "ready to serve", "", "")
	}

	h := sv.health
	if h == nil {
		rep.add("server report", diagFail, fmt.Sprintf("no health report: %v", sv.err),
			"give a key with --api-key-env NAME (an admin or read key), or check the server log", "server")
	} else {
		for _, ch := range h.Checks {
			if ch.Name == "memory" {
				continue // judged below, with its figures
			}
			status := diagPass
			switch ch.Status {
			case "degraded":
				status = diagWarn
			case "unhealthy":
				status = diagFail
			}
			key := "server " + ch.Name
			if _, ok := diagRunbooks[key]; !ok {
				key = "server"
			}
			fix := ""
			if status != diagPass {
				fix = "see the runbook section; GET /api/v1/system/health shows the figures this check judged"
			}
			rep.add("server: "+ch.Name, status, ch.Message, fix, key)
		}
	}
	d.memoryCheck(rep, h, sv)
	d.probeRecall(ctx, rep, c, h)
	d.metricsCheck(rep, sv)
	d.backupCheck(rep, sv)
	d.openFilesOnline(rep, sv)
	d.clockCheck(rep, sv)
}

func (d *diagnoseCmd) memoryCheck(rep *diagReport, h *api.SystemHealth, sv *serverView) {
	var fig map[string]float64
	if h != nil {
		for _, ch := range h.Checks {
			if ch.Name == "memory" {
				fig = ch.Figures
			}
		}
	}
	if fig == nil {
		rep.add("memory", diagSkip, "the health report has no memory figures", "", "")
		return
	}
	used := fig["go_total_bytes"]
	rss := ""
	if v, ok := gauge(sv.fams, "process_resident_memory_bytes"); ok {
		rss = ", resident " + iec(v)
	}
	limit, ok := fig["gomemlimit_bytes"]
	if !ok || limit <= 0 {
		rep.add("memory", diagPass, fmt.Sprintf("Go memory %s%s; no limit is configured (server.memory_limit, GOMEMLIMIT)", iec(used), rss), "", "")
		return
	}
	share := used / limit
	msg := fmt.Sprintf("Go memory %s is %.0f%% of the %s limit%s", iec(used), share*100, iec(limit), rss)
	switch {
	case share > 1:
		rep.add("memory", diagFail, msg, "the collector cannot keep the heap under the limit: raise server.memory_limit with the machine's memory, or reduce tiers.hot_capacity", "")
	case share > 0.9:
		rep.add("memory", diagWarn, msg, "near the limit the collector runs often and latency rises: raise server.memory_limit or reduce tiers.hot_capacity", "")
	default:
		rep.add("memory", diagPass, msg, "", "")
	}
}

func (d *diagnoseCmd) probeRecall(ctx context.Context, rep *diagReport, c *client.Client, h *api.SystemHealth) {
	if h == nil || len(h.Spaces) == 0 {
		rep.add("probe recall", diagSkip, "no space to recall from", "", "")
		return
	}
	space := h.Spaces[0].Space
	for _, sp := range h.Spaces {
		if sp.Space == "default" {
			space = "default"
		}
	}
	pctx, cancel := context.WithTimeout(ctx, probeRecallFail+time.Second)
	defer cancel()
	t0 := time.Now()
	_, err := c.WithSpace(space).Recall(pctx, api.RecallRequest{Query: "engram-ops diagnose probe", MaxResults: 1, Threshold: 1})
	took := time.Since(t0)
	switch {
	case err != nil && (client.StatusOf(err) == http.StatusUnauthorized || client.StatusOf(err) == http.StatusForbidden):
		rep.add("probe recall", diagSkip, fmt.Sprintf("space %q: %v", space, err), "", "")
	case err != nil:
		rep.add("probe recall", diagFail, fmt.Sprintf("recall in space %q failed after %s: %v", space, took.Round(time.Millisecond), err),
			"read the server log for the request; the runbook lists what slows or breaks recall", "")
	case took > probeRecallFail:
		rep.add("probe recall", diagFail, fmt.Sprintf("recall in space %q took %s (FAIL above %s)", space, took.Round(time.Millisecond), probeRecallFail), "see the runbook", "")
	case took > probeRecallWarn:
		rep.add("probe recall", diagWarn, fmt.Sprintf("recall in space %q took %s (WARN above %s)", space, took.Round(time.Millisecond), probeRecallWarn), "see the runbook", "")
	default:
		rep.add("probe recall", diagPass, fmt.Sprintf("recall in space %q took %s", space, took.Round(time.Millisecond)), "", "")
	}
}

// requiredFamilies are metric families every engram-ops server exports.
var requiredFamilies = []string{"engram_build_info", "engram_changelog_sequence", "engram_http_requests_total",
	"engram_storage_disk_free_bytes", "engram_storage_min_free_bytes", "process_open_fds"}

func (d *diagnoseCmd) metricsCheck(rep *diagReport, sv *serverView) {
	if sv.fams == nil {
		rep.add("metrics", diagFail, fmt.Sprintf("/metrics could not be read: %v", sv.err),
			"with auth.metrics = \"key\" give a key with --api-key-env; otherwise read the server log", "")
		return
	}
	var missing, bad []string
	for _, n := range requiredFamilies {
		if _, ok := sv.fams[n]; !ok {
			missing = append(missing, n)
		}
	}
	for name, fam := range sv.fams {
		for _, m := range fam.GetMetric() {
			var v float64
			switch {
			case m.Counter != nil:
				v = m.Counter.GetValue()
			case m.Gauge != nil:
				v = m.Gauge.GetValue()
			default:
				continue
			}
			if math.IsNaN(v) || math.IsInf(v, 0) || m.Counter != nil && v < 0 {
				bad = append(bad, name)
				break
			}
		}
	}
	sort.Strings(bad)
	switch {
	case len(missing) > 0:
		rep.add("metrics", diagWarn, "/metrics lacks "+strings.Join(missing, ", "),
			"dashboards and alerts need these: is something between this host and the server filtering /metrics?", "")
	case len(bad) > 0:
		rep.add("metrics", diagWarn, "NaN, infinite or negative values in "+strings.Join(bad, ", "), "report it with a support bundle (engram-ops diagnose bundle)", "")
	default:
		rep.add("metrics", diagPass, fmt.Sprintf("%d metric families parse; the required ones are present", len(sv.fams)), "", "")
	}
}

func (d *diagnoseCmd) backupCheck(rep *diagReport, sv *serverView) {
	if sv.fams == nil {
		rep.add("backup", diagSkip, "no metrics to read backup figures from", "", "")
		return
	}
	if len(sv.snap.Backup) == 0 {
		rep.add("backup", diagWarn, "the server ships no backups: losing the disk loses every memory",
			"serve --backup-to s3://bucket/prefix (or file:///dir on another disk)", "backup none")
		return
	}
	now := d.host.now()
	status := diagPass
	var msgs []string
	worse := func(s string) {
		if s == diagFail || status == diagPass {
			status = s
		}
	}
	for _, b := range sv.snap.Backup {
		m := b.Target + ":"
		switch {
		case b.RPOSeconds == nil:
			m += " RPO unknown"
			worse(diagWarn)
		case *b.RPOSeconds > backupRPOFail:
			m += fmt.Sprintf(" RPO %.0fs (FAIL above %ds)", *b.RPOSeconds, backupRPOFail)
			worse(diagFail)
		case *b.RPOSeconds > backupRPOWarn:
			m += fmt.Sprintf(" RPO %.0fs (WARN above %ds)", *b.RPOSeconds, backupRPOWarn)
			worse(diagWarn)
		default:
			m += fmt.Sprintf(" RPO %.1fs", *b.RPOSeconds)
		}
		switch {
		case b.LastSnapshot == nil:
			m += ", no snapshot yet"
			worse(diagWarn)
		case now.Sub(*b.LastSnapshot) > snapshotStale:
			m += fmt.Sprintf(", last snapshot %s ago (WARN above %s)", now.Sub(*b.LastSnapshot).Round(time.Minute), snapshotStale)
			worse(diagWarn)
		default:
			m += ", last snapshot " + b.LastSnapshot.UTC().Format(time.RFC3339)
		}
		msgs = append(msgs, m)
	}
	fix := ""
	if status != diagPass {
		fix = "engram-ops backup list --target URL shows what the archive holds; the server log names shipping errors"
	}
	rep.add("backup", status, strings.Join(msgs, "; "), fix, "")
}

func (d *diagnoseCmd) openFilesOnline(rep *diagReport, sv *serverView) {
	open, ok1 := gauge(sv.fams, "process_open_fds")
	limit, ok2 := gauge(sv.fams, "process_max_fds")
	if !ok1 || !ok2 || limit <= 0 {
		rep.add("open files", diagSkip, "the server exports no process_open_fds / process_max_fds", "", "")
		return
	}
	share := open / limit
	msg := fmt.Sprintf("the server has %.0f files open of its limit %.0f", open, limit)
	fix := "raise the server's limit: LimitNOFILE= in its systemd unit, ulimit -n in its shell"
	switch {
	case share > fileUseFailShare:
		rep.add("open files", diagFail, msg, fix, "")
	case share > fileUseWarnShare:
		rep.add("open files", diagWarn, msg, fix, "")
	case limit < minOpenFiles:
		rep.add("open files", diagWarn, fmt.Sprintf("%s: a limit under %d runs out as the store grows", msg, minOpenFiles), fix, "")
	default:
		rep.add("open files", diagPass, msg, "", "")
	}
}

func (d *diagnoseCmd) clockCheck(rep *diagReport, sv *serverView) {
	if sv.date.IsZero() {
		rep.add("clock skew", diagSkip, "the server sent no Date header", "", "")
		return
	}
	// Date has whole seconds: compare against the local time halfway
	// through the request, truncated the same way.
	local := d.host.now().Add(-sv.rtt / 2).Truncate(time.Second)
	skew := sv.date.Sub(local)
	msg := fmt.Sprintf("the server's clock is %s from this host's", skew.Abs())
	if skew > 0 {
		msg += " (ahead)"
	} else if skew < 0 {
		msg += " (behind)"
	}
	fix := "run time synchronisation (chrony or systemd-timesyncd) on both hosts: restore --to-time and backup timestamps use the server's clock"
	switch {
	case skew.Abs() > clockSkewFail:
		rep.add("clock skew", diagFail, msg, fix, "")
	case skew.Abs() > clockSkewWarn:
		rep.add("clock skew", diagWarn, msg, fix, "")
	default:
		rep.add("clock skew", diagPass, msg, "", "")
	}
}

// hostChecks judge this host and the data directory.
func (d *diagnoseCmd) hostChecks(rep *diagReport, sv *serverView, cfg config.Config, dir string) {
	d.diskCheck(rep, sv, cfg, dir)
	if dir == "" {
		for _, n := range []string{"permissions", "lock holder"} {
			rep.add(n, diagSkip, "no --data-dir (or --config naming data_dir) given", "", "")
		}
	} else {
		if d.permissionsCheck(rep, dir) {
			d.lockCheck(rep, sv, dir)
		} else {
			rep.add("lock holder", diagSkip, "the data directory is not usable (see permissions)", "", "")
		}
	}
	if !sv.reachable {
		d.openFilesOffline(rep)
	}
	d.damonCheck(rep)
}

func (d *diagnoseCmd) diskCheck(rep *diagReport, sv *serverView, cfg config.Config, dir string) {
	var free, total float64
	reserve := float64(cfg.MinFreeSpace)
	refused := false
	source := ""
	var fs fsStats
	var haveFS bool
	if dir != "" {
		if _, err := os.Stat(dir); err == nil {
			st, err := d.host.filesystem(dir)
			if err != nil {
				rep.add("disk space", diagWarn, fmt.Sprintf("cannot measure the filesystem of %s: %v", dir, err), "check the path and this user's access to it", "")
			} else {
				fs, haveFS = st, true
				free, total, source = float64(st.FreeBytes), float64(st.TotalBytes), "the filesystem of "+dir
			}
		}
	}
	if sv.reachable && sv.snap.Disk.ReserveBytes != nil {
		reserve = *sv.snap.Disk.ReserveBytes
		refused = sv.snap.Disk.WritesRefused
		if !haveFS && sv.snap.Disk.FreeBytes != nil {
			free, source = *sv.snap.Disk.FreeBytes, "the server's data directory"
			if sv.snap.Disk.TotalBytes != nil {
				total = *sv.snap.Disk.TotalBytes
			}
		}
	}
	if source == "" {
		if !hasCheck(rep, "disk space") {
			rep.add("disk space", diagSkip, "neither the server's figures nor a --data-dir to measure", "", "")
		}
	} else {
		msg := fmt.Sprintf("%s has %s free of %s; the reserve (min_free_space) is %s", source, iec(free), iec(total), iec(reserve))
		fix := "free space on that filesystem (old backups, logs), grow it, or move the data directory; do not lower min_free_space below twice the 32 MiB memtable"
		switch {
		case refused || reserve > 0 && free < reserve:
			rep.add("disk space", diagFail, msg+": under the reserve, writes are refused (507)", fix, "")
		case reserve > 0 && free < 2*reserve:
			rep.add("disk space", diagWarn, msg+": less than twice the reserve, writes will be refused soon", fix, "")
		case total > 0 && free < 0.05*total:
			rep.add("disk space", diagWarn, msg+": under 5% of the filesystem is free", fix, "")
		default:
			rep.add("disk space", diagPass, msg, "", "")
		}
	}
	switch {
	case !haveFS:
		rep.add("inodes", diagSkip, "no --data-dir to measure", "", "")
	case fs.TotalInodes == 0:
		rep.add("inodes", diagPass, "the filesystem has no fixed inode count", "", "")
	default:
		share := float64(fs.FreeInodes) / float64(fs.TotalInodes)
		msg := fmt.Sprintf("%d of %d inodes free (%.1f%%)", fs.FreeInodes, fs.TotalInodes, share*100)
		fix := "remove files on that filesystem (many small files elsewhere), or move the data directory"
		switch {
		case share < inodesFailShare:
			rep.add("inodes", diagFail, msg+": new files (flushes, compactions) fail soon", fix, "")
		case share < inodesWarnShare:
			rep.add("inodes", diagWarn, msg, fix, "")
		default:
			rep.add("inodes", diagPass, msg, "", "")
		}
	}
}

func hasCheck(rep *diagReport, name string) bool {
	for _, c := range rep.Checks {
		if c.Name == name {
			return true
		}
	}
	return false
}

// permissionsCheck reports whether dir is a directory this user can use.
func (d *diagnoseCmd) permissionsCheck(rep *diagReport, dir string) bool {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		rep.add("permissions", diagFail, dir+" does not exist", "give the server's data_dir (--data-dir); serve creates it on first start", "")
		return false
	case err != nil:
		rep.add("permissions", diagFail, fmt.Sprintf("cannot read %s: %v", dir, err), "run diagnose as the server's user, or fix the directory's permissions", "")
		return false
	case !fi.IsDir():
		rep.add("permissions", diagFail, dir+" is not a directory", "give the server's data_dir (--data-dir)", "")
		return false
	}
	msg := fmt.Sprintf("%s: mode %s, owner uid %d", dir, fi.Mode().Perm(), fileOwner(fi))
	if fi.Mode().Perm()&0o700 != 0o700 {
		rep.add("permissions", diagFail, msg+": the owner cannot read, write and enter it", "chmod u+rwx "+dir+" (as its owner or root)", "")
		return false
	}
	if err := accessible(dir); err != nil {
		rep.add("permissions", diagWarn, fmt.Sprintf("%s; this user (uid %d) cannot use it: %v", msg, os.Geteuid(), err),
			"run diagnose as the server's user to check what it sees", "")
		return false
	}
	if db := filepath.Join(dir, "db"); dirExists(db) {
		if err := accessible(db); err != nil {
			rep.add("permissions", diagFail, fmt.Sprintf("%s: %v", db, err), "chown -R the data directory to the server's user", "")
			return false
		}
	}
	rep.add("permissions", diagPass, msg, "", "")
	return true
}

func dirExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

func (d *diagnoseCmd) lockCheck(rep *diagReport, sv *serverView, dir string) {
	lock := filepath.Join(dir, "db", "LOCK")
	if _, err := os.Stat(lock); errors.Is(err, os.ErrNotExist) {
		rep.add("lock holder", diagWarn, dir+" holds no store (no db/LOCK)", "check --data-dir names the server's data_dir", "")
		return
	}
	pid, err := d.host.lockHolder(lock)
	if err != nil {
		rep.add("lock holder", diagWarn, fmt.Sprintf("cannot tell who holds %s: %v", lock, err), "lsof "+lock, "")
		return
	}
	who := fmt.Sprintf("process %d", pid)
	if name := processName(pid); name != "" {
		who += " (" + name + ")"
	}
	switch {
	case pid != 0 && sv.reachable:
		rep.add("lock holder", diagPass, who+" holds the storage engine's lock", "", "")
	case pid != 0:
		rep.add("lock holder", diagFail, who+" holds the storage engine's lock, but no server answers at "+rep.Target,
			fmt.Sprintf("a hung server, or one listening elsewhere: kill -QUIT %d writes its goroutines to its log, then stop it before starting another", pid), "")
	case sv.reachable:
		rep.add("lock holder", diagWarn, "no process holds the lock on "+dir+" although a server answers at "+rep.Target,
			"--data-dir is probably not that server's data directory", "")
	default:
		rep.add("lock holder", diagPass, "no process holds the lock: the server is stopped; engram-ops serve --data-dir "+dir+" starts it", "", "")
	}
}

func (d *diagnoseCmd) openFilesOffline(rep *diagReport) {
	soft, hard, err := d.host.fileLimit()
	if err != nil {
		rep.add("open files", diagSkip, "cannot read this shell's open-file limit: "+err.Error(), "", "")
		return
	}
	msg := fmt.Sprintf("this shell's open-file limit is %d (hard %d); a server started from it inherits it", soft, hard)
	if soft < minOpenFiles {
		rep.add("open files", diagWarn, fmt.Sprintf("%s: under %d, a growing store runs out", msg, minOpenFiles),
			"ulimit -n 65536 before starting the server, or LimitNOFILE=65536 in its systemd unit", "")
		return
	}
	rep.add("open files", diagPass, msg, "", "")
}

func (d *diagnoseCmd) damonCheck(rep *diagReport) {
	states, _ := filepath.Glob(filepath.Join(d.host.damonDir, "*", "state"))
	if len(states) == 0 {
		rep.add("kernel reclaim", diagPass, "DAMON is not available or has no kernel threads on this host", "", "")
		return
	}
	sort.Strings(states)
	var on []string
	for _, s := range states {
		b, err := os.ReadFile(s)
		if err == nil && strings.TrimSpace(string(b)) == "on" {
			on = append(on, filepath.Base(filepath.Dir(s)))
		}
	}
	if len(on) == 0 {
		rep.add("kernel reclaim", diagPass, "DAMON's kernel threads are off", "", "")
		return
	}
	rep.add("kernel reclaim", diagWarn, fmt.Sprintf("DAMON kdamond %s is on on this host: its reclaim passes hold a core with interrupts off and set recall's p99", strings.Join(on, ", ")),
		fmt.Sprintf("where memory is to spare: echo off > %s", filepath.Join(d.host.damonDir, on[0], "state")), "")
}

// gauge is the sum of a family's gauge (or untyped) values.
func gauge(fams map[string]*dto.MetricFamily, name string) (float64, bool) {
	fam, ok := fams[name]
	if !ok || len(fam.GetMetric()) == 0 {
		return 0, false
	}
	var v float64
	for _, m := range fam.GetMetric() {
		switch {
		case m.Gauge != nil:
			v += m.Gauge.GetValue()
		case m.Untyped != nil:
			v += m.Untyped.GetValue()
		case m.Counter != nil:
			v += m.Counter.GetValue()
		}
	}
	return v, true
}

// render writes the text form of rep.
func (d *diagnoseCmd) render(w io.Writer, rep *diagReport) {
	a := d.app
	colors := map[string]string{diagPass: "green", diagWarn: "yellow", diagFail: "red", diagSkip: "bold"}
	for _, c := range rep.Checks {
		fmt.Fprintf(w, "%s  %-20s %s\n", a.paint(w, colors[c.Status], c.Status), c.Name, c.Message)
		if c.Fix != "" {
			fmt.Fprintf(w, "      %-20s fix: %s\n", "", c.Fix)
		}
		if c.Runbook != "" {
			fmt.Fprintf(w, "      %-20s runbook: %s, section %q (engram-ops runbook show %s)\n", "", c.Runbook, c.Section, c.Runbook)
		}
	}
	s := rep.Summary
	fmt.Fprintf(w, "\n%d PASS, %d WARN, %d FAIL, %d SKIP\n", s.Pass, s.Warn, s.Fail, s.Skip)
}
