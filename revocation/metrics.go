package revocation

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are a Revoker's Prometheus metrics.
type metrics struct {
	revocations     *prometheus.CounterVec
	pending         prometheus.Gauge
	reconciles      prometheus.Counter
	reconcileErrors prometheus.Counter
	reconcileClosed prometheus.Counter
	storeResets     prometheus.Counter
	undone          prometheus.Counter
	unindexed       prometheus.Counter
	closeLatency    prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		revocations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sessiongate_revocations_total",
			Help: "Revocations accepted by this instance (confirmed or queued), by kind."}, []string{"kind"}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{Name: "sessiongate_revocations_pending",
			Help: "Revocations accepted but not yet confirmed by the store and the bus (retried until they are)."}),
		reconciles: prometheus.NewCounter(prometheus.CounterOpts{Name: "sessiongate_reconciles_total",
			Help: "Reconciliation passes completed."}),
		reconcileErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "sessiongate_reconcile_errors_total",
			Help: "Reconciliation passes that failed."}),
		reconcileClosed: prometheus.NewCounter(prometheus.CounterOpts{Name: "sessiongate_reconcile_closed_total",
			Help: "Connections closed by reconciliation (revocations pub/sub missed, expiries, lost sessions)."}),
		storeResets: prometheus.NewCounter(prometheus.CounterOpts{Name: "sessiongate_store_resets_total",
			Help: "Times this instance found the session store's data set replaced (every session lost)."}),
		undone: prometheus.NewCounter(prometheus.CounterOpts{Name: "sessiongate_revocations_undone_total",
			Help: "Revoked sessions found in the store again (a delete lost in a Redis failover) and revoked again."}),
		unindexed: prometheus.NewCounter(prometheus.CounterOpts{Name: "sessiongate_sessions_unindexed_total",
			Help: "Sessions created here whose user-index entry the store lost (a Redis failover) while the session survived; each was revoked."}),
		closeLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sessiongate_revocation_close_seconds",
			Help: "Time from a peer publishing a revocation event to this instance closing its connections of it " +
				"(the publisher's clock against this one's: clock skew between hosts adds to it). Observed only for events that closed something here.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.revocations, m.pending, m.reconciles, m.reconcileErrors,
		m.reconcileClosed, m.storeResets, m.undone, m.unindexed, m.closeLatency} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("revocation: register metrics: %w", err)
		}
	}
	return m, nil
}
