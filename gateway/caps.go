package gateway

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/sessiongate/sessiongate/internal/logfield"

	"github.com/sessiongate/sessiongate/connmgr"
)

// Error codes of WebSocket handshakes refused by a connection cap.
const (
	// codeTooManyConnections: the user or the session holds as many
	// connections on this instance as allowed (429).
	codeTooManyConnections = "too_many_connections"
	// codeAtCapacity: this instance holds WS_MAX_CONNECTIONS (503); another
	// instance may have room.
	codeAtCapacity = "at_capacity"
)

// checkConnectionCaps refuses, before the upgrade, a handshake that would
// exceed a connection cap: 429 for the per-session and per-user caps, 503
// for the instance cap, each with a JSON error, a metric label and a log
// line. The check is advisory (two handshakes can both pass it for the last
// slot); registration enforces the caps atomically and closes the loser
// with 4009, see capLost.
func (s *Server) checkConnectionCaps(c echo.Context, userID, handle string) error {
	err := s.conns.Admit(userID, handle)
	if err == nil {
		return nil
	}
	reason := capReason(err)
	s.metrics.handshakeRefused.WithLabelValues(reason).Inc()
	s.log.Info("connection refused", zap.String("reason", reason), zap.String("user_id", userID),
		logfield.Handle(handle), zap.String("ip", c.RealIP()))
	switch {
	case errors.Is(err, connmgr.ErrSessionLimit):
		return errorf(http.StatusTooManyRequests, codeTooManyConnections,
			"this session has too many connections on this instance; close one and retry later")
	case errors.Is(err, connmgr.ErrUserLimit):
		return errorf(http.StatusTooManyRequests, codeTooManyConnections,
			"this user has too many connections on this instance; close one and retry later")
	}
	return errorf(http.StatusServiceUnavailable, codeAtCapacity,
		"instance at connection capacity; retry later (another instance may have room)")
}

// capLost reports whether err, from an upgrade, means the connection lost a
// race for a cap's last slot: it was upgraded, then closed with 4009
// (connmgr logged it). It counts those.
func (s *Server) capLost(err error) bool {
	reason := capReason(err)
	if reason == "" {
		return false
	}
	s.metrics.capCloses.WithLabelValues(reason).Inc()
	return true
}

// capReason is the metric label of a cap error ("session_cap", "user_cap",
// "instance_cap"), or "" for any other error.
func capReason(err error) string {
	switch {
	case errors.Is(err, connmgr.ErrSessionLimit):
		return "session_cap"
	case errors.Is(err, connmgr.ErrUserLimit):
		return "user_cap"
	case errors.Is(err, connmgr.ErrInstanceFull):
		return "instance_cap"
	}
	return ""
}
