package main

import (
	"log/slog"
	"math"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/engram-ops/engram-ops/ops/config"
)

func TestGCSettings(t *testing.T) {
	prev := debug.SetGCPercent(100)
	prevLimit := debug.SetMemoryLimit(-1)
	defer func() { debug.SetGCPercent(prev); debug.SetMemoryLimit(prevLimit) }()
	c := config.Default()
	if c.Server.GCPercent != 100 {
		t.Errorf("default gc_percent %d, want Go's 100", c.Server.GCPercent)
	}
	c.Server.GCPercent, c.Server.MemoryLimit = 300, 1<<30
	noEnv := func(string) string { return "" }
	applyGCSettings(c.Server, noEnv, slog.New(slog.DiscardHandler))
	if got := debug.SetGCPercent(100); got != 300 {
		t.Errorf("gc percent %d, want the configured 300", got)
	}
	if got := debug.SetMemoryLimit(-1); got != 1<<30 {
		t.Errorf("memory limit %d, want 1 GiB", got)
	}
	// GOGC and GOMEMLIMIT in the environment (already applied by the
	// runtime) win.
	debug.SetMemoryLimit(math.MaxInt64)
	env := map[string]string{"GOGC": "150", "GOMEMLIMIT": "2GiB"}
	applyGCSettings(c.Server, func(k string) string { return env[k] }, slog.New(slog.DiscardHandler))
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("gc percent %d changed although GOGC is set", got)
	}
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("memory limit %d changed although GOMEMLIMIT is set", got)
	}
	for _, bad := range []func(*config.Config){
		func(c *config.Config) { c.Server.GCPercent = 10 },
		func(c *config.Config) { c.Server.MemoryLimit = 1 << 20 },
	} {
		c := config.Default()
		bad(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "server.") {
			t.Errorf("want a server.* problem, got %v", err)
		}
	}
}
