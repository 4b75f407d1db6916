package loadtest

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/engram-ops/engram-ops/internal/stricttoml"
)

// Scenario is one load test, read from a TOML file. The sections name,
// description, [duration], [arrival], [operations], [data],
// [data.embedding_distribution], [validation] and [chaos] are Engram's
// loadtest format (its files load unchanged, except that chaos injection
// is refused); [warmup], [preload], [popularity], [session], [ground_truth]
// and [generator] are engram-ops additions, all optional.
type Scenario struct {
	Name        string       `toml:"name"`
	Description string       `toml:"description"`
	Duration    DurationCfg  `toml:"duration"`
	Warmup      WarmupCfg    `toml:"warmup"`
	Arrival     Arrival      `toml:"arrival"`
	Operations  Weights      `toml:"operations"`
	Data        DataCfg      `toml:"data"`
	Preload     PreloadCfg   `toml:"preload"`
	Popularity  Popularity   `toml:"popularity"`
	Session     SessionCfg   `toml:"session"`
	GroundTruth GroundTruth  `toml:"ground_truth"`
	Validation  Validation   `toml:"validation"`
	Chaos       ChaosCfg     `toml:"chaos"`
	Generator   GeneratorCfg `toml:"generator"`
}

// DurationCfg is [duration]: how long the measured phase lasts.
type DurationCfg struct {
	TotalSeconds float64 `toml:"total_seconds"`
}

// WarmupCfg is [warmup]: load offered at the scenario's pattern before
// measuring; its requests are counted but not recorded.
type WarmupCfg struct {
	Seconds float64 `toml:"seconds"`
}

// Arrival is [arrival]: when requests are scheduled.
//
//   - constant: rate per second, evenly spaced.
//   - poisson (Engram: lambda; also "exponential"): exponential gaps of mean 1/rate.
//   - ramp: linear from start_rate to rate over ramp_seconds, then rate.
//   - burst (Engram: "periodic_burst"): base_rate, and burst_rate for
//     burst_duration_sec at the start of every burst_period_sec.
type Arrival struct {
	Pattern          string  `toml:"pattern"`
	Rate             float64 `toml:"rate"`
	Lambda           float64 `toml:"lambda"`
	StartRate        float64 `toml:"start_rate"`
	RampSeconds      float64 `toml:"ramp_seconds"`
	BaseRate         float64 `toml:"base_rate"`
	BurstRate        float64 `toml:"burst_rate"`
	BurstDurationSec float64 `toml:"burst_duration_sec"`
	BurstPeriodSec   float64 `toml:"burst_period_sec"`
}

// Weights is [operations]: the relative frequency of each operation.
type Weights struct {
	Store             float64 `toml:"store_weight"`
	Recall            float64 `toml:"recall_weight"`
	EmbeddingSearch   float64 `toml:"embedding_search_weight"`
	PatternCompletion float64 `toml:"pattern_completion_weight"`
	Forget            float64 `toml:"forget_weight"`
}

// DataCfg is [data]: the data set the scenario works on.
type DataCfg struct {
	// NumNodes sizes the id pool the operations draw from, split evenly
	// over the spaces (Engram's meaning): the memories m-0 … m-(n-1) of a
	// space, each with a content and a vector derived from the seed. Read
	// cues are drawn from the pool; nothing is written because of it
	// ([preload] memories does that). 0 means the preload's size.
	NumNodes int `toml:"num_nodes"`
	// EmbeddingDim is the dimension of the generator's own vectors (the
	// embedding_search population); text memories use the server's
	// embedder and the space's default dimension.
	EmbeddingDim int                   `toml:"embedding_dim"`
	MemorySpaces int                   `toml:"memory_spaces"`
	Distribution EmbeddingDistribution `toml:"embedding_distribution"`
	// SpacePrefix names the spaces: PREFIX-N (text) and PREFIX-N-vec.
	SpacePrefix string `toml:"space_prefix"`
	// WordsPerMemory is the length of generated contents (default 12).
	WordsPerMemory int `toml:"words_per_memory"`
}

// EmbeddingDistribution is [data.embedding_distribution].
type EmbeddingDistribution struct {
	Type        string  `toml:"type"` // clustered | uniform
	NumClusters int     `toml:"num_clusters"`
	StdDev      float64 `toml:"std_dev"`
}

