package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/engram-ops/engram-ops/core/apikey"
	"github.com/engram-ops/engram-ops/ops/client"
	"github.com/engram-ops/engram-ops/ops/config"
)

// bundleFlags are the flags of diagnose bundle beyond diagnose's own.
type bundleFlags struct {
	out     string
	logFile string
}

// Bounds of what a bundle collects.
const (
	bundleLogTail      = 4 << 20  // the last bytes of --log-file
	bundleFetchLimit   = 64 << 20 // any one answer of the server
	bundleListingMax   = 100_000  // data-directory entries listed
	bundleRedacted     = "REDACTED"
	bundleFetchTimeout = 30 * time.Second
)

func (d *diagnoseCmd) bundleCommand() *cobra.Command {
	var bf bundleFlags
	cmd := &cobra.Command{
		Use:   "bundle --out FILE.tar.gz",
		Short: "Collect a support bundle (tar.gz with a manifest), secrets redacted",
		Long: `Collect what support needs into one tar.gz, with manifest.json listing every
file collected and everything that could not be, with the reason:

  version.json          this binary's version, and the server's
  config.toml           the effective configuration (defaults, --config or
                        ./engram.toml, ENGRAM_* environment), secrets redacted
  env.txt               the ENGRAM_*, Go and S3 environment, secrets redacted
  health.json           GET /health
  system-health.json    GET /api/v1/system/health
  metrics.txt           a scrape of /metrics
  pprof/goroutine.txt   every goroutine's stack   } from server.debug_listen,
  pprof/heap.pb.gz      a heap profile            } when it is set
  logs/NAME             the last 4 MiB of --log-file (the server logs to stderr:
                        journalctl -u engram-ops > engram.log, then --log-file)
  diagnose.txt, .json   the report of engram-ops diagnose health
  data-dir.txt          the data directory's files with sizes, never their contents

Redaction: every configuration value and environment variable whose name says
key, secret, password, token or credential, user:password in URLs, the value of
the variable embedder.openai.api_key_env names, and anything shaped like an
engram-ops API key are replaced by REDACTED in every text file of the bundle.

It works when the server is down: what needs the server is listed as not
collected. Exit status: 0 when the bundle was written (whatever it lacks), 1 when
it could not be, 2 a bad flag.`,
		Example: `  engram-ops diagnose bundle --data-dir /var/lib/engram --config /etc/engram/engram.toml --out support.tar.gz
  journalctl -u engram-ops --since -1h > engram.log
  engram-ops diagnose bundle --log-file engram.log --out support.tar.gz`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return d.runBundle(cmd.Context(), bf) },
	}
	d.addFlags(cmd)
	cmd.Flags().StringVar(&bf.out, "out", "", "the tar.gz to write (required; not overwritten)")
	cmd.Flags().StringVar(&bf.logFile, "log-file", "", "a file holding the server's log; its last 4 MiB are included")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}

// bundleManifest is manifest.json.
type bundleManifest struct {
	Created    time.Time       `json:"created"`
	Version    string          `json:"version"`
	Target     string          `json:"target"`
	DataDir    string          `json:"data_dir"`
	ConfigFile string          `json:"config_file"`
	Files      []bundleFile    `json:"files"`
	Missing    []bundleMissing `json:"not_collected"`
}

type bundleFile struct {
	Name  string `json:"name"`
	Bytes int    `json:"bytes"`
	What  string `json:"what"`
}

