package tui

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/encoding/protodelim"

	"github.com/engram-ops/engram-ops/ops/api"
	"github.com/engram-ops/engram-ops/ops/client"
)

// Operations are the memory operations the board always lists, in order
// (design brief §5); others the server reports are appended.
var Operations = []string{"remember", "recall", "get", "forget", "associate", "batch"}

// scrape is one parsed /metrics answer.
type scrape struct {
	at   time.Time
	fams map[string]*dto.MetricFamily
}

// Scraper turns successive scrapes into Snapshots. It keeps the previous
// scrape (rates and percentiles are deltas between two) and how long each
// alert condition has held. It is not safe for concurrent use.
type Scraper struct {
	src    Source
	alerts AlertSource
	rules  []Rule

	prev        *scrape
	lastSuccess *time.Time
	version     string
	active      map[string]time.Time // alert key -> since when its condition holds
	failures    int                  // consecutive failed polls
}

// NewScraper reads src; alerts, when not nil, replaces the board's own
// evaluation of rules.
func NewScraper(src Source, alerts AlertSource, rules []Rule) *Scraper {
	return &Scraper{src: src, alerts: alerts, rules: rules, active: map[string]time.Time{}}
}

// Failures is the number of consecutive polls that did not reach the
// server (0 after a success).
func (s *Scraper) Failures() int { return s.failures }

// Poll fetches health and metrics and returns the snapshot.
func (s *Scraper) Poll(ctx context.Context) Snapshot {
	now := time.Now()
	h, herr := s.src.Health(ctx)
	var exp Exposition
	var merr error
	if herr == nil || h != nil && h.Status != "" {
		exp, merr = s.src.Metrics(ctx)
	}
	var ext []Alert
	var aerr error
	if s.alerts != nil {
		ext, aerr = s.alerts.Alerts(ctx)
	}
	snap := s.Observe(now, h, herr, exp, merr)
	if s.alerts != nil {
		if aerr != nil {
			// Keep the board's own evaluation rather than show no alerts.
			snap.Unknown["alerts"] = "prometheus: " + aerr.Error() + "; showing the board's own evaluation of the shipped rules"
		} else {
			snap.Alerts = ext
			delete(snap.Unknown, "alerts") // Prometheus evaluates every rule
		}
	}
	return snap
}

// Observe builds the snapshot of one poll at now: the health report (or
// its error) and the /metrics answer (or its error). It is Poll without I/O.
func (s *Scraper) Observe(now time.Time, h *api.SystemHealth, herr error, exp Exposition, merr error) Snapshot {
	snap := Snapshot{Target: s.src.Target(), Time: now, Unknown: map[string]string{}}
	snap.Health = s.health(now, h, herr)
	var cur *scrape
	switch {
	case herr != nil && (h == nil || h.Status == ""):
		merr = herr
	case merr == nil:
		fams, err := parseMetrics(exp)
		if err != nil {
			merr = err
		} else {
			cur = &scrape{at: now, fams: fams}
		}
	}
	if merr != nil {
		s.failures++
		if snap.Health.Error == "" {
			snap.Health.Status = "error"
			snap.Health.Error = "metrics: " + describe(merr)
		}
		for _, f := range []string{"operations", "spaces", "tiers", "cache_hit_ratio", "index_backlog", "disk", "backup"} {
			snap.Unknown[f] = "no metrics from this poll (health.error says why)"
		}
		snap.Health.LastSuccess = s.lastSuccess
		snap.Alerts = s.downAlert(now, "the board cannot scrape /metrics: "+snap.Health.Error)
		return snap
	}
	s.failures = 0
	t := now
	s.lastSuccess = &t
	snap.Health.LastSuccess = s.lastSuccess
	if v := buildVersion(cur); v != "" && snap.Health.Version == "" {
		snap.Health.Version = v
	}
	if snap.Health.Version != "" {
		s.version = snap.Health.Version
	}
	s.fill(&snap, s.prev, cur)
	snap.Alerts = s.evaluate(&snap, s.prev, cur)
	s.prev = cur
	return snap
}

