package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/engram-ops/engram-ops/internal/cputime"
	"github.com/engram-ops/engram-ops/loadtest"
	"github.com/engram-ops/engram-ops/ops/client"
)

// ceilingTransports are the HTTP clients BenchmarkGeneratorCeiling
// compares: the generator's own (fasthttp), the hand-written HTTP/1.1
// client it replaced, and net/http with a transport tuned for the job.
var ceilingTransports = []struct {
	name string
	hc   func(workers int) *http.Client
}{
	{"fasthttp", loadtest.HTTPClient},
	{"handwritten", func(workers int) *http.Client {
		t := client.DefaultTransport()
		t.MaxIdleConnsPerHost, t.MaxIdleConns = max(t.MaxIdleConnsPerHost, workers), max(t.MaxIdleConns, workers)
		return &http.Client{Transport: newDirectTransport(t, workers)}
	}},
	{"nethttp", func(workers int) *http.Client {
		return &http.Client{Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        workers,
			MaxIdleConnsPerHost: workers,
			IdleConnTimeout:     30 * time.Second,
			DisableCompression:  true,
		}}
	}},
}

// BenchmarkGeneratorCeiling is the generator's ceiling (`loadtest
// calibrate`'s generator phase: GET /health/alive as fast as 8 workers
// go, from an in-process server) with each HTTP client. Every iteration
// is one round of a 2-second phase per client, in an order that rotates
// from round to round, so drifting background load hits all alike; run
// it with -benchtime Nx for N rounds. It reports each client's median
// req/s and CPU (generator and server, same process) per request, and
// the ratios of the medians to the hand-written client's.
func BenchmarkGeneratorCeiling(b *testing.B) {
	url := startServer(b)
	const workers, phase = 8, 2 * time.Second
	rates := map[string][]float64{}
	cpu := map[string][]float64{}
	round := 0
	for b.Loop() {
		for i := range ceilingTransports {
			tr := ceilingTransports[(i+round)%len(ceilingTransports)]
			hc := tr.hc(workers)
			cl, err := client.New(url, client.WithHTTPClient(hc))
			if err != nil {
				b.Fatal(err)
			}
			run0, _ := cputime.Threads(0)
			start := time.Now()
			r, err := loadtest.GeneratorCeiling(context.Background(), cl, workers, 100_000, phase)
			if err != nil {
				b.Fatal(err)
			}
			run1, _ := cputime.Threads(0)
			hc.CloseIdleConnections()
			rates[tr.name] = append(rates[tr.name], r)
			perReq := -1.0
			if n := r * time.Since(start).Seconds(); n > 0 && run0 >= 0 {
				perReq = (run1 - run0) / n * 1e6
				cpu[tr.name] = append(cpu[tr.name], perReq)
			}
			b.Logf("round %d %-11s %8.0f req/s %6.1f cpu-µs/req", round+1, tr.name, r, perReq)
		}
		round++
	}
	median := func(xs []float64) float64 {
		if len(xs) == 0 {
			return 0
		}
		s := slices.Sorted(slices.Values(xs))
		return s[len(s)/2]
	}
	ref := median(rates["handwritten"])
	for _, tr := range ceilingTransports {
		m := median(rates[tr.name])
		b.ReportMetric(m, tr.name+"-req/s")
		b.ReportMetric(median(cpu[tr.name]), tr.name+"-cpu-µs/req")
		if tr.name != "handwritten" && ref > 0 {
			b.ReportMetric(m/ref, fmt.Sprintf("%s/handwritten", tr.name))
		}
	}
	b.ReportMetric(0, "ns/op") // each iteration is a fixed-length round
}
