// Package neo4jtest generates APOC apoc.export.json.all files for tests and
// benchmarks: a graph of users, posts and topics (three labels, one extra
// label on some users) with WROTE and ABOUT relationships (two types), and
// nested, list and null properties.
package neo4jtest

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// Counts describes a generated export.
type Counts struct {
	Nodes         int
	Relationships int
	Users         int
	Posts         int
	Topics        int
}

// Write writes an export with about n nodes: n/4 users, n/2 posts, the rest
// topics (at least one of each). Every post is WROTE by one user and ABOUT
// one topic. Node ids are "0".."N-1", relationship ids "0".."R-1".
func Write(w io.Writer, n int) (Counts, error) {
	bw := bufio.NewWriterSize(w, 1<<20)
	users := max(n/4, 1)
	posts := max(n/2, 1)
	topics := max(n-users-posts, 1)
	c := Counts{Users: users, Posts: posts, Topics: topics, Nodes: users + posts + topics}
	for i := 0; i < users; i++ {
		labels := `["User"]`
		if i%10 == 0 {
			labels = `["User","Admin"]`
		}
		fmt.Fprintf(bw, `{"type":"node","id":"%d","labels":%s,"properties":{"name":"user %d","age":%d,"score":%g,"active":%t,"address":{"city":"city %d","zip":null},"nicknames":["u%d","n%d"],"bio":null,"joined":"2024-01-%02dT10:00:00Z"}}`+"\n",
			i, labels, i, 20+i%50, float64(i%100)/100, i%2 == 0, i%17, i, i, 1+i%28)
	}
	for i := 0; i < posts; i++ {
		id := users + i
		fmt.Fprintf(bw, `{"type":"node","id":"%d","labels":["Post"],"properties":{"title":"post%d about gardening","body":"words of post%d","likes":%d}}`+"\n",
			id, i, i, i%1000)
	}
	for i := 0; i < topics; i++ {
		id := users + posts + i
		fmt.Fprintf(bw, `{"type":"node","id":"%d","labels":["Topic"],"properties":{"name":"topic %d","weight":0.5}}`+"\n", id, i)
	}
	rel := 0
	for i := 0; i < posts; i++ {
		post := users + i
		user := i % users
		ulabels := `["User"]`
		if user%10 == 0 {
			ulabels = `["User","Admin"]`
		}
		fmt.Fprintf(bw, `{"type":"relationship","id":"%d","label":"WROTE","properties":{"at":"2024-02-01T00:00:00Z"},"start":{"id":"%d","labels":%s},"end":{"id":"%d","labels":["Post"]}}`+"\n",
			rel, user, ulabels, post)
		rel++
		fmt.Fprintf(bw, `{"type":"relationship","id":"%d","label":"ABOUT","properties":{"strength":%g},"start":{"id":"%d","labels":["Post"]},"end":{"id":"%d","labels":["Topic"]}}`+"\n",
			rel, 0.5+float64(i%5)/10, post, users+posts+i%topics)
		rel++
	}
	c.Relationships = rel
	return c, bw.Flush()
}

// WriteFile writes Write's export of n nodes to graph.jsonl in a temporary
// directory of tb and returns its path and counts.
func WriteFile(tb testing.TB, n int) (string, Counts) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "graph.jsonl")
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	c, err := Write(f, n)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		tb.Fatal(err)
	}
	return path, c
}