// PreloadCfg is [preload]: memories written before the measured phase,
// through the batch endpoint (single remembers against an Engram server).
// None by default: Engram's scenario files preload nothing.
type PreloadCfg struct {
	// Memories is how many of the id pool's memories are written, split
	// evenly over the spaces: the first of each space's pool, text
	// memories in PREFIX-N and, when the scenario searches by vector,
	// their vectors of [data] embedding_dim in PREFIX-N-vec. Recall@k is
	// checked only on cues of preloaded memories.
	Memories int `toml:"memories"`
	// Disabled is the same as memories = 0.
	Disabled  bool `toml:"disabled"`
	BatchSize int  `toml:"batch_size"`
	// SettleTimeoutSeconds bounds the wait, after the preload, for the
	// server to index what was written (default 300; 0 = do not wait).
	// A pointer because 0 is meaningful and unset means the default.
	SettleTimeoutSeconds *float64 `toml:"settle_timeout_seconds"`
}

// SettleTimeout is [preload] settle_timeout_seconds as a duration.
func (p PreloadCfg) SettleTimeout() time.Duration {
	if p.SettleTimeoutSeconds == nil {
		return 0
	}
	return time.Duration(*p.SettleTimeoutSeconds * float64(time.Second))
}

// Popularity is [popularity]: which preloaded memory a cue is derived
// from. zipf (default, exponent 1.1) makes a few memories hot, as real
// agents do; uniform spreads cues evenly.
type Popularity struct {
	Distribution string  `toml:"distribution"`
	ZipfExponent float64 `toml:"zipf_exponent"`
}

// SessionCfg is [session]: each arrival starts a session of
// ops_per_session operations separated by think time. The default, one
// operation per arrival, is the pure open model.
type SessionCfg struct {
	OpsPerSession     int     `toml:"ops_per_session"`
	ThinkTimeMS       float64 `toml:"think_time_ms"`
	ThinkDistribution string  `toml:"think_distribution"` // constant | exponential
}

// GroundTruth is [ground_truth]: recall@k checks of the answers. The
// generator knows which memory each text cue came from, and computes the
// exact nearest neighbours of its vector cues over the preloaded vectors.
type GroundTruth struct {
	Disabled bool `toml:"disabled"`
	K        int  `toml:"k"`
	// CuePool is how many cues per space are prepared (and their exact
	// neighbours computed) before the run.
	CuePool int `toml:"cue_pool"`
}

// Validation is [validation]: limits that fail the run (exit 3). Unset
// limits are not checked.
type Validation struct {
	ExpectedP99LatencyMS     *float64 `toml:"expected_p99_latency_ms"`
	ExpectedThroughputOpsSec *float64 `toml:"expected_throughput_ops_sec"`
	MaxErrorRate             *float64 `toml:"max_error_rate"`
	MinRecallAtK             *float64 `toml:"min_recall_at_k"`
	// RequireGeneratorOK fails the run when the generator, or contention
	// for its CPU, limited it.
	RequireGeneratorOK bool `toml:"require_generator_ok"`
}

// ChaosCfg is Engram's [chaos]. Fault injection is not part of this
// generator; enabled = true is refused rather than silently ignored.
type ChaosCfg struct {
	Enabled bool `toml:"enabled"`
}

// GeneratorCfg is [generator]: the attacker's own limits.
type GeneratorCfg struct {
	MaxWorkers       int     `toml:"max_workers"`
	LateAfterMS      float64 `toml:"late_after_ms"`
	DropAfterMS      float64 `toml:"drop_after_ms"`
	RequestTimeoutMS float64 `toml:"request_timeout_ms"`
	Seed             int64   `toml:"seed"`
}

// Operation names, in report order.
const (
	OpStore             = "store"
	OpRecall            = "recall"
	OpEmbeddingSearch   = "embedding_search"
	OpPatternCompletion = "pattern_completion"
	OpForget            = "forget"
)

// OpNames lists every operation in report order.
var OpNames = []string{OpStore, OpRecall, OpEmbeddingSearch, OpPatternCompletion, OpForget}

