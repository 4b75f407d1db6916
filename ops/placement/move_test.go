package placement

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/ops/api"
	"github.com/engram-ops/engram-ops/ops/client"
	"github.com/engram-ops/engram-ops/ops/config"
	"github.com/engram-ops/engram-ops/ops/server"
)

// inProcess serves a fresh engine over HTTP in this process.
func inProcess(t *testing.T) string {
	url, _ := inProcessEngine(t)
	return url
}

func inProcessEngine(t *testing.T) (string, *core.Engine) {
	t.Helper()
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.Log.Access = false
	cfg.Spaces.DefaultDimension = 16
	eng, err := core.Open(t.TempDir(), cfg.EngineOptions(nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = eng.Close() })
	s, err := server.New(cfg, eng, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	return hs.URL, eng
}

// failingBatches fails every batch request after the first n.
type failingBatches struct {
	n    int64
	seen atomic.Int64
}

func (f *failingBatches) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPost && r.URL.Path == api.PathBatch && f.seen.Add(1) > f.n {
		return nil, errors.New("connection lost (test)")
	}
	return http.DefaultTransport.RoundTrip(r)
}

func seed(t *testing.T, c *client.Client, n int) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		if _, err := c.Remember(ctx, api.RememberRequest{ID: fmt.Sprintf("m%03d", i), Content: fmt.Sprintf("memory %d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Associate(ctx, api.AssociationRequest{From: "m001", To: "m002", Weight: 0.4}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Forget(ctx, "m010"); err != nil {
		t.Fatal(err)
	}
}

// A move cut off part way resumes from the destination's cursor and
// ends with the destination equal to the source.
func TestMoveResumes(t *testing.T) {
	ctx := context.Background()
	srcURL, dstURL := inProcess(t), inProcess(t)
	src, _ := client.New(srcURL)
	seed(t, src.WithSpace("tenant"), 250)
	dst, _ := client.New(dstURL)
	cut, _ := client.New(dstURL, client.WithHTTPClient(&http.Client{Transport: &failingBatches{n: 1}}))

	o := MoveOptions{Space: "tenant", From: src, To: cut, FromURL: srcURL, PageSize: 100}
	if _, err := Move(ctx, o); err == nil || !strings.Contains(err.Error(), "connection lost") {
		t.Fatalf("the cut move: %v", err)
	}
	o.To = dst
	rep, err := Move(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Resumed || rep.ResumeAt == 0 || rep.Copied >= 252 {
		t.Fatalf("the second run did not resume: %+v", rep)
	}
	sp, err := dst.Space(ctx, "tenant")
	if err != nil || sp.Memories.Total != 249 || sp.Associations != 1 {
		t.Fatalf("destination: %+v %v", sp, err)
	}
	if _, err := dst.WithSpace("tenant").Get(ctx, "m010", false); !client.IsNotFound(err) {
		t.Fatalf("the forgotten memory is on the destination: %v", err)
	}
	m, err := dst.WithSpace("tenant").Get(ctx, "m123", true)
	if err != nil || m.Content != "memory 123" || len(m.Embedding) != 16 {
		t.Fatalf("m123 on the destination: %+v %v", m, err)
	}
	if sp, _ := src.Space(ctx, "tenant"); sp.Memories.Total != 0 {
		t.Fatalf("the source still holds %d memories", sp.Memories.Total)
	}
	// Without a router the source keeps the hold: a stray write is refused.
	if _, err := src.WithSpace("tenant").Remember(ctx, api.RememberRequest{Content: "stray"}); client.CodeOf(err) != "SPACE_HELD" {
		t.Fatalf("a write to the moved space on the source: %v", err)
	}
}

// A destination that already holds the space (not from an unfinished move
// of it) is refused, and a dry run changes nothing.
func TestMoveRefusesAndDryRun(t *testing.T) {
	ctx := context.Background()
	srcURL, dstURL := inProcess(t), inProcess(t)
	src, _ := client.New(srcURL)
	dst, _ := client.New(dstURL)
	seed(t, src.WithSpace("tenant"), 20)

	rep, err := Move(ctx, MoveOptions{Space: "tenant", From: src, To: dst, FromURL: srcURL, DryRun: true})
	if err != nil || rep.Copied != 22 || rep.Memories != 19 {
		t.Fatalf("dry run: %+v %v", rep, err)
	}
	if _, err := dst.Space(ctx, "tenant"); !client.IsNotFound(err) {
		if sp, _ := dst.Space(ctx, "tenant"); sp != nil && sp.Memories.Total != 0 {
			t.Fatalf("the dry run wrote to the destination: %+v", sp)
		}
	}
	if sp, _ := src.Space(ctx, "tenant"); sp.Memories.Total != 19 {
		t.Fatalf("the dry run changed the source: %+v", sp)
	}
	for _, id := range []string{"x1", "x2"} {
		if _, err := dst.WithSpace("tenant").Remember(ctx, api.RememberRequest{ID: id, Content: "another copy"}); err != nil {
			t.Fatal(err)
		}
	}
	_, err = Move(ctx, MoveOptions{Space: "tenant", From: src, To: dst, FromURL: srcURL})
	if err == nil || !strings.Contains(err.Error(), "already holds 2 memories") {
		t.Fatalf("a move onto another copy: %v", err)
	}
}

// A source whose change log no longer reaches back to the space's
// beginning is copied through its export, then the log: refused while the
// space has associations the export cannot carry, unless told to drop
// them; an export cut part way resumes after the last id copied.
func TestMoveExportsWhenTheChangeLogIsTruncated(t *testing.T) {
	ctx := context.Background()
	srcURL, eng := inProcessEngine(t)
	dstURL := inProcess(t)
	src, _ := client.New(srcURL)
	dst, _ := client.New(dstURL)
	seed(t, src.WithSpace("tenant"), 250)
	if n, err := eng.TruncateChangeLogBefore(time.Now().Add(time.Second)); err != nil || n == 0 {
		t.Fatalf("truncate: %d %v", n, err)
	}
	if _, err := src.WithSpace("tenant").Remember(ctx, api.RememberRequest{ID: "after-truncation", Content: "x"}); err != nil {
		t.Fatal(err)
	}
	o := MoveOptions{Space: "tenant", From: src, To: dst, FromURL: srcURL, PageSize: 100}
	if _, err := Move(ctx, o); err == nil || !strings.Contains(err.Error(), "--drop-old-associations") {
		t.Fatalf("a move that would drop associations: %v", err)
	}
	o.DropOldAssociations = true
	o.To, _ = client.New(dstURL, client.WithHTTPClient(&http.Client{Transport: &failingBatches{n: 1}}))
	if _, err := Move(ctx, o); err == nil {
		t.Fatal("the cut move succeeded")
	}
	o.To = dst
	rep, err := Move(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Mode != "export" || !rep.Resumed || rep.Exported != 250-100 {
		t.Fatalf("report %+v", rep)
	}
	sp, err := dst.Space(ctx, "tenant")
	if err != nil || sp.Memories.Total != 250 {
		t.Fatalf("destination: %+v %v", sp, err)
	}
	for _, id := range []string{"m000", "m249", "after-truncation"} {
		if m, err := dst.WithSpace("tenant").Get(ctx, id, true); err != nil || len(m.Embedding) != 16 {
			t.Fatalf("%s on the destination: %v", id, err)
		}
	}
	if _, err := dst.WithSpace("tenant").Get(ctx, "m010", false); !client.IsNotFound(err) {
		t.Fatalf("the forgotten memory is on the destination: %v", err)
	}
}
