package presence

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the tracker's Prometheus metrics.
type metrics struct {
	flushes     *prometheus.CounterVec
	flushTime   prometheus.Histogram
	transitions *prometheus.CounterVec
	purges      prometheus.Counter
	rewrites    prometheus.Counter
	dropped     prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		flushes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sessiongate_presence_flushes_total",
			Help: "Writes of this instance's changed users to the presence store, by result (ok, error)."}, []string{"result"}),
		flushTime: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sessiongate_presence_flush_seconds",
			Help: "Time of one presence flush (one pipelined round trip).", Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sessiongate_presence_transitions_total",
			Help: "Users going online or offline cluster-wide, as decided by this instance's writes and purges, by kind (online, offline)."}, []string{"kind"}),
		purges: prometheus.NewCounter(prometheus.CounterOpts{Name: "sessiongate_presence_purges_total",
			Help: "Presence records of gone instances purged by this instance."}),
		rewrites: prometheus.NewCounter(prometheus.CounterOpts{Name: "sessiongate_presence_rewrites_total",
			Help: "Times this instance found its presence records gone (purged or expired) and wrote them again."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "sessiongate_presence_events_dropped_total",
			Help: "Presence events dropped because too many were waiting for the inbound queue."}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.flushes, m.flushTime, m.transitions, m.purges, m.rewrites, m.dropped} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, err
			}
		}
	}
	return m, nil
}
