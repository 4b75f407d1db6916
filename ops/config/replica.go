package config

import (
	"net/url"
	"strings"
	"time"
)

// ReplicaConfig makes the server a read-only follower: it seeds its data
// directory from the newest snapshot of a primary's backup archive and
// applies the change log the primary ships there (package backup).
type ReplicaConfig struct {
	// Follow is the archive followed, in backup.to's syntax; empty: the
	// server is a primary.
	Follow string `toml:"follow" comment:"follow the backup archive at s3://bucket/prefix or file:///dir as a read-only replica (writes answer 421); empty = this server is a primary"`
	// PrimaryURL is where writes belong, named in the 421 answer so that
	// clients can redirect.
	PrimaryURL string `toml:"primary_url" comment:"base URL of the primary (http(s)://host:port), named in the 421 answer to writes sent to a follower"`
	// IdentityFile decrypts an encrypted archive (age identities, as
	// restore's --identity-file).
	IdentityFile string `toml:"identity_file" comment:"age identity file (from age-keygen) that decrypts the followed archive, when it is encrypted"`
	// PollInterval is how often a follower reads the archive's head.
	PollInterval Duration `toml:"poll_interval" comment:"how often a follower reads the archive's head.json for new changes"`
	// MaxLag is the lag past which a follower reports not ready.
	MaxLag Duration `toml:"max_lag" comment:"a follower's readiness (/health, /health/ready) fails while its lag behind the archive exceeds this, or applying stopped"`
}

func defaultReplica() ReplicaConfig {
	return ReplicaConfig{PollInterval: Duration{time.Second}, MaxLag: Duration{30 * time.Second}}
}

// validateReplica checks the [replica] section.
func (c *Config) validateReplica(bad func(key string, value any, allowed string, args ...any)) {
	r := c.Replica
	if f := r.Follow; f != "" {
		if !strings.HasPrefix(f, "s3://") && !strings.HasPrefix(f, "file://") {
			bad("replica.follow", f, "must be s3://bucket/prefix or file:///dir")
		}
		if c.Backup.To != "" {
			bad("replica.follow", f, "cannot be combined with backup.to (%s): a follower ships nothing, its primary does; drop --backup-to", c.Backup.To)
		}
		if c.Consolidation.Interval.Duration != 0 {
			bad("replica.follow", f, "cannot be combined with consolidation.interval: a follower writes nothing; schedule consolidation on the primary")
		}
	}
	if p := r.PrimaryURL; p != "" {
		if u, err := url.Parse(p); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("replica.primary_url", p, "must be an http:// or https:// URL with a host, e.g. http://primary:7432")
		}
	}
	if d := r.PollInterval.Duration; d < 10*time.Millisecond || d > time.Hour {
		bad("replica.poll_interval", r.PollInterval, "must be in 10ms..1h")
	}
	if d := r.MaxLag.Duration; d < 100*time.Millisecond || d > 24*time.Hour {
		bad("replica.max_lag", r.MaxLag, "must be in 100ms..24h")
	}
}