func (s *Scraper) health(now time.Time, h *api.SystemHealth, err error) Health {
	out := Health{Version: s.version}
	if h != nil && h.Status != "" {
		switch h.Status {
		case "healthy":
			out.Status = "ready"
		default:
			out.Status = h.Status
		}
		if h.Version != "" {
			out.Version = h.Version
		}
		if h.UptimeSeconds > 0 {
			u := h.UptimeSeconds
			out.UptimeSeconds = &u
		}
		for _, c := range h.Checks {
			if c.Status != "healthy" {
				out.Checks = append(out.Checks, c.Name+": "+c.Message)
			}
		}
		return out
	}
	if err == nil {
		out.Status = "error"
		out.Error = "health: empty report"
		return out
	}
	if client.StatusOf(err) != 0 {
		out.Status = "error"
	} else {
		out.Status = "unreachable"
	}
	out.Error = describe(err)
	return out
}

// describe turns a fetch error into what an operator should read.
func describe(err error) string {
	switch client.StatusOf(err) {
	case http.StatusUnauthorized:
		return err.Error() + " (Try: --api-key-env NAME with a key allowed to read /metrics)"
	case http.StatusForbidden:
		return err.Error() + " (the API key lacks the permission; use an admin key)"
	case http.StatusNotFound:
		return err.Error() + " (is --target an engram-ops server?)"
	}
	return err.Error()
}

// maxMetricsBody bounds the /metrics answer the board reads.
const maxMetricsBody = 64 << 20

// ParseMetrics parses an engram-ops server's /metrics answer in the
// format its Content-Type names, as the board does (diagnose checks it with
// this).
func ParseMetrics(exp Exposition) (map[string]*dto.MetricFamily, error) { return parseMetrics(exp) }

// acceptMetrics asks for the delimited protobuf exposition, which parses
// several times faster than text, and accepts text from servers (or
// proxies) that do not speak it.
const acceptMetrics = `application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3`

// parseMetrics parses a /metrics answer in the format its Content-Type
// names: delimited protobuf, or else Prometheus text.
func parseMetrics(exp Exposition) (map[string]*dto.MetricFamily, error) {
	body := exp.Body
	if len(body) > maxMetricsBody {
		return nil, fmt.Errorf("/metrics is %d bytes, more than the %d the board reads", len(body), maxMetricsBody)
	}
	var fams map[string]*dto.MetricFamily
	if expfmt.ResponseFormat(http.Header{"Content-Type": {exp.ContentType}}).FormatType() == expfmt.TypeProtoDelim {
		var err error
		if fams, err = parseProto(body); err != nil {
			return nil, fmt.Errorf("/metrics is not Prometheus protobuf exposition: %w", err)
		}
	} else {
		p := expfmt.NewTextParser(model.UTF8Validation)
		var err error
		if fams, err = p.TextToMetricFamilies(bytes.NewReader(body)); err != nil {
			return nil, fmt.Errorf("/metrics is not Prometheus text: %w", err)
		}
	}
	if len(fams) == 0 {
		return nil, errors.New("/metrics is empty")
	}
	if _, ok := fams["engram_build_info"]; !ok {
		if _, ok := fams["engram_memories"]; !ok {
			return nil, errors.New("/metrics has no engram_* metrics: is --target an engram-ops server?")
		}
	}
	return fams, nil
}

