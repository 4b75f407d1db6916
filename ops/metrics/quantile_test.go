package metrics

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestOperationLatencyQuantiles(t *testing.T) {
	m, err := New(prometheus.NewRegistry(), nil, BuildInfo{})
	if err != nil {
		t.Fatal(err)
	}
	if l := m.OperationLatency("recall", 0.5); l.Count != 0 || l.Quantiles != nil {
		t.Fatalf("empty: %+v", l)
	}
	// 90 recalls of 1-2.5 ms and 10 of 250-500 ms, over two spaces; a
	// remember that must not count.
	for i := 0; i < 90; i++ {
		m.ObserveOperation("recall", "a", 2*time.Millisecond, nil)
	}
	for i := 0; i < 10; i++ {
		m.ObserveOperation("recall", "b", 300*time.Millisecond, nil)
	}
	m.ObserveOperation("remember", "a", 5*time.Second, nil)
	l := m.OperationLatency("recall", 0.5, 0.99)
	if l.Count != 100 || l.Sum < 3.1 || l.Sum > 3.2 {
		t.Fatalf("count/sum: %+v", l)
	}
	// p50 is rank 50 of the 90 in (0.001, 0.0025]; p99 is rank 99, the
	// 9th of the 10 in (0.25, 0.5].
	if p50 := l.Quantiles[0]; p50 < 0.0018 || p50 > 0.0019 {
		t.Fatalf("p50 = %v", p50)
	}
	if p99 := l.Quantiles[1]; p99 < 0.47 || p99 > 0.48 {
		t.Fatalf("p99 = %v", p99)
	}
}
