package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/sessiongate/sessiongate/internal/logfield"

	"github.com/sessiongate/sessiongate/session"
)

type loginResponse struct {
	UserID    string    `json:"user_id"`
	ExpiresAt time.Time `json:"expires_at"`
}

type sessionResponse struct {
	UserID      string          `json:"user_id"`
	Handle      string          `json:"handle"`
	CreatedAt   time.Time       `json:"created_at"`
	ExpiresAt   time.Time       `json:"expires_at"`
	Data        json.RawMessage `json:"data,omitempty"`
	Connections *int            `json:"connections_local,omitempty"`
}

func toSessionResponse(s session.Session) sessionResponse {
	return sessionResponse{UserID: s.UserID, Handle: s.Handle, CreatedAt: s.CreatedAt, ExpiresAt: s.ExpiresAt, Data: s.Data}
}

func (s *Server) handleLogin(c echo.Context) error {
	r := c.Request()
	if !s.csrfSafe(r) {
		s.log.Warn("cross-site login refused", zap.String("origin", clipLog(r.Header.Get("Origin"))), zap.String("ip", c.RealIP()))
		return errorf(http.StatusForbidden, codeForbidden, "cross-site request refused")
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		// A cross-site HTML form cannot send application/json without a preflight.
		return errorf(http.StatusUnsupportedMediaType, codeUnsupportedMedia, "Content-Type must be application/json")
	}
	// The authenticator (or the application's webhook) gets exactly one
	// JSON object: nothing smuggled after it.
	body, err := readJSONObject(c)
	if err != nil {
		return err
	}
	id, err := s.d.Auth.Authenticate(r.Context(), body)
	switch {
	case errors.Is(err, ErrBadCredentials):
		s.log.Info("login refused", zap.String("ip", c.RealIP()), zap.Error(err))
		return errorf(http.StatusUnauthorized, codeUnauthorized, "invalid credentials")
	case errors.Is(err, ErrUpstream):
		s.log.Error("login upstream failed", zap.Error(err))
		return errorf(http.StatusBadGateway, codeBadGateway, "authentication service unavailable")
	case err != nil:
		return err
	}
	// Rotate: whatever session the browser held ends here (no fixation).
	if old, ok := s.sessionHandle(r); ok {
		s.rev.RevokeSession(r.Context(), old, "login rotation")
	}
	token, sess, err := s.createSession(r.Context(), id.UserID, id.Data)
	if err != nil {
		return s.storeError("create session", err)
	}
	s.setCookie(c, token, sess.ExpiresAt)
	s.log.Info("login", zap.String("user_id", sess.UserID), logfield.Handle(sess.Handle))
	return c.JSON(http.StatusOK, loginResponse{UserID: sess.UserID, ExpiresAt: sess.ExpiresAt})
}

func (s *Server) handleLogout(c echo.Context) error {
	r := c.Request()
	if !s.csrfSafe(r) {
		s.log.Warn("cross-site logout refused", zap.String("origin", clipLog(r.Header.Get("Origin"))), zap.String("ip", c.RealIP()))
		return errorf(http.StatusForbidden, codeForbidden, "cross-site request refused")
	}
	pending := false
	if handle, ok := s.sessionHandle(r); ok {
		pending = s.rev.RevokeSession(r.Context(), handle, "logout").Pending
	}
	s.clearCookie(c)
	if pending {
		return c.JSON(http.StatusAccepted, revocationPending)
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) handleSession(c echo.Context) error {
	handle, ok := s.sessionHandle(c.Request())
	if !ok {
		return errorf(http.StatusUnauthorized, codeUnauthorized, "no valid session")
	}
	// A revoked session whose delete has not landed (or is queued) must
	// not read as valid here either: the same checks as a handshake.
	if s.rev.Revoked(handle) {
		s.clearCookie(c)
		return errorf(http.StatusUnauthorized, codeUnauthorized, "session expired or revoked")
	}
	sess, found, err := s.d.Store.Load(c.Request().Context(), handle)
	if err != nil {
		return s.storeError("load session", err)
	}
	if !found || s.rev.UserPending(sess.UserID) {
		s.clearCookie(c)
		return errorf(http.StatusUnauthorized, codeUnauthorized, "session expired or revoked")
	}
	return c.JSON(http.StatusOK, toSessionResponse(sess))
}

// sessionToken takes the session token from the cookie or, for non-browser
// clients, from "Authorization: Bearer <token>".
func (s *Server) sessionToken(r *http.Request) string {
	if ck, err := r.Cookie(s.cfg.Cookie.Name); err == nil && ck.Value != "" {
		return ck.Value
	}
	if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// sessionHandle verifies the request's token (no Redis call) and returns
// its session handle.
func (s *Server) sessionHandle(r *http.Request) (string, bool) {
	tok := s.sessionToken(r)
	if tok == "" {
		return "", false
	}
	h, err := s.d.Codec.Parse(tok)
	if err != nil {
		return "", false
	}
	return h, true
}

func (s *Server) sameSite() http.SameSite {
	switch strings.ToLower(s.cfg.Cookie.SameSite) {
	case "strict":
		return http.SameSiteStrictMode
	case "none":
		return http.SameSiteNoneMode
	}
	return http.SameSiteLaxMode
}

func (s *Server) setCookie(c echo.Context, token string, expires time.Time) {
	c.SetCookie(&http.Cookie{
		Name:     s.cfg.Cookie.Name,
		Value:    token,
		Path:     "/",
		Domain:   s.cfg.Cookie.Domain,
		Expires:  expires,
		MaxAge:   int(time.Until(expires).Seconds()),
		HttpOnly: true,
		Secure:   s.cfg.Cookie.Secure,
		SameSite: s.sameSite(),
	})
}

func (s *Server) clearCookie(c echo.Context) {
	c.SetCookie(&http.Cookie{
		Name:     s.cfg.Cookie.Name,
		Value:    "",
		Path:     "/",
		Domain:   s.cfg.Cookie.Domain,
		MaxAge:   -1,
		Expires:  time.Unix(0, 0),
		HttpOnly: true,
		Secure:   s.cfg.Cookie.Secure,
		SameSite: s.sameSite(),
	})
}

// storeError turns a store failure into a 503 and logs it.
func (s *Server) storeError(op string, err error) error {
	s.log.Error("session store failed", zap.String("op", op), zap.Error(err))
	return errorf(http.StatusServiceUnavailable, codeUnavailable, "session store unavailable")
}

// createSession creates a session in the store and tells the revoker,
// which checks until a failover can no longer undo it that the session is
// in its user's index (revocation.Revoker.Created). Every login goes
// through it.
func (s *Server) createSession(ctx context.Context, userID string, data json.RawMessage) (string, session.Session, error) {
	token, sess, err := s.d.Store.Create(ctx, userID, data)
	if err != nil {
		return "", session.Session{}, err
	}
	s.rev.Created(sess.UserID, sess.Handle)
	return token, sess, nil
}
