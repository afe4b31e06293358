package gateway

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// With GATEWAY_METRICS_ADDR set, the public handler no longer serves
// /metrics (main serves MetricsHandler on that address instead).
func TestMetricsOffThePublicPort(t *testing.T) {
	g := startGateway(t, gwOptions{env: map[string]string{"GATEWAY_METRICS_ADDR": "127.0.0.1:0"}})
	if st, _, body := get(t, g.http.URL+"/metrics"); st != http.StatusNotFound || decodeError(t, body) != codeNotFound {
		t.Fatalf("/metrics on the public port: %d %s, want 404 JSON", st, body)
	}
	rec := httptestRecorder(g.srv.MetricsHandler(), "/metrics")
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "sessiongate_connections_open") {
		t.Fatalf("MetricsHandler: %d", rec.Code)
	}
}

func httptestRecorder(h http.Handler, path string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec
}