type bundleMissing struct {
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

// bundle collects the files in memory, redacted, before writing them.
type bundle struct {
	man     bundleManifest
	files   map[string][]byte
	secrets []string // literal values replaced in every text file
}

func (b *bundle) add(name, what string, data []byte, text bool) {
	if text {
		data = b.redact(data)
	}
	b.files[name] = data
	b.man.Files = append(b.man.Files, bundleFile{Name: name, Bytes: len(data), What: what})
}

func (b *bundle) miss(name string, reason string) {
	b.man.Missing = append(b.man.Missing, bundleMissing{Name: name, Reason: reason})
}

// secretName matches names of configuration keys and environment
// variables whose values are secrets.
var secretName = regexp.MustCompile(`(?i)(key|secret|password|passwd|token|credential)`)

// urlUserinfo matches user:password@ in a URL.
var urlUserinfo = regexp.MustCompile(`([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s"']+@`)

// apiKeyShape matches an engram-ops API key.
var apiKeyShape = regexp.MustCompile(regexp.QuoteMeta(apikey.Prefix) + `[A-Za-z0-9_\-]+`)

// redact replaces every known secret, user:password in URLs and anything
// shaped like an API key.
func (b *bundle) redact(data []byte) []byte {
	for _, s := range b.secrets {
		data = bytes.ReplaceAll(data, []byte(s), []byte(bundleRedacted))
	}
	data = urlUserinfo.ReplaceAll(data, []byte("${1}"+bundleRedacted+"@"))
	return apiKeyShape.ReplaceAll(data, []byte(bundleRedacted))
}

// addSecret records a value to redact everywhere; very short values would
// redact unrelated text and are left to the name-based redaction.
func (b *bundle) addSecret(v string) {
	if len(v) >= 6 {
		b.secrets = append(b.secrets, v)
	}
}

// bundleEnv lists the environment variables a bundle reports besides the
// ENGRAM_* configuration overrides.
var bundleEnv = []string{"ENGRAM_API_KEY", "ENGRAM_S3_ENDPOINT", "ENGRAM_S3_REGION", "ENGRAM_S3_ACCESS_KEY_ID",
	"ENGRAM_S3_SECRET_ACCESS_KEY", "ENGRAM_S3_INSECURE", "ENGRAM_S3_PATH_STYLE", "AWS_REGION", "AWS_ACCESS_KEY_ID",
	"AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "OPENAI_API_KEY", "GOMEMLIMIT", "GOGC", "GOMAXPROCS", "GODEBUG"}

func (d *diagnoseCmd) runBundle(ctx context.Context, bf bundleFlags) error {
	a := d.app
	if !strings.HasSuffix(bf.out, ".tar.gz") && !strings.HasSuffix(bf.out, ".tgz") {
		return usagef("--out %q: name a .tar.gz file", bf.out)
	}
	cfg, dataDir, err := d.loadConfig()
	if err != nil {
		return err
	}
	c, err := a.serverClient(d.target, d.apiKeyEnv, "engram-ops-bundle")
	if err != nil {
		return err
	}
	f, err := os.OpenFile(bf.out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create the bundle: %w (it is never overwritten: choose another --out)", err)
	}
	b := &bundle{files: map[string][]byte{}}
	b.man = bundleManifest{Created: d.host.now().UTC(), Version: a.build.Version, Target: c.BaseURL(), DataDir: dataDir,
		Files: []bundleFile{}, Missing: []bundleMissing{}}

	// Secrets first, so that every file is redacted of them.
	envNames := append([]string(nil), bundleEnv...)
	for _, e := range config.EnvVars() {
		envNames = append(envNames, e.Name)
	}
	for _, n := range []string{d.apiKeyEnv, cfg.Embedder.OpenAI.APIKeyEnv} {
		if n != "" {
			envNames = append(envNames, n)
			b.addSecret(a.getenv(n))
		}
	}
	sort.Strings(envNames)
	var env bytes.Buffer
	seen := map[string]bool{}
	for _, n := range envNames {
		v := a.getenv(n)
		if seen[n] || v == "" {
			continue
		}
		seen[n] = true
		if secretName.MatchString(n) {
			if !strings.HasSuffix(n, "_ENV") { // names a variable; its value is redacted below
				b.addSecret(v)
			}
			v = bundleRedacted
		}
		fmt.Fprintf(&env, "%s=%s\n", n, v)
	}
	d.bundleConfig(b, cfg)
	b.add("env.txt", "the environment engram-ops reads, secrets redacted", env.Bytes(), true)

	d.bundleServer(ctx, b, c, cfg)
	if bf.logFile != "" {
		d.bundleLog(b, bf.logFile)
	} else {
		b.miss("logs/", "no --log-file given: the server logs to stderr (journalctl -u engram-ops > engram.log, then --log-file engram.log)")
	}
	if rep, err := d.diagnose(ctx); err != nil {
		b.miss("diagnose.txt", err.Error())
	} else {
		var txt bytes.Buffer
		d.render(&txt, rep)
		j, _ := json.MarshalIndent(rep, "", "  ")
		b.add("diagnose.txt", "engram-ops diagnose health", txt.Bytes(), true)
		b.add("diagnose.json", "engram-ops diagnose health --output json", j, true)
	}
	if dataDir == "" {
		b.miss("data-dir.txt", "no --data-dir (or --config naming data_dir) given")
	} else if listing, err := listDataDir(dataDir); err != nil {
		b.miss("data-dir.txt", err.Error())
	} else {
		b.add("data-dir.txt", "the data directory's files with sizes (never their contents)", listing, true)
	}

	if err := b.write(f); err != nil {
		f.Close()
		_ = os.Remove(bf.out)
		return fmt.Errorf("write %s: %w", bf.out, err)
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(bf.out)
		return fmt.Errorf("write %s: %w", bf.out, err)
	}
	if !a.global.quiet {
		fmt.Fprintf(a.stderr, "wrote %s: %d files; not collected: %d (manifest.json says why)\n", bf.out, len(b.man.Files), len(b.man.Missing))
		for _, m := range b.man.Missing {
			fmt.Fprintf(a.stderr, "  %s: %s\n", m.Name, m.Reason)
		}
	}
	return nil
}

// bundleConfig adds the effective configuration, secrets redacted.
func (d *diagnoseCmd) bundleConfig(b *bundle, cfg config.Config) {
	b.man.ConfigFile = d.configPath
	var buf bytes.Buffer
	if err := cfg.Encode(&buf); err != nil {
		b.miss("config.toml", err.Error())
		return
	}
	var out bytes.Buffer
	for _, line := range strings.SplitAfter(buf.String(), "\n") {
		trimmed := strings.TrimSpace(line)
		if k, v, ok := strings.Cut(trimmed, "="); ok && !strings.HasPrefix(trimmed, "#") && secretName.MatchString(k) {
			v = strings.Trim(strings.TrimSpace(v), `"'`)
			if v != "" {
				if !strings.HasSuffix(strings.TrimSpace(k), "_env") { // names a variable, whose value is redacted
					b.addSecret(v)
				}
				indent := line[:len(line)-len(strings.TrimLeft(line, " \t"))]
				line = fmt.Sprintf("%s%s= %q\n", indent, k, bundleRedacted)
			}
		}
		out.WriteString(line)
	}
	b.add("config.toml", "the effective configuration (defaults, file, ENGRAM_* environment), secrets redacted", out.Bytes(), true)
}

// bundleServer adds what the running server reports.
func (d *diagnoseCmd) bundleServer(ctx context.Context, b *bundle, c *client.Client, cfg config.Config) {
	fctx, cancel := context.WithTimeout(ctx, bundleFetchTimeout)
	defer cancel()
	version := map[string]any{"client": d.app.build}
	h, err := c.Health(fctx)
	if err != nil && (h == nil || h.Status == "") {
		reason := "the server at " + c.BaseURL() + " does not answer: " + err.Error()
		for _, n := range []string{"health.json", "system-health.json", "metrics.txt", "pprof/"} {
			b.miss(n, reason)
		}
		version["server"] = nil
	} else {
		version["server"] = h.Version
		j, _ := json.MarshalIndent(h, "", "  ")
		b.add("health.json", "GET /health", j, true)
		if sh, err := c.SystemHealth(fctx); sh != nil && sh.Status != "" {
			j, _ := json.MarshalIndent(sh, "", "  ")
			b.add("system-health.json", "GET /api/v1/system/health", j, true)
		} else {
			b.miss("system-health.json", err.Error())
		}
		if m, err := c.Metrics(fctx); err != nil {
			b.miss("metrics.txt", err.Error())
		} else {
			b.add("metrics.txt", "GET /metrics", m, true)
		}
		d.bundleProfiles(fctx, b, cfg)
	}
	j, _ := json.MarshalIndent(version, "", "  ")
	b.add("version.json", "this binary's build and the server's version", j, true)
}

// bundleProfiles adds profiles from the debug listener.
func (d *diagnoseCmd) bundleProfiles(ctx context.Context, b *bundle, cfg config.Config) {
	addr := cfg.Server.DebugListen
	if addr == "" {
		b.miss("pprof/", "server.debug_listen is not set (in --config), so the server serves no profiles")
		return
	}
	hc := &http.Client{Transport: client.DefaultTransport()}
	for _, p := range []struct{ name, path, what string }{
		{"pprof/goroutine.txt", "/debug/pprof/goroutine?debug=2", "every goroutine's stack"},
		{"pprof/heap.pb.gz", "/debug/pprof/heap", "heap profile (go tool pprof)"},
	} {
		data, err := fetch(ctx, hc, "http://"+addr+p.path)
		if err != nil {
			b.miss(p.name, err.Error())
			continue
		}
		b.add(p.name, p.what, data, strings.HasSuffix(p.name, ".txt"))
	}
}

// fetch GETs u and returns its body (at most bundleFetchLimit bytes).
func fetch(ctx context.Context, hc *http.Client, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, bundleFetchLimit+1))
	if err != nil {
		return nil, err
	}
	if len(data) > bundleFetchLimit {
		return nil, fmt.Errorf("GET %s: larger than %d bytes", u, bundleFetchLimit)
	}
	return data, nil
}

