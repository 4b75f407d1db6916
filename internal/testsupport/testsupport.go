// Package testsupport is the one way tests start what they test: the
// engram-ops binary (built once per test process, or ENGRAM_E2E_BIN), a
// `serve` process on a free loopback port that is stopped by its PID when
// the test ends, an engine on a temporary directory, and a free port.
//
// In-process servers of cmd/engram-ops tests run the CLI itself
// (cmd/engram-ops startServe), since package main cannot be imported;
// everything else starts servers here.
package testsupport

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/ops/client"
)

// BinaryEnv names a prebuilt engram-ops binary to test instead of building
// one, so that two builds can be compared side by side.
const BinaryEnv = "ENGRAM_E2E_BIN"

var (
	binOnce sync.Once
	binPath string
	binDir  string
	binErr  error
)

// Binary returns the path of the engram-ops binary under test: BinaryEnv
// when set, else one built from this module the first time it is asked
// for. Call Cleanup from TestMain to remove the build.
func Binary() (string, error) {
	binOnce.Do(func() {
		if p := os.Getenv(BinaryEnv); p != "" {
			binPath = p
			return
		}
		binDir, binErr = os.MkdirTemp("", "engram-ops-test-bin-")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "engram-ops")
		build := exec.Command("go", "build", "-o", binPath, "github.com/engram-ops/engram-ops/cmd/engram-ops")
		var out bytes.Buffer
		build.Stdout, build.Stderr = &out, &out
		if err := build.Run(); err != nil {
			binErr = fmt.Errorf("build engram-ops: %v\n%s", err, out.String())
		}
	})
	return binPath, binErr
}

// MustBinary is Binary failing the test when the build fails.
func MustBinary(tb testing.TB) string {
	tb.Helper()
	p, err := Binary()
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// Cleanup removes a binary Binary built. TestMain calls it after m.Run.
func Cleanup() {
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
}

// FreeAddr returns a 127.0.0.1 address with a port nobody listens on.
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// WaitSnapshot waits until the file:// archive in dir holds a snapshot
// manifest (a shipping server takes its first one as it starts; a
// follower is seeded from it), failing the test after 30s.
func WaitSnapshot(tb testing.TB, dir string) {
	tb.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if m, _ := filepath.Glob(filepath.Join(dir, "snapshots", "*.json")); len(m) > 0 {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("no snapshot on the archive %s after 30s", dir)
		}
	}
}

// OpenEngine opens an engine on dir with the built-in defaults changed by
// mods, and closes it when the test ends (a second Close is harmless).
func OpenEngine(tb testing.TB, dir string, mods ...func(*core.Options)) *core.Engine {
	tb.Helper()
	var o core.Options
	for _, m := range mods {
		m(&o)
	}
	e, err := core.Open(dir, o)
	if err != nil {
		tb.Fatalf("open engine on %s: %v", dir, err)
	}
	tb.Cleanup(func() { _ = e.Close() })
	return e
}

// ServerLogEnv names a file StartServe appends every server's output to.
const ServerLogEnv = "ENGRAM_BENCH_SERVER_LOG"

// Server is a running `engram-ops serve` process.
type Server struct {
	Cmd  *exec.Cmd
	URL  string // http://127.0.0.1:port
	Logs *SyncBuffer

	exited  chan struct{} // closed once the process has exited
	waitErr error         // cmd.Wait's result, set before exited is closed
}

// ServeOptions change how StartServe runs the binary.
type ServeOptions struct {
	// Binary overrides the binary (default: Binary()).
	Binary string
	// Env is added to the process's environment.
	Env []string
	// Output also receives the server's stdout and stderr.
	Output io.Writer
	// Ready bounds the wait for /health/ready; default 30s.
	Ready time.Duration
	// CAFile, when set, says the server serves TLS (extra has its
	// --tls-cert and --tls-key) with a certificate from this CA: URL is
	// https:// and readiness is checked over TLS.
	CAFile string
}

