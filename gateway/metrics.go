package gateway

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/sessiongate/sessiongate/connmgr"
)

// metrics are the instance's Prometheus metrics, on a registry of its own
// (no global state: several Servers can live in one test process).
type metrics struct {
	reg              *prometheus.Registry
	connects         prometheus.Counter
	disconnects      *prometheus.CounterVec
	sent             prometheus.Counter
	dropped          prometheus.Counter
	slowConsumer     prometheus.Counter
	queueHigh        prometheus.Counter
	handshake        prometheus.Histogram
	handshakeRefused *prometheus.CounterVec
	redisLatency     *prometheus.HistogramVec
	events           *prometheus.CounterVec
	publishErrors    prometheus.Counter
	rateLimited      prometheus.Counter
	capCloses        *prometheus.CounterVec
	inboundLimited   prometheus.Counter

	historyAppends      prometheus.Counter
	historyAppendErrors prometheus.Counter
	historyReads        *prometheus.CounterVec
	resumes             *prometheus.CounterVec
	replayed            prometheus.Counter
	eventGaps           *prometheus.CounterVec
	inbound             *prometheus.CounterVec
	enqueueLatency      prometheus.Histogram
	gapChecks           prometheus.Counter
}

func newMetrics(s *Server) *metrics {
	reg := prometheus.NewRegistry()
	f := func(c prometheus.Collector) { reg.MustRegister(c) }
	m := &metrics{
		reg:          reg,
		connects:     prometheus.NewCounter(prometheus.CounterOpts{Name: "sessiongate_connects_total", Help: "WebSocket connections accepted."}),
		disconnects:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sessiongate_disconnects_total", Help: "WebSocket connections closed, by close code."}, []string{"code", "reason"}),
		sent:         prometheus.NewCounter(prometheus.CounterOpts{Name: "sessiongate_messages_sent_total", Help: "Frames written to clients."}),
		dropped:      prometheus.NewCounter(prometheus.CounterOpts{Name: "sessiongate_messages_dropped_total", Help: "Frames dropped (full queue or closed connection)."}),
		slowConsumer: prometheus.NewCounter(prometheus.CounterOpts{Name: "sessiongate_queue_full_closes_total", Help: "Connections closed because their send queue was full (4000)."}),
		queueHigh: prometheus.NewCounter(prometheus.CounterOpts{Name: "sessiongate_send_queue_high_total",
			Help: "Times a connection's send queue filled to half of WS_SEND_QUEUE (a client falling behind; a full queue closes it with 4000)."}),
		handshake: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sessiongate_handshake_seconds", Help: "Authenticated WebSocket handshake latency (session check + upgrade).",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1}}),
		handshakeRefused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sessiongate_handshakes_refused_total", Help: "WebSocket handshakes refused before the upgrade, by reason."}, []string{"reason"}),
		redisLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "sessiongate_redis_command_seconds", Help: "Redis command latency.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .5, 2}}, []string{"command", "result"}),
		events:        prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sessiongate_events_received_total", Help: "Bus events received, by kind."}, []string{"kind"}),
		publishErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "sessiongate_publish_errors_total", Help: "Bus publishes that failed."}),
		rateLimited:   prometheus.NewCounter(prometheus.CounterOpts{Name: "sessiongate_rate_limited_total", Help: "Requests refused by the per-IP rate limit."}),
		capCloses: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sessiongate_connection_cap_closes_total",
			Help: "Connections upgraded then closed with 4009: they lost the race for a connection cap's last slot (refusals before the upgrade are in sessiongate_handshakes_refused_total)."}, []string{"reason"}),
		inboundLimited: prometheus.NewCounter(prometheus.CounterOpts{Name: "sessiongate_inbound_rate_limited_total",
			Help: "Connections closed with 4008 for sending faster than WS_INBOUND_RATE/WS_INBOUND_BURST."}),
		historyAppends: prometheus.NewCounter(prometheus.CounterOpts{Name: "sessiongate_history_appends_total",
			Help: "Published messages stored in the history and published on the bus (with history off: published only)."}),
		historyAppendErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "sessiongate_history_append_errors_total",
			Help: "History appends that failed: the message went to this instance's connections only."}),
		historyReads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sessiongate_history_reads_total",
			Help: "History reads, by op (positions: a welcome; resume: a reconnect's replay; since: the history API) and result (ok, unrecovered, error; bus: a welcome's position taken from the events the bus delivered here, no read)."}, []string{"op", "result"}),
		resumes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sessiongate_resumes_total",
			Help: "Streams reconnecting clients asked to resume, by stream (user, all) and result (recovered; lost: other epoch, trimmed, expired or a future offset; too_far_behind: more than RESUME_MAX_EVENTS missed; error: the history could not be read; off: history is off)."}, []string{"stream", "result"}),
		replayed: prometheus.NewCounter(prometheus.CounterOpts{Name: "sessiongate_resume_replayed_events_total",
			Help: "Events replayed to reconnecting clients from the history."}),
		eventGaps: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sessiongate_event_gaps_total",
			Help: "Streams whose local connections were closed with 4010 to resume because this instance missed events of them, by stream (user, all) and cause (offsets: a hole in the offsets the bus delivered; bus_gap: the history moved on while the subscription was cut; unreadable: that could not be checked)."}, []string{"stream", "cause"}),
		gapChecks: prometheus.NewCounter(prometheus.CounterOpts{Name: "sessiongate_event_gap_checks_total",
			Help: "Checks of every followed stream after the pub/sub subscription came back from a gap."}),
		inbound: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sessiongate_inbound_messages_total",
			Help: "Client messages by result: queued (acked), or the error code the client got (too_large, rate_limited, queue_full, unavailable, invalid)."}, []string{"result"}),
		enqueueLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sessiongate_inbound_enqueue_seconds",
			Help: "Time to queue one client message durably (the ack waits for it).", Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}),
	}
	// The revocation unit registers its own metrics (revocations,
	// reconciles, store resets) on reg.
	for _, c := range []prometheus.Collector{m.connects, m.disconnects, m.sent, m.dropped, m.slowConsumer, m.queueHigh,
		m.handshake, m.handshakeRefused, m.redisLatency, m.events, m.publishErrors, m.rateLimited, m.capCloses, m.inboundLimited,
		m.historyAppends, m.historyAppendErrors, m.historyReads, m.resumes, m.replayed, m.eventGaps, m.gapChecks, m.inbound, m.enqueueLatency} {
		f(c)
	}
	limit := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sessiongate_connection_limit",
		Help: "Configured connection caps of this instance, by scope (0: no cap)."}, []string{"scope"})
	limit.WithLabelValues("instance").Set(float64(s.cfg.Conn.MaxConnections))
	limit.WithLabelValues("user").Set(float64(s.cfg.Conn.MaxConnectionsPerUser))
	limit.WithLabelValues("session").Set(float64(s.cfg.Conn.MaxConnectionsPerSession))
	f(limit)
	f(newQueueCollector(s.d.Inbound))
	if c := newShardCollector(s.d.Bus); c != nil {
		f(c)
	}
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sessiongate_connections_open", Help: "Open WebSocket connections."},
		func() float64 { return float64(s.conns.Stats().Connections) }))
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sessiongate_sessions_connected", Help: "Distinct sessions with an open connection here."},
		func() float64 { return float64(s.conns.Stats().Sessions) }))
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sessiongate_draining", Help: "1 while the instance drains."},
		func() float64 {
			if s.draining.Load() {
				return 1
			}
			return 0
		}))
	// The session cache (set up after the metrics; read at scrape time).
	f(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "sessiongate_session_cache_hits_total",
		Help: "Handshakes whose session came from this instance's session cache (no Redis read)."},
		func() float64 { return float64(s.sessions.Hits()) }))
	f(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "sessiongate_session_cache_misses_total",
		Help: "Handshakes whose session was read from the store (cache off, cold, expired, invalidated or bus not live)."},
		func() float64 { return float64(s.sessions.Misses()) }))
	registerOpsMetrics(s, reg)
	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// MetricsHandler serves this instance's Prometheus metrics. The gateway's
