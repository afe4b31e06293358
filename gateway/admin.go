package gateway

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"
)

// The admin console (docs/ADMIN.md): static pages at /admin/ and a JSON API
// at /admin/api/ that reuses the /api/v1 handlers behind an admin session
// of its own instead of the bearer key.
//
// Security model, in short:
//   - Login posts a server API key once; the browser then holds only an
//     admin session id in an HttpOnly, SameSite=Strict cookie scoped to
//     Path=/admin (Secure over HTTPS). The key never reaches a cookie, the
//     page's JavaScript keeps it only until the login request is sent.
//   - Sessions live in the admin store (Redis in Redis mode: every instance
//     behind the load balancer sees them, logout ends them everywhere;
//     memory in embedded mode), keyed by a hash of the id, with a bounded
//     lifetime, and tied to the key: removing it from GATEWAY_API_KEYS ends
//     its sessions.
//   - Every state-changing request carries the session's CSRF token in
//     X-CSRF-Token and an Origin equal to the gateway's own; login needs
//     that Origin too (no login CSRF) and is rate limited per address.
//   - Production serves /admin over HTTPS only (RequireTLS): the gateway has
//     no TLS listener, so that means a trusted proxy's X-Forwarded-Proto.
//   - Logs name the client address, never the key, the cookie, the session
//     id or the CSRF token.

// adminCSRFHeader carries the CSRF token of state-changing admin requests.
const adminCSRFHeader = "X-CSRF-Token"

// adminState is the admin console's server side. Read-only after
// construction but for what its members guard themselves.
type adminState struct {
	store   adminStore
	limiter *loginLimiter
	// keys are the SHA-256 sums of the API keys, compared in constant
	// time, and ids their [adminKeyID]s, index for index.
	keys [][32]byte
	ids  []string
	tail *tailHub
}

func (s *Server) newAdmin() *adminState {
	a := &adminState{limiter: newLoginLimiter(s.now), tail: newTailHub()}
	if s.d.Redis != nil {
		a.store = redisAdminStore{rdb: s.d.Redis.Client(), prefix: s.cfg.Admin.KeyPrefix}
	} else {
		a.store = newMemoryAdminStore(s.now)
	}
	for _, k := range s.cfg.APIKeys {
		a.keys = append(a.keys, sha256.Sum256([]byte(k)))
		a.ids = append(a.ids, adminKeyID(k))
	}
	return a
}

// keyMatch returns the id of the configured API key equal to key, in
// time independent of key and of which key matched.
func (a *adminState) keyMatch(key string) (string, bool) {
	got := sha256.Sum256([]byte(key))
	idx := -1
	for i := range a.keys {
		if subtle.ConstantTimeCompare(got[:], a.keys[i][:]) == 1 {
			idx = i
		}
	}
	if idx < 0 {
		return "", false
	}
	return a.ids[idx], true
}

// keyLive reports whether the key a session was made with is still
// configured.
func (a *adminState) keyLive(id string) bool {
	for _, k := range a.ids {
		if k == id {
			return true
		}
	}
	return false
}

// adminRoutes registers the console when it is enabled.
func (s *Server) adminRoutes(e *echo.Echo) {
	if !s.cfg.Admin.Enabled {
		return
	}
	g := e.Group("/admin", s.adminSecureHeaders, s.requireAdminTLS)
	g.GET("", func(c echo.Context) error { return c.Redirect(http.StatusMovedPermanently, "/admin/") })
	g.GET("/", s.adminAsset("index.html"))
	g.GET("/admin.js", s.adminAsset("admin.js"))
	g.GET("/admin.css", s.adminAsset("admin.css"))
	g.POST("/api/login", s.adminLogin)

	api := g.Group("/api", s.requireAdmin)
	api.POST("/logout", s.adminLogout)
	api.GET("/session", s.adminSessionInfo)
	api.GET("/readyz", s.handleReadyz)
	api.GET("/cluster", s.apiCluster)
	api.GET("/sessions/:handle", s.apiGetSession)
	api.DELETE("/sessions/:handle", s.apiRevokeSession)
	api.GET("/users/:user_id/sessions", s.apiListUserSessions)
	api.DELETE("/users/:user_id/sessions", s.apiRevokeUser)
	api.POST("/publish", s.apiPublish)
	api.GET("/presence", s.adminViaAPI)
	api.GET("/users/:user_id/presence", s.adminViaAPI)
	api.GET("/events", s.adminTail)
}

// adminSecureHeaders: no framing (the console has revoke buttons), no
// caching of its answers, no content sniffing, no referrer.
func (s *Server) adminSecureHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		return next(c)
	}
}