func (w Weights) list() []float64 {
	return []float64{w.Store, w.Recall, w.EmbeddingSearch, w.PatternCompletion, w.Forget}
}

//go:embed scenarios/*.toml
var builtin embed.FS

// Builtin lists the scenarios compiled into the binary, sorted by name.
func Builtin() []string {
	entries, _ := fs.ReadDir(builtin, "scenarios")
	var names []string
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e.Name(), ".toml"))
	}
	sort.Strings(names)
	return names
}

// BuiltinSource returns the TOML text of a built-in scenario.
func BuiltinSource(name string) ([]byte, bool) {
	b, err := builtin.ReadFile(path.Join("scenarios", name+".toml"))
	return b, err == nil
}

// ErrUnknownScenario is returned by Load for a name that is neither a
// built-in scenario nor a readable file.
var ErrUnknownScenario = errors.New("unknown scenario")

// Load reads a scenario: a built-in name (smoke, write_heavy, …) or the
// path of a TOML file. It returns the source text, for the result record.
func Load(nameOrPath string) (*Scenario, []byte, error) {
	if src, ok := BuiltinSource(nameOrPath); ok {
		sc, err := ParseScenario(src)
		return sc, src, err
	}
	src, err := os.ReadFile(nameOrPath)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && !strings.ContainsAny(nameOrPath, "/.") {
			return nil, nil, fmt.Errorf("%w %q: not a built-in scenario (%s) nor a file", ErrUnknownScenario, nameOrPath, strings.Join(Builtin(), ", "))
		}
		return nil, nil, err
	}
	sc, err := ParseScenario(src)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", nameOrPath, err)
	}
	return sc, src, nil
}

// ScenarioError is a problem with a scenario's content (a usage error for
// the CLI, exit 2).
type ScenarioError struct{ Problems []string }

func (e *ScenarioError) Error() string {
	if len(e.Problems) == 1 {
		return "invalid scenario: " + e.Problems[0]
	}
	return "invalid scenario:\n  - " + strings.Join(e.Problems, "\n  - ")
}

// ParseScenario decodes TOML strictly (unknown keys are errors), fills the
// defaults and validates, reporting every problem at once.
func ParseScenario(src []byte) (*Scenario, error) {
	var sc Scenario
	if ps := stricttoml.Decode(src, &sc); ps != nil {
		var problems []string
		for _, p := range ps {
			switch {
			case p.Unknown:
				problems = append(problems, fmt.Sprintf("unknown key %q (line %d)", p.Key, p.Line))
			case p.Line > 0:
				problems = append(problems, fmt.Sprintf("line %d column %d: %s", p.Line, p.Col, p.Msg))
			default:
				problems = append(problems, p.Msg)
			}
		}
		return nil, &ScenarioError{Problems: problems}
	}
	sc.applyDefaults()
	if err := sc.Validate(); err != nil {
		return nil, err
	}
	return &sc, nil
}

func (sc *Scenario) applyDefaults() {
	a := &sc.Arrival
	a.Pattern = strings.ToLower(strings.TrimSpace(a.Pattern))
	switch a.Pattern {
	case "exponential":
		a.Pattern = "poisson"
	case "periodic_burst":
		a.Pattern = "burst"
	}
	if a.Pattern == "poisson" && a.Rate == 0 {
		a.Rate = a.Lambda
	}
	d := &sc.Data
	if d.MemorySpaces == 0 {
		d.MemorySpaces = 1
	}
	if d.EmbeddingDim == 0 {
		d.EmbeddingDim = 768
	}
	if d.Distribution.Type == "" {
		d.Distribution = EmbeddingDistribution{Type: "clustered", NumClusters: 10, StdDev: 0.1}
	}
	if d.SpacePrefix == "" {
		d.SpacePrefix = "lt"
	}
	if d.WordsPerMemory == 0 {
		d.WordsPerMemory = 12
	}
	if sc.Preload.BatchSize == 0 {
		sc.Preload.BatchSize = 500
	}
	if sc.Preload.SettleTimeoutSeconds == nil {
		v := 300.0
		sc.Preload.SettleTimeoutSeconds = &v
	}
	if sc.Popularity.Distribution == "" {
		sc.Popularity.Distribution = "zipf"
	}
	if sc.Popularity.ZipfExponent == 0 {
		sc.Popularity.ZipfExponent = 1.1
	}
	if sc.Session.OpsPerSession == 0 {
		sc.Session.OpsPerSession = 1
	}
	if sc.Session.ThinkDistribution == "" {
		sc.Session.ThinkDistribution = "exponential"
	}
	if sc.GroundTruth.K == 0 {
		sc.GroundTruth.K = 10
	}
	if sc.GroundTruth.CuePool == 0 {
		sc.GroundTruth.CuePool = 256
	}
	g := &sc.Generator
	if g.MaxWorkers == 0 {
		g.MaxWorkers = 1024
	}
	if g.LateAfterMS == 0 {
		g.LateAfterMS = 1
	}
	if g.DropAfterMS == 0 {
		g.DropAfterMS = 1000
	}
	if g.RequestTimeoutMS == 0 {
		g.RequestTimeoutMS = 10_000
	}
	if g.Seed == 0 {
		g.Seed = 1
	}
}

