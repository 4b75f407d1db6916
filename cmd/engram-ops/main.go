// Command engram-ops is the Engram memory store and everything an operator
// needs to run it: the server (serve), configuration checks (validate),
// version and shell completion, with backup, migrate, loadtest, tui and
// runbooks joining as they land.
//
// This package is the composition root and the only package importing
// cobra. Main is what main() and the in-process end-to-end tests call;
// signals are handled only in main(); every error returns to Main, which
// maps it to the exit code (0 ok, 1 failed, 2 usage error, 3 a check did
// not pass). Each command group is a struct holding its flags and
// dependencies, built by one constructor: there are no package-level flag
// variables.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// Set with -ldflags "-X main.version=v1.2.3 -X main.revision=abc123";
// otherwise read from the binary's build information.
var (
	version  string
	revision string
)

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s := <-sigs
		fmt.Fprintf(os.Stderr, "engram-ops: received %s; shutting down gracefully (send it again to force exit)\n", s)
		cancel()
		s = <-sigs
		fmt.Fprintf(os.Stderr, "engram-ops: received %s again; exiting now without draining\n", s)
		os.Exit(1)
	}()
	a := newApp(os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	// serve subscribes to SIGHUP (TLS certificate reload) only while it
	// serves TLS; otherwise SIGHUP keeps its default effect.
	a.notifyReload = func(ch chan<- os.Signal) func() {
		signal.Notify(ch, syscall.SIGHUP)
		return func() { signal.Stop(ch) }
	}
	code := a.run(ctx, os.Args[1:])
	cancel()
	os.Exit(code)
}
