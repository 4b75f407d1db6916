package loadtest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/engram-ops/engram-ops/loadtest/attack"
	"github.com/engram-ops/engram-ops/ops/api"
	"github.com/engram-ops/engram-ops/ops/client"
)

// The data set. Two populations per tenant, because a space fixes one
// embedding dimension and embedder:
//
//   - text memories in space PREFIX-N: content only, embedded by the
//     server (what store, recall and pattern_completion use);
//   - vector memories in PREFIX-N-vec: the generator's own clustered or
//     uniform vectors of embedding_dim (what embedding_search uses), only
//     when the scenario searches by vector.
//
// Run-time stores write text memories only, so the vector population stays
// what was preloaded and the exact neighbours computed before the run stay
// exact.

// textCue is one prepared text cue and the memory it was derived from.
type textCue struct {
	id      string // the source memory: ground truth for recall@k
	recall  string // most of its words, some dropped
	partial string // its first words only (pattern completion)
	// The recall requests of recall and partial, encoded once.
	recallBody, partialBody encodedRecall
}

// vecCue is one prepared vector cue and its exact nearest neighbours.
type vecCue struct {
	vec   []float32
	truth map[string]bool
	body  encodedRecall // its recall request, encoded once
}

// encodedRecall is a cue's recall request, encoded when the cue is first
// sent and kept: a cue is sent many times over, and encoding a vector cue
// (768 numbers) costs more CPU than sending it. Encoding on first use
// keeps the setup's time independent of the cue pools' size.
type encodedRecall struct {
	p atomic.Pointer[client.RecallBody]
}

// get returns the encoding of req, which must be the same on every call.
func (e *encodedRecall) get(req api.RecallRequest) (client.RecallBody, error) {
	if b := e.p.Load(); b != nil {
		return *b, nil
	}
	b, err := client.EncodeRecall(req)
	if err != nil {
		return client.RecallBody{}, err
	}
	e.p.Store(&b)
	return b, nil
}

type tenant struct {
	text, vec   *client.Client
	textName    string
	vecName     string
	textCues    []*textCue
	vecCues     []*vecCue
	mu          sync.Mutex
	forgettable []string // stored during the run, or reserved at preload
}

type workload struct {
	sc      *Scenario
	tenants []*tenant
	weights []float64
	total   float64
	runID   string
	seq     atomicCounter
	k       int
	truth   bool
	// engram restricts the requests to the routes an Engram server has.
	engram bool
}

type atomicCounter struct {
	mu sync.Mutex
	n  int64
}

func (c *atomicCounter) next() int64 {
	c.mu.Lock()
	c.n++
	n := c.n
	c.mu.Unlock()
	return n
}