// parseProto decodes length-delimited MetricFamily messages. No message
// may claim more bytes than the body has left, and names are checked as
// the text parser checks them.
func parseProto(body []byte) (map[string]*dto.MetricFamily, error) {
	r := bytes.NewReader(body)
	fams := map[string]*dto.MetricFamily{}
	for r.Len() > 0 {
		f := &dto.MetricFamily{}
		opts := protodelim.UnmarshalOptions{MaxSize: int64(r.Len())}
		if err := opts.UnmarshalFrom(r, f); err != nil {
			return nil, fmt.Errorf("metric family %d: %w", len(fams)+1, err)
		}
		name := f.GetName()
		if !model.UTF8Validation.IsValidMetricName(name) {
			return nil, fmt.Errorf("invalid metric name %q", name)
		}
		if _, dup := fams[name]; dup {
			return nil, fmt.Errorf("metric family %q appears twice", name)
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if !model.UTF8Validation.IsValidLabelName(l.GetName()) || !model.LabelValue(l.GetValue()).IsValid() {
					return nil, fmt.Errorf("%s: invalid label %q=%q", name, l.GetName(), l.GetValue())
				}
			}
		}
		fams[name] = f
	}
	return fams, nil
}

func buildVersion(sc *scrape) string {
	for _, m := range sc.metrics("engram_build_info") {
		if v := label(m, "version"); v != "" {
			return v
		}
	}
	return ""
}

func (sc *scrape) metrics(name string) []*dto.Metric {
	if sc == nil {
		return nil
	}
	f := sc.fams[name]
	if f == nil {
		return nil
	}
	return f.GetMetric()
}

func label(m *dto.Metric, name string) string {
	for _, lp := range m.GetLabel() {
		if lp.GetName() == name {
			return lp.GetValue()
		}
	}
	return ""
}

// key identifies a series by its labels.
func seriesKey(m *dto.Metric) string {
	var b strings.Builder
	for _, lp := range m.GetLabel() {
		b.WriteString(lp.GetName())
		b.WriteByte('=')
		b.WriteString(lp.GetValue())
		b.WriteByte(',')
	}
	return b.String()
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	}
	return math.NaN()
}

// sum adds the values of name's series whose labels match (nil: all); ok
// is false when there is no such series.
func (sc *scrape) sum(name string, match func(*dto.Metric) bool) (float64, bool) {
	var total float64
	var ok bool
	for _, m := range sc.metrics(name) {
		if match == nil || match(m) {
			total += value(m)
			ok = true
		}
	}
	return total, ok
}

// increase is how much counter name's matching series grew between prev
// and cur. A series whose value went down was reset (the server
// restarted): its increase is its current value, as in Prometheus'
// rate(). A series new since prev started from zero. Never negative.
func increase(prev, cur *scrape, name string, match func(*dto.Metric) bool) float64 {
	before := map[string]float64{}
	for _, m := range prev.metrics(name) {
		if match == nil || match(m) {
			before[seriesKey(m)] = value(m)
		}
	}
	var total float64
	for _, m := range cur.metrics(name) {
		if match != nil && !match(m) {
			continue
		}
		v := value(m)
		if p, ok := before[seriesKey(m)]; ok && v >= p {
			v -= p
		}
		if v > 0 {
			total += v
		}
	}
	return total
}

// histDelta is a histogram's increase between two scrapes: cumulative
// counts per upper bound (ascending, +Inf last).
type histDelta struct {
	bounds []float64
	counts []float64
	count  float64
}

// histIncrease adds up the increase of name's matching histogram series,
// bucket by bucket, with the same reset rule as increase.
func histIncrease(prev, cur *scrape, name string, match func(*dto.Metric) bool) histDelta {
	before := map[string]*dto.Histogram{}
	for _, m := range prev.metrics(name) {
		if m.Histogram != nil && (match == nil || match(m)) {
			before[seriesKey(m)] = m.Histogram
		}
	}
	byBound := map[float64]float64{}
	var count float64
	for _, m := range cur.metrics(name) {
		h := m.Histogram
		if h == nil || (match != nil && !match(m)) {
			continue
		}
		p := before[seriesKey(m)]
		if p != nil && sampleCount(h) < sampleCount(p) {
			p = nil // reset: everything since the restart is new
		}
		prevBucket := map[float64]float64{}
		if p != nil {
			for _, b := range p.GetBucket() {
				prevBucket[b.GetUpperBound()] = bucketCount(b)
			}
		}
		d := sampleCount(h)
		if p != nil {
			d -= sampleCount(p)
		}
		d = math.Max(d, 0)
		count += d
		hasInf := false
		for _, b := range h.GetBucket() {
			ub := b.GetUpperBound()
			hasInf = hasInf || math.IsInf(ub, 1)
			if bd := bucketCount(b) - prevBucket[ub]; bd > 0 {
				byBound[ub] += bd
			} else if _, ok := byBound[ub]; !ok {
				byBound[ub] = 0
			}
		}
		if !hasInf {
			byBound[math.Inf(1)] += d
		}
	}
	out := histDelta{count: count}
	for b := range byBound {
		out.bounds = append(out.bounds, b)
	}
	sort.Float64s(out.bounds)
	for _, b := range out.bounds {
		out.counts = append(out.counts, byBound[b])
	}
	return out
}

