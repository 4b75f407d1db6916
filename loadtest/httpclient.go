package loadtest

import (
	"net/http"

	"github.com/engram-ops/engram-ops/ops/client"
)

// HTTPClient is the HTTP client a generator of up to maxWorkers concurrent
// requests should give ops/client: http:// requests go through
// directTransport (each on its worker's goroutine), others through the
// default transport; both keep an idle connection per worker. With fewer,
// connections beyond the idle limit are closed after each burst and dialled
// again in the next, and that churn (thousands of sockets in TIME_WAIT, a
// dial per request) costs more CPU on both sides than the requests
// themselves.
func HTTPClient(maxWorkers int) *http.Client {
	t := client.DefaultTransport()
	t.MaxIdleConnsPerHost = max(t.MaxIdleConnsPerHost, maxWorkers)
	t.MaxIdleConns = max(t.MaxIdleConns, maxWorkers)
	return &http.Client{Transport: newDirectTransport(t, max(maxWorkers, 1))}
}