// bundleLog adds the end of a log file.
func (d *diagnoseCmd) bundleLog(b *bundle, path string) {
	name := "logs/" + filepath.Base(path)
	f, err := os.Open(path)
	if err != nil {
		b.miss(name, err.Error())
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		b.miss(name, err.Error())
		return
	}
	if off := st.Size() - bundleLogTail; off > 0 {
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			b.miss(name, err.Error())
			return
		}
	}
	data, err := io.ReadAll(io.LimitReader(f, bundleLogTail))
	if err != nil {
		b.miss(name, err.Error())
		return
	}
	b.add(name, fmt.Sprintf("the last %d bytes of %s", len(data), path), data, true)
}

// listDataDir lists dir's files with sizes and modification times.
func listDataDir(dir string) ([]byte, error) {
	var buf bytes.Buffer
	n := 0
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			fmt.Fprintf(&buf, "%s: %v\n", p, err)
			return nil
		}
		if n++; n > bundleListingMax {
			fmt.Fprintf(&buf, "... stopped after %d entries\n", bundleListingMax)
			return fs.SkipAll
		}
		info, err := e.Info()
		if err != nil {
			fmt.Fprintf(&buf, "%s: %v\n", p, err)
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		fmt.Fprintf(&buf, "%s %12d %s %s\n", info.Mode(), info.Size(), info.ModTime().UTC().Format(time.RFC3339), rel)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, errors.New(dir + ": nothing to list")
	}
	return buf.Bytes(), nil
}

// write writes manifest.json and the files as a tar.gz.
func (b *bundle) write(w io.Writer) error {
	sort.Slice(b.man.Files, func(i, j int) bool { return b.man.Files[i].Name < b.man.Files[j].Name })
	man, err := json.MarshalIndent(b.man, "", "  ")
	if err != nil {
		return err
	}
	zw := gzip.NewWriter(w)
	tw := tar.NewWriter(zw)
	put := func(name string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: "engram-support/" + name, Mode: 0o600, Size: int64(len(data)), ModTime: b.man.Created}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	if err := put("manifest.json", b.redact(man)); err != nil {
		return err
	}
	for _, f := range b.man.Files {
		if err := put(f.Name, b.files[f.Name]); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}
