package config

import (
	"strings"
	"testing"
)

// A follower cannot also ship or consolidate (both write), and its
// archive and primary URLs are checked.
func TestReplicaValidation(t *testing.T) {
	c := Default()
	c.Replica.Follow = "file:///srv/archive"
	c.Replica.PrimaryURL = "http://primary:7432"
	if err := c.Validate(); err != nil {
		t.Fatalf("a valid follower: %v", err)
	}
	c.Backup.To = "file:///srv/other"
	c.Consolidation.Interval.Duration = 3600e9
	c.Replica.PrimaryURL = "primary:7432"
	err := c.Validate()
	for _, want := range []string{"cannot be combined with backup.to", "cannot be combined with consolidation.interval", "replica.primary_url"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("validation: %v, want %q", err, want)
		}
	}
	c = Default()
	c.Replica.Follow = "http://archive"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "replica.follow") {
		t.Fatalf("an archive URL of another scheme: %v", err)
	}
}
