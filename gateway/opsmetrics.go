package gateway

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sessiongate/sessiongate/redisconn"
)

// registerOpsMetrics registers the gauges the alert rules of
// deploy/prometheus watch: pub/sub liveness, the Redis connection state and
// the cluster view. Each is read at scrape time, so it costs nothing
// between scrapes.
func registerOpsMetrics(s *Server, reg prometheus.Registerer) {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sessiongate_pubsub_live",
		Help: "1 while the pub/sub subscription is confirmed and this instance's own heartbeats come back through it; 0 otherwise (revocations and messages from other instances may be missed; /readyz is 503)."},
		func() float64 {
			if s.busLive() {
				return 1
			}
			return 0
		}))
	// The gauge above is 0 for a whole outage; a subscription that flaps
	// between two scrapes shows only here.
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "sessiongate_pubsub_liveness_lost_total",
		Help: "Times this instance's own heartbeat did not come back through the bus within the liveness timeout (2 heartbeat intervals)."},
		func() float64 { return float64(s.cluster.LivenessLost()) }))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "sessiongate_pubsub_gaps_total",
		Help: "Times the pub/sub subscription was lost after it was confirmed (events published until it is back are missed; the session cache is emptied and a reconcile pass and gap check follow)."},
		func() float64 { return float64(s.busGaps.Load()) }))
	if s.d.Redis != nil {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sessiongate_redis_connected",
			Help: "1 while the last periodic PING of Redis succeeded; 0 while connecting, reconnecting or down (absent in embedded mode)."},
			func() float64 {
				if s.d.Redis.State() == redisconn.StateConnected {
					return 1
				}
				return 0
			}))
	}
	reg.MustRegister(&clusterCollector{s: s, desc: prometheus.NewDesc("sessiongate_cluster_instances",
		"Instances in this instance's cluster view (itself included), by state: alive, draining, gone (missed 3 heartbeats without announcing a drain) and left (gone after draining). Gone and left instances are forgotten 10 heartbeat timeouts later.",
		[]string{"state"}, nil)})
}

// clusterCollector exports the cluster view at scrape time.
type clusterCollector struct {
	s    *Server
	desc *prometheus.Desc
}

// The states of sessiongate_cluster_instances; every one is exported, 0
// included, so a rule sees the series before anything goes wrong.
var clusterStates = [...]string{"alive", "draining", "gone", "left"}

// Describe implements prometheus.Collector.
func (c *clusterCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector.
func (c *clusterCollector) Collect(ch chan<- prometheus.Metric) {
	var n [len(clusterStates)]int
	for _, v := range c.s.cluster.View() {
		switch {
		case v.Alive && !v.Draining:
			n[0]++
		case v.Alive:
			n[1]++
		case !v.Draining:
			n[2]++
		default:
			n[3]++
		}
	}
	for i, st := range clusterStates {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n[i]), st)
	}
}