// requireAdminTLS refuses, when RequireTLS is set (production), every
// /admin request that did not come over HTTPS: the cookie and the key
// would otherwise cross the network in clear.
func (s *Server) requireAdminTLS(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if s.cfg.Admin.RequireTLS && s.proxies.scheme(c.Request()) != "https" {
			s.log.Warn("admin request refused", zap.String("reason", "not https"), zap.String("ip", c.RealIP()))
			return errorf(http.StatusForbidden, codeForbidden, "the admin console is served over HTTPS only (production): reach it through the TLS load balancer listed in GATEWAY_TRUSTED_PROXIES")
		}
		return next(c)
	}
}

// adminCookieName is the admin cookie's name for a request: over HTTPS it
// takes the __Secure- prefix (browsers then insist on Secure). __Host-
// would need Path=/, and the cookie is scoped to /admin.
func (s *Server) adminCookieName(r *http.Request) string {
	if s.proxies.scheme(r) == "https" {
		return "__Secure-sg_admin"
	}
	return "sg_admin"
}

func (s *Server) setAdminCookie(c echo.Context, value string, maxAge int) {
	secure := s.proxies.scheme(c.Request()) == "https"
	ck := &http.Cookie{
		Name:     s.adminCookieName(c.Request()),
		Value:    value,
		Path:     "/admin",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   secure,
		SameSite: http.SameSiteStrictMode,
	}
	if maxAge < 0 {
		ck.Expires = time.Unix(0, 0)
	}
	c.SetCookie(ck)
}

// adminSessionFrom reads the request's admin session: ok=false when there
// is no cookie, a malformed one, an unknown or expired session, or one
// whose API key is no longer configured. key is the session's store key.
func (s *Server) adminSessionFrom(c echo.Context) (a adminSession, key string, ok bool, err error) {
	ck, cerr := c.Request().Cookie(s.adminCookieName(c.Request()))
	if cerr != nil {
		return adminSession{}, "", false, nil
	}
	id, valid := parseAdminID(ck.Value)
	if !valid {
		return adminSession{}, "", false, nil
	}
	key = adminStoreKey(id)
	a, ok, err = s.admin.store.get(c.Request().Context(), key)
	if err != nil || !ok {
		return adminSession{}, "", false, err
	}
	if !s.now().Before(a.expiresAt()) || !s.admin.keyLive(a.Key) {
		return adminSession{}, "", false, nil
	}
	return a, key, true, nil
}

// adminCtxKey marks a request's context as coming through an admin
// session (see [isAdmin]); adminForwardKey marks a request the console
// forwarded to /api/v1 (see [Server.adminViaAPI]).
type (
	adminCtxKey     struct{}
	adminForwardKey struct{}
)

// isAdmin reports whether r came through [Server.requireAdmin].
func isAdmin(r *http.Request) bool { return r.Context().Value(adminCtxKey{}) != nil }

// revokeReason is the reason logged for a revocation made through r.
func revokeReason(r *http.Request) string {
	if isAdmin(r) {
		return "admin"
	}
	return "api"
}

// requireAdmin admits requests of a live admin session; state-changing
// ones also need the session's CSRF token and the gateway's own Origin.
func (s *Server) requireAdmin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		a, _, ok, err := s.adminSessionFrom(c)
		if err != nil {
			s.log.Error("admin session store failed", zap.Error(err))
			return errorf(http.StatusServiceUnavailable, codeUnavailable, "admin session store unavailable")
		}
		if !ok {
			return errorf(http.StatusUnauthorized, codeUnauthorized, "not logged in to the admin console, or the login expired")
		}
		r := c.Request()
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if !s.adminOriginOK(r) {
				s.log.Warn("admin request refused", zap.String("reason", "origin"), zap.String("ip", c.RealIP()))
				return errorf(http.StatusForbidden, codeForbidden, "cross-origin admin request refused: the Origin must be the gateway's own")
			}
			if !csrfMatch(r.Header.Get(adminCSRFHeader), a.CSRF) {
				s.log.Warn("admin request refused", zap.String("reason", "csrf"), zap.String("ip", c.RealIP()))
				return errorf(http.StatusForbidden, codeForbidden, "missing or wrong "+adminCSRFHeader+" header")
			}
		}
		c.SetRequest(r.WithContext(context.WithValue(r.Context(), adminCtxKey{}, true)))
		return next(c)
	}
}

// adminOriginOK: a state-changing admin request must name its Origin (every
// browser does on POST and DELETE), and it must be the gateway's own
// origin, whatever GATEWAY_ALLOWED_ORIGINS allows for the application's
// pages: only the console's own page may act with the admin cookie. A
// cross-site Sec-Fetch-Site is refused outright.
func (s *Server) adminOriginOK(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin":
	default:
		return false
	}
	return s.sameOrigin(r, origin)
}

