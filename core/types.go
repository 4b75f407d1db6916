package core

import (
	"context"
	"time"
)

// MemoryType classifies a memory the way Engram does.
type MemoryType string

const (
	Semantic   MemoryType = "semantic"
	Episodic   MemoryType = "episodic"
	Procedural MemoryType = "procedural"
)

// Tier is where a memory lives: hot (in the in-memory working set), warm
// (Pebble-resident and in the ANN index) or cold (out of the index, vector
// quantised; readable by id and by deep recall).
type Tier uint8

const (
	TierHot Tier = iota
	TierWarm
	TierCold
	numTiers
)

// Tiers lists every tier in a stable order, for metrics and reports.
var Tiers = [...]Tier{TierHot, TierWarm, TierCold}

func (t Tier) String() string {
	switch t {
	case TierHot:
		return "hot"
	case TierWarm:
		return "warm"
	case TierCold:
		return "cold"
	}
	return "unknown"
}

// ParseTier accepts hot, warm or cold (case-insensitive).
func ParseTier(s string) (Tier, error) {
	switch lower(s) {
	case "hot":
		return TierHot, nil
	case "warm":
		return TierWarm, nil
	case "cold":
		return TierCold, nil
	}
	return 0, Errorf(KindInvalid, "INVALID_TIER", "tier %q is not one of hot, warm, cold", truncate(s, 40))
}

// Episode holds the who/what/when fields of an episodic memory.
type Episode struct {
	When             time.Time `json:"when"`
	What             string    `json:"what"`
	Where            string    `json:"where,omitempty"`
	Who              []string  `json:"who,omitempty"`
	Why              string    `json:"why,omitempty"`
	How              string    `json:"how,omitempty"`
	EmotionalValence *float64  `json:"emotional_valence,omitempty"`
	Importance       *float64  `json:"importance,omitempty"`
}

// Memory is one stored memory with every field the engine keeps.
type Memory struct {
	Space       string
	ID          string
	Content     string
	Embedding   []float32 // nil when the caller did not ask for it
	Confidence  float64
	Type        MemoryType
	Tags        []string
	Metadata    map[string]string
	Episode     *Episode
	ObservedAt  time.Time
	StoredAt    time.Time
	LastAccess  time.Time
	AccessCount uint64
	Stability   time.Duration // decay stability S in R = exp(-Δt/S)
	Tier        Tier
	Seq         uint64 // change-log sequence of the write that produced this version
}

// Retrievability is R = exp(-Δt/S) at the given instant, Δt counted from
// the last recall or, before the first, from ObservedAt when that is
// earlier than the store (see decayFrom).
func (m *Memory) Retrievability(now time.Time) float64 {
	from := decayFrom(m.ObservedAt.UnixNano(), m.LastAccess.UnixNano(), m.AccessCount)
	return retrievability(time.Duration(now.UnixNano()-from), m.Stability)
}

// RememberInput is one memory to store. Zero values take defaults:
// confidence 0.7, type semantic, observed now, generated id.
type RememberInput struct {
	ID            string
	Content       string
	Embedding     []float32
	Confidence    *float64
	Type          MemoryType
	Tags          []string
	Metadata      map[string]string
	ObservedAt    time.Time
	Episode       *Episode
	AutoLink      bool
	LinkThreshold float64 // cosine similarity; 0 means the default 0.7
}

// AutoLink is an association created by auto-linking on remember.
type AutoLink struct {
	TargetID   string
	Similarity float64
}

// RememberResult describes a stored memory.
type RememberResult struct {
	ID         string
	Confidence float64
	ObservedAt time.Time
	StoredAt   time.Time
	AutoLinks  []AutoLink
	Seq        uint64
	Created    bool // false when an existing id was overwritten
}

// Association is a weighted directed edge between two memories of one space.
type Association struct {
	From   string
	To     string
	Weight float64 // (0, 1]
	Kind   string  // free-form, e.g. "related", "causes"; default "related"
}

