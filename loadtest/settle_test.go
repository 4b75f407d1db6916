package loadtest

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/engram-ops/engram-ops/ops/api"
	"github.com/engram-ops/engram-ops/ops/client"
)

// backlogServer answers GET /api/v1/spaces/{name} with an index backlog
// that shrinks by step per request (never below 0); step 0 never settles.
func backlogServer(t *testing.T, pending map[string]int, step int) (*client.Client, func() int) {
	t.Helper()
	var mu sync.Mutex
	gets := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := strings.CutPrefix(r.URL.Path, "/api/v1/spaces/")
		mu.Lock()
		defer mu.Unlock()
		n, known := pending[name]
		if !ok || !known || r.Method != http.MethodGet {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error":{"code":"NOT_FOUND","message":"no such space"}}`))
			return
		}
		gets++
		pending[name] = max(n-step, 0)
		_ = json.NewEncoder(w).Encode(api.Space{ID: name, IndexPending: n})
	}))
	t.Cleanup(srv.Close)
	c, err := client.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return c, func() int { mu.Lock(); defer mu.Unlock(); return gets }
}

func nologf(string, ...any) {}

func TestSettleWaitsForEverySpace(t *testing.T) {
	c, gets := backlogServer(t, map[string]int{"a": 3, "a-vec": 1, "b": 0}, 1)
	waited, pending, err := settleIndex(context.Background(), c, []string{"a", "a-vec", "b"}, time.Minute, nologf)
	if err != nil || pending != 0 {
		t.Fatalf("pending %d, err %v", pending, err)
	}
	if waited <= 0 {
		t.Errorf("waited %v, want the polls' time", waited)
	}
	// "a" needed four reads (3, 2, 1, 0); settled spaces are not read again.
	if g := gets(); g != 4+2+1 {
		t.Errorf("%d reads, want 7", g)
	}
}

func TestSettleTimeoutReportsBacklog(t *testing.T) {
	c, _ := backlogServer(t, map[string]int{"a": 500, "b": 20}, 0)
	waited, pending, err := settleIndex(context.Background(), c, []string{"a", "b"}, 250*time.Millisecond, nologf)
	if err != nil || pending != 520 {
		t.Fatalf("pending %d, err %v: want the whole backlog after the timeout", pending, err)
	}
	if waited < 250*time.Millisecond {
		t.Errorf("gave up after %v, before the timeout", waited)
	}
}

func TestSettleZeroTimeoutReadsOnce(t *testing.T) {
	c, gets := backlogServer(t, map[string]int{"a": 7}, 1)
	_, pending, err := settleIndex(context.Background(), c, []string{"a"}, 0, nologf)
	if err != nil || pending != 7 || gets() != 1 {
		t.Errorf("pending %d after %d reads, err %v: want one read of 7", pending, gets(), err)
	}
}

func TestSettleServerWithoutSpacesIsNotWaitedFor(t *testing.T) {
	c, _ := backlogServer(t, map[string]int{}, 1)
	var logged []string
	logf := func(format string, args ...any) { logged = append(logged, format) }
	_, pending, err := settleIndex(context.Background(), c, []string{"missing"}, time.Minute, logf)
	if err != nil || pending != 0 || len(logged) == 0 || !strings.Contains(logged[0], "not waiting") {
		t.Errorf("pending %d, err %v, logged %q", pending, err, logged)
	}
}

func TestSettleCancelled(t *testing.T) {
	c, _ := backlogServer(t, map[string]int{"a": 5}, 0)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	if _, _, err := settleIndex(ctx, c, []string{"a"}, time.Hour, nologf); err == nil {
		t.Error("no error from a cancelled wait")
	}
}

func TestSettleTimeoutKey(t *testing.T) {
	base := `name = "x"
[duration]
total_seconds = 1
[arrival]
pattern = "constant"
rate = 10.0
[operations]
store_weight = 1.0
`
	sc, err := ParseScenario([]byte(base))
	if err != nil {
		t.Fatal(err)
	}
	if got := sc.Preload.SettleTimeout(); got != 300*time.Second {
		t.Errorf("default settle timeout %v, want 300s", got)
	}
	sc, err = ParseScenario([]byte(base + "[preload]\nsettle_timeout_seconds = 0\n"))
	if err != nil || sc.Preload.SettleTimeout() != 0 {
		t.Errorf("settle_timeout_seconds = 0: %v, %v", err, sc)
	}
	for _, v := range []string{"-1", "86401", "nan"} {
		_, err := ParseScenario([]byte(base + "[preload]\nsettle_timeout_seconds = " + v + "\n"))
		if err == nil || !strings.Contains(err.Error(), "settle_timeout_seconds") {
			t.Errorf("settle_timeout_seconds = %s: %v", v, err)
		}
	}
}

// Results written before the settle fields and the run-queue figure still
// decode, reading as settled and unknown.
func TestOldResultsDecode(t *testing.T) {
	r, err := ReadResult("testdata/result-before-settle.json") // a result written before them
	if err != nil {
		t.Fatal(err)
	}
	if r.Setup.IndexPending != 0 || r.Setup.IndexSettleSeconds != 0 || r.Audit.CPUWaitSec != nil {
		t.Errorf("old result: setup %+v, cpu wait %v", r.Setup, r.Audit.CPUWaitSec)
	}
}
