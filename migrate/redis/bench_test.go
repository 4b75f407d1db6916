package redis_test

import (
	"context"
	"fmt"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/engram-ops/engram-ops/migrate"
	"github.com/engram-ops/engram-ops/migrate/migratetest"
	"github.com/engram-ops/engram-ops/migrate/redis"
	"github.com/engram-ops/engram-ops/migrate/redis/redistest"
)

// BenchmarkRedisMigrate migrates a generated keyspace (100,000 keys of
// mixed types, 30,000 doc->user references) into a data directory and, in
// the same run, reads the same keys with a pipelined SCAN + TYPE and GET /
// HGETALL / LRANGE / SMEMBERS / ZRANGE / XRANGE per page: the reference the
// migration rates (a bulk load, and the load with the index build) are
// compared with (keys/s of each, and their ratios).
// "objects" is the counting pass a command makes before the run, "records"
// the source alone (every record read, none mapped or written).
func BenchmarkRedisMigrate(b *testing.B) {
	c := redistest.Client(b)
	p := redistest.Prefix(b, c)
	cnt := redistest.Fill(b, c, p, 100_000)
	keys := float64(cnt.Keys)
	ctx := context.Background()
	var readRate float64
	b.Run("scan+read", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if n := rawRead(b, c, p+":*"); n != cnt.Keys {
				b.Fatalf("read %d keys", n)
			}
		}
		readRate = keys * float64(b.N) / b.Elapsed().Seconds()
		b.ReportMetric(readRate, "keys/s")
	})
	src, err := redis.Connect(ctx, redis.Config{Addr: redistest.Addr(b), Patterns: redistest.Patterns(p)})
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	b.Run("objects", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := src.Objects(ctx); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(keys*float64(b.N)/b.Elapsed().Seconds(), "keys/s")
	})
	m := migratetest.Compile(b, src, "", "redis")
	b.Run("records", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if n := len(migratetest.Records(b, src, "")); n != cnt.Keys+cnt.Refs {
				b.Fatalf("%d records, want %d", n, cnt.Keys+cnt.Refs)
			}
		}
		b.ReportMetric(keys*float64(b.N)/b.Elapsed().Seconds(), "keys/s")
	})
	migratetest.BenchmarkBulkLoad(b, src, m, keys, readRate, "keys", func(sum *migrate.Summary) error {
		if sum.Memories != int64(cnt.Keys) || sum.Associations != int64(cnt.Refs) {
			return fmt.Errorf("%d memories and %d associations, want %d and %d", sum.Memories, sum.Associations, cnt.Keys, cnt.Refs)
		}
		return nil
	})
}

// rawRead reads every key matching pattern: SCAN pages of 1000, each read
// with one pipelined TYPE round trip and one value round trip.
func rawRead(b *testing.B, c *goredis.Client, pattern string) int {
	ctx := context.Background()
	var cursor uint64
	n := 0
	for {
		keys, next, err := c.Scan(ctx, cursor, pattern, redis.DefaultCount).Result()
		if err != nil {
			b.Fatal(err)
		}
		pipe := c.Pipeline()
		types := make([]*goredis.StatusCmd, len(keys))
		for i, k := range keys {
			types[i] = pipe.Type(ctx, k)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			b.Fatal(err)
		}
		pipe = c.Pipeline()
		for i, k := range keys {
			switch types[i].Val() {
			case "string":
				pipe.Get(ctx, k)
			case "hash":
				pipe.HGetAll(ctx, k)
			case "list":
				pipe.LRange(ctx, k, 0, -1)
			case "set":
				pipe.SMembers(ctx, k)
			case "zset":
				pipe.ZRangeWithScores(ctx, k, 0, -1)
			case "stream":
				pipe.XRange(ctx, k, "-", "+")
			}
		}
		if _, err := pipe.Exec(ctx); err != nil {
			b.Fatal(err)
		}
		n += len(keys)
		if next == 0 {
			return n
		}
		cursor = next
	}
}