func sampleCount(h *dto.Histogram) float64 {
	if f := h.GetSampleCountFloat(); f != 0 {
		return f
	}
	return float64(h.GetSampleCount())
}

func bucketCount(b *dto.Bucket) float64 {
	if f := b.GetCumulativeCountFloat(); f != 0 {
		return f
	}
	return float64(b.GetCumulativeCount())
}

// quantile estimates the q-quantile the way Prometheus'
// histogram_quantile does: find the bucket holding rank q·count and
// interpolate linearly inside it; a rank in the +Inf bucket answers the
// highest finite bound. ok is false when the histogram is empty.
func (h histDelta) quantile(q float64) (float64, bool) {
	if h.count <= 0 || len(h.bounds) < 2 {
		return 0, false
	}
	rank := q * h.count
	i := sort.Search(len(h.counts), func(i int) bool { return h.counts[i] >= rank })
	if i >= len(h.bounds)-1 {
		return h.bounds[len(h.bounds)-2], true
	}
	lower, below := 0.0, 0.0
	if i > 0 {
		lower, below = h.bounds[i-1], h.counts[i-1]
	} else if h.bounds[0] <= 0 {
		return h.bounds[0], true
	}
	inBucket := h.counts[i] - below
	if inBucket <= 0 {
		return h.bounds[i], true
	}
	return lower + (h.bounds[i]-lower)*(rank-below)/inBucket, true
}

func eq(name, want string) func(*dto.Metric) bool {
	return func(m *dto.Metric) bool { return label(m, name) == want }
}

func ptr(v float64) *float64 { return &v }

// loadTestSpace matches the spaces `engram-ops loadtest` creates with its
// default prefix.
var loadTestSpace = regexp.MustCompile(`^lt-[0-9]+(-vec)?$`)

