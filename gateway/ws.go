package gateway

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/sessiongate/sessiongate/connmgr"
)

// startTimeout bounds the history reads of a new connection's start: past
// it the connection opens without the streams it could not read (they are
// reported lost to a resuming client), and events held for it meanwhile
// are not lost.
const startTimeout = 5 * time.Second

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
	from, err := parseResume(r.URL.Query())
	if err != nil {
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
	epoch := s.busEpoch.Load()
	if s.rev.Revoked(handle) {
		s.metrics.handshakeRefused.WithLabelValues("unauthorized").Inc()
		return errorf(http.StatusUnauthorized, codeUnauthorized, "session expired or revoked")
	}
	sess, found, err := s.sessions.Lookup(r.Context(), handle)
	if err != nil {
		s.metrics.handshakeRefused.WithLabelValues("store").Inc()
		return s.storeError("load session", err)
	}
	if !found || sess.Expired(s.now()) || s.rev.UserPending(sess.UserID) {
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
	// With history on (or a client resuming) the welcome waits for
	// connStart, which runs once the connection is registered: its
	// positions (and what a resuming client missed) are read when every
	// later event is already held for it, so none falls in between.
	info := connmgr.Info{
		UserID:    sess.UserID,
		Handle:    sess.Handle,
		Remote:    c.RealIP(),
		ExpiresAt: sess.ExpiresAt,
	}
	// connmgr writes the 101 itself, with the welcome (net/http never sees
	// it): the access log reads the status from here. A handshake Accept
	// refuses writes its own status over it.
	c.Response().Status = http.StatusSwitchingProtocols
	if s.cfg.HistoryOff && from == nil {
		err = s.conns.Upgrade(c.Response(), r, info)
	} else {
		err = s.conns.UpgradeWith(c.Response(), r, info, func() connmgr.Start {
			ctx, cancel := context.WithTimeout(r.Context(), startTimeout)
			defer cancel()
			return s.connStart(ctx, sess.UserID, sess.Handle, from)
		})
	}
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
	c.Response().Committed = true
	s.metrics.handshake.Observe(time.Since(start).Seconds())
	// A revocation that landed between the store read and the
	// registration found nothing to close: catch it now.
	closed := s.rev.CloseIfRevokedMeanwhile(sess.Handle, sess.UserID)
	// The bus changed while this handshake ran: a revocation event may have
	// been lost after the session check, and the reconcile pass that
	// change asked for may have looked before this connection registered.
	// Another pass, after it, checks it (rare: bus changes are).
	if !closed && s.busEpoch.Load() != epoch {
		s.requestReconcile("handshake across a pub/sub change")
	}
	return nil
}
