package gateway

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/sessiongate/sessiongate/pubsub"
	"github.com/sessiongate/sessiongate/redisconn"
)

func (s *Server) handleHealthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok", "instance": s.cfg.InstanceID})
}

type readyCheck struct {
	Status    string  `json:"status"`
	LatencyMS float64 `json:"latency_ms,omitempty"`
	Error     string  `json:"error,omitempty"`
	// ShardsNotLive lists the shard channels whose subscription or own
	// ping is not live (sharded pub/sub on Redis Cluster).
	ShardsNotLive []int `json:"shards_not_live,omitempty"`
}

type readyResponse struct {
	Status   string                `json:"status"` // ok | degraded | draining
	Instance string                `json:"instance"`
	Reason   string                `json:"reason,omitempty"`
	Checks   map[string]readyCheck `json:"checks"`
}

// handleReadyz says whether a load balancer should send new clients here:
// 200 only when the store answers, pub/sub delivers our own heartbeats and
// the instance is not draining; 503 with the reason otherwise.
func (s *Server) handleReadyz(c echo.Context) error {
	out := readyResponse{Status: "ok", Instance: s.cfg.InstanceID, Checks: map[string]readyCheck{}}
	if s.d.Redis != nil {
		ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
		h := s.d.Redis.Health(ctx)
		cancel()
		out.Checks["redis"] = readyCheck{Status: h.Status, LatencyMS: h.LatencyMS, Error: h.LastError}
		if reason, ok := redisReadiness(h); !ok {
			out.Status, out.Reason = "degraded", reason
		}
	} else {
		out.Checks["store"] = readyCheck{Status: "memory"}
	}
	ps := readyCheck{Status: "live"}
	switch {
	case !s.subscribed.Load():
		ps.Status = "not subscribed"
		if out.Status == "ok" {
			out.Status, out.Reason = "degraded", "pub/sub: subscription lost"
		}
	case !s.cluster.Live():
		ps.Status = "not live"
		reason := "pub/sub: own heartbeat not seen"
		if sb, ok := s.d.Bus.(shardStats); ok {
			if ps.ShardsNotLive = shardsNotLive(sb.Shards()); len(ps.ShardsNotLive) > 0 {
				reason = fmt.Sprintf("pub/sub: %d of %d shard channels not live", len(ps.ShardsNotLive), len(sb.Shards()))
			}
		}
		if out.Status == "ok" {
			out.Status, out.Reason = "degraded", reason
		}
	}
	out.Checks["pubsub"] = ps
	if s.d.Degraded != "" && out.Status == "ok" {
		out.Status, out.Reason = "degraded", s.d.Degraded
	}
	if s.draining.Load() {
		out.Status, out.Reason = "draining", "instance is shutting down"
	}
	status := http.StatusOK
	if out.Status != "ok" {
		status = http.StatusServiceUnavailable
	}
	return c.JSON(status, out)
}

// redisReadiness decides readiness from the live PING /readyz just made, not
// from the connection manager's last periodic check, which lags: a PING that
// failed on a connection believed up is not ready ("redis error"), and one
// that succeeded while the manager still says reconnecting is ready (its
// next check will agree).
func redisReadiness(h redisconn.Health) (reason string, ok bool) {
	if h.OK() {
		return "", true
	}
	return "redis " + h.Status, false
}

// shardsNotLive returns the shards of stats that are not live, in order.
func shardsNotLive(stats []pubsub.ShardStat) []int {
	var out []int
	for _, st := range stats {
		if !st.Live {
			out = append(out, st.Shard)
		}
	}
	return out
}