// fill computes everything but alerts.
func (s *Scraper) fill(snap *Snapshot, prev, cur *scrape) {
	var dt float64
	if prev != nil {
		dt = cur.at.Sub(prev.at).Seconds()
	}
	if dt > 0 {
		snap.IntervalSeconds = dt
	} else {
		prev = nil
		reason := "first scrape: rates and percentiles need two"
		snap.Unknown["operations.per_second"] = reason
		snap.Unknown["operations.latency"] = reason
		snap.Unknown["cache_hit_ratio"] = reason
	}

	// Operations.
	const opHist = "engram_memory_operation_duration_seconds"
	seen := map[string]bool{}
	names := append([]string(nil), Operations...)
	for _, n := range Operations {
		seen[n] = true
	}
	for _, m := range cur.metrics(opHist) {
		if n := label(m, "operation"); n != "" && !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	var noTraffic []string
	for _, name := range names {
		op := Operation{Name: name}
		for _, m := range cur.metrics(opHist) {
			if label(m, "operation") == name && m.Histogram != nil {
				op.Total += sampleCount(m.Histogram)
			}
		}
		if prev != nil {
			h := histIncrease(prev, cur, opHist, eq("operation", name))
			op.PerSecond = ptr(h.count / dt)
			if h.count > 0 {
				errs := increase(prev, cur, "engram_memory_operation_errors_total", eq("operation", name))
				op.ErrorRatio = ptr(math.Min(errs/h.count, 1))
				if v, ok := h.quantile(0.5); ok {
					op.P50 = ptr(v)
				}
				if v, ok := h.quantile(0.95); ok {
					op.P95 = ptr(v)
				}
				if v, ok := h.quantile(0.99); ok {
					op.P99 = ptr(v)
				}
			} else {
				noTraffic = append(noTraffic, name)
			}
		}
		snap.Operations = append(snap.Operations, op)
	}
	if len(noTraffic) > 0 {
		snap.Unknown["operations.latency"] = "no requests in the interval: " + strings.Join(noTraffic, ", ")
	}

	// Spaces.
	spaces := map[string]*Space{}
	get := func(n string) *Space {
		sp := spaces[n]
		if sp == nil {
			sp = &Space{Name: n, Tiers: map[string]float64{}}
			spaces[n] = sp
		}
		return sp
	}
	for _, m := range cur.metrics("engram_memories") {
		sp := get(label(m, "space"))
		v := value(m)
		sp.Memories += v
		if t := label(m, "tier"); t != "" {
			sp.Tiers[t] += v
		}
	}
	for _, m := range cur.metrics("engram_associations") {
		get(label(m, "space")).Associations += value(m)
	}
	var backlog float64
	var haveBacklog bool
	for _, m := range cur.metrics("engram_index_pending_memories") {
		get(label(m, "space")).IndexPending += value(m)
		backlog += value(m)
		haveBacklog = true
	}
	if haveBacklog {
		snap.IndexBacklog = ptr(backlog)
	} else {
		snap.Unknown["index_backlog"] = "the server exports no engram_index_pending_memories"
	}
	var lt *LoadTest
	for _, sp := range spaces {
		if prev != nil {
			n := histIncrease(prev, cur, opHist, eq("space", sp.Name)).count
			sp.PerSecond = ptr(n / dt)
			if n > 0 && loadTestSpace.MatchString(sp.Name) {
				if lt == nil {
					lt = &LoadTest{}
				}
				lt.Spaces = append(lt.Spaces, sp.Name)
				lt.PerSecond += n / dt
			}
		}
		snap.Spaces = append(snap.Spaces, *sp)
	}
	sort.Slice(snap.Spaces, func(i, j int) bool { return snap.Spaces[i].Name < snap.Spaces[j].Name })
	if lt != nil {
		sort.Strings(lt.Spaces)
		snap.LoadTest = lt
	}

	// Tiers.
	tiers := map[string]*Tier{}
	var tierNames []string
	for _, fam := range []string{"engram_storage_tier_bytes", "engram_storage_tier_capacity_bytes"} {
		for _, m := range cur.metrics(fam) {
			n := label(m, "tier")
			t := tiers[n]
			if t == nil {
				t = &Tier{Name: n}
				tiers[n] = t
				tierNames = append(tierNames, n)
			}
			if fam == "engram_storage_tier_bytes" {
				t.Bytes = value(m)
			} else {
				t.CapacityBytes = value(m)
			}
		}
	}
	order := map[string]int{"hot": 0, "warm": 1, "cold": 2}
	sort.Slice(tierNames, func(i, j int) bool {
		oi, iok := order[tierNames[i]]
		oj, jok := order[tierNames[j]]
		if iok != jok {
			return iok
		}
		if oi != oj {
			return oi < oj
		}
		return tierNames[i] < tierNames[j]
	})
	for _, n := range tierNames {
		t := tiers[n]
		if t.CapacityBytes > 0 {
			t.Utilisation = ptr(t.Bytes / t.CapacityBytes)
		}
		snap.Tiers = append(snap.Tiers, *t)
	}

	// Cache.
	if prev != nil {
		hits := increase(prev, cur, "engram_cache_requests_total", eq("result", "hit"))
		miss := increase(prev, cur, "engram_cache_requests_total", eq("result", "miss"))
		if hits+miss > 0 {
			snap.CacheHitRatio = ptr(hits / (hits + miss))
		} else {
			snap.Unknown["cache_hit_ratio"] = "no cache lookups in the interval"
		}
	}

	// Disk.
	opt := func(name string) *float64 {
		if v, ok := cur.sum(name, nil); ok {
			return ptr(v)
		}
		return nil
	}
	snap.Disk = Disk{
		FreeBytes:    opt("engram_storage_disk_free_bytes"),
		TotalBytes:   opt("engram_storage_disk_total_bytes"),
		ReserveBytes: opt("engram_storage_min_free_bytes"),
		DataBytes:    opt("engram_storage_disk_bytes"),
	}
	if v := opt("engram_storage_writes_refused"); v != nil && *v >= 1 {
		snap.Disk.WritesRefused = true
	}
	if snap.Disk.FreeBytes == nil {
		snap.Disk.FreeBytes = nil
		snap.Unknown["disk"] = "the server exports no engram_storage_disk_free_bytes"
	}

	// Backup.
	seq, haveSeq := cur.sum("engram_changelog_sequence", nil)
	targets := map[string]*Backup{}
	bk := func(m *dto.Metric) *Backup {
		n := label(m, "target")
		b := targets[n]
		if b == nil {
			b = &Backup{Target: n}
			targets[n] = b
		}
		return b
	}
	ts := func(v float64) *time.Time {
		if v <= 0 {
			return nil
		}
		t := time.Unix(0, int64(v*1e9)).UTC()
		return &t
	}
	for _, m := range cur.metrics("engram_backup_rpo_seconds") {
		bk(m).RPOSeconds = ptr(value(m))
	}
	for _, m := range cur.metrics("engram_backup_shipped_sequence") {
		b := bk(m)
		b.ShippedSequence = ptr(value(m))
		if haveSeq {
			b.LagSequences = ptr(math.Max(seq-value(m), 0))
		}
	}
	for _, m := range cur.metrics("engram_backup_last_success_timestamp_seconds") {
		switch label(m, "kind") {
		case "snapshot":
			bk(m).LastSnapshot = ts(value(m))
		case "log":
			bk(m).LastLog = ts(value(m))
		}
	}
	for _, m := range cur.metrics("engram_backup_last_verified_timestamp_seconds") {
		bk(m).LastVerified = ts(value(m))
	}
	for _, m := range cur.metrics("engram_backup_last_restore_drill_seconds") {
		if v := value(m); v > 0 {
			bk(m).RestoreDrillSeconds = ptr(v)
		} else {
			bk(m)
		}
	}
	for _, m := range cur.metrics("engram_backup_errors_total") {
		bk(m).Errors += value(m)
	}
	for _, b := range targets {
		snap.Backup = append(snap.Backup, *b)
	}
	sort.Slice(snap.Backup, func(i, j int) bool { return snap.Backup[i].Target < snap.Backup[j].Target })
	if len(snap.Backup) == 0 {
		snap.Unknown["backup"] = "the server ships no backups (serve --backup-to)"
	}

	// Migration.
	if recs := cur.metrics("engram_migrate_records_total"); len(recs) > 0 {
		var mig *Migration
		srcs := map[string]bool{}
		var total float64
		for _, m := range recs {
			total += value(m)
			srcs[label(m, "source")] = true
		}
		if prev != nil {
			if d := increase(prev, cur, "engram_migrate_records_total", nil); d > 0 {
				mig = &Migration{Records: total, PerSecond: ptr(d / dt)}
			}
		}
		if mig != nil {
			var names []string
			for n := range srcs {
				names = append(names, n)
			}
			sort.Strings(names)
			mig.Source = strings.Join(names, ",")
			mig.Rejects, _ = cur.sum("engram_migrate_rejects_total", nil)
			snap.Migration = mig
		}
	}
}
