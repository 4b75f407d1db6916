package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Connections holds the connection metrics of the API's listener:
// engram_http_connections (open now) and
// engram_http_connections_refused_total (over server.max_connections).
type Connections struct {
	open    prometheus.Gauge
	refused prometheus.Counter
}

// NewConnections registers the connection metrics on reg.
func NewConnections(reg prometheus.Registerer) (*Connections, error) {
	c := &Connections{
		open: prometheus.NewGauge(prometheus.GaugeOpts{Name: "engram_http_connections",
			Help: "Open client connections of the API's address."}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{Name: "engram_http_connections_refused_total",
			Help: "Client connections refused because server.max_connections were open."}),
	}
	for _, col := range []prometheus.Collector{c.open, c.refused} {
		if err := reg.Register(col); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Opened counts a connection that is being served.
func (c *Connections) Opened() { c.open.Inc() }

// Closed counts the end of a connection Opened counted.
func (c *Connections) Closed() { c.open.Dec() }

// Refused counts a connection refused by the cap.
func (c *Connections) Refused() { c.refused.Inc() }

// TLS holds the engram_tls_* metrics of a server serving TLS. They are
// registered only then, so an expiry alert never sees a zero timestamp.
type TLS struct {
	expiry            prometheus.Gauge
	reloadFailures    prometheus.Counter
	handshakeFailures prometheus.Counter
}

// NewTLS registers the TLS metrics on reg.
func NewTLS(reg prometheus.Registerer) (*TLS, error) {
	t := &TLS{
		expiry: prometheus.NewGauge(prometheus.GaugeOpts{Name: "engram_tls_cert_expiry_timestamp_seconds",
			Help: "Unix time at which the served certificate expires (its NotAfter)."}),
		reloadFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "engram_tls_reload_failures_total",
			Help: "Certificate reloads that failed (the previous certificate stays in use)."}),
		handshakeFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "engram_tls_handshake_failures_total",
			Help: "TLS handshakes that failed (bad or missing client certificate, old protocol version, not TLS)."}),
	}
	for _, col := range []prometheus.Collector{t.expiry, t.reloadFailures, t.handshakeFailures} {
		if err := reg.Register(col); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// CertLoaded records the expiry of the certificate now served.
func (t *TLS) CertLoaded(notAfter time.Time) { t.expiry.Set(float64(notAfter.Unix())) }

// ReloadFailed counts a failed certificate reload.
func (t *TLS) ReloadFailed() { t.reloadFailures.Inc() }

// HandshakeFailed counts a failed TLS handshake.
func (t *TLS) HandshakeFailed() { t.handshakeFailures.Inc() }
