package gateway

import (
	"context"
	"net/http"
	"time"

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
	if err := checkHandshake(c.Response(), r); err != nil {
		s.metrics.handshakeRefused.WithLabelValues("handshake").Inc()
		return err
	}
	if s.draining.Load() || !s.conns.Accepting() {
		return errorf(http.StatusServiceUnavailable, codeUnavailable, "instance is draining; reconnect")
	}
	if !s.originAllowed(r) {
		s.metrics.handshakeRefused.WithLabelValues("origin").Inc()
		s.log.Warn("cross-origin websocket refused", zap.String("origin", clipLog(r.Header.Get("Origin"))),
			zap.String("ip", c.RealIP()))
		return errorf(http.StatusForbidden, codeForbidden, "origin not allowed")
	}
	handle, ok := s.sessionHandle(r)
	if !ok {
		s.metrics.handshakeRefused.WithLabelValues("unauthorized").Inc()
		return errorf(http.StatusUnauthorized, codeUnauthorized, "no valid session")
	}
	checked := s.now()
	if s.tomb.has(handle, checked) {
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
	// Connection caps: refused here with an HTTP error; registration
	// enforces them again, atomically.
	if err := s.checkConnectionCaps(c, sess.UserID, sess.Handle); err != nil {
		return err
	}
	// Upgrade writes the welcome here and moves the connection to a read
	// loop of its own, built for idle connections (small buffers, shallow
	// stack), so this handler returns and the request it held is freed.
	err = s.conns.Upgrade(c.Response(), r, connmgr.Info{
		UserID:    sess.UserID,
		Handle:    sess.Handle,
		Remote:    c.RealIP(),
		ExpiresAt: sess.ExpiresAt,
	})
	if err != nil && s.capLost(err) {
		return nil // upgraded, then closed with 4009: it lost the last slot to a concurrent handshake
	}
	if err != nil {
		// The handshake failed (websocket.Accept answered it), or the
		// connection was refused and closed (1001 while draining).
		s.metrics.handshakeRefused.WithLabelValues("upgrade").Inc()
		s.log.Debug("websocket upgrade failed", zap.Error(err))
		return nil
	}
	s.metrics.handshake.Observe(time.Since(start).Seconds())
	s.closeIfRevokedMeanwhile(sess.Handle, sess.UserID, sess.ExpiresAt, checked)
	return nil
}

// closeIfRevokedMeanwhile closes a just-registered connection whose session
// was revoked while its handshake ran: a revocation event that arrived
// between the store read and the registration found nothing to close. The
// tombstone is always set before the event's close runs, so between them the
// two checks catch every ordering. A revocation of all the user's sessions
// says nothing about this one session (it may be a new login), so the store
// decides, off the request path.
func (s *Server) closeIfRevokedMeanwhile(handle, userID string, expiresAt, since time.Time) {
	if s.tomb.has(handle, s.now()) {
		s.conns.CloseSession(handle, connmgr.CodeRevoked)
		return
	}
	if !s.tomb.userRevokedSince(userID, since) {
		return
	}
	s.goFn(func() {
		ctx, cancel := context.WithTimeout(s.baseCtx, storeTimeout)
		defer cancel()
		exists, err := s.d.Store.Exists(ctx, []string{handle}, false)
		if err != nil {
			s.requestReconcile("recheck after concurrent user revocation failed")
			return
		}
		if !exists[0] {
			s.conns.CloseSession(handle, s.closeCodeFor(expiresAt))
		}
	})
}
