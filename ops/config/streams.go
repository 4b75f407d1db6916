package config

import "time"

// StreamsConfig configures the server-sent event streams
// (/api/v1/stream/*, /api/v1/monitoring/events).
type StreamsConfig struct {
	// Heartbeat is how often an idle stream gets a comment line, so
	// proxies and clients see the connection alive.
	Heartbeat Duration `toml:"heartbeat" comment:"how often an idle stream is sent a heartbeat comment"`
	// Buffer is how many events of each space are kept for clients that
	// resume with Last-Event-ID.
	Buffer int `toml:"buffer" comment:"events kept per space for Last-Event-ID resume"`
	// MaxSubscribers caps the open streams; a stream holds a connection,
	// so the cap keeps room under server.max_connections for requests.
	MaxSubscribers int `toml:"max_subscribers" comment:"most open streams; one more is answered 503 and counted in engram_stream_refused_total; below server.max_connections; 0 = no cap"`
}

func defaultStreams() StreamsConfig {
	return StreamsConfig{Heartbeat: Duration{15 * time.Second}, Buffer: 1024, MaxSubscribers: 256}
}

// validateStreams checks the [streams] section.
func (c *Config) validateStreams(bad func(key string, value any, allowed string, args ...any)) {
	s := c.Streams
	if s.Heartbeat.Duration < 10*time.Millisecond || s.Heartbeat.Duration > time.Hour {
		bad("streams.heartbeat", s.Heartbeat, "must be in 10ms..1h, e.g. \"15s\"")
	}
	if s.Buffer < 1 || s.Buffer > 1<<20 {
		bad("streams.buffer", s.Buffer, "must be in 1..1048576 events")
	}
	if s.MaxSubscribers < 0 {
		bad("streams.max_subscribers", s.MaxSubscribers, "must be 0 (no cap) or more")
	} else if m := c.Server.MaxConnections; m > 0 && (s.MaxSubscribers == 0 || s.MaxSubscribers >= m) {
		bad("streams.max_subscribers", s.MaxSubscribers, "must be below server.max_connections (%d), so that streams cannot hold every connection", m)
	}
}
