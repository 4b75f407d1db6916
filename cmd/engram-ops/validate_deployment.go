package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/engram-ops/engram-ops/backup"
	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/ops/config"
)

// deploymentCmd is `engram-ops validate deployment`: the pre-flight checks
// of a host before serve runs on it, reported like diagnose health.
type deploymentCmd struct {
	app  *app
	diag *diagnoseCmd // its host probes, disk and open-file checks, and renderer

	configPath string
	listen     string
	dataDir    string
	backupTo   string

	// memTotal is the host's physical memory and the cgroup's limit
	// (0: none); tests replace it.
	memTotal func() (physical, cgroup int64, err error)
}

func (v *validateCmd) deploymentCommand() *cobra.Command {
	d := &deploymentCmd{app: v.app, diag: newDiagnoseCmd(v.app), memTotal: hostMemory}
	cmd := &cobra.Command{
		Use:   "deployment",
		Short: "Pre-flight checks of a host before serve runs on it",
		Long: `Check, before starting a server, what would stop it or hurt it later. Each check
prints PASS, WARN or FAIL (SKIP when it cannot run here) with the fix, as
engram-ops diagnose health does:

  config          the configuration (--config, else ./engram.toml when present, then
                  ENGRAM_* variables) is valid: every problem is listed
  listen          the listen address (--listen, else listen) is free: bound and released
  data directory  the data directory (--data-dir, else data_dir) exists or can be
                  created, is writable (a probe file is created and removed), and no
                  server holds it
  disk space      its filesystem's free space against min_free_space, and free inodes
  open files      this shell's open-file limit, which a server started from it inherits
  memory          server.memory_limit against the host's memory (and its cgroup's limit)
  backup target   the backup target (--backup-to, else backup.to) is reachable and
                  writable: a probe object is written, read back and removed

--output json prints the shape of diagnose health: {"target", "data_dir", "time",
"checks": [{"name", "status", "message", "fix", "runbook", "section"}], "summary"}.

Exit status: 0 when no check FAILs, 3 otherwise, 2 a bad flag.`,
		Example: `  engram-ops validate deployment --config /etc/engram/engram.toml
  engram-ops validate deployment --listen 0.0.0.0:7432 --data-dir /var/lib/engram --backup-to s3://my-bucket/engram`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return d.run(cmd.Context()) },
	}
	f := cmd.Flags()
	f.StringVar(&d.configPath, "config", "", "the configuration file serve will read (default ./engram.toml when present)")
	f.StringVar(&d.listen, "listen", "", "the address serve will listen on (default: listen of the configuration)")
	f.StringVar(&d.dataDir, "data-dir", "", "the data directory serve will use (default: data_dir of the configuration)")
	f.StringVar(&d.backupTo, "backup-to", "", "the backup target: s3://bucket/prefix or file:///dir (default: backup.to of the configuration)")
	return cmd
}