func bad(v float64) bool { return math.IsNaN(v) || math.IsInf(v, 0) }

// Validate checks every field and reports all problems at once.
func (sc *Scenario) Validate() error {
	var ps []string
	p := func(format string, args ...any) { ps = append(ps, fmt.Sprintf(format, args...)) }
	if strings.TrimSpace(sc.Name) == "" {
		p("name is required")
	}
	if sc.Duration.TotalSeconds <= 0 || bad(sc.Duration.TotalSeconds) {
		p("[duration] total_seconds = %v: must be > 0", sc.Duration.TotalSeconds)
	}
	if sc.Warmup.Seconds < 0 || bad(sc.Warmup.Seconds) {
		p("[warmup] seconds = %v: must be >= 0", sc.Warmup.Seconds)
	}
	a := sc.Arrival
	positive := func(key string, v float64) {
		if v <= 0 || bad(v) {
			p("[arrival] %s = %v: must be > 0 (requests per second)", key, v)
		}
	}
	switch a.Pattern {
	case "constant", "poisson":
		positive("rate", a.Rate)
	case "ramp":
		positive("start_rate", a.StartRate)
		positive("rate", a.Rate)
		if a.RampSeconds <= 0 || bad(a.RampSeconds) {
			p("[arrival] ramp_seconds = %v: must be > 0", a.RampSeconds)
		}
	case "burst":
		positive("base_rate", a.BaseRate)
		positive("burst_rate", a.BurstRate)
		if a.BurstPeriodSec <= 0 || a.BurstDurationSec <= 0 || a.BurstDurationSec > a.BurstPeriodSec || bad(a.BurstPeriodSec) || bad(a.BurstDurationSec) {
			p("[arrival] burst_duration_sec = %v, burst_period_sec = %v: need 0 < duration <= period", a.BurstDurationSec, a.BurstPeriodSec)
		}
	case "":
		p("[arrival] pattern is required: constant, poisson, ramp or burst")
	default:
		p("[arrival] pattern = %q: must be constant, poisson, ramp or burst", a.Pattern)
	}
	var sum float64
	for i, w := range sc.Operations.list() {
		if w < 0 || bad(w) {
			p("[operations] %s_weight = %v: must be >= 0", OpNames[i], w)
		}
		sum += w
	}
	if sum <= 0 {
		p("[operations] weights sum to %v: give at least one operation a positive weight", sum)
	}
	d := sc.Data
	if d.NumNodes < 0 {
		p("[data] num_nodes = %d: must be >= 0", d.NumNodes)
	}
	reads := sc.Operations.Recall > 0 || sc.Operations.PatternCompletion > 0 || sc.Operations.EmbeddingSearch > 0
	if sc.PoolSize() < d.MemorySpaces && reads {
		p("[data] num_nodes = %d: reads draw their cues from an id pool of at least one memory per space (%d spaces)", d.NumNodes, d.MemorySpaces)
	}
	if d.EmbeddingDim < 1 || d.EmbeddingDim > 4096 {
		p("[data] embedding_dim = %d: must be in 1..4096", d.EmbeddingDim)
	}
	if d.MemorySpaces < 1 || d.MemorySpaces > 1000 {
		p("[data] memory_spaces = %d: must be in 1..1000", d.MemorySpaces)
	}
	switch d.Distribution.Type {
	case "uniform":
	case "clustered":
		if d.Distribution.NumClusters < 1 {
			p("[data.embedding_distribution] num_clusters = %d: must be >= 1", d.Distribution.NumClusters)
		}
		if d.Distribution.StdDev < 0 || bad(d.Distribution.StdDev) {
			p("[data.embedding_distribution] std_dev = %v: must be >= 0", d.Distribution.StdDev)
		}
	default:
		p("[data.embedding_distribution] type = %q: must be clustered or uniform", d.Distribution.Type)
	}
	if len(d.SpacePrefix) > 40 || strings.Trim(d.SpacePrefix, "abcdefghijklmnopqrstuvwxyz0123456789_-") != "" {
		p("[data] space_prefix = %q: use up to 40 characters of [a-z0-9_-]", d.SpacePrefix)
	}
	if d.WordsPerMemory < 3 || d.WordsPerMemory > 1000 {
		p("[data] words_per_memory = %d: must be in 3..1000", d.WordsPerMemory)
	}
	if sc.Preload.BatchSize < 1 || sc.Preload.BatchSize > 10_000 {
		p("[preload] batch_size = %d: must be in 1..10000", sc.Preload.BatchSize)
	}
	if st := sc.Preload.SettleTimeoutSeconds; st != nil && (*st < 0 || *st > 86400 || bad(*st)) {
		p("[preload] settle_timeout_seconds = %v: must be in 0..86400 (0 = do not wait for the index)", *st)
	}
	if sc.Preload.Memories < 0 {
		p("[preload] memories = %d: must be >= 0", sc.Preload.Memories)
	}
	if sc.Preload.Disabled && sc.Preload.Memories > 0 {
		p("[preload] disabled = true with memories = %d: set memories = 0 or enable the preload", sc.Preload.Memories)
	}
	if d.NumNodes > 0 && sc.Preload.Memories > d.NumNodes {
		p("[preload] memories = %d: more than the id pool it fills ([data] num_nodes = %d)", sc.Preload.Memories, d.NumNodes)
	}
	switch sc.Popularity.Distribution {
	case "uniform":
	case "zipf":
		if sc.Popularity.ZipfExponent <= 1 || bad(sc.Popularity.ZipfExponent) {
			p("[popularity] zipf_exponent = %v: must be > 1", sc.Popularity.ZipfExponent)
		}
	default:
		p("[popularity] distribution = %q: must be zipf or uniform", sc.Popularity.Distribution)
	}
	if sc.Session.OpsPerSession < 1 || sc.Session.OpsPerSession > 10_000 {
		p("[session] ops_per_session = %d: must be in 1..10000", sc.Session.OpsPerSession)
	}
	if sc.Session.ThinkTimeMS < 0 || bad(sc.Session.ThinkTimeMS) {
		p("[session] think_time_ms = %v: must be >= 0", sc.Session.ThinkTimeMS)
	}
	if td := sc.Session.ThinkDistribution; td != "constant" && td != "exponential" {
		p("[session] think_distribution = %q: must be constant or exponential", td)
	}
	if sc.GroundTruth.K < 1 || sc.GroundTruth.K > 1000 {
		p("[ground_truth] k = %d: must be in 1..1000", sc.GroundTruth.K)
	}
	if sc.GroundTruth.CuePool < 1 || sc.GroundTruth.CuePool > 100_000 {
		p("[ground_truth] cue_pool = %d: must be in 1..100000", sc.GroundTruth.CuePool)
	}
	v := sc.Validation
	if v.ExpectedP99LatencyMS != nil && (*v.ExpectedP99LatencyMS <= 0 || bad(*v.ExpectedP99LatencyMS)) {
		p("[validation] expected_p99_latency_ms = %v: must be > 0", *v.ExpectedP99LatencyMS)
	}
	if v.ExpectedThroughputOpsSec != nil && (*v.ExpectedThroughputOpsSec < 0 || bad(*v.ExpectedThroughputOpsSec)) {
		p("[validation] expected_throughput_ops_sec = %v: must be >= 0", *v.ExpectedThroughputOpsSec)
	}
	if v.MaxErrorRate != nil && (*v.MaxErrorRate < 0 || *v.MaxErrorRate > 1 || bad(*v.MaxErrorRate)) {
		p("[validation] max_error_rate = %v: must be in 0..1 (a fraction)", *v.MaxErrorRate)
	}
	if v.MinRecallAtK != nil && (*v.MinRecallAtK < 0 || *v.MinRecallAtK > 1 || bad(*v.MinRecallAtK)) {
		p("[validation] min_recall_at_k = %v: must be in 0..1", *v.MinRecallAtK)
	}
	if v.MinRecallAtK != nil && sc.GroundTruth.Disabled {
		p("[validation] min_recall_at_k needs [ground_truth] enabled")
	}
	if v.MinRecallAtK != nil && sc.PreloadPerSpace() == 0 {
		p("[validation] min_recall_at_k needs [preload] memories (recall@k is checked on preloaded memories only)")
	}
	if sc.Chaos.Enabled {
		p("[chaos] enabled = true: fault injection is not supported by this generator; set enabled = false and inject faults outside (see runbooks/capacity-testing.md)")
	}
	g := sc.Generator
	if g.MaxWorkers < 1 || g.MaxWorkers > 100_000 {
		p("[generator] max_workers = %d: must be in 1..100000", g.MaxWorkers)
	}
	if g.LateAfterMS <= 0 || bad(g.LateAfterMS) {
		p("[generator] late_after_ms = %v: must be > 0", g.LateAfterMS)
	}
	if g.DropAfterMS < g.LateAfterMS || bad(g.DropAfterMS) {
		p("[generator] drop_after_ms = %v: must be >= late_after_ms (%v)", g.DropAfterMS, g.LateAfterMS)
	}
	if g.RequestTimeoutMS <= 0 || bad(g.RequestTimeoutMS) {
		p("[generator] request_timeout_ms = %v: must be > 0", g.RequestTimeoutMS)
	}
	if len(ps) > 0 {
		return &ScenarioError{Problems: ps}
	}
	return nil
}

