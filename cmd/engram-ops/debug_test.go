package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/engram-ops/engram-ops/ops/config"
)

func TestDebugListenServesProfilesOnItsOwnAddress(t *testing.T) {
	cfg := config.Default()
	cfg.Listen, cfg.GRPC.Listen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.Server.DebugListen = "127.0.0.1:0"
	ctx, cancel := context.WithCancel(context.Background())
	r, err := start(ctx, cfg, nil, startOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = r.wait() }()
	get := func(url string) (int, string) {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("http://" + r.debugAddr.String() + "/debug/pprof/goroutine?debug=1"); code != 200 || !strings.Contains(body, "goroutine") {
		t.Errorf("debug listener: %d %.200s", code, body)
	}
	if code, _ := get(r.url() + "/debug/pprof/"); code != 404 {
		t.Errorf("the API address serves profiles: %d", code)
	}
}

func TestDebugListenMustBeLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:6060", ":6060", "10.1.2.3:6060", "nonsense"} {
		cfg := config.Default()
		cfg.Server.DebugListen = addr
		var p *config.Problem
		if err := cfg.Validate(); !errors.As(err, &p) || p.Key != "server.debug_listen" {
			t.Errorf("%q: %v", addr, err)
		}
	}
	cfg := config.Default()
	cfg.Server.DebugListen = "localhost:6060"
	if err := cfg.Validate(); err != nil {
		t.Errorf("localhost: %v", err)
	}
}
