package e2e

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// TestSecondServerOnDataDirRefused: a second serve on a data directory a
// server already uses exits, naming the held lock, and the first goes on.
func TestSecondServerOnDataDirRefused(t *testing.T) {
	dir := t.TempDir()
	first := startServer(t, dir)
	second, err := tryStartServer(t, dir)
	if err == nil {
		t.Fatalf("a second server started on %s at %s", dir, second.URL)
	}
	if want := "holds the lock on " + filepath.Join(dir, "db", "LOCK"); !strings.Contains(err.Error(), want) {
		t.Fatalf("second server: %v\nwant the message to say it %s", err, want)
	}
	resp, err := http.Get(first.URL + "/health/ready")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the first server is no longer ready: %d", resp.StatusCode)
	}
}
