//go:build e2e

package e2e

import (
	"slices"
	"testing"
)

// The selector scanner finds the metric selectors of an expression, with
// their matchers, and nothing else (functions, labels in by(), quoted
// label values that look like metric names, durations).
func TestMetricSelectors(t *testing.T) {
	for _, tt := range []struct {
		name, expr string
		want       []string
	}{
		{"plain", `up{job="sessiongate"} == 0`, []string{`up{job="sessiongate"}`}},
		{"aggregation and by", `sum by (job, le) (rate(sessiongate_handshake_seconds_bucket[5m]))`,
			[]string{"sessiongate_handshake_seconds_bucket"}},
		{"quoted name-like value", `sessiongate_cluster_instances{state="gone",x="sessiongate_fake"} > 0`,
			[]string{`sessiongate_cluster_instances{state="gone",x="sessiongate_fake"}`}},
		{"recording rules and and", `sessiongate:a:ratio_rate5m > 0.25 and sessiongate:b:rate5m > 0.1`,
			[]string{"sessiongate:a:ratio_rate5m", "sessiongate:b:rate5m"}},
		{"duplicates once", `rate(go_goroutines[1m]) / go_goroutines`, []string{"go_goroutines"}},
		{"not ours", `rate(http_requests_total[5m])`, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := metricSelectors(tt.expr); !slices.Equal(got, tt.want) {
				t.Fatalf("metricSelectors(%q) = %q, want %q", tt.expr, got, tt.want)
			}
		})
	}
}

func TestSubstitute(t *testing.T) {
	got, unknown := substitute(`x{job="$job",instance=~"${instance}"}[$__rate_interval] [[job]] $nope`,
		map[string]string{"job": "sg", "instance": ".*"})
	if want := `x{job="sg",instance=~".*"}[1m] sg $nope`; got != want || !slices.Equal(unknown, []string{"nope"}) {
		t.Fatalf("substitute: %q %q, want %q [nope]", got, unknown, want)
	}
}
