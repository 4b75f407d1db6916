package api

import "time"

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

// The data of the events the streams send. The server writes each event
// as `event: NAME` and `data: JSON`; these types are that JSON's shape
// (the OpenAPI document's x-events of each stream route).

// ActivityBase holds the fields of every /api/v1/stream/activities event.
type ActivityBase struct {
	// the event's name: storage, recall, activation, association, decay or forget
	EventType     string `json:"event_type"`
	Description   string `json:"description"`
	MemorySpaceID string `json:"memory_space_id"`
	// what the event's min_importance filter compares, 0..1
	Importance float64          `json:"importance"`
	SessionID  string           `json:"session_id"`
	Metadata   ActivityMetadata `json:"metadata"`
}

// ActivityMetadata is Engram's metadata of an activity.
type ActivityMetadata struct {
	// high above importance 0.8, else normal
	CognitiveLoad string `json:"cognitive_load"`
	// importance above 0.9
	AttentionRequired bool `json:"attention_required"`
}

// StorageActivity is event storage of /api/v1/stream/activities: a memory
// was stored.
type StorageActivity struct {
	ActivityBase
	// epoch seconds, as Engram writes a storage event's time
	Timestamp  float64 `json:"timestamp"`
	MemoryID   string  `json:"memory_id"`
	Confidence float64 `json:"confidence"`
	MemoryType string  `json:"memory_type"`
	// the write's change-log sequence
	Sequence uint64 `json:"sequence"`
}

// RecallActivity is event recall of /api/v1/stream/activities: one per
// recall; importance is the midpoint of the first result's activation and
// the recall's confidence.
type RecallActivity struct {
	ActivityBase
	Timestamp time.Time `json:"timestamp"`
	// the first result
	MemoryID   string  `json:"memory_id"`
	Activation float64 `json:"activation"`
	// the recall's overall confidence
	Confidence float64 `json:"confidence"`
	// the results in rank order (the first ones of a large recall)
	MemoryIDs []string `json:"memory_ids"`
	// how many memories the recall returned
	Results int `json:"results"`
}

// SpreadingActivity is event activation of /api/v1/stream/activities: a
// recall's spreading activation reached memories; importance is their
// mean activation.
type SpreadingActivity struct {
	ActivityBase
	Timestamp         time.Time `json:"timestamp"`
	MemoriesActivated int       `json:"memories_activated"`
	AvgActivation     float64   `json:"avg_activation"`
}

// AssociationActivity is event association of /api/v1/stream/activities;
// importance is the weight.
type AssociationActivity struct {
	ActivityBase
	Timestamp time.Time `json:"timestamp"`
	From      string    `json:"from"`
	To        string    `json:"to"`
	Weight    float64   `json:"weight"`
	Kind      string    `json:"kind"`
	Sequence  uint64    `json:"sequence"`
}

// DecayActivity is event decay of /api/v1/stream/activities: the tier
// sweep moved memories to the cold tier; importance is 1 − their mean
// retrievability.
type DecayActivity struct {
	ActivityBase
	Timestamp time.Time `json:"timestamp"`
	MemoryIDs []string  `json:"memory_ids"`
	// each memory's retrievability, in the order of memory_ids
	Retrievability []float64 `json:"retrievability"`
}

// ForgetActivity is event forget of /api/v1/stream/activities (not one of
// Engram's): a memory was forgotten; importance is 1.
type ForgetActivity struct {
	ActivityBase
	Timestamp time.Time `json:"timestamp"`
	MemoryID  string    `json:"memory_id"`
	Sequence  uint64    `json:"sequence"`
}

// MemoryFormation is event formation of /api/v1/stream/memories: a memory
// was stored.
type MemoryFormation struct {
	// "formation"
	Operation     string    `json:"operation"`
	Description   string    `json:"description"`
	MemoryType    string    `json:"memory_type"`
	Confidence    float64   `json:"confidence"`
	Timestamp     time.Time `json:"timestamp"`
	SessionID     string    `json:"session_id"`
	MemoryID      string    `json:"memory_id"`
	MemorySpaceID string    `json:"memory_space_id"`
	// Stable above confidence 0.8, else Recent
	ConsolidationState string `json:"consolidation_state"`
	Sequence           uint64 `json:"sequence"`
}

// MemoryRetrieval is event retrieval of /api/v1/stream/memories: a recall
// returned memories.
type MemoryRetrieval struct {
	// "retrieval"
	Operation   string `json:"operation"`
	Description string `json:"description"`
	// the midpoint of the first result's activation and the recall's confidence
	Confidence    float64   `json:"confidence"`
	Activation    float64   `json:"activation"`
	Timestamp     time.Time `json:"timestamp"`
	SessionID     string    `json:"session_id"`
	MemoryID      string    `json:"memory_id"`
	MemoryIDs     []string  `json:"memory_ids"`
	Results       int       `json:"results"`
	MemorySpaceID string    `json:"memory_space_id"`
	// "Retrieved"
	ConsolidationState string `json:"consolidation_state"`
}

// MonitorEvent is event monitor of /api/v1/monitoring/events: event_type
// formation (a memory stored), activation (a recall), spreading (memories
// a recall's spreading reached) or decay (memories gone cold).
type MonitorEvent struct {
	EventType   string `json:"event_type"`
	Description string `json:"description"`
	// the request's level, echoed
	Level string `json:"level"`
	// formation: the confidence; activation: the recall's confidence; spreading: the mean activation; decay: the mean retrievability
	ActivationLevel float64   `json:"activation_level"`
	Timestamp       time.Time `json:"timestamp"`
	SessionID       string    `json:"session_id"`
	// the event id
	Sequence      uint64       `json:"sequence"`
	MemorySpaceID string       `json:"memory_space_id"`
	DebugInfo     MonitorDebug `json:"debug_info"`
	// the request's focus_id, when given
	FocusID string `json:"focus_id,omitempty"`
	Focused bool   `json:"focused,omitempty"`
	// formation
	MemoryID string `json:"memory_id,omitempty"`
	// activation and decay
	MemoryIDs []string `json:"memory_ids,omitempty"`
	// activation
	Results int `json:"results,omitempty"`
	// spreading
	MemoriesActivated int `json:"memories_activated,omitempty"`
}

// MonitorDebug is a monitor event's debug_info.
type MonitorDebug struct {
	CognitiveLoad  string `json:"cognitive_load"`
	HierarchyLevel string `json:"hierarchy_level"`
}

// StreamWarning is event warning of every stream (it has no id): the
// client lagged and events were dropped (dropped, first_dropped_id,
// last_dropped_id), or a resume could not replay every event after
// Last-Event-ID (missed and resumed_from_id, or latest_event_id when the
// id is newer than the space's newest event).
type StreamWarning struct {
	Warning        string `json:"warning"`
	SessionID      string `json:"session_id"`
	Dropped        uint64 `json:"dropped,omitempty"`
	FirstDroppedID uint64 `json:"first_dropped_id,omitempty"`
	LastDroppedID  uint64 `json:"last_dropped_id,omitempty"`
	Missed         uint64 `json:"missed,omitempty"`
	LastEventID    uint64 `json:"last_event_id,omitempty"`
	LatestEventID  uint64 `json:"latest_event_id,omitempty"`
	ResumedFromID  uint64 `json:"resumed_from_id,omitempty"`
}
