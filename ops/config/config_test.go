package config

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/engram-ops/engram-ops/core"
)

func TestDefaultConfigIsValid(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	if c.Listen != "127.0.0.1:7432" || c.DataDir != "./engram-data" || c.Embedder.Default != "hash" ||
		!c.Spaces.AutoCreate || c.Spaces.DefaultDimension != 768 || c.Limits.MaxBodyBytes != 8<<20 ||
		c.Limits.MaxResults != 1000 || c.Durability != "sync" || c.Embedder.OpenAI.APIKeyEnv != "OPENAI_API_KEY" {
		t.Errorf("unexpected defaults: %+v", c)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	c := Default()
	c.Listen = "nonsense"
	c.Durability = "yolo"
	c.Log.Level = "loud"
	c.Log.Format = "xml"
	c.Log.FlushInterval = Duration{time.Minute}
	c.Spaces.DefaultDimension = 0
	c.Embedder.Default = "magic"
	c.Limits.MaxBodyBytes = 10
	c.Limits.MaxResults = 0
	c.Limits.MaxSpaces = 0
	c.Metrics.MaxSpaceLabels = -1
	c.Index.M = 1
	c.Tiers.ColdBelow = 1.5
	c.Server.ShutdownTimeout = Duration{}
	err := c.Validate()
	problems := Problems(err)
	wantKeys := []string{"listen", "durability", "log.level", "log.format", "log.flush_interval", "spaces.default_dimension",
		"embedder.default", "limits.max_body_bytes", "limits.max_results", "limits.max_spaces", "metrics.max_space_labels", "index.m", "tiers.cold_below", "server.shutdown_timeout"}
	got := map[string]string{}
	for _, p := range problems {
		var cp *Problem
		if !errors.As(p, &cp) {
			t.Fatalf("problem %v is not a *Problem", p)
		}
		got[cp.Key] = cp.Error()
	}
	for _, k := range wantKeys {
		msg, ok := got[k]
		if !ok {
			t.Errorf("no problem reported for %s (got %v)", k, got)
			continue
		}
		if !strings.Contains(msg, k) || !strings.Contains(msg, "must") {
			t.Errorf("problem for %s does not name the key and the allowed values: %q", k, msg)
		}
	}
	if !strings.Contains(got["durability"], `"yolo"`) || !strings.Contains(got["durability"], "sync, relaxed") {
		t.Errorf("durability problem lacks the value or the allowed set: %q", got["durability"])
	}
	if !strings.Contains(got["limits.max_body_bytes"], "1024..") {
		t.Errorf("range missing: %q", got["limits.max_body_bytes"])
	}
}

func TestOpenAIValidatedOnlyWhenUsed(t *testing.T) {
	c := Default()
	c.Embedder.OpenAI.BaseURL = "not a url"
	if err := c.Validate(); err != nil {
		t.Errorf("openai settings must not matter while embedder.default = hash: %v", err)
	}
	c.Embedder.Default = "openai"
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "embedder.openai.base_url") {
		t.Errorf("want a base_url problem, got %v", err)
	}
}

func TestLoadFileStrict(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "engram.toml")
	os.WriteFile(path, []byte(`
listen = "0.0.0.0:9000"
durability = "relaxed"
bogus = 1

[limits]
max_body_bytes = 1048576
max_bodybytes = 5

[tiers]
hot_capacity = "128MiB"
sweep_interval = "30s"
`), 0o644)
	c := Default()
	err := c.LoadFile(path)
	ps := Problems(err)
	if len(ps) != 2 {
		t.Fatalf("want 2 unknown-key problems, got %d: %v", len(ps), err)
	}
	if !strings.Contains(ps[0].Error(), "bogus") || !strings.Contains(ps[0].Error(), "engram.toml:4") {
		t.Errorf("problem 0: %v", ps[0])
	}
	if !strings.Contains(ps[1].Error(), "limits.max_bodybytes") {
		t.Errorf("problem 1: %v", ps[1])
	}

	os.WriteFile(path, []byte(`
listen = "0.0.0.0:9000"
durability = "relaxed"
[limits]
max_body_bytes = 1048576
[tiers]
hot_capacity = "128MiB"
sweep_interval = "30s"
[server]
shutdown_timeout = "5s"
`), 0o644)
	c = Default()
	if err := c.LoadFile(path); err != nil {
		t.Fatal(err)
	}
	if c.Listen != "0.0.0.0:9000" || c.Durability != "relaxed" || c.Limits.MaxBodyBytes != 1<<20 ||
		c.Tiers.HotCapacity != 128<<20 || c.Tiers.SweepInterval.Duration != 30*time.Second ||
		c.Server.ShutdownTimeout.Duration != 5*time.Second || c.DataDir != "./engram-data" {
		t.Errorf("decoded %+v", c)
	}

	os.WriteFile(path, []byte("listen = 5\n"), 0o644)
	c = Default()
	err = c.LoadFile(path)
	if err == nil || !strings.Contains(err.Error(), "listen") || !strings.Contains(err.Error(), ":1:") {
		t.Errorf("type error should name the key and position: %v", err)
	}
	os.WriteFile(path, []byte("[tiers]\nsweep_interval = \"soon\"\n"), 0o644)
	c = Default()
	if err := c.LoadFile(path); err == nil || !strings.Contains(err.Error(), "tiers.sweep_interval") {
		t.Errorf("bad duration: %v", err)
	}
}