type adminLoginRequest struct {
	APIKey string `json:"api_key"`
}

type adminSessionResponse struct {
	CSRFToken string `json:"csrf_token"`
	ExpiresAt string `json:"expires_at"`
	Instance  string `json:"instance"`
}

func (s *Server) adminLogin(c echo.Context) error {
	r := c.Request()
	if !s.adminOriginOK(r) {
		s.log.Warn("admin request refused", zap.String("reason", "origin"), zap.String("ip", c.RealIP()))
		return errorf(http.StatusForbidden, codeForbidden, "cross-origin admin login refused: the Origin must be the gateway's own")
	}
	if !s.admin.limiter.allow(c.RealIP()) {
		s.log.Warn("admin login rate limited", zap.String("ip", c.RealIP()))
		c.Response().Header().Set("Retry-After", "6")
		return errorf(http.StatusTooManyRequests, codeRateLimited, "too many admin login attempts from this address; retry later")
	}
	var req adminLoginRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	keyID, ok := s.admin.keyMatch(req.APIKey)
	if !ok {
		s.log.Warn("admin login refused", zap.String("ip", c.RealIP()))
		return errorf(http.StatusUnauthorized, codeUnauthorized, "invalid API key")
	}
	// A login replaces the session this browser had, if any.
	if _, oldKey, had, _ := s.adminSessionFrom(c); had {
		_ = s.admin.store.del(r.Context(), oldKey)
	}
	id, idText := newAdminSecret()
	_, csrf := newAdminSecret()
	now := s.now()
	life := s.cfg.Admin.SessionLifetime
	a := adminSession{CSRF: csrf, Key: keyID, Created: now.UnixMilli(), Expires: now.Add(life).UnixMilli()}
	if err := s.admin.store.put(r.Context(), adminStoreKey(id), a, life); err != nil {
		s.log.Error("admin session store failed", zap.Error(err))
		return errorf(http.StatusServiceUnavailable, codeUnavailable, "admin session store unavailable")
	}
	s.setAdminCookie(c, idText, int(life/time.Second))
	s.log.Info("admin login", zap.String("ip", c.RealIP()))
	return c.JSON(http.StatusOK, s.adminSessionJSON(a))
}

func (s *Server) adminSessionJSON(a adminSession) adminSessionResponse {
	return adminSessionResponse{CSRFToken: a.CSRF, ExpiresAt: a.expiresAt().UTC().Format(time.RFC3339), Instance: s.cfg.InstanceID}
}

func (s *Server) adminLogout(c echo.Context) error {
	_, key, ok, err := s.adminSessionFrom(c)
	if err == nil && ok {
		err = s.admin.store.del(c.Request().Context(), key)
	}
	if err != nil {
		s.log.Error("admin session store failed", zap.Error(err))
		return errorf(http.StatusServiceUnavailable, codeUnavailable, "admin session store unavailable; not logged out")
	}
	s.setAdminCookie(c, "", -1)
	s.log.Info("admin logout", zap.String("ip", c.RealIP()))
	return c.NoContent(http.StatusNoContent)
}

// adminSessionInfo tells the page it is logged in and hands it the CSRF
// token (readable by same-origin scripts only: the API sends no CORS
// headers).
func (s *Server) adminSessionInfo(c echo.Context) error {
	a, _, ok, err := s.adminSessionFrom(c)
	if err != nil || !ok {
		return errorf(http.StatusUnauthorized, codeUnauthorized, "not logged in to the admin console")
	}
	return c.JSON(http.StatusOK, s.adminSessionJSON(a))
}

// adminViaAPI serves an /admin/api request with the /api/v1 route of the
// same path, as an admin: the console reaches every /api/v1 read it lists
// (presence, when this build has it: a 404 otherwise) without a second
// copy of the handler.
func (s *Server) adminViaAPI(c echo.Context) error {
	r := c.Request()
	ctx := context.WithValue(r.Context(), adminForwardKey{}, true)
	fr := r.Clone(ctx)
	fr.URL.Path = "/api/v1" + strings.TrimPrefix(r.URL.Path, "/admin/api")
	if r.URL.RawPath != "" {
		fr.URL.RawPath = "/api/v1" + strings.TrimPrefix(r.URL.RawPath, "/admin/api")
	}
	fr.RequestURI = fr.URL.RequestURI()
	s.echo.ServeHTTP(c.Response(), fr)
	return nil
}
