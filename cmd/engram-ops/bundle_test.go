package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/core/apikey"
	"github.com/engram-ops/engram-ops/internal/testsupport"
	"github.com/engram-ops/engram-ops/ops/api"
)

// readBundle returns the files of a bundle by name (without the
// engram-support/ prefix), gzip-compressed members decompressed.
func readBundle(t *testing.T, path string) map[string][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	out := map[string][]byte{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(h.Name, ".gz") {
			zr, err := gzip.NewReader(bytes.NewReader(data))
			if err != nil {
				t.Fatalf("%s: %v", h.Name, err)
			}
			if data, err = io.ReadAll(zr); err != nil {
				t.Fatalf("%s: %v", h.Name, err)
			}
		}
		out[strings.TrimPrefix(h.Name, "engram-support/")] = data
	}
	return out
}

// TestBundleHasNoSecrets plants secrets in the config file, the
// environment, an API key and the log, collects a bundle from a running
// server with profiling on, and finds none of them in any byte of it.
func TestBundleHasNoSecrets(t *testing.T) {
	dir := t.TempDir()
	code, out, errOut := runCLI(t, nil, "apikey", "create", "--data-dir", dir, "--name", "admin", "--permissions", "admin")
	token := strings.TrimSpace(out)
	if code != exitOK || !apikey.Valid(token) {
		t.Fatalf("apikey create: exit %d %s", code, errOut)
	}
	debug := testsupport.FreeAddr(t)
	p := startServe(t, dir, "--set", "auth.mode=api_key", "--set", "server.debug_listen="+debug)
	c := p.c
	if _, err := c.WithSpace("default").Remember(context.Background(), api.RememberRequest{Content: "x"}); err == nil {
		t.Fatal("the server accepted a write without a key")
	}

	secrets := []string{token, token[len(apikey.Prefix):], "sk-planted-openai-0001", "planted-aws-secret-0002",
		"planted-s3-secret-0003", "PLANTEDACCESSKEY0004", "planted-url-password", "planted-session-token-0005"}
	cfgFile := filepath.Join(t.TempDir(), "engram.toml")
	cfgText := `data_dir = "` + dir + `"
[server]
debug_listen = "` + debug + `"
[embedder.openai]
api_key_env = "PLANTED_OPENAI_VAR"
[backup]
to = "s3://planted-user:planted-url-password@bucket/prefix"
`
	if err := os.WriteFile(cfgFile, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	logFile := filepath.Join(t.TempDir(), "engram.log")
	logText := `{"msg":"request","auth":"Bearer ` + token + `"}
{"msg":"embedder","key":"sk-planted-openai-0001","backup":"s3://planted-user:planted-url-password@bucket"}
{"msg":"the last line"}
`
	if err := os.WriteFile(logFile, []byte(logText), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"ENGRAM_API_KEY":              token,
		"PLANTED_OPENAI_VAR":          "sk-planted-openai-0001",
		"AWS_SECRET_ACCESS_KEY":       "planted-aws-secret-0002",
		"ENGRAM_S3_SECRET_ACCESS_KEY": "planted-s3-secret-0003",
		"ENGRAM_S3_ACCESS_KEY_ID":     "PLANTEDACCESSKEY0004",
		"AWS_SESSION_TOKEN":           "planted-session-token-0005",
		"ENGRAM_LOG_LEVEL":            "debug",
	}
	outFile := filepath.Join(t.TempDir(), "support.tar.gz")
	code, _, errOut = runCLI(t, env, "diagnose", "bundle", "--target", p.base, "--config", cfgFile, "--log-file", logFile, "--out", outFile)
	if code != exitOK {
		t.Fatalf("bundle: exit %d %s", code, errOut)
	}
	raw, err := os.ReadFile(outFile)
	if err != nil {
		t.Fatal(err)
	}
	files := readBundle(t, outFile)
	for _, s := range secrets {
		if bytes.Contains(raw, []byte(s)) {
			t.Errorf("the bundle's bytes contain %q", s)
		}
		for name, data := range files {
			if bytes.Contains(data, []byte(s)) {
				t.Errorf("%s contains the planted secret %q", name, s)
			}
		}
	}
	for _, name := range []string{"manifest.json", "version.json", "config.toml", "env.txt", "health.json", "system-health.json",
		"metrics.txt", "pprof/goroutine.txt", "pprof/heap.pb.gz", "logs/engram.log", "diagnose.txt", "diagnose.json", "data-dir.txt"} {
		if len(files[name]) == 0 {
			t.Errorf("%s is missing or empty", name)
		}
	}
	var man bundleManifest
	if err := json.Unmarshal(files["manifest.json"], &man); err != nil {
		t.Fatal(err)
	}
	if len(man.Missing) != 0 || len(man.Files) != len(files)-1 {
		t.Errorf("manifest: %d files, not collected %+v; bundle holds %d", len(man.Files), man.Missing, len(files))
	}
	for _, want := range []string{`ENGRAM_LOG_LEVEL=debug`, `AWS_SECRET_ACCESS_KEY=REDACTED`} {
		if !strings.Contains(string(files["env.txt"]), want) {
			t.Errorf("env.txt lacks %q:\n%s", want, files["env.txt"])
		}
	}
	if !strings.Contains(string(files["logs/engram.log"]), "the last line") || !strings.Contains(string(files["logs/engram.log"]), "REDACTED") {
		t.Errorf("log: %s", files["logs/engram.log"])
	}
	if !strings.Contains(string(files["pprof/goroutine.txt"]), "goroutine ") || !strings.Contains(string(files["metrics.txt"]), "engram_build_info") {
		t.Error("profiles or metrics are not what the server served")
	}
}

// TestBundleServerDown: the server stopped, the bundle still holds the
// configuration, the diagnose report and the data-directory listing
// (names and sizes, never contents), and its manifest says what could not
// be collected and why.
func TestBundleServerDown(t *testing.T) {
	dir := t.TempDir()
	e := testsupport.OpenEngine(t, dir)
	const content = "planted-memory-content-never-in-a-bundle"
	if _, err := e.Remember(context.Background(), "default", core.RememberInput{Content: content}); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	target := "http://" + testsupport.FreeAddr(t)
	outFile := filepath.Join(t.TempDir(), "support.tar.gz")
	code, _, errOut := runCLI(t, nil, "diagnose", "bundle", "--target", target, "--data-dir", dir, "--out", outFile)
	if code != exitOK || !strings.Contains(errOut, "not collected") {
		t.Fatalf("exit %d %s", code, errOut)
	}
	files := readBundle(t, outFile)
	for name, data := range files {
		if bytes.Contains(data, []byte(content)) {
			t.Errorf("%s holds a memory's content", name)
		}
	}
	var man bundleManifest
	if err := json.Unmarshal(files["manifest.json"], &man); err != nil {
		t.Fatal(err)
	}
	missing := map[string]string{}
	for _, m := range man.Missing {
		missing[m.Name] = m.Reason
	}
	for _, n := range []string{"health.json", "metrics.txt", "pprof/"} {
		if !strings.Contains(missing[n], "does not answer") {
			t.Errorf("%s: %q", n, missing[n])
		}
	}
	if !strings.Contains(missing["logs/"], "--log-file") {
		t.Errorf("logs: %q", missing["logs/"])
	}
	if !strings.Contains(string(files["data-dir.txt"]), filepath.Join("db", "LOCK")) || !strings.Contains(string(files["diagnose.txt"]), "FAIL  reachability") {
		t.Errorf("listing:\n%s\ndiagnose:\n%s", files["data-dir.txt"], files["diagnose.txt"])
	}
	if code, _, errOut := runCLI(t, nil, "diagnose", "bundle", "--target", target, "--out", outFile); code != exitFailed || !strings.Contains(errOut, "never overwritten") {
		t.Errorf("an existing --out: exit %d %s", code, errOut)
	}
}
