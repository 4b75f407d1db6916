// Package pgtest generates PostgreSQL databases for the tests and
// benchmarks of migrate/postgres: three tables with foreign keys (users,
// posts written by users and answering other posts, likes of posts by
// users with a composite primary key), json and jsonb columns, every type
// the source maps, and NULLs. Users 1 to 50 have a 768-dimension real[]
// embedding (the engine's default dimension), the others NULL. The server is the one ENGRAM_TEST_POSTGRES_DSN
// names (scripts/test.sh starts one).
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
)

// EnvDSN names the environment variable holding the test server's DSN.
const EnvDSN = "ENGRAM_TEST_POSTGRES_DSN"

// DSN is the test server's DSN; the test is skipped when there is none.
func DSN(tb testing.TB) string {
	tb.Helper()
	dsn := os.Getenv(EnvDSN)
	if dsn == "" {
		tb.Skipf("%s is not set: no PostgreSQL to migrate from (scripts/test.sh starts one)", EnvDSN)
	}
	return dsn
}

// Counts describes a generated schema.
type Counts struct {
	Users, Posts, Likes int
	// Answers counts the posts whose parent_id is set (post i answers
	// post i+1 when i is a multiple of 10: a reference to a row read later).
	Answers int
}

// Rows is the number of rows of the three tables.
func (c Counts) Rows() int { return c.Users + c.Posts + c.Likes }

// Associations is the number of foreign-key references: a post's author
// and parent, a like's post and user.
func (c Counts) Associations() int { return c.Posts + c.Answers + 2*c.Likes }

// Connect opens a connection to dsn, closed when the test ends.
func Connect(tb testing.TB, dsn string) *pgx.Conn {
	tb.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// Schema creates a schema of its own for the test (dropped when it ends)
// and returns its name.
func Schema(tb testing.TB, dsn string) string {
	tb.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	name := "t_" + hex.EncodeToString(b)
	conn := Connect(tb, dsn)
	if _, err := conn.Exec(context.Background(), "CREATE SCHEMA "+name); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), dsn)
		if err == nil {
			c.Exec(context.Background(), "DROP SCHEMA "+name+" CASCADE")
			c.Close(context.Background())
		}
	})
	return name
}

// Create makes a schema with about n rows: n/5 users, 2n/5 posts (post i
// by user (i-1) % users + 1, titled "post<i> about gardening"), the rest
// likes (like i: post i by user (7i) % users + 1).
func Create(tb testing.TB, dsn string, n int) (string, Counts) {
	tb.Helper()
	schema := Schema(tb, dsn)
	c := Counts{Users: max(n/5, 1), Posts: max(2*n/5, 1)}
	c.Likes = max(n-c.Users-c.Posts, 1)
	if c.Likes > c.Posts {
		c.Likes = c.Posts
	}
	c.Answers = (c.Posts - 1) / 10 // posts 10, 20, … below the last
	conn := Connect(tb, dsn)
	ctx := context.Background()
	stmts := []string{
		`SET search_path = ` + schema,
		`CREATE TABLE users (
			id bigint PRIMARY KEY, name text NOT NULL, email varchar(200), age integer, rank smallint,
			balance numeric(12,2), big numeric, active boolean, created_at timestamptz, seen_at timestamp,
			birthday date, ext_id uuid, profile jsonb, settings json, nicknames text[], scores integer[],
			avatar bytea, embedding real[], notes text, idle interval)`,
		`CREATE TABLE posts (
			id integer PRIMARY KEY, user_id bigint NOT NULL REFERENCES users, parent_id integer REFERENCES posts,
			title text NOT NULL, body text, meta json, published_at timestamp, rating double precision)`,
		`CREATE TABLE likes (
			user_id bigint REFERENCES users, post_id integer REFERENCES posts, at timestamptz, weight real,
			PRIMARY KEY (user_id, post_id))`,
		fmt.Sprintf(`INSERT INTO users SELECT i, 'user ' || i,
			CASE WHEN i %% 7 = 0 THEN NULL ELSE 'user' || i || '@example.com' END,
			20 + i %% 50, (i %% 300)::smallint, i * 1.25,
			CASE WHEN i %% 2 = 0 THEN (10::numeric ^ 25)::numeric(30, 0) + i ELSE (i / 4.0)::numeric(10, 2) END,
			CASE WHEN i %% 7 = 0 THEN NULL ELSE i %% 2 = 0 END,
			timestamptz '2024-01-01 00:00:00+00' + i * interval '1 minute',
			timestamp '2024-01-01 00:00:00' + i * interval '1 second',
			date '1990-01-01' + i %% 10000,
			md5(i::text)::uuid,
			jsonb_build_object('city', 'city ' || i %% 17, 'zip', NULL, 'level', i %% 5, 'ratio', 0.5,
				'big', 12345678901234567, 'langs', jsonb_build_array('en', 'fr')),
			CASE WHEN i %% 7 = 0 THEN NULL ELSE json_build_object('theme', 'dark', 'size', i %% 3) END,
			ARRAY['u' || i, 'n' || i], ARRAY[i %% 10, NULL, 3],
			decode(md5(i::text), 'hex'),
			CASE WHEN i <= 50 THEN ARRAY(SELECT sin(i * k) FROM generate_series(1, 768) k)::real[] END,
			CASE WHEN i %% 5 = 0 THEN 'note of ' || i END,
			i * interval '1 second'
			FROM generate_series(1, %d) i`, c.Users),
		fmt.Sprintf(`INSERT INTO posts SELECT i, (i - 1) %% %d + 1,
			CASE WHEN i %% 10 = 0 AND i < %d THEN i + 1 END,
			'post' || i || ' about gardening', CASE WHEN i %% 3 = 0 THEN NULL ELSE 'words of post ' || i END,
			json_build_object('words', i %% 100, 'draft', i %% 2 = 0, 'tags', json_build_array('a', 'b')),
			timestamp '2024-02-01 00:00:00' + i * interval '1 second', i / 8.0
			FROM generate_series(1, %d) i`, c.Users, c.Posts, c.Posts),
		fmt.Sprintf(`INSERT INTO likes SELECT (7 * i) %% %d + 1, i,
			timestamptz '2024-03-01 00:00:00+00' + i * interval '1 second', (i %% 10) / 10.0
			FROM generate_series(1, %d) i`, c.Users, c.Likes),
		`ANALYZE users, posts, likes`,
	}
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			tb.Fatalf("%v\n%s", err, s)
		}
	}
	return schema, c
}