// vocabulary: pronounceable pseudo-words, so the hashing embedder's word
// and character n-grams see realistic tokens.
var vocabulary = func() []string {
	cons := []string{"b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "ch", "st"}
	vows := []string{"a", "e", "i", "o", "u", "ai", "ou", "ea"}
	rng := rand.New(rand.NewPCG(7, 11))
	seen := map[string]bool{}
	var words []string
	for len(words) < 4096 {
		var b strings.Builder
		for s := 0; s < 2+rng.IntN(2); s++ {
			b.WriteString(cons[rng.IntN(len(cons))])
			b.WriteString(vows[rng.IntN(len(vows))])
		}
		if w := b.String(); !seen[w] {
			seen[w] = true
			words = append(words, w)
		}
	}
	return words
}()

func memoryWords(seed int64, space, i, n int) []string {
	rng := rand.New(rand.NewPCG(uint64(seed)^uint64(space)<<40, uint64(i)))
	ws := make([]string, n)
	for j := range ws {
		ws[j] = vocabulary[rng.IntN(len(vocabulary))]
	}
	return ws
}

// vectors generates a population: unit-length cluster centres, then each
// vector as centre + noise, L2-normalised, where the noise is
// N(0, std_dev²/dim) per coordinate, so its expected length is std_dev
// whatever the dimension (uniform: N(0,1) per coordinate, normalised).
// std_dev is thus the spread of a cluster relative to its centre: with
// per-coordinate noise of std_dev instead, 0.15 at 768 dimensions drowns
// the centre four times over and every "cluster" is uniform noise, the
// case in which no neighbour is much nearer than any other point.
func vectors(d DataCfg, seed int64, space, n int) [][]float32 {
	rng := rand.New(rand.NewPCG(uint64(seed)+uint64(space)*7919, 3))
	dim := d.EmbeddingDim
	var centres [][]float32
	if d.Distribution.Type == "clustered" {
		for c := 0; c < d.Distribution.NumClusters; c++ {
			v := make([]float32, dim)
			for j := range v {
				v[j] = float32(rng.NormFloat64())
			}
			normalize(v)
			centres = append(centres, v)
		}
	}
	out := make([][]float32, n)
	for i := range out {
		v := make([]float32, dim)
		if centres != nil {
			c := centres[rng.IntN(len(centres))]
			sigma := d.Distribution.StdDev / math.Sqrt(float64(dim))
			for j := range v {
				v[j] = c[j] + float32(rng.NormFloat64()*sigma)
			}
		} else {
			for j := range v {
				v[j] = float32(rng.NormFloat64())
			}
		}
		normalize(v)
		out[i] = v
	}
	return out
}

func normalize(v []float32) {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	if s == 0 {
		return
	}
	inv := float32(1 / math.Sqrt(s))
	for i := range v {
		v[i] *= inv
	}
}

func dot(a, b []float32) float32 {
	var s float32
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

func memID(i int) string { return "m-" + strconv.Itoa(i) }

// setupWorkload creates the spaces, preloads [preload] memories of the id
// pool (through the batch endpoint, or single remembers against Engram)
// and prepares the cue pools, with their ground truth when their memories
// were preloaded. Without a preload its cost does not grow with the pool.
func setupWorkload(ctx context.Context, sc *Scenario, c *client.Client, kind string, seed int64, logf func(string, ...any)) (*workload, SetupInfo, error) {
	w := &workload{sc: sc, weights: sc.Operations.list(), k: sc.GroundTruth.K, engram: kind == TargetEngram,
		runID: strconv.FormatUint(rand.Uint64()%1_000_000_000, 36)}
	for _, x := range w.weights {
		w.total += x
	}
	var info SetupInfo
	start := time.Now()
	d := sc.Data
	needVec := sc.Operations.EmbeddingSearch > 0
	if w.engram && needVec && d.EmbeddingDim != EngramDimension {
		return nil, info, &ScenarioError{Problems: []string{fmt.Sprintf(
			"[data] embedding_dim = %d: an Engram server accepts only %d-dimension embeddings", d.EmbeddingDim, EngramDimension)}}
	}
	pool := sc.PoolSize() / d.MemorySpaces
	preload := sc.PreloadPerSpace()
	w.truth = !sc.GroundTruth.Disabled && preload > 0
	// Reserve a tenth of the preloaded text memories for forget, outside
	// the cue pools.
	reserve := 0
	if sc.Operations.Forget > 0 {
		reserve = preload / 10
	}
	createSpace := func(name string, dim int) error {
		req := api.CreateSpaceRequest{ID: name, Dimension: dim}
		if w.engram { // Engram's spaces take an id only
			req = api.CreateSpaceRequest{ID: name}
		}
		_, _, err := c.CreateSpace(ctx, req)
		return err
	}
	write := func(cl *client.Client, batch []api.BatchMemory) error {
		if len(batch) == 0 {
			return nil
		}
		var err error
		if w.engram {
			err = rememberEach(ctx, cl, batch)
		} else {
			err = retryUnavailable(ctx, func() error {
				_, err := cl.Batch(ctx, api.BatchRequest{Memories: batch})
				return err
			})
		}
		if err != nil {
			return fmt.Errorf("preload into %s: %w", cl.CurrentSpace(), err)
		}
		info.Preloaded += len(batch)
		return nil
	}
	for s := 0; s < d.MemorySpaces; s++ {
		t := &tenant{textName: fmt.Sprintf("%s-%d", d.SpacePrefix, s)}
		t.text = c.WithSpace(t.textName)
		if err := createSpace(t.textName, 0); err != nil {
			return nil, info, fmt.Errorf("create space %s: %w", t.textName, err)
		}
		info.Spaces = append(info.Spaces, t.textName)
		rng := rand.New(rand.NewPCG(uint64(seed), uint64(s)))
		// Text population.
		batch := make([]api.BatchMemory, 0, sc.Preload.BatchSize)
		for i := 0; i < preload; i++ {
			words := memoryWords(seed, s, i, d.WordsPerMemory)
			batch = append(batch, api.BatchMemory{ID: memID(i), Content: strings.Join(words, " ")})
			if len(batch) == cap(batch) {
				if err := write(t.text, batch); err != nil {
					return nil, info, err
				}
				batch = batch[:0]
			}
		}
		if err := write(t.text, batch); err != nil {
			return nil, info, err
		}
		batch = batch[:0]
		for i := preload - reserve; i < preload; i++ {
			t.forgettable = append(t.forgettable, memID(i))
		}
		// Text cues: of preloaded memories (ground truth known), else of
		// any memory of the pool (not checked).
		var cueIDs []int
		if preload > 0 {
			cueIDs = rng.Perm(preload - reserve)[:min(sc.GroundTruth.CuePool, preload-reserve)]
		} else if pool > 0 {
			cueIDs = make([]int, min(sc.GroundTruth.CuePool, pool))
			for j := range cueIDs {
				cueIDs[j] = rng.IntN(pool)
			}
		}
		for _, i := range cueIDs {
			words := memoryWords(seed, s, i, d.WordsPerMemory)
			var kept []string
			for _, wd := range words {
				if rng.Float64() >= 0.3 { // drop ~30% of the words
					kept = append(kept, wd)
				}
			}
			if len(kept) == 0 {
				kept = words[:1]
			}
			tc := textCue{recall: strings.Join(kept, " "), partial: strings.Join(words[:max(1, len(words)*4/10)], " ")}
			if preload > 0 {
				tc.id = memID(i)
			}
			t.textCues = append(t.textCues, &tc)
		}
		// Vector population.
		if needVec && pool > 0 {
			t.vecName = t.textName + "-vec"
			t.vec = c.WithSpace(t.vecName)
			if err := createSpace(t.vecName, d.EmbeddingDim); err != nil {
				return nil, info, fmt.Errorf("create space %s (dimension %d): %w", t.vecName, d.EmbeddingDim, err)
			}
			info.Spaces = append(info.Spaces, t.vecName)
			// The pool's first vectors: the preloaded ones, or as many
			// as there are cues (vectors is prefix-stable).
			n := preload
			if n == 0 {
				n = min(sc.GroundTruth.CuePool, pool)
			}
			vs := vectors(d, seed, s, n)
			for i := 0; i < preload; i++ {
				batch = append(batch, api.BatchMemory{ID: memID(i), Content: "vector " + memID(i), Embedding: vs[i]})
				if len(batch) == cap(batch) {
					if err := write(t.vec, batch); err != nil {
						return nil, info, err
					}
					batch = batch[:0]
				}
			}
			if err := write(t.vec, batch); err != nil {
				return nil, info, err
			}
			for _, i := range rng.Perm(n)[:min(sc.GroundTruth.CuePool, n)] {
				cue := make([]float32, d.EmbeddingDim)
				// Half a cluster's spread (at least 0.025 of the length).
				noise := max(d.Distribution.StdDev, 0.05) / 2 / math.Sqrt(float64(d.EmbeddingDim))
				for j := range cue {
					cue[j] = vs[i][j] + float32(rng.NormFloat64()*noise)
				}
				normalize(cue)
				vc := &vecCue{vec: cue}
				if w.truth {
					vc.truth = exactTopK(vs, cue, w.k)
				}
				t.vecCues = append(t.vecCues, vc)
			}
		}
		w.tenants = append(w.tenants, t)
		if logf != nil && preload > 0 {
			logf("preloaded space %d/%d (%d memories so far)", s+1, d.MemorySpaces, info.Preloaded)
		}
	}
	info.PreloadSeconds = time.Since(start).Seconds()
	return w, info, nil
}

// preloadRetries bounds how many times a preload write is sent again
// after a 503 (the index backlog's refusal: the write was not stored).
const preloadRetries = 120

// retryUnavailable runs write, and again after the server's Retry-After
// (at least 100ms, at most 5s) while it answers 503: a preload larger than
// the server's index backlog bound (index.max_pending) proceeds at the
// indexing rate instead of failing the run.
func retryUnavailable(ctx context.Context, write func() error) error {
	for attempt := 0; ; attempt++ {
		err := write()
		var ae *client.APIError
		if err == nil || !errors.As(err, &ae) || ae.Status != http.StatusServiceUnavailable || attempt == preloadRetries {
			return err
		}
		t := time.NewTimer(min(max(ae.RetryAfter, 100*time.Millisecond), 5*time.Second))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		}
	}
}

// preloadWriters is how many single remembers a preload without the batch
// endpoint keeps in flight.
const preloadWriters = 16

// rememberEach writes memories one POST /api/v1/memories/remember at a
// time, preloadWriters in flight: the write path an Engram server has.
func rememberEach(ctx context.Context, cl *client.Client, batch []api.BatchMemory) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan api.BatchMemory)
	errs := make(chan error, preloadWriters)
	var wg sync.WaitGroup
	for range min(preloadWriters, len(batch)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := range next {
				req := api.RememberRequest{ID: m.ID, Content: m.Content, Embedding: m.Embedding}
				if err := retryUnavailable(ctx, func() error { _, err := cl.RememberID(ctx, req); return err }); err != nil {
					errs <- fmt.Errorf("remember %s: %w", m.ID, err)
					cancel()
					return
				}
			}
		}()
	}