// BatchInput is many memories and associations written atomically, with an
// optional cursor stored in the same batch (exactly-once resume for importers).
type BatchInput struct {
	Memories     []RememberInput
	Associations []Association
	Cursor       *Cursor
}

// Cursor is an importer's resume position, stored atomically with a batch.
type Cursor struct {
	Source string
	Value  string
}

// BatchResult lists the ids written, in input order.
type BatchResult struct {
	IDs          []string
	Associations int
	Seq          uint64
}

// ListOptions pages through a space. AllTiers lists every tier.
type ListOptions struct {
	Tier              Tier
	AllTiers          bool
	Offset            int
	Limit             int
	IncludeEmbeddings bool
}

// ListResult is one page of memories in id order plus per-tier counts.
type ListResult struct {
	Memories   []Memory
	Total      int // memories matching the tier filter
	TierCounts [numTiers]int64
}

// RecallMode picks how recall finds memories.
type RecallMode string

const (
	ModeSimilarity RecallMode = "similarity" // ANN seeds only
	ModeSpreading  RecallMode = "spreading"  // seeds are used only to start spreading; results are spread-reached memories
	ModeHybrid     RecallMode = "hybrid"     // seeds plus spreading (default)
)

// RecallQuery is a cue and its knobs. Zero values take defaults.
type RecallQuery struct {
	Text                string
	Embedding           []float32
	MaxResults          int     // default 10
	Threshold           float64 // minimum cosine similarity of a seed; default 0.2 for text cues, 0.5 for vectors
	RequiredTags        []string
	From, To            time.Time // observed_at range; zero = open
	Mode                RecallMode
	Deep                bool    // also search the cold tier exactly
	MaxHops             int     // spreading hops; default 2
	HopDecay            float64 // activation multiplier per hop; default 0.5
	ActivationThreshold float64 // stop spreading below this; default 0.05
	Trace               bool    // fill Recalled.Path for every result
	NoReinforce         bool    // read-only recall (tools, verification)
}

// Recalled is one recall result.
type Recalled struct {
	Memory         Memory  // without embedding
	Similarity     float64 // cosine similarity to the cue (0 for spread-only results)
	Activation     float64 // spreading activation level (1 for direct matches before scoring)
	Retrievability float64
	Score          float64  // similarity-or-activation × confidence × retrievability
	Path           []string // ids from a seed to this memory (seed first); direct matches have [id]
	Direct         bool     // reached by similarity rather than spreading
}

// RecallResult groups results the way Engram does.
type RecallResult struct {
	Vivid      []Recalled // direct matches
	Associated []Recalled // reached through associations
	Confidence float64    // overall recall confidence 0..1
	Searched   int        // memories considered (index size + exact-scanned)
	Activated  int        // memories reached by spreading
	Strategy   string     // human-readable search strategy
	Took       time.Duration
}

// Change is one entry of the change log: a mutation with its sequence and
// commit time. Changes are self-contained: applying them in order to an empty
// engine reproduces the data.
type Change struct {
	Seq  uint64
	Time time.Time
	Op   ChangeOp
	// Space is the space the change applies to ("" for global changes such as cursors).
	Space string
	// Exactly one of the following is set, according to Op.
	Memory      *Memory       // OpPutMemory (with embedding, unless a deterministic embedder derived it from the content)
	ID          string        // OpDeleteMemory
	Association *Association  // OpPutAssociation
	SpaceInfo   *SpaceInfo    // OpCreateSpace
	Cursor      *Cursor       // OpSetCursor
	System      *SystemRecord // OpSetSystem
	Touches     []Touch       // OpTouch
}

// ChangeOp names the kind of mutation.
type ChangeOp uint8

const (
	OpPutMemory ChangeOp = iota + 1
	OpDeleteMemory
	OpPutAssociation
	OpCreateSpace
	OpSetCursor
	OpTouch
	OpSetSystem
)