// PoolSize is the id pool's size over all spaces: [data] num_nodes, or
// the preload's size when num_nodes is 0.
func (sc *Scenario) PoolSize() int {
	if sc.Data.NumNodes > 0 {
		return sc.Data.NumNodes
	}
	return max(sc.Preload.Memories, 0)
}

// PreloadPerSpace is how many memories the run writes into each space
// before the measured phase (0: none, the measured phase starts once the
// spaces exist and the cues are prepared).
func (sc *Scenario) PreloadPerSpace() int {
	if sc.Preload.Disabled || sc.Preload.Memories <= 0 || sc.Data.MemorySpaces < 1 {
		return 0
	}
	return sc.Preload.Memories / sc.Data.MemorySpaces
}

// MeanRate is the pattern's average arrival rate over the measured phase.
func (sc *Scenario) MeanRate() float64 {
	p := NewPacer(sc.Arrival, 0)
	return p.MeanRate(sc.TotalDuration())
}

// TotalDuration is the measured phase's length.
func (sc *Scenario) TotalDuration() time.Duration {
	return time.Duration(sc.Duration.TotalSeconds * float64(time.Second))
}

// WarmupDuration is the warm-up phase's length.
func (sc *Scenario) WarmupDuration() time.Duration {
	return time.Duration(sc.Warmup.Seconds * float64(time.Second))
}

// SetRate scales every rate of the pattern so that its mean becomes r
// (the --rate override keeps the pattern's shape).
func (sc *Scenario) SetRate(r float64) error {
	if r <= 0 || bad(r) {
		return &ScenarioError{Problems: []string{fmt.Sprintf("rate %v: must be > 0 requests per second", r)}}
	}
	f := r / sc.MeanRate()
	a := &sc.Arrival
	a.Rate *= f
	a.Lambda *= f
	a.StartRate *= f
	a.BaseRate *= f
	a.BurstRate *= f
	return nil
}

// SetDuration overrides [duration].
func (sc *Scenario) SetDuration(d time.Duration) error {
	if d <= 0 {
		return &ScenarioError{Problems: []string{fmt.Sprintf("duration %v: must be > 0", d)}}
	}
	sc.Duration.TotalSeconds = d.Seconds()
	return nil
}
