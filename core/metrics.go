package core

// Metrics returns a point-in-time snapshot for exporters. It is cheap enough
// to call on every scrape.
func (e *Engine) Metrics() Metrics {
	var m Metrics
	if e.closed.Load() {
		return m
	}
	hotBytes, _ := e.cache.stats()
	for _, sp := range e.spaceList() {
		st := sp.stats()
		m.Spaces = append(m.Spaces, st)
		sp.mu.RLock()
		m.TierBytes[TierWarm] += sp.bytes[TierWarm]
		m.TierBytes[TierCold] += sp.bytes[TierCold]
		sp.mu.RUnlock()
	}
	m.TierBytes[TierHot] = hotBytes
	m.TierCapacityBytes = [numTiers]int64{e.opts.Tiers.HotCapacityBytes, e.opts.Tiers.WarmCapacityBytes, e.opts.Tiers.ColdCapacityBytes}
	m.Migrations = []TierMigration{
		{From: TierWarm, To: TierHot, Count: e.cache.promotions.Load()},
		{From: TierHot, To: TierWarm, Count: e.cache.demotions.Load()},
		{From: TierWarm, To: TierCold, Count: e.migrations[TierWarm][TierCold].Load()},
		{From: TierCold, To: TierWarm, Count: e.migrations[TierCold][TierWarm].Load()},
	}
	m.CacheHits = e.cache.hits.Load()
	m.CacheMisses = e.cache.misses.Load()
	pm := e.db.Metrics()
	m.DiskBytes = int64(pm.DiskSpaceUsage())
	m.Compactions = pm.Compact.Count
	m.ChangelogSequence = e.durable.Load()
	m.Durability = e.opts.Durability
	m.WALSync = e.walSyncs.snapshot()
	m.Corruption = e.corruption.stats()
	m.Backlog = e.backlogStats()
	m.Disk = DiskStats{MinFreeBytes: max(e.opts.MinFreeBytes, 0), WritesRefused: e.diskLow()}
	if free, total, err := FilesystemSpace(e.dir); err == nil {
		m.Disk.Measured, m.Disk.FreeBytes, m.Disk.TotalBytes = true, free, total
	}
	return m
}
