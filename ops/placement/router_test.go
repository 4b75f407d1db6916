package placement

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/engram-ops/engram-ops/internal/testsupport"
	"github.com/engram-ops/engram-ops/ops/api"
	"github.com/engram-ops/engram-ops/ops/client"
	"github.com/engram-ops/engram-ops/tui"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testsupport.Cleanup()
	os.Exit(code)
}

// router is a real HAProxy in front of real servers.
type router struct {
	url, socket, mapPath, placement string
}

// startRouter renders the placement document and runs HAProxy on it.
func startRouter(t *testing.T, doc func(listen, socket string) string) *router {
	t.Helper()
	bin := os.Getenv("ENGRAM_TEST_HAPROXY")
	if bin == "" {
		t.Skip("ENGRAM_TEST_HAPROXY is unset (scripts/test.sh installs Debian's haproxy and sets it)")
	}
	dir := t.TempDir()
	listen := testsupport.FreeAddr(t)
	r := &router{url: "http://" + listen, socket: filepath.Join(dir, "admin.sock"), placement: filepath.Join(dir, "placement.toml")}
	if err := os.WriteFile(r.placement, []byte(doc(listen, r.socket)), 0o644); err != nil {
		t.Fatal(err)
	}
	// The command line renders it, as an operator would.
	out, err := exec.Command(testsupport.MustBinary(t), "placement", "haproxy", "--placement", r.placement, "--out", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("placement haproxy: %v\n%s", err, out)
	}
	r.mapPath = filepath.Join(dir, "spaces.map")
	cmd := exec.Command(bin, "-db", "-f", filepath.Join(dir, "haproxy.cfg"))
	logs := &testsupport.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("haproxy:\n%s", logs.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(r.url + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("HAProxy did not answer on %s: %v\n%s", r.url, err, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return r
}

// call sends one request and returns the status and body.
func call(t *testing.T, method, url string, hdr map[string]string, body string) (int, []byte) {
	t.Helper()
	var rd *strings.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, nil)
	if rd != nil {
		req, err = http.NewRequest(method, url, rd)
		req.Header.Set("Content-Type", "application/json")
	}
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.Bytes()
}

func has(t *testing.T, base, space, id string) bool {
	t.Helper()
	code, body := call(t, "GET", base+"/api/v1/memories/"+id, map[string]string{api.HeaderSpace: space}, "")
	if code != http.StatusOK && code != http.StatusNotFound {
		t.Fatalf("GET %s/%s on %s: %d %s", space, id, base, code, body)
	}
	return code == http.StatusOK
}

// Two primaries and a real follower of the first behind a real HAProxy:
// writes and reads go to the space's shard whichever way the request names
// it; the follower catches up with what its primary ships and serves the
// reads that allow staleness; a space moves between the
// shards while a writer keeps writing through the router, and every
// acknowledged write is on the destination afterwards.
func TestRouterRoutesAndMovesASpace(t *testing.T) {
	if os.Getenv("ENGRAM_TEST_HAPROXY") == "" {
		t.Skip("ENGRAM_TEST_HAPROXY is unset (scripts/test.sh installs Debian's haproxy and sets it)")
	}
	archive := t.TempDir()
	a := testsupport.StartServe(t, t.TempDir(), "--backup-to", "file://"+archive, "--backup-interval", "50ms")
	b := testsupport.StartServe(t, t.TempDir())
	// a's follower is seeded from the snapshot a's shipper takes at start.
	testsupport.WaitSnapshot(t, archive)
	f := testsupport.StartServe(t, t.TempDir(), "--follow", "file://"+archive, "--primary-url", a.URL,
		"--set", "replica.poll_interval=50ms")
	r := startRouter(t, func(listen, socket string) string {
		return fmt.Sprintf(`default_shard = "a"
[router]
listen = %q
stats_socket = %q
[[shards]]
name = "a"
primary = %q
followers = [%q]
[[shards]]
name = "b"
primary = %q
[spaces]
tenant-b = "b"
moving = "a"
`, listen, socket, a.URL, f.URL, b.URL)
	})

	// Writes, by header, query, and body fields.
	writes := []struct {
		id, path, body string
		hdr            map[string]string
	}{
		{"by-header", api.PathRemember, `{"id":"by-header","content":"x"}`, map[string]string{api.HeaderSpace: "tenant-b"}},
		{"by-query", api.PathRemember + "?space=tenant-b", `{"id":"by-query","content":"x"}`, nil},
		{"by-body-id", api.PathRemember, `{"id":"by-body-id","content":"x","memory_space_id":"tenant-b"}`, nil},
		{"by-body", api.PathRemember, `{"id":"by-body","content":"x","space":"tenant-b"}`, nil},
	}
	for _, w := range writes {
		if code, body := call(t, "POST", r.url+w.path, w.hdr, w.body); code != http.StatusCreated {
			t.Fatalf("write %s through the router: %d %s", w.id, code, body)
		}
		if !has(t, b.URL, "tenant-b", w.id) || has(t, a.URL, "tenant-b", w.id) {
			t.Fatalf("write %s did not land on shard b only", w.id)
		}
		if code, _ := call(t, "GET", r.url+"/api/v1/memories/"+w.id+"?space=tenant-b", nil, ""); code != http.StatusOK {
			t.Fatalf("read %s by query through the router: %d", w.id, code)
		}
	}
	if code, body := call(t, "POST", r.url+api.PathRemember, nil, `{"id":"unmapped","content":"x"}`); code != http.StatusCreated || !has(t, a.URL, "default", "unmapped") {
		t.Fatalf("a write to the default space did not land on the default shard: %d %s", code, body)
	}
	// The follower catches up with what a ships; a read allowing staleness
	// goes to it (its own request count says so), one without to the
	// primary.
	if code, body := call(t, "POST", r.url+api.PathRemember, map[string]string{api.HeaderSpace: "moving"}, `{"id":"shipped","content":"x"}`); code != http.StatusCreated {
		t.Fatalf("write through the router: %d %s", code, body)
	}
	for deadline := time.Now().Add(15 * time.Second); !has(t, f.URL, "moving", "shipped"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the follower did not apply a's write within 15s")
		}
	}
	stale := map[string]string{api.HeaderSpace: "moving", api.HeaderReadStale: api.ReadStaleAllow}
	before := followerGets(t, f.URL)
	if code, _ := call(t, "GET", r.url+"/api/v1/memories/shipped", stale, ""); code != http.StatusOK {
		t.Fatalf("a stale-allowed read through the router: %d", code)
	}
	if code, _ := call(t, "GET", r.url+"/api/v1/memories/shipped", map[string]string{api.HeaderSpace: "moving"}, ""); code != http.StatusOK {
		t.Fatalf("a read through the router: %d", code)
	}
	if got := followerGets(t, f.URL) - before; got != 1 {
		t.Fatalf("the follower served %v of the two reads, want the stale-allowed one only", got)
	}
	if code, _ := call(t, "POST", r.url+api.PathRemember, stale, `{"id":"stale-write","content":"x"}`); code != http.StatusCreated || !has(t, a.URL, "moving", "stale-write") {
		t.Fatalf("a write with X-Engram-Read-Stale did not go to the primary: %d", code)
	}

	// The space to move: memories, associations and a forget on shard a.
	hdr := map[string]string{api.HeaderSpace: "moving"}
	for i := range 300 {
		call(t, "POST", r.url+api.PathRemember, hdr, fmt.Sprintf(`{"id":"pre-%d","content":"memory %d"}`, i, i))
	}
	call(t, "POST", r.url+api.PathAssociations, hdr, `{"from":"pre-1","to":"pre-2","weight":0.5}`)
	call(t, "POST", r.url+api.PathAssociations, hdr, `{"from":"pre-3","to":"pre-4","weight":0.5}`)
	call(t, "DELETE", r.url+"/api/v1/memories/pre-3", hdr, "")

	// A writer keeps writing through the router, retrying held writes.
	ctx, stop := context.WithCancel(context.Background())
	var mu sync.Mutex
	var acked []string
	retried := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ctx.Err() == nil; i++ {
			id := "live-" + strconv.Itoa(i)
			for ctx.Err() == nil {
				req, _ := http.NewRequest("POST", r.url+api.PathRemember, strings.NewReader(fmt.Sprintf(`{"id":%q,"content":"live %d"}`, id, i)))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set(api.HeaderSpace, "moving")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					time.Sleep(10 * time.Millisecond)
					continue
				}
				resp.Body.Close()
				if resp.StatusCode == http.StatusCreated {
					mu.Lock()
					acked = append(acked, id)
					mu.Unlock()
					break
				}
				if resp.StatusCode == http.StatusServiceUnavailable {
					mu.Lock()
					retried++
					mu.Unlock()
					secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
					time.Sleep(time.Duration(max(secs, 1)) * time.Second)
					continue
				}
				t.Errorf("write %s: %d", id, resp.StatusCode)
				return
			}
		}
	}()
	time.Sleep(200 * time.Millisecond)
	out, err := exec.Command(testsupport.MustBinary(t), "space", "move", "moving", "--from", a.URL, "--to", b.URL,
		"--placement", r.placement, "--haproxy-socket", r.socket, "--page-size", "100", "--yes", "--output", "json").CombinedOutput()
	if err != nil {
		stop()
		<-done
		t.Fatalf("space move: %v\n%s", err, out)
	}
	time.Sleep(300 * time.Millisecond)
	stop()
	<-done
	var rep MoveReport
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("move report: %v\n%s", err, out)
	}
	t.Logf("moved: %d entries copied, %d while held; writes held %.1f ms; %d acknowledged writes during the test, %d retried after 503",
		rep.Copied, rep.Delta, rep.HeldMillis, len(acked), retried)
	if !rep.Switched || !rep.Released || rep.SwitchFrom != "a" || rep.Mode != "change_log" || len(acked) == 0 {
		t.Fatalf("report %+v, %d writes acknowledged", rep, len(acked))
	}

	// Every acknowledged write is on the destination, the forget and the
	// associations came along, and the source's copy is gone.
	dst, _ := client.New(b.URL, client.WithSpace("moving"))
	for _, id := range append([]string{"pre-0", "pre-299", "stale-write", "shipped"}, acked...) {
		if !has(t, b.URL, "moving", id) {
			t.Fatalf("acknowledged write %s is not on the destination", id)
		}
	}
	if has(t, b.URL, "moving", "pre-3") {
		t.Fatal("a memory forgotten before the move is on the destination")
	}
	sp, err := dst.Space(context.Background(), "moving")
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(300 - 1 + 2 + len(acked)); sp.Memories.Total != want || sp.Associations != 1 {
		t.Fatalf("destination has %d memories and %d associations, want %d and 1", sp.Memories.Total, sp.Associations, want)
	}
	src, _ := client.New(a.URL)
	if sp, err := src.Space(context.Background(), "moving"); err != nil || sp.Memories.Total != 0 {
		t.Fatalf("the source still holds the space: %+v %v", sp, err)
	}
	m, err := ReadMapFile(r.mapPath)
	if err != nil || m["moving"] != "b" {
		t.Fatalf("map file after the move: %v %v", m, err)
	}
	// A space the map does not hold yet is added (add map after set map
	// finds no entry).
	rt := Runtime{Addr: r.socket}
	if err := rt.SetMap(context.Background(), r.mapPath, "fresh-space", "b"); err != nil {
		t.Fatal(err)
	}
	if v, err := rt.GetMap(context.Background(), r.mapPath, "fresh-space"); err != nil || v != "b" {
		t.Fatalf("fresh-space maps to %q (%v)", v, err)
	}
	if code, _ := call(t, "POST", r.url+api.PathRemember, map[string]string{api.HeaderSpace: "fresh-space"}, `{"id":"f","content":"x"}`); code != http.StatusCreated || !has(t, b.URL, "fresh-space", "f") {
		t.Fatalf("a write to a space added at run time did not reach its shard: %d", code)
	}
	// The router now sends the space to b, reads and writes.
	if code, body := call(t, "POST", r.url+api.PathRemember, hdr, `{"id":"after-move","content":"x"}`); code != http.StatusCreated || !has(t, b.URL, "moving", "after-move") {
		t.Fatalf("a write after the move did not reach the destination: %d %s", code, body)
	}
}

// followerGets is how many GET /api/v1/memories/{id} the server at base
// answered 200 (engram_http_requests_total).
func followerGets(t *testing.T, base string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	fams, err := tui.ParseMetrics(tui.Exposition{Body: body, ContentType: resp.Header.Get("Content-Type")})
	if err != nil {
		t.Fatalf("metrics of %s: %v", base, err)
	}
	want := map[string]string{"code": "200", "method": "GET", "route": "/api/v1/memories/{id}"}
	var n float64
	for _, m := range fams["engram_http_requests_total"].GetMetric() {
		matched := 0
		for _, l := range m.GetLabel() {
			if v, ok := want[l.GetName()]; ok && v == l.GetValue() {
				matched++
			}
		}
		if matched == len(want) {
			n += m.GetCounter().GetValue()
		}
	}
	return n
}
