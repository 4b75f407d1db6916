package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// GRPC holds the gRPC counterpart of the engram_http_* family:
// engram_grpc_requests_total{service,method,code},
// engram_grpc_request_duration_seconds{service,method},
// engram_grpc_in_flight_requests and, for streams,
// engram_grpc_stream_messages_total{service,method,direction}. A stream
// is one request, timed from its opening to its end.
type GRPC struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight prometheus.Gauge
	messages *prometheus.CounterVec
}

// NewGRPC registers the gRPC metrics on reg.
func NewGRPC(reg prometheus.Registerer) (*GRPC, error) {
	g := &GRPC{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "engram_grpc_requests_total",
			Help: "gRPC calls served, by service, method and status code (OK, InvalidArgument, ...).",
		}, []string{"service", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "engram_grpc_request_duration_seconds",
			Help:    "gRPC call latency (a stream: from its opening to its end), by service and method.",
			Buckets: DurationBuckets,
		}, []string{"service", "method"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "engram_grpc_in_flight_requests",
			Help: "gRPC calls (open streams included) being served.",
		}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "engram_grpc_stream_messages_total",
			Help: "Messages received and sent on gRPC streams, by service, method and direction (received, sent).",
		}, []string{"service", "method", "direction"}),
	}
	for _, c := range []prometheus.Collector{g.requests, g.duration, g.inFlight, g.messages} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// Started counts a call being served; call Finished when it ends.
func (g *GRPC) Started() { g.inFlight.Inc() }

// Finished records a call that Started counted.
func (g *GRPC) Finished(service, method, code string, d time.Duration) {
	g.inFlight.Dec()
	g.requests.WithLabelValues(service, method, code).Inc()
	g.duration.WithLabelValues(service, method).Observe(d.Seconds())
}

// StreamMessage counts one message of a stream; direction is "received"
// or "sent".
func (g *GRPC) StreamMessage(service, method, direction string) {
	g.messages.WithLabelValues(service, method, direction).Inc()
}