func (d *deploymentCmd) run(ctx context.Context) error {
	a := d.app
	rep := &diagReport{Time: time.Now().UTC(), Checks: []diagCheck{}}
	cfg := d.configCheck(rep)
	listen := firstNonEmpty(d.listen, cfg.Listen)
	dir := firstNonEmpty(d.dataDir, cfg.DataDir)
	rep.Target, rep.DataDir = listen, dir
	d.listenCheck(rep, listen)
	if measure := d.dataDirCheck(rep, dir); measure != "" {
		d.diag.diskCheck(rep, &serverView{}, cfg, measure)
	} else {
		rep.add("disk space", diagSkip, "the data directory is not usable (see data directory)", "", "")
	}
	d.diag.openFilesOffline(rep)
	d.memoryCheck(rep, cfg)
	d.backupCheck(ctx, rep, firstNonEmpty(d.backupTo, cfg.Backup.To))
	rep.tally()
	if a.global.output == "json" {
		if err := a.printJSON(rep); err != nil {
			return err
		}
	} else {
		d.diag.render(a.stdout, rep)
	}
	if rep.Summary.Fail > 0 {
		return &checkFailed{msg: fmt.Sprintf("validate deployment: %d check(s) FAILED, %d WARNED", rep.Summary.Fail, rep.Summary.Warn)}
	}
	return nil
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// configCheck loads the configuration as serve would (file, then the
// environment) and validates it; the defaults stand in for what is wrong.
func (d *deploymentCmd) configCheck(rep *diagReport) config.Config {
	cfg, file, err := config.Load(d.configPath, d.app.getenv)
	problems := append(config.Problems(err), config.Problems(cfg.Validate())...)
	src := "the built-in defaults (no --config, no ./engram.toml)"
	if file != "" {
		src = file
	}
	if len(problems) == 0 {
		rep.add("config", diagPass, src+": valid", "", "")
		return cfg
	}
	msgs := make([]string, len(problems))
	for i, p := range problems {
		msgs[i] = p.Error()
	}
	fix := "fix each problem"
	if file != "" {
		fix += "; engram-ops validate config " + file + " lists them"
	}
	rep.add("config", diagFail, fmt.Sprintf("%s: %d problem(s): %s", src, len(problems), strings.Join(msgs, "; ")), fix, "")
	return cfg
}

func (d *deploymentCmd) listenCheck(rep *diagReport, addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		rep.add("listen", diagFail, fmt.Sprintf("cannot listen on %s: %v", addr, err),
			"stop what holds the port (ss -ltnp 'sport = :PORT' names it), or choose another address (--listen / listen)", "")
		return
	}
	bound := ln.Addr().String()
	_ = ln.Close()
	rep.add("listen", diagPass, fmt.Sprintf("%s is free (bound and released %s)", addr, bound), "", "")
}

// dataDirCheck checks that dir (or, when it does not exist yet, the parent
// serve creates it in) is usable, and returns the directory whose
// filesystem to measure ("" when neither is usable).
func (d *deploymentCmd) dataDirCheck(rep *diagReport, dir string) string {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		parent := filepath.Dir(filepath.Clean(dir))
		if perr := probeWrite(parent); perr != nil {
			rep.add("data directory", diagFail, fmt.Sprintf("%s does not exist and serve cannot create it: %v", dir, perr),
				"create it as the server's user (install -d -o USER "+dir+"), or choose another --data-dir", "")
			return ""
		}
		rep.add("data directory", diagPass, dir+" does not exist yet; serve creates it (its parent is writable)", "", "")
		return parent
	case err != nil:
		rep.add("data directory", diagFail, fmt.Sprintf("cannot read %s: %v", dir, err), "run as the server's user, or fix the permissions", "permissions")
		return ""
	case !fi.IsDir():
		rep.add("data directory", diagFail, dir+" is not a directory", "choose another --data-dir", "permissions")
		return ""
	}
	if err := probeWrite(dir); err != nil {
		rep.add("data directory", diagFail, fmt.Sprintf("%s is not writable: %v", dir, err), "chown -R the data directory to the server's user", "permissions")
		return ""
	}
	if dirExists(filepath.Join(dir, "db")) {
		release, err := core.LockDataDir(dir)
		if err != nil {
			rep.add("data directory", diagFail, err.Error(), "a server already runs on it: stop it, or choose another --data-dir", "lock holder")
			return ""
		}
		_ = release()
		rep.add("data directory", diagPass, dir+" is writable and holds a store no server is running on", "", "")
		return dir
	}
	rep.add("data directory", diagPass, dir+" is writable (no store yet: serve creates one)", "", "")
	return dir
}

// probeWrite creates and removes a file in dir.
func probeWrite(dir string) error {
	f, err := os.CreateTemp(dir, ".engram-preflight-*")
	if err != nil {
		return err
	}
	name := f.Name()
	_, werr := f.Write([]byte("engram-ops preflight\n"))
	cerr := f.Close()
	rerr := os.Remove(name)
	return errors.Join(werr, cerr, rerr)
}

