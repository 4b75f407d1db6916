package main

import (
	"strings"
	"testing"
)

// A follower ships nothing: serve refuses --follow with --backup-to
// before opening anything, and says why. A follower of an archive
// without a snapshot cannot be seeded and does not start.
func TestServeFollowRefusals(t *testing.T) {
	dir := t.TempDir()
	code, _, stderr := runCLI(t, nil, "serve", "--data-dir", dir, "--listen", "127.0.0.1:0", "--grpc-listen", "off",
		"--follow", "file://"+t.TempDir(), "--backup-to", "file://"+t.TempDir())
	if code != exitUsage || !strings.Contains(stderr, "replica.follow") || !strings.Contains(stderr, "cannot be combined with backup.to") {
		t.Fatalf("--follow with --backup-to: exit %d, stderr:\n%s", code, stderr)
	}
	empty := t.TempDir()
	code, _, stderr = runCLI(t, nil, "serve", "--data-dir", dir, "--listen", "127.0.0.1:0", "--grpc-listen", "off",
		"--follow", "file://"+empty)
	if code == 0 || !strings.Contains(stderr, "no snapshot on file://"+empty) {
		t.Fatalf("--follow of an empty archive: exit %d, stderr:\n%s", code, stderr)
	}
}
