// Package redistest fills a real Redis (ENGRAM_TEST_REDIS_ADDR, started by
// scripts/test.sh) with a generated keyspace for the Redis migration tests.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Addr is the test server's address; it skips the test when none is set.
func Addr(tb testing.TB) string {
	tb.Helper()
	addr := os.Getenv("ENGRAM_TEST_REDIS_ADDR")
	if addr == "" {
		tb.Skip("ENGRAM_TEST_REDIS_ADDR is not set: run through scripts/test.sh (make test), which starts redis-server")
	}
	return addr
}

// Client connects to the test server; it is closed when the test ends.
func Client(tb testing.TB) *goredis.Client {
	tb.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: Addr(tb), DisableIdentity: true})
	tb.Cleanup(func() { c.Close() })
	return c
}

// Prefix is a key prefix of the test's own, "t" and 12 hex digits (a valid
// memory id); its keys are deleted when the test ends.
func Prefix(tb testing.TB, c *goredis.Client) string {
	tb.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	p := "t" + hex.EncodeToString(b)
	tb.Cleanup(func() { Delete(c, p+":*") })
	return p
}

// Delete unlinks the keys matching pattern.
func Delete(c *goredis.Client, pattern string) {
	ctx := context.Background()
	var cursor uint64
	for {
		keys, next, err := c.Scan(ctx, cursor, pattern, 1000).Result()
		if err != nil {
			return
		}
		if len(keys) > 0 {
			c.Unlink(ctx, keys...)
		}
		if next == 0 {
			return
		}
		cursor = next
	}
}

// Counts describes a generated keyspace.
type Counts struct {
	Keys, Users, Docs, Rest, TTLs int
	// Refs are the docs' author references (one per doc).
	Refs int
}

// Patterns are the patterns that cover a keyspace of prefix: users, docs,
// and the rest (a pattern overlapping the first two).
func Patterns(prefix string) []string {
	return []string{prefix + ":user:*", prefix + ":doc:*", prefix + ":*"}
}

// Fill writes n keys under prefix, pipelined: 30% user hashes, 30% doc JSON
// strings whose author names a user key, and notes (plain strings), lists,
// sets, sorted sets and streams; every fifth key has a one-hour TTL.
//
//	PREFIX:user:I   hash {name "user I", email, team "team I%7"}
//	PREFIX:doc:I    {"title":"doc I about TOPIC","author":"PREFIX:user:I%users","words":I,"tags":["a","b"]}
//	PREFIX:note:I   "note I: water the plants"
//	PREFIX:list:I   [a-I b-I c-I]    PREFIX:set:I {x-I y-I z-I}
//	PREFIX:rank:I   {p:1 q:2 r:3}     PREFIX:events:I two entries
func Fill(tb testing.TB, c *goredis.Client, prefix string, n int) Counts {
	tb.Helper()
	ctx := context.Background()
	cnt := Counts{Keys: n, Users: n * 3 / 10, Docs: n * 3 / 10}
	cnt.Rest, cnt.Refs = n-cnt.Users-cnt.Docs, cnt.Docs
	pipe := c.Pipeline()
	flush := func() {
		if _, err := pipe.Exec(ctx); err != nil {
			tb.Fatalf("fill redis: %v", err)
		}
	}
	for i := 0; i < n; i++ {
		var key string
		switch {
		case i < cnt.Users:
			key = fmt.Sprintf("%s:user:%d", prefix, i)
			pipe.HSet(ctx, key, "name", fmt.Sprintf("user %d", i), "email", fmt.Sprintf("u%d@example.com", i), "team", fmt.Sprintf("team %d", i%7))
		case i < cnt.Users+cnt.Docs:
			d := i - cnt.Users
			key = fmt.Sprintf("%s:doc:%d", prefix, d)
			b, _ := json.Marshal(map[string]any{"title": fmt.Sprintf("doc%d about %s", d, Topic(d)),
				"author": fmt.Sprintf("%s:user:%d", prefix, Author(d, cnt)), "words": d, "tags": []string{"a", "b"}})
			pipe.Set(ctx, key, b, 0)
		default:
			r := i - cnt.Users - cnt.Docs
			switch r % 6 {
			case 0, 1:
				key = fmt.Sprintf("%s:note:%d", prefix, r)
				pipe.Set(ctx, key, fmt.Sprintf("note %d: water the plants", r), 0)
			case 2:
				key = fmt.Sprintf("%s:list:%d", prefix, r)
				pipe.RPush(ctx, key, "a-"+fmt.Sprint(r), "b-"+fmt.Sprint(r), "c-"+fmt.Sprint(r))
			case 3:
				key = fmt.Sprintf("%s:set:%d", prefix, r)
				pipe.SAdd(ctx, key, "x-"+fmt.Sprint(r), "y-"+fmt.Sprint(r), "z-"+fmt.Sprint(r))
			case 4:
				key = fmt.Sprintf("%s:rank:%d", prefix, r)
				pipe.ZAdd(ctx, key, goredis.Z{Score: 1, Member: "p"}, goredis.Z{Score: 2, Member: "q"}, goredis.Z{Score: 3, Member: "r"})
			case 5:
				key = fmt.Sprintf("%s:events:%d", prefix, r)
				pipe.XAdd(ctx, &goredis.XAddArgs{Stream: key, ID: "1-1", Values: []any{"kind", "start"}})
				pipe.XAdd(ctx, &goredis.XAddArgs{Stream: key, ID: "2-1", Values: []any{"kind", "stop"}})
			}
		}
		if i%5 == 0 {
			pipe.Expire(ctx, key, time.Hour)
			cnt.TTLs++
		}
		if pipe.Len() >= 2000 {
			flush()
		}
	}
	flush()
	return cnt
}

// Topic is the topic in doc d's title.
func Topic(d int) string {
	return []string{"gardening", "sailing", "chess", "baking", "astronomy"}[d%5]
}

// Author is the user index doc d names.
func Author(d int, c Counts) int { return (d * 7) % c.Users }
