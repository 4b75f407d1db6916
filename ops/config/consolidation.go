package config

import "time"

// ConsolidationConfig schedules consolidation passes (episodes grouped
// into semantic memories, as POST /api/v1/episodes/replay runs on demand).
type ConsolidationConfig struct {
	// Interval is how often a pass runs over every space; 0 runs passes on
	// demand only. Off by default: a pass writes memories (beliefs) into
	// the spaces it reads.
	Interval Duration `toml:"interval" comment:"how often a consolidation pass runs over every space (episodes grouped into semantic memories, as POST /api/v1/episodes/replay does on demand); 0 = on demand only"`
}

// validateConsolidation checks the [consolidation] section.
func (c *Config) validateConsolidation(bad func(key string, value any, allowed string, args ...any)) {
	if iv := c.Consolidation.Interval.Duration; iv != 0 && (iv < time.Second || iv > 7*24*time.Hour) {
		bad("consolidation.interval", c.Consolidation.Interval, "must be 0 (on demand only) or in 1s..168h, e.g. \"1h\"")
	}
}
