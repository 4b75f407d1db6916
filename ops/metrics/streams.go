package metrics

import "github.com/prometheus/client_golang/prometheus"

// Streams holds the metrics of the server-sent event streams.
type Streams struct {
	subscribers *prometheus.GaugeVec
	dropped     *prometheus.CounterVec
	refused     prometheus.Counter
}

// NewStreams registers the stream metrics on reg.
func NewStreams(reg prometheus.Registerer) (*Streams, error) {
	s := &Streams{
		subscribers: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "engram_stream_subscribers",
			Help: "Open server-sent event streams, by stream."}, []string{"stream"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "engram_stream_events_dropped_total",
			Help: "Events not delivered to a stream client because its queue was full (the client read too slowly), by stream."}, []string{"stream"}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{Name: "engram_stream_refused_total",
			Help: "Stream requests refused because streams.max_subscribers streams were open."}),
	}
	for _, col := range []prometheus.Collector{s.subscribers, s.dropped, s.refused} {
		if err := reg.Register(col); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Opened counts a stream that started.
func (s *Streams) Opened(stream string) { s.subscribers.WithLabelValues(stream).Inc() }

// Closed counts the end of a stream Opened counted.
func (s *Streams) Closed(stream string) { s.subscribers.WithLabelValues(stream).Dec() }

// Dropped counts n events a stream's client lost to a full queue.
func (s *Streams) Dropped(stream string, n uint64) { s.dropped.WithLabelValues(stream).Add(float64(n)) }

// Refused counts a stream refused by the subscriber cap.
func (s *Streams) Refused() { s.refused.Inc() }