func (d *deploymentCmd) memoryCheck(rep *diagReport, cfg config.Config) {
	phys, cgroup, err := d.memTotal()
	if err != nil {
		rep.add("memory", diagSkip, "cannot read this host's memory: "+err.Error(), "", "")
		return
	}
	avail, what := phys, "the host's memory"
	if cgroup > 0 && cgroup < phys {
		avail, what = cgroup, "the cgroup's memory limit"
	}
	limit := int64(cfg.Server.MemoryLimit)
	if v := d.app.getenv("GOMEMLIMIT"); v != "" {
		rep.add("memory", diagPass, fmt.Sprintf("GOMEMLIMIT=%s is set (it wins over server.memory_limit); %s is %s", v, what, iec(float64(avail))), "", "")
		return
	}
	switch {
	case limit == 0:
		rep.add("memory", diagWarn, fmt.Sprintf("no server.memory_limit: the Go heap grows until %s (%s) is exhausted", what, iec(float64(avail))),
			fmt.Sprintf("set server.memory_limit to about 80%% of it (%s)", iec(0.8*float64(avail))), "")
	case limit > avail:
		rep.add("memory", diagFail, fmt.Sprintf("server.memory_limit %s is above %s (%s): the process is killed before the limit makes the heap collect", iec(float64(limit)), what, iec(float64(avail))),
			fmt.Sprintf("lower server.memory_limit to about 80%% of it (%s)", iec(0.8*float64(avail))), "")
	default:
		rep.add("memory", diagPass, fmt.Sprintf("server.memory_limit %s of %s (%s)", iec(float64(limit)), what, iec(float64(avail))), "", "")
	}
}

// backupCheck writes, reads back and removes a probe object on the target.
func (d *deploymentCmd) backupCheck(ctx context.Context, rep *diagReport, url string) {
	if url == "" {
		rep.add("backup target", diagWarn, "no backup target (--backup-to / backup.to): the change log is not shipped, a lost disk loses the data",
			"set backup.to = \"s3://bucket/prefix\" or \"file:///dir\"", "backup none")
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	store, err := d.app.openTarget(ctx, url)
	if err != nil {
		rep.add("backup target", diagFail, fmt.Sprintf("cannot open %s: %v", url, err), "check the URL, the credentials (ENGRAM_S3_* / AWS_*) and that a file:// directory exists", "backup none")
		return
	}
	key := fmt.Sprintf("preflight/probe-%d-%d", os.Getpid(), time.Now().UnixNano())
	body := []byte("engram-ops validate deployment probe\n")
	if err := store.Put(ctx, key, bytes.NewReader(body), int64(len(body))); err != nil {
		rep.add("backup target", diagFail, fmt.Sprintf("%s is not writable: %v", store, err), "grant the server's credentials write access to the prefix (or the directory to its user)", "backup none")
		return
	}
	got, rerr := readObject(ctx, store, key)
	derr := store.Delete(ctx, key)
	switch {
	case rerr != nil || !bytes.Equal(got, body):
		rep.add("backup target", diagFail, fmt.Sprintf("%s: the probe object %s did not read back (%v)", store, key, rerr), "grant read access too: restore and verify read every object", "backup none")
	case derr != nil:
		rep.add("backup target", diagWarn, fmt.Sprintf("%s is writable and readable, but the probe object %s could not be removed: %v", store, key, derr),
			"grant delete access (backup prune needs it) and remove "+key, "backup none")
	default:
		rep.add("backup target", diagPass, fmt.Sprintf("%s: a probe object was written, read back and removed", store), "", "")
	}
}

func readObject(ctx context.Context, store backup.ObjectStore, key string) ([]byte, error) {
	r, err := store.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(io.LimitReader(r, 1<<16))
}

// hostMemory reads the host's physical memory (/proc/meminfo) and the
// cgroup v2 memory limit of this process (0 when none).
func hostMemory() (physical, cgroup int64, err error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, perr := strconv.ParseInt(fields[1], 10, 64)
			if perr != nil {
				return 0, 0, fmt.Errorf("/proc/meminfo: %v", perr)
			}
			physical = kb << 10
		}
	}
	if physical == 0 {
		return 0, 0, errors.New("/proc/meminfo has no MemTotal")
	}
	if b, err := os.ReadFile("/sys/fs/cgroup/memory.max"); err == nil {
		if v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil {
			cgroup = v
		}
	}
	return physical, cgroup, nil
}