func (o ChangeOp) String() string {
	switch o {
	case OpPutMemory:
		return "put_memory"
	case OpDeleteMemory:
		return "delete_memory"
	case OpPutAssociation:
		return "put_association"
	case OpCreateSpace:
		return "create_space"
	case OpSetCursor:
		return "set_cursor"
	case OpTouch:
		return "touch"
	case OpSetSystem:
		return "set_system"
	}
	return "unknown"
}

// Touch records reinforcement of a memory by recall.
type Touch struct {
	ID          string
	LastAccess  time.Time
	AccessCount uint64
	Stability   time.Duration
}

// SpaceInfo describes a space. Dimension and embedder are fixed at creation.
type SpaceInfo struct {
	Name        string
	Dimension   int
	Embedder    string // embedder name, e.g. "hash" or "openai"
	Fingerprint string // embedder fingerprint, e.g. "hash-v1/768"
	CreatedAt   time.Time
}

// SpaceConfig is what a caller chooses when creating a space; zero values
// take the engine defaults.
type SpaceConfig struct {
	Name      string
	Dimension int
	Embedder  string
}

// SpaceStats describes a space with its counts.
type SpaceStats struct {
	SpaceInfo
	Memories     [numTiers]int64
	Associations int64
	IndexPending int // acknowledged writes not yet in the ANN index (searched exactly)
}

// Total is the number of memories in every tier.
func (s SpaceStats) Total() int64 {
	var n int64
	for _, c := range s.Memories {
		n += c
	}
	return n
}

// Embedder turns text into vectors. Implementations must be deterministic for
// a given fingerprint: the fingerprint is fixed into a space at creation.
// Embed returns slices the caller owns (the engine may overwrite them).
type Embedder interface {
	Embed(ctx context.Context, texts []string) ([][]float32, error)
	Dimension() int
	Fingerprint() string
}

// EmbedderFactory builds the embedder named name for the given dimension.
type EmbedderFactory func(name string, dimension int) (Embedder, error)

// TierMigration counts memories moved between tiers.
type TierMigration struct {
	From, To Tier
	Count    uint64
}

// Metrics is a point-in-time snapshot of engine state for exporters.
type Metrics struct {
	Spaces            []SpaceStats
	TierBytes         [numTiers]int64
	TierCapacityBytes [numTiers]int64
	Migrations        []TierMigration
	CacheHits         uint64
	CacheMisses       uint64
	DiskBytes         int64
	Compactions       int64
	ChangelogSequence uint64 // last durable sequence
	// Durability is what an acknowledged write means (Options.Durability).
	Durability Durability
	WALSync    WALSyncStats
	// Disk is the filesystem holding the data directory, measured when
	// the snapshot is taken.
	Disk DiskStats
	// Corruption is the on-disk corruption found since Open.
	Corruption CorruptionStats
	// Backlog is Index.MaxPending's effect on writes since Open.
	Backlog BacklogStats
}

// CorruptionStats counts reads and compactions that met a storage file
// failing its checksum since Open, and names the damaged files.
type CorruptionStats struct {
	Events int64
	Files  []string
}

// DiskStats describes the filesystem holding the data directory and the
// disk guard (see Options.MinFreeBytes).
type DiskStats struct {
	Measured      bool  // false when the filesystem could not be read
	FreeBytes     int64 // available to the server
	TotalBytes    int64
	MinFreeBytes  int64 // the reserve; 0 when the guard is off
	WritesRefused bool  // the guard refuses writes (free space was under the reserve at the last check)
}

// WALSyncStats describes the write-ahead-log fsyncs that made writes durable
// since Open: with sync durability every acknowledged write waits for one,
// so their latency is the floor of a write's. Cumulative[i] counts syncs
// that took at most WALSyncBuckets[i] seconds.
type WALSyncStats struct {
	Cumulative []uint64
	Count      uint64  // all syncs
	Sum        float64 // seconds
	Writes     uint64  // writes the group syncs made durable (0 for relaxed durability's timed syncs)
}
