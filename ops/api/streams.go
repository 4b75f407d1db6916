package api

// Server-sent event streams (Engram's routes; docs/engram-compatibility.md,
// Streams).
const (
	PathStreamActivities    = "/api/v1/stream/activities"
	PathStreamMemories      = "/api/v1/stream/memories"
	PathStreamConsolidation = "/api/v1/stream/consolidation"
	PathMonitoringEvents    = "/api/v1/monitoring/events"
	// PathMonitorEvents is Engram's alias of PathMonitoringEvents.
	PathMonitorEvents = "/api/v1/monitor/events"
)
