package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/engram-ops/engram-ops/core"
)

// EngineCollector reads core.Engine.Metrics() at scrape time and exposes the
// engine's state. Values are always fresh; nothing is cached between scrapes.
//
// The free and total bytes of the filesystem holding the data directory
// are left out of a scrape when the filesystem cannot be read.
//
// Registered by New, it labels the spaces of the labelled set (see
// spaces.go) by name and sums the others under space="_other"; on its own
// it labels every space.
type EngineCollector struct {
	src    Source
	spaces *spaceLabels // nil: every space by name

	memories       *prometheus.Desc
	associations   *prometheus.Desc
	tierBytes      *prometheus.Desc
	tierCapacity   *prometheus.Desc
	migrations     *prometheus.Desc
	cacheRequests  *prometheus.Desc
	diskBytes      *prometheus.Desc
	compactions    *prometheus.Desc
	changelogSeq   *prometheus.Desc
	indexPending   *prometheus.Desc
	pendingLimit   *prometheus.Desc
	backlogWaits   *prometheus.Desc
	backlogWaited  *prometheus.Desc
	backlogRefused *prometheus.Desc
	diskFree       *prometheus.Desc
	diskMinFree    *prometheus.Desc
	writesRefused  *prometheus.Desc
	corruption     *prometheus.Desc
	diskTotal      *prometheus.Desc
	walSync        *prometheus.Desc
	walWrites      *prometheus.Desc
}