// own handler serves it at /metrics unless GATEWAY_METRICS_ADDR is set; then
// main serves it on that listener instead. Safe for concurrent use.
func (s *Server) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{Registry: s.metrics.reg})
}

// connHooks feeds connmgr's events into the metrics.
func (m *metrics) connHooks(_ *zap.Logger) connmgr.Hooks {
	return connmgr.Hooks{
		OnOpen: func(*connmgr.Info) { m.connects.Inc() },
		OnClose: func(_ *connmgr.Info, code connmgr.CloseCode, _ time.Duration) {
			m.disconnects.WithLabelValues(codeLabel(code), code.String()).Inc()
			switch code {
			case connmgr.CodeSlowConsumer:
				m.slowConsumer.Inc()
			case connmgr.CodeRateLimited:
				m.inboundLimited.Inc()
			}
		},
		OnRateLimited: func(*connmgr.Info) { m.inbound.WithLabelValues(connmgr.ErrCodeRateLimited).Inc() },
		OnSent:        func(n int) { m.sent.Add(float64(n)) },
		OnDropped:     func(n int) { m.dropped.Add(float64(n)) },
		OnQueueHigh:   m.queueHigh.Inc,
	}
}

func codeLabel(c connmgr.CloseCode) string { return strconv.Itoa(int(c)) }

// observeRedis records one Redis command's latency.
func (m *metrics) observeRedis(cmd string, d time.Duration, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.redisLatency.WithLabelValues(cmd, result).Observe(d.Seconds())
}