feed:
	for _, m := range batch {
		select {
		case next <- m:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	return ctx.Err()
}

// exactTopK is the brute-force k nearest neighbours by cosine (the vectors
// are normalised): the ground truth of a vector cue.
func exactTopK(vs [][]float32, q []float32, k int) map[string]bool {
	type hit struct {
		i int
		s float32
	}
	hits := make([]hit, len(vs))
	for i, v := range vs {
		hits[i] = hit{i, dot(v, q)}
	}
	sort.Slice(hits, func(a, b int) bool { return hits[a].s > hits[b].s })
	out := map[string]bool{}
	for _, h := range hits[:min(k, len(hits))] {
		out[memID(h.i)] = true
	}
	return out
}

// workerRand is a worker's state: its own random source (math/rand/v2
// sources are not safe for concurrent use) and Zipf samplers.
type workerRand struct {
	rng  *rand.Rand
	zipf map[int]*rand.Zipf
}

// NewSource makes the workload an attack.Targeter: each worker prepares
// its requests with its own random source.
func (w *workload) NewSource(rng *rand.Rand) attack.Source {
	r := &workerRand{rng: rng, zipf: map[int]*rand.Zipf{}}
	return attack.SourceFunc(func() (int, attack.Request) { return w.prepare(r) })
}

// popular picks an index in [0, n) by the scenario's popularity.
func (w *workload) popular(r *workerRand, n int) int {
	if n <= 1 {
		return 0
	}
	if w.sc.Popularity.Distribution == "uniform" {
		return r.rng.IntN(n)
	}
	z := r.zipf[n]
	if z == nil {
		z = rand.NewZipf(r.rng, w.sc.Popularity.ZipfExponent, 1, uint64(n-1))
		r.zipf[n] = z
	}
	return int(z.Uint64())
}

// prepare picks the next operation (its index in OpNames) and builds its
// request outside the timed section, so request building is not counted
// as server latency. A request's Outcome is its ground-truth check.
func (w *workload) prepare(r *workerRand) (int, attack.Request) {
	x := r.rng.Float64() * w.total
	op := 0
	for i, wt := range w.weights {
		if x < wt {
			op = i
			break
		}
		x -= wt
		op = i
	}
	for w.weights[op] == 0 { // float rounding landed on a zero weight
		op = (op + len(w.weights) - 1) % len(w.weights)
	}
	t := w.tenants[r.rng.IntN(len(w.tenants))]
	k := w.k
	switch OpNames[op] {
	case OpForget:
		t.mu.Lock()
		var id string
		if n := len(t.forgettable); n > 0 {
			id = t.forgettable[n-1]
			t.forgettable = t.forgettable[:n-1]
		}
		t.mu.Unlock()
		if id != "" {
			return op, attack.RequestFunc(func(ctx context.Context) (attack.Outcome, error) {
				_, err := t.text.Forget(ctx, id)
				return attack.Outcome{}, err
			})
		}
		// Nothing left to forget: store instead (counted as a store).
		op = 0
		fallthrough
	case OpStore:
		id := "s-" + w.runID + "-" + strconv.FormatInt(w.seq.next(), 10)
		words := make([]string, w.sc.Data.WordsPerMemory)
		for j := range words {
			words[j] = vocabulary[r.rng.IntN(len(vocabulary))]
		}
		req := api.RememberRequest{ID: id, Content: strings.Join(words, " ")}
		return op, attack.RequestFunc(func(ctx context.Context) (attack.Outcome, error) {
			_, err := t.text.RememberID(ctx, req)
			if err == nil && w.weights[4] > 0 {
				t.mu.Lock()
				if len(t.forgettable) < 100_000 { // bounded
					t.forgettable = append(t.forgettable, id)
				}
				t.mu.Unlock()
			}
			return attack.Outcome{}, err
		})
	case OpRecall, OpPatternCompletion:
		cue := t.textCues[w.popular(r, len(t.textCues))]
		q, body := cue.recall, &cue.recallBody
		if OpNames[op] == OpPatternCompletion {
			q, body = cue.partial, &cue.partialBody
		}
		return op, attack.RequestFunc(func(ctx context.Context) (attack.Outcome, error) {
			ids, err := w.recall(ctx, t.text, w.textRecall(q), body)
			if err != nil || !w.truth || cue.id == "" {
				return attack.Outcome{}, err
			}
			found := 0
			for _, m := range ids[:min(k, len(ids))] {
				if m == cue.id {
					found = 1
				}
			}
			return attack.Outcome{Expected: 1, Found: found}, nil
		})
	default: // embedding_search
		cue := t.vecCues[w.popular(r, len(t.vecCues))]
		return op, attack.RequestFunc(func(ctx context.Context) (attack.Outcome, error) {
			ids, err := w.recall(ctx, t.vec, w.vectorRecall(cue.vec), &cue.body)
			if err != nil || cue.truth == nil {
				return attack.Outcome{}, err
			}
			found := 0
			for _, m := range ids[:min(k, len(ids))] {
				if cue.truth[m] {
					found++
				}
			}
			return attack.Outcome{Expected: len(cue.truth), Found: found}, nil
		})
	}
}

// textRecall is the recall request of a text cue.
func (w *workload) textRecall(q string) api.RecallRequest {
	return api.RecallRequest{Query: q, MaxResults: w.k}
}

// vectorRecall is the recall request of a vector cue.
func (w *workload) vectorRecall(v []float32) api.RecallRequest {
	return api.RecallRequest{Embedding: v, MaxResults: w.k, Threshold: -1, Mode: "similarity"}
}

// recall sends a recall and returns its answers' ids in rank order (direct
// matches first, then memories reached by spreading activation): GET with
// req's query parameters to an Engram server (the form its router has),
// else POST of req's encoding, kept in body.
func (w *workload) recall(ctx context.Context, cl *client.Client, req api.RecallRequest, body *encodedRecall) ([]string, error) {
	if !w.engram {
		b, err := body.get(req)
		if err != nil {
			return nil, err
		}
		return cl.RecallIDs(ctx, b)
	}
	resp, err := cl.RecallGet(ctx, req)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, g := range [][]api.RecalledMemory{resp.Memories.Vivid, resp.Memories.Associated} {
		for _, m := range g {
			ids = append(ids, m.ID)
		}
	}
	return ids, nil
}

// errorKind classifies a failed request for the errors-by-kind table:
// "STATUS CODE" for server answers, the engine's short names for
// transport failures.
func errorKind(err error) string {
	if st := client.StatusOf(err); st != 0 {
		return strconv.Itoa(st) + " " + client.CodeOf(err)
	}
	return attack.ErrorKind(err)
}