// NewEngineCollector returns a collector reading src at every scrape.
func NewEngineCollector(src Source) *EngineCollector {
	return &EngineCollector{
		src: src,
		memories: prometheus.NewDesc("engram_memories",
			"Memories stored, by space and tier.", []string{"space", "tier"}, nil),
		associations: prometheus.NewDesc("engram_associations",
			"Associations stored, by space.", []string{"space"}, nil),
		tierBytes: prometheus.NewDesc("engram_storage_tier_bytes",
			"Bytes held in each storage tier.", []string{"tier"}, nil),
		tierCapacity: prometheus.NewDesc("engram_storage_tier_capacity_bytes",
			"Configured capacity of each storage tier in bytes.", []string{"tier"}, nil),
		migrations: prometheus.NewDesc("engram_storage_tier_migrations_total",
			"Memories moved between tiers.", []string{"from", "to"}, nil),
		cacheRequests: prometheus.NewDesc("engram_cache_requests_total",
			"Hot-tier cache lookups, by result (hit, miss).", []string{"result"}, nil),
		diskBytes: prometheus.NewDesc("engram_storage_disk_bytes",
			"Bytes the storage engine uses on disk.", nil, nil),
		compactions: prometheus.NewDesc("engram_storage_compactions_total",
			"Storage engine compactions.", nil, nil),
		changelogSeq: prometheus.NewDesc("engram_changelog_sequence",
			"Last durable change-log sequence.", nil, nil),
		indexPending: prometheus.NewDesc("engram_index_pending_memories",
			"Acknowledged writes not yet in the ANN index (searched exactly until indexed), by space.", []string{"space"}, nil),
		pendingLimit: prometheus.NewDesc("engram_index_pending_limit",
			"The bound on each space's index backlog (index.max_pending): writes past it wait for the indexer; 0 when off.", nil, nil),
		backlogWaits: prometheus.NewDesc("engram_index_backpressure_waits_total",
			"Writes that waited for the indexer because their space's index backlog was at index.max_pending.", nil, nil),
		backlogWaited: prometheus.NewDesc("engram_index_backpressure_wait_seconds_total",
			"Time writes spent waiting for the indexer under index.max_pending, summed.", nil, nil),
		backlogRefused: prometheus.NewDesc("engram_index_backlog_refused_writes_total",
			"Writes refused with 503 INDEX_BACKLOG: the backlog stayed at index.max_pending for index.pending_wait, or was twice the bound.", nil, nil),
		diskFree: prometheus.NewDesc("engram_storage_disk_free_bytes",
			"Bytes available to the server on the filesystem holding the data directory.", nil, nil),
		diskTotal: prometheus.NewDesc("engram_storage_disk_total_bytes",
			"Size in bytes of the filesystem holding the data directory.", nil, nil),
		diskMinFree: prometheus.NewDesc("engram_storage_min_free_bytes",
			"Free space kept on the data directory's filesystem (min_free_space): below it writes are refused; 0 when the guard is off.", nil, nil),
		writesRefused: prometheus.NewDesc("engram_storage_writes_refused",
			"1 while writes are refused because the data directory's filesystem has less free space than min_free_space, else 0.", nil, nil),
		corruption: prometheus.NewDesc("engram_storage_corruption_events_total",
			"Reads and compactions that met a storage file failing its checksum since the server started: above 0, part of the data directory is damaged and reads that need it fail with STORAGE_CORRUPT.", nil, nil),
		walSync: prometheus.NewDesc("engram_storage_wal_sync_duration_seconds",
			"Write-ahead-log fsyncs that made writes durable, by duration: with sync durability every acknowledged write waits for one.", nil, nil),
		walWrites: prometheus.NewDesc("engram_storage_wal_synced_writes_total",
			"Writes made durable by write-ahead-log fsyncs (over the fsync count: writes per fsync, the group-commit factor).", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *EngineCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.memories, c.associations, c.tierBytes, c.tierCapacity,
		c.migrations, c.cacheRequests, c.diskBytes, c.compactions, c.changelogSeq, c.indexPending,
		c.pendingLimit, c.backlogWaits, c.backlogWaited, c.backlogRefused,
		c.diskFree, c.diskTotal, c.diskMinFree, c.writesRefused, c.corruption, c.walSync, c.walWrites} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *EngineCollector) Collect(ch chan<- prometheus.Metric) {
	m := c.src.Metrics()
	var named map[string]bool
	if c.spaces != nil {
		named = c.spaces.snapshot()
	}
	var other core.SpaceStats
	others := 0
	emit := func(sp *core.SpaceStats, label string) {
		for _, t := range core.Tiers {
			ch <- prometheus.MustNewConstMetric(c.memories, prometheus.GaugeValue, float64(sp.Memories[t]), label, t.String())
		}
		ch <- prometheus.MustNewConstMetric(c.associations, prometheus.GaugeValue, float64(sp.Associations), label)
		ch <- prometheus.MustNewConstMetric(c.indexPending, prometheus.GaugeValue, float64(sp.IndexPending), label)
	}
	for i := range m.Spaces {
		sp := &m.Spaces[i]
		if named == nil || named[sp.Name] {
			emit(sp, sp.Name)
			continue
		}
		others++
		for _, t := range core.Tiers {
			other.Memories[t] += sp.Memories[t]
		}
		other.Associations += sp.Associations
		other.IndexPending += sp.IndexPending
	}
	if others > 0 {
		emit(&other, OtherSpaces)
	}
	for _, t := range core.Tiers {
		ch <- prometheus.MustNewConstMetric(c.tierBytes, prometheus.GaugeValue, float64(m.TierBytes[t]), t.String())
		ch <- prometheus.MustNewConstMetric(c.tierCapacity, prometheus.GaugeValue, float64(m.TierCapacityBytes[t]), t.String())
	}
	// Sum duplicates defensively so one label pair is exported once.
	type pair struct{ from, to core.Tier }
	sums := map[pair]uint64{}
	var order []pair
	for _, mg := range m.Migrations {
		p := pair{mg.From, mg.To}
		if _, ok := sums[p]; !ok {
			order = append(order, p)
		}
		sums[p] += mg.Count
	}
	for _, p := range order {
		ch <- prometheus.MustNewConstMetric(c.migrations, prometheus.CounterValue, float64(sums[p]), p.from.String(), p.to.String())
	}
	ch <- prometheus.MustNewConstMetric(c.cacheRequests, prometheus.CounterValue, float64(m.CacheHits), "hit")
	ch <- prometheus.MustNewConstMetric(c.cacheRequests, prometheus.CounterValue, float64(m.CacheMisses), "miss")
	ch <- prometheus.MustNewConstMetric(c.diskBytes, prometheus.GaugeValue, float64(m.DiskBytes))
	ch <- prometheus.MustNewConstMetric(c.compactions, prometheus.CounterValue, float64(m.Compactions))
	ch <- prometheus.MustNewConstMetric(c.changelogSeq, prometheus.GaugeValue, float64(m.ChangelogSequence))
	ch <- prometheus.MustNewConstMetric(c.pendingLimit, prometheus.GaugeValue, float64(m.Backlog.Limit))
	ch <- prometheus.MustNewConstMetric(c.backlogWaits, prometheus.CounterValue, float64(m.Backlog.Waits))
	ch <- prometheus.MustNewConstMetric(c.backlogWaited, prometheus.CounterValue, m.Backlog.WaitSeconds)
	ch <- prometheus.MustNewConstMetric(c.backlogRefused, prometheus.CounterValue, float64(m.Backlog.Refused))
	buckets := make(map[float64]uint64, len(core.WALSyncBuckets))
	for i, le := range core.WALSyncBuckets {
		if i < len(m.WALSync.Cumulative) { // empty once the engine is closed
			buckets[le] = m.WALSync.Cumulative[i]
		} else {
			buckets[le] = 0
		}
	}
	ch <- prometheus.MustNewConstHistogram(c.walSync, m.WALSync.Count, m.WALSync.Sum, buckets)
	ch <- prometheus.MustNewConstMetric(c.walWrites, prometheus.CounterValue, float64(m.WALSync.Writes))
	if m.Disk.Measured {
		ch <- prometheus.MustNewConstMetric(c.diskFree, prometheus.GaugeValue, float64(m.Disk.FreeBytes))
		ch <- prometheus.MustNewConstMetric(c.diskTotal, prometheus.GaugeValue, float64(m.Disk.TotalBytes))
	}
	ch <- prometheus.MustNewConstMetric(c.diskMinFree, prometheus.GaugeValue, float64(m.Disk.MinFreeBytes))
	refused := 0.0
	if m.Disk.WritesRefused {
		refused = 1
	}
	ch <- prometheus.MustNewConstMetric(c.writesRefused, prometheus.GaugeValue, refused)
	ch <- prometheus.MustNewConstMetric(c.corruption, prometheus.CounterValue, float64(m.Corruption.Events))
}
