package gateway

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/sessiongate/sessiongate/inbound"
)

// Inbound is the inbound queue as the gateway uses it: it queues client
// messages and serves the operators' API. *inbound.Redis and
// *inbound.Memory.
type Inbound interface {
	inbound.Producer
	inbound.Admin
}

// Dead-letter listing limits.
const (
	defaultDeadLetters = 100
	maxDeadLetters     = 1000
	maxRedriveIDs      = 1000
)

// apiInbound is GET /api/v1/inbound: the queue's length, pending, lag and
// dead letters, in total and per partition.
func (s *Server) apiInbound(c echo.Context) error {
	st, err := s.d.Inbound.Stats(c.Request().Context())
	if err != nil {
		return s.inboundError("inbound stats", err)
	}
	return c.JSON(http.StatusOK, st)
}

// apiDeadLetters is GET /api/v1/inbound/dead-letters?after=&limit=: the
// dead letters, oldest first, with their last error.
func (s *Server) apiDeadLetters(c echo.Context) error {
	limit := defaultDeadLetters
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxDeadLetters {
			return errorf(http.StatusBadRequest, codeBadRequest, "limit must be an integer from 1 to "+strconv.Itoa(maxDeadLetters))
		}
		limit = n
	}
	dl, err := s.d.Inbound.DeadLetters(c.Request().Context(), c.QueryParam("after"), limit)
	if errors.Is(err, inbound.ErrBadID) {
		return errorf(http.StatusBadRequest, codeBadRequest, "after must be a dead letter id from a previous page")
	}
	if err != nil {
		return s.inboundError("inbound dead letters", err)
	}
	if dl == nil {
		dl = []inbound.DeadLetter{}
	}
	return c.JSON(http.StatusOK, map[string]any{"dead_letters": dl})
}

type redriveRequest struct {
	// IDs are the dead letters to queue again; none: all of them.
	IDs []string `json:"ids"`
}

// apiRedrive is POST /api/v1/inbound/dead-letters/redrive
// {"ids":[...]}: queues the dead letters again (all when ids is empty or
// absent), each as a new message with its delivery count restarted.
func (s *Server) apiRedrive(c echo.Context) error {
	var req redriveRequest
	if c.Request().ContentLength != 0 {
		if err := bindJSON(c, &req); err != nil {
			return err
		}
	}
	if len(req.IDs) > maxRedriveIDs {
		return errorf(http.StatusBadRequest, codeBadRequest, "at most "+strconv.Itoa(maxRedriveIDs)+" ids per request")
	}
	var n int
	var err error
	if len(req.IDs) > 0 {
		n, err = s.d.Inbound.Redrive(c.Request().Context(), req.IDs...)
	} else {
		n, err = s.redriveAll(c.Request().Context())
	}
	if errors.Is(err, inbound.ErrBadID) {
		return errorf(http.StatusBadRequest, codeBadRequest, "ids must be dead letter ids as listed by GET /api/v1/inbound/dead-letters")
	}
	if err != nil {
		return s.inboundError("inbound redrive", err)
	}
	s.log.Info("inbound dead letters redriven", zap.Int("redriven", n), zap.Int("asked", len(req.IDs)))
	return c.JSON(http.StatusOK, map[string]int{"redriven": n})
}

// redriveAllLimit bounds one re-drive of every dead letter, in messages.
const redriveAllLimit = 100_000

// redriveAll re-drives the dead letters page by page, up to
// redriveAllLimit.
func (s *Server) redriveAll(ctx context.Context) (int, error) {
	total := 0
	for total < redriveAllLimit {
		page, err := s.d.Inbound.DeadLetters(ctx, "", maxDeadLetters)
		if err != nil || len(page) == 0 {
			return total, err
		}
		ids := make([]string, len(page))
		for i, d := range page {
			ids[i] = d.ID
		}
		n, err := s.d.Inbound.Redrive(ctx, ids...)
		total += n
		if err != nil || n == 0 {
			return total, err
		}
	}
	return total, nil
}

// inboundError is the 503 of a queue the API cannot reach.
func (s *Server) inboundError(op string, err error) error {
	s.log.Warn("inbound admin failed", zap.String("op", op), zap.Error(err))
	return errorf(http.StatusServiceUnavailable, codeUnavailable, "the inbound queue is unavailable")
}

// queueStatsTimeout bounds the queue read of one /metrics scrape.
const queueStatsTimeout = 2 * time.Second

// queueCollector exports the inbound queue's figures at scrape time:
// length, pending, lag and dead letters. A scrape that cannot read the
// queue exports none of them (the scrape still succeeds).
type queueCollector struct {
	q                                       inbound.Admin
	length, pending, lag, dead, redelivered *prometheus.Desc
}

func newQueueCollector(q inbound.Admin) *queueCollector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("sessiongate_inbound_"+name, help, nil, nil)
	}
	return &queueCollector{q: q,
		length:  d("queue_length", "Client messages in the inbound queue not yet done (never delivered, or delivered and not acknowledged)."),
		pending: d("queue_pending", "Client messages delivered to a worker and not yet acknowledged."),
		lag:     d("queue_lag", "Client messages not yet delivered to any worker (consumer lag; absent before Redis 7)."),
		dead:    d("dead_letters", "Client messages in the dead letters."),
		redelivered: d("redeliveries_total", "Deliveries of client messages after the first, by every worker since the queue was created: "+
			"claims of messages a worker left past INBOUND_VISIBILITY_TIMEOUT, and retries after a handler failed."),
	}
}

// Describe implements prometheus.Collector.
func (q *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- q.length
	ch <- q.pending
	ch <- q.lag
	ch <- q.dead
	ch <- q.redelivered
}

// Collect implements prometheus.Collector.
func (q *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), queueStatsTimeout)
	defer cancel()
	st, err := q.q.Stats(ctx)
	if err != nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(q.length, prometheus.GaugeValue, float64(st.Length))
	ch <- prometheus.MustNewConstMetric(q.pending, prometheus.GaugeValue, float64(st.Pending))
	if st.Lag >= 0 {
		ch <- prometheus.MustNewConstMetric(q.lag, prometheus.GaugeValue, float64(st.Lag))
	}
	ch <- prometheus.MustNewConstMetric(q.dead, prometheus.GaugeValue, float64(st.Dead))
	ch <- prometheus.MustNewConstMetric(q.redelivered, prometheus.CounterValue, float64(st.Redelivered))
}