// StartServe runs `serve --listen <free port> --data-dir dataDir
// --log-format json extra...` and waits until /health/ready answers 200.
// The process is killed when the test ends, unless it has exited.
func StartServe(tb testing.TB, dataDir string, extra ...string) *Server {
	tb.Helper()
	s, err := TryStartServe(tb, dataDir, ServeOptions{}, extra...)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// TryStartServe is StartServe with options, returning an error (with the
// server's output) when the server does not become ready.
func TryStartServe(tb testing.TB, dataDir string, o ServeOptions, extra ...string) (*Server, error) {
	tb.Helper()
	bin := o.Binary
	if bin == "" {
		bin = MustBinary(tb)
	}
	hc, scheme := http.DefaultClient, "http://"
	if o.CAFile != "" {
		tr, err := client.TLSOptions{CAFile: o.CAFile}.Transport()
		if err != nil {
			return nil, err
		}
		defer tr.CloseIdleConnections()
		hc, scheme = &http.Client{Transport: tr}, "https://"
	}
	addr := FreeAddr(tb)
	args := append([]string{"serve", "--listen", addr, "--data-dir", dataDir, "--log-format", "json"}, extra...)
	cmd := exec.Command(bin, args...)
	// The gRPC service on a free port too (an environment variable, which
	// binaries without gRPC ignore); o.Env may name another address.
	cmd.Env = append(append(os.Environ(), "ENGRAM_GRPC_LISTEN=127.0.0.1:0"), o.Env...)
	logs := &SyncBuffer{}
	var out io.Writer = logs
	if o.Output != nil {
		out = io.MultiWriter(logs, o.Output)
	}
	// ServerLogEnv names a file that also receives the server's output
	// (with GODEBUG=gctrace=1, its collections), for diagnosing a
	// benchmark's stalls.
	if p := os.Getenv(ServerLogEnv); p != "" {
		f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, err
		}
		tb.Cleanup(func() { f.Close() })
		out = io.MultiWriter(out, f)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	s := &Server{Cmd: cmd, URL: scheme + addr, Logs: logs, exited: make(chan struct{})}
	go func() { s.waitErr = cmd.Wait(); close(s.exited) }()
	tb.Cleanup(func() {
		select {
		case <-s.exited:
		default:
			_ = s.Cmd.Process.Kill()
			_ = s.Wait()
		}
	})
	ready := o.Ready
	if ready <= 0 {
		ready = 30 * time.Second
	}
	switch err := WaitReady(hc, s.URL, ready, s.exited); {
	case errors.Is(err, ErrExited):
		return nil, fmt.Errorf("server exited before it was ready (%v); logs:\n%s", s.waitErr, logs.String())
	case err != nil:
		return nil, fmt.Errorf("%w; logs:\n%s", err, logs.String())
	}
	return s, nil
}

// ErrExited is WaitReady's error when the server stopped first.
var ErrExited = errors.New("the server exited before it was ready")

// WaitReady polls base's /health/ready with hc until it answers 200; it
// fails after timeout, or with ErrExited once exited is closed (nil: a
// server that cannot exit, such as one in this process).
func WaitReady(hc *http.Client, base string, timeout time.Duration, exited <-chan struct{}) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		resp, err := hc.Get(base + "/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			return ErrExited
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("server did not become ready within %s", timeout)
}

// PID is the server process's id.
func (s *Server) PID() int { return s.Cmd.Process.Pid }

// Wait waits for the process to exit and returns how it exited.
func (s *Server) Wait() error {
	<-s.exited
	return s.waitErr
}

// Exited is closed once the process has exited.
func (s *Server) Exited() <-chan struct{} { return s.exited }

// Kill9 kills the server with SIGKILL and waits for it to exit.
func (s *Server) Kill9(tb testing.TB) {
	tb.Helper()
	if err := s.Cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		tb.Fatal(err)
	}
	_ = s.Wait()
}

// Stop sends SIGINT (a graceful shutdown) and returns how the process
// exited.
func (s *Server) Stop() error {
	if err := s.Cmd.Process.Signal(os.Interrupt); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	return s.Wait()
}

// SyncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