func TestEnvOverrides(t *testing.T) {
	env := map[string]string{
		"ENGRAM_LISTEN":                "127.0.0.1:9999",
		"ENGRAM_DATA_DIR":              "/tmp/x",
		"ENGRAM_DURABILITY":            "relaxed",
		"ENGRAM_LOG_LEVEL":             "debug",
		"ENGRAM_LIMITS_MAX_BODY_BYTES": "2048",
		"ENGRAM_SPACES_AUTO_CREATE":    "false",
		"ENGRAM_TIERS_HOT_CAPACITY":    "2MiB",
		"ENGRAM_TIERS_COLD_BELOW":      "0.2",
		"ENGRAM_EMBEDDER_OPENAI_MODEL": "m",
		"ENGRAM_SERVER_READ_TIMEOUT":   "3s",
	}
	c := Default()
	if err := c.ApplyEnv(func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:9999" || c.DataDir != "/tmp/x" || c.Durability != "relaxed" || c.Log.Level != "debug" ||
		c.Limits.MaxBodyBytes != 2048 || c.Spaces.AutoCreate || c.Tiers.HotCapacity != 2<<20 || c.Tiers.ColdBelow != 0.2 ||
		c.Embedder.OpenAI.Model != "m" || c.Server.ReadTimeout.Duration != 3*time.Second {
		t.Errorf("env not applied: %+v", c)
	}
	bad := map[string]string{"ENGRAM_LIMITS_MAX_RESULTS": "many", "ENGRAM_SPACES_AUTO_CREATE": "perhaps"}
	d := Default()
	err := d.ApplyEnv(func(k string) string { return bad[k] })
	ps := Problems(err)
	if len(ps) != 2 {
		t.Fatalf("want 2 problems, got %v", err)
	}
	for _, p := range ps {
		if !strings.Contains(p.Error(), "ENGRAM_") {
			t.Errorf("problem does not name the variable: %v", p)
		}
	}
}

func TestEnvNamesAreMechanical(t *testing.T) {
	seen := map[string]bool{}
	for _, e := range EnvVars() {
		want := "ENGRAM_" + strings.ToUpper(strings.ReplaceAll(e.Key, ".", "_"))
		if e.Name != want {
			t.Errorf("%s: env %s, want %s", e.Key, e.Name, want)
		}
		seen[e.Name] = true
	}
	for _, n := range []string{"ENGRAM_LISTEN", "ENGRAM_DATA_DIR", "ENGRAM_DURABILITY", "ENGRAM_LOG_LEVEL",
		"ENGRAM_LIMITS_MAX_BODY_BYTES", "ENGRAM_EMBEDDER_OPENAI_API_KEY_ENV", "ENGRAM_INDEX_EF_SEARCH", "ENGRAM_SERVER_SHUTDOWN_TIMEOUT"} {
		if !seen[n] {
			t.Errorf("%s missing", n)
		}
	}
}

func TestLoadConfigOrder(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.toml")
	os.WriteFile(path, []byte("listen = \"127.0.0.1:1111\"\ndata_dir = \"/from/file\"\n"), 0o644)
	c, file, err := Load(path, func(k string) string {
		if k == "ENGRAM_DATA_DIR" {
			return "/from/env"
		}
		return ""
	})
	if err != nil || file != path {
		t.Fatal(err, file)
	}
	if c.Listen != "127.0.0.1:1111" || c.DataDir != "/from/env" {
		t.Errorf("order wrong: %+v", c)
	}
	if err := c.Set("index.ef_search", "128"); err != nil || c.Index.EfSearch != 128 {
		t.Errorf("Set: %v %d", err, c.Index.EfSearch)
	}
	if err := c.Set("index.nope", "1"); err == nil {
		t.Errorf("Set of an unknown key succeeded")
	}
}

func TestEngineOptions(t *testing.T) {
	c := Default()
	c.Spaces.AutoCreate = false
	c.Tiers.SweepInterval = Duration{}
	o := c.EngineOptions(nil, nil)
	if !o.NoAutoCreateSpaces || o.Tiers.SweepInterval != 0 || o.Durability != core.DurabilitySync ||
		o.Limits.MaxResults != 1000 || o.Tiers.HotCapacityBytes != 64<<20 || o.DefaultDimension != 768 {
		t.Errorf("options %+v", o)
	}
}

func TestByteSize(t *testing.T) {
	for in, want := range map[string]int64{"1024": 1024, "64MiB": 64 << 20, "1GB": 1e9, "2KiB": 2048, "1_000": 1000, "5 MiB": 5 << 20} {
		got, err := ParseByteSize(in)
		if err != nil || got != want {
			t.Errorf("%q: %d %v, want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "12XB", "-1"} {
		if _, err := ParseByteSize(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
	if s := ByteSize(64 << 20).String(); s != "64MiB" {
		t.Errorf("String %s", s)
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	c := Default()
	var b bytes.Buffer
	if err := c.Encode(&b); err != nil {
		t.Fatal(err)
	}
	d := Default()
	d.Listen = "changed:1"
	if err := d.Decode(&b, "encoded"); err != nil {
		t.Fatalf("decode encoded defaults: %v\n%s", err, b.String())
	}
	if !reflect.DeepEqual(d, c) {
		t.Errorf("round trip differs:\n%+v\n%+v", d, c)
	}
}

func TestValidateAsksTheEmbedder(t *testing.T) {
	c := Default()
	c.Spaces.DefaultDimension = 4
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "spaces.default_dimension = 4") || !strings.Contains(err.Error(), "hash") {
		t.Errorf("hashing embedder range not checked: %v", err)
	}
	c = Default()
	c.Embedder.Default = "openai"
	c.Spaces.DefaultDimension = c.Embedder.OpenAI.Dimension
	if err := c.Validate(); err != nil {
		t.Errorf("openai with matching dimension: %v", err)
	}
	c.Spaces.DefaultDimension = 768
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "embedder.openai.dimension") {
		t.Errorf("openai dimension mismatch not reported: %v", err)
	}
}

// FuzzConfigDecode: any config file either fails to load or validate with
// an error, or loads into a configuration that encodes and decodes back to
// itself (what `serve` prints as its effective configuration is what it
// runs with). Never a panic.
func FuzzConfigDecode(f *testing.F) {
	var defaults bytes.Buffer
	def := Default()
	if err := def.Encode(&defaults); err != nil {
		f.Fatal(err)
	}
	f.Add(defaults.String())
	f.Add("listen = \"0.0.0.0:7432\"\nmin_free_space = \"1GiB\"\n[tiers]\nhot_capacity = \"128MiB\"\ncold_below = 0.1\n")
	f.Add("[log]\nflush_interval = \"0s\"\n[server]\ngc_percent = 200\nmemory_limit = \"2GiB\"\n")
	f.Add("min_free_space = -1\n")
	f.Add("[index]\nef_search = 4097\n")
	f.Add("durability = \"relaxed\"\n[changelog]\nretention = \"0s\"\n")
	f.Fuzz(func(t *testing.T, file string) {
		c := Default()
		if err := c.Decode(strings.NewReader(file), "fuzz.toml"); err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			return
		}
		var b bytes.Buffer
		if err := c.Encode(&b); err != nil {
			t.Fatalf("encode a valid config: %v", err)
		}
		d := Default()
		d.Listen = "elsewhere:1"
		if err := d.Decode(&b, "encoded"); err != nil {
			t.Fatalf("decode the encoded config: %v\n%s", err, b.String())
		}
		if !reflect.DeepEqual(d, c) {
			t.Fatalf("round trip differs:\n%+v\n%+v\nencoded:\n%s", d, c, b.String())
		}
	})
}

// TestSpaceLimitsConfigured: limits.max_spaces and metrics.max_space_labels
// come from the environment like every key and reach the engine.
func TestSpaceLimitsConfigured(t *testing.T) {
	env := map[string]string{"ENGRAM_LIMITS_MAX_SPACES": "3", "ENGRAM_METRICS_MAX_SPACE_LABELS": "7"}
	c := Default()
	if err := c.ApplyEnv(func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Metrics.MaxSpaceLabels != 7 || c.EngineOptions(nil, nil).Limits.MaxSpaces != 3 {
		t.Fatalf("max_space_labels %d, engine max spaces %d; want 7 and 3", c.Metrics.MaxSpaceLabels, c.EngineOptions(nil, nil).Limits.MaxSpaces)
	}
	if d := Default(); d.Limits.MaxSpaces != 10_000 || d.Metrics.MaxSpaceLabels != 50 {
		t.Fatalf("defaults: max_spaces %d, max_space_labels %d", d.Limits.MaxSpaces, d.Metrics.MaxSpaceLabels)
	}
}

// The engine's defaults are the one source: the default configuration
// hands the engine exactly core.DefaultOptions.
func TestDefaultsComeFromTheEngine(t *testing.T) {
	c := Default()
	if got, want := c.EngineOptions(nil, nil), core.DefaultOptions(); !reflect.DeepEqual(got, want) {
		t.Errorf("default config gives the engine\n%+v\nwant core.DefaultOptions\n%+v", got, want)
	}
	// Off is 0 on both sides.
	c.Tiers.SweepInterval, c.ChangeLog.Retention, c.MinFreeSpace = Duration{}, Duration{}, 0
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	o := c.EngineOptions(nil, nil)
	if o.Tiers.SweepInterval != 0 || o.ChangeLog.Retention != 0 || o.MinFreeBytes != 0 {
		t.Errorf("off settings reach the engine as %v, %v, %d; want 0", o.Tiers.SweepInterval, o.ChangeLog.Retention, o.MinFreeBytes)
	}
}

// No authentication is allowed on loopback only, unless asked for
// explicitly.
func TestNoAuthOnlyOnLoopback(t *testing.T) {
	for _, tc := range []struct {
		listen, mode string
		insecure, ok bool
	}{
		{"127.0.0.1:7432", AuthNone, false, true},
		{"localhost:7432", AuthNone, false, true},
		{"[::1]:7432", AuthNone, false, true},
		{"0.0.0.0:7432", AuthNone, false, false},
		{":7432", AuthNone, false, false},
		{"10.1.2.3:7432", AuthNone, false, false},
		{"0.0.0.0:7432", AuthNone, true, true},
		{"0.0.0.0:7432", AuthAPIKey, false, true},
		{"127.0.0.1:7432", "basic", false, false},
	} {
		c := Default()
		c.Listen, c.Auth.Mode, c.Auth.InsecureAllowNoAuth = tc.listen, tc.mode, tc.insecure
		err := c.Validate()
		if (err == nil) != tc.ok {
			t.Errorf("listen %s mode %s insecure %v: %v", tc.listen, tc.mode, tc.insecure, err)
		}
		if err != nil && !strings.Contains(err.Error(), "auth.mode") {
			t.Errorf("the problem does not name auth.mode: %v", err)
		}
	}
}

// TestValidateTLSAndConnections: a certificate without its key (and the
// reverse), a client CA without TLS, and out-of-range connection caps and
// reload intervals are each reported under their key; the defaults are
// plain HTTP with a connection cap.
func TestValidateTLSAndConnections(t *testing.T) {
	d := Default()
	if d.TLS.CertFile != "" || d.Server.MaxConnections != 4096 || d.TLS.ReloadInterval.Duration != 5*time.Second {
		t.Fatalf("defaults: tls=%+v max_connections=%d", d.TLS, d.Server.MaxConnections)
	}
	for _, tc := range []struct {
		mod func(*Config)
		key string
	}{
		{func(c *Config) { c.TLS.CertFile = "c.pem" }, "tls.key_file"},
		{func(c *Config) { c.TLS.KeyFile = "k.pem" }, "tls.cert_file"},
		{func(c *Config) { c.TLS.ClientCAFile = "ca.pem" }, "tls.client_ca_file"},
		{func(c *Config) { c.TLS.ReloadInterval = Duration{time.Millisecond} }, "tls.reload_interval"},
		{func(c *Config) { c.Server.MaxConnections = -1 }, "server.max_connections"},
	} {
		c := Default()
		tc.mod(&c)
		var p *Problem
		if err := c.Validate(); !errors.As(err, &p) || p.Key != tc.key {
			t.Errorf("want a problem for %s, got %v", tc.key, err)
		}
	}
	c := Default()
	c.TLS = TLSConfig{CertFile: "c.pem", KeyFile: "k.pem", ClientCAFile: "ca.pem"}
	c.Server.MaxConnections = 0
	if err := c.Validate(); err != nil {
		t.Errorf("mutual TLS without a cap: %v", err)
	}
	if err := c.ApplyEnv(func(k string) string {
		return map[string]string{"ENGRAM_TLS_CERT_FILE": "/etc/engram/tls.crt", "ENGRAM_SERVER_MAX_CONNECTIONS": "10"}[k]
	}); err != nil || c.TLS.CertFile != "/etc/engram/tls.crt" || c.Server.MaxConnections != 10 {
		t.Errorf("env: %v %+v %d", err, c.TLS, c.Server.MaxConnections)
	}
}
