package cluster

import (
	"strings"
	"testing"
	"time"
)

// The generated configuration scrapes every instance as job "sessiongate"
// at the given interval and loads the rule files.
func TestPrometheusConfig(t *testing.T) {
	gws := []*Gateway{{Port: 41001}, {Port: 41002}}
	got := prometheusConfig(PrometheusOptions{Rules: []string{"/repo/deploy/prometheus/sessiongate.rules.yml"}, ScrapeInterval: 2 * time.Second}, gws)
	for _, want := range []string{
		"scrape_interval: 2s", "evaluation_interval: 2s",
		"rule_files:\n  - \"/repo/deploy/prometheus/sessiongate.rules.yml\"",
		"job_name: " + PrometheusJob,
		`- "127.0.0.1:41001"`, `- "127.0.0.1:41002"`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("config lacks %q:\n%s", want, got)
		}
	}
}
