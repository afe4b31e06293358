package gateway

import (
	"context"
	"net/http"
	"time"

	"github.com/coder/websocket"
	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/sessiongate/sessiongate/connmgr"
)

// handleWS authenticates a WebSocket handshake BEFORE upgrading it, so every
// refusal is a plain HTTP status with a JSON body, then hands the connection
// to the connection manager for its whole life.
func (s *Server) handleWS(c echo.Context) error {
	start := time.Now()
	r := c.Request()
	if s.draining.Load() || !s.conns.Accepting() {
		return errorf(http.StatusServiceUnavailable, codeUnavailable, "instance is draining; reconnect")
	}
	if !s.originAllowed(r) {
		s.metrics.handshakeRefused.WithLabelValues("origin").Inc()
		s.log.Warn("cross-origin websocket refused", zap.String("origin", r.Header.Get("Origin")),
			zap.String("ip", c.RealIP()))
		return errorf(http.StatusForbidden, codeForbidden, "origin not allowed")
	}
	handle, ok := s.sessionHandle(r)
	if !ok {
		s.metrics.handshakeRefused.WithLabelValues("unauthorized").Inc()
		return errorf(http.StatusUnauthorized, codeUnauthorized, "no valid session")
	}
	if s.tomb.has(handle, s.now()) {
		s.metrics.handshakeRefused.WithLabelValues("unauthorized").Inc()
		return errorf(http.StatusUnauthorized, codeUnauthorized, "session expired or revoked")
	}
	sess, found, err := s.d.Store.Load(r.Context(), handle)
	if err != nil {
		s.metrics.handshakeRefused.WithLabelValues("store").Inc()
		return s.storeError("load session", err)
	}
	if !found || sess.Expired(s.now()) {
		s.metrics.handshakeRefused.WithLabelValues("unauthorized").Inc()
		return errorf(http.StatusUnauthorized, codeUnauthorized, "session expired or revoked")
	}
	ws, err := websocket.Accept(smallBufferWriter{c.Response()}, r, &websocket.AcceptOptions{
		// The Origin was checked above against our own policy.
		InsecureSkipVerify: true,
		CompressionMode:    websocket.CompressionDisabled,
	})
	if err != nil {
		// Accept has already written an HTTP error (e.g. not a WebSocket request).
		s.metrics.handshakeRefused.WithLabelValues("upgrade").Inc()
		s.log.Debug("websocket accept failed", zap.Error(err))
		return nil
	}
	s.metrics.handshake.Observe(time.Since(start).Seconds())
	// Start writes the welcome here and moves the read loop to a goroutine
	// of its own, so this handler returns and the request it held is freed:
	// an idle connection keeps only what it needs. Start closes ws itself
	// when it refuses it (draining).
	_ = s.conns.Start(context.Background(), ws, connmgr.Info{
		UserID:    sess.UserID,
		Handle:    sess.Handle,
		Remote:    c.RealIP(),
		ExpiresAt: sess.ExpiresAt,
	})
	return nil
}
