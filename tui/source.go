package tui

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/engram-ops/engram-ops/ops/api"
	"github.com/engram-ops/engram-ops/ops/client"
)

// Source is what the board reads from a server: its health report and its
// Prometheus exposition. ClientSource implements it over ops/client;
// tests implement it with canned bytes.
type Source interface {
	// Target names the server (its base URL).
	Target() string
	// Health is GET /api/v1/system/health. An unhealthy server returns its
	// decoded report together with an error.
	Health(ctx context.Context) (*api.SystemHealth, error)
	// Metrics is the answer of GET /metrics.
	Metrics(ctx context.Context) (Exposition, error)
}

// Exposition is one /metrics answer: the body and the Content-Type that
// names its format (delimited protobuf; anything else is read as text).
type Exposition struct {
	Body        []byte
	ContentType string
}

// ClientSource reads a server through ops/client.
type ClientSource struct{ C *client.Client }

// Target is the client's base URL.
func (s ClientSource) Target() string { return s.C.BaseURL() }

// Health calls SystemHealth.
func (s ClientSource) Health(ctx context.Context) (*api.SystemHealth, error) {
	return s.C.SystemHealth(ctx)
}

// Metrics fetches /metrics, preferring the protobuf format.
func (s ClientSource) Metrics(ctx context.Context) (Exposition, error) {
	body, ct, err := s.C.MetricsAs(ctx, acceptMetrics, maxMetricsBody)
	return Exposition{Body: body, ContentType: ct}, err
}

// AlertSource reports the alerts firing or pending elsewhere (Prometheus).
type AlertSource interface {
	Alerts(ctx context.Context) ([]Alert, error)
}

// PrometheusAlerts reads GET /api/v1/alerts of a Prometheus server.
type PrometheusAlerts struct {
	URL string // base URL, e.g. http://127.0.0.1:9090
	HC  *http.Client
}

// maxAlertsBody bounds what the board reads from Prometheus.
const maxAlertsBody = 8 << 20

// Alerts returns Prometheus' pending and firing alerts whose alertname the
// shipped rules define or whose labels name an engram job.
func (p PrometheusAlerts) Alerts(ctx context.Context) ([]Alert, error) {
	hc := p.HC
	if hc == nil {
		hc = &http.Client{Timeout: 5 * time.Second}
	}
	u, err := url.JoinPath(p.URL, "/api/v1/alerts")
	if err != nil {
		return nil, fmt.Errorf("prometheus URL %q: %w", p.URL, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAlertsBody+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", u, err)
	}
	if len(body) > maxAlertsBody {
		return nil, fmt.Errorf("%s: answer larger than %d bytes", u, maxAlertsBody)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", u, resp.Status)
	}
	return parsePrometheusAlerts(body)
}

// parsePrometheusAlerts decodes a /api/v1/alerts answer.
func parsePrometheusAlerts(body []byte) ([]Alert, error) {
	var doc struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Alerts []struct {
				Labels      map[string]string `json:"labels"`
				Annotations map[string]string `json:"annotations"`
				State       string            `json:"state"`
				ActiveAt    *time.Time        `json:"activeAt"`
				Value       string            `json:"value"`
			} `json:"alerts"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("not a Prometheus /api/v1/alerts answer: %w", err)
	}
	if doc.Status != "success" {
		return nil, fmt.Errorf("prometheus answered status %q: %s", doc.Status, doc.Error)
	}
	var out []Alert
	for _, a := range doc.Data.Alerts {
		name := a.Labels["alertname"]
		if name == "" {
			continue
		}
		al := Alert{
			Name:     name,
			Severity: a.Labels["severity"],
			State:    a.State,
			Summary:  a.Annotations["summary"],
			Source:   "prometheus",
			Since:    a.ActiveAt,
		}
		var labels []string
		for _, k := range []string{"instance", "space", "target", "tier", "stage"} {
			if v := a.Labels[k]; v != "" {
				labels = append(labels, k+"="+v)
			}
		}
		al.Labels = strings.Join(labels, ",")
		if ru := a.Annotations["runbook_url"]; ru != "" {
			if i := strings.Index(ru, "runbooks/"); i >= 0 {
				al.Runbook = strings.TrimSuffix(ru[i+len("runbooks/"):], ".md")
			}
		}
		if al.Runbook == "" {
			al.Runbook = "alerts/" + name
		}
		out = append(out, al)
	}
	return out, nil
}
