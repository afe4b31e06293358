package gateway

import (
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"go.uber.org/zap"
	"golang.org/x/time/rate"
)

// maxBodyBytes bounds every request body; larger bodies get a 413.
const maxBodyBytes = "64K"

// wsPath is the WebSocket endpoint's path (presized grows its stack).
const wsPath = "/ws"

func (s *Server) routes() *echo.Echo {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = s.errorHandler
	e.IPExtractor = s.proxies.ipExtractor()

	e.Use(requestID)
	e.Use(s.accessLog)
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{
		DisablePrintStack: true,
		LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
			s.log.Error("panic in handler", zap.Error(err), zap.ByteString("stack", stack),
				zap.String("request_id", c.Response().Header().Get(echo.HeaderXRequestID)))
			return errorf(http.StatusInternalServerError, codeInternal, "internal error")
		},
	}))
	e.Use(middleware.BodyLimit(maxBodyBytes))

	limit := s.rateLimit()

	if s.cfg.DemoEnabled {
		e.GET("/", s.handleDemo)
	}
	e.GET("/client.js", s.handleClientJS)
	e.GET("/healthz", s.handleHealthz)
	e.GET("/readyz", s.handleReadyz)
	if !s.cfg.MetricsElsewhere {
		e.GET("/metrics", echo.WrapHandler(s.MetricsHandler()))
	}

	e.POST("/auth/login", s.handleLogin, limit)
	e.POST("/auth/logout", s.handleLogout)
	e.GET("/auth/session", s.handleSession)
	e.GET(wsPath, s.handleWS, limit)

	api := e.Group("/api/v1", s.requireAPIKey)
	api.POST("/sessions", s.apiCreateSession)
	api.GET("/sessions/:handle", s.apiGetSession)
	api.DELETE("/sessions/:handle", s.apiRevokeSession)
	api.GET("/users/:user_id/sessions", s.apiListUserSessions)
	api.DELETE("/users/:user_id/sessions", s.apiRevokeUser)
	api.GET("/users/:user_id/history", s.apiUserHistory)
	api.GET("/users/:user_id/presence", s.apiUserPresence)
	api.GET("/presence", s.apiPresence)
	api.POST("/publish", s.apiPublish)
	api.GET("/cluster", s.apiCluster)
	api.GET("/inbound", s.apiInbound)
	api.GET("/inbound/dead-letters", s.apiDeadLetters)
	api.POST("/inbound/dead-letters/redrive", s.apiRedrive)
	s.adminRoutes(e)
	return e
}

// rateLimit limits logins and upgrades per client IP. A zero rate disables it
// (benchmarks that open thousands of connections from few addresses).
func (s *Server) rateLimit() echo.MiddlewareFunc {
	if s.cfg.RateLimitRPS <= 0 {
		return func(next echo.HandlerFunc) echo.HandlerFunc { return next }
	}
	store := middleware.NewRateLimiterMemoryStoreWithConfig(middleware.RateLimiterMemoryStoreConfig{
		Rate:      rate.Limit(s.cfg.RateLimitRPS),
		Burst:     s.cfg.RateLimitBurst,
		ExpiresIn: 3 * time.Minute,
	})
	return middleware.RateLimiterWithConfig(middleware.RateLimiterConfig{
		Store: store,
		IdentifierExtractor: func(c echo.Context) (string, error) {
			return c.RealIP(), nil
		},
		DenyHandler: func(c echo.Context, id string, _ error) error {
			s.metrics.rateLimited.Inc()
			s.log.Warn("rate limited", zap.String("ip", id), zap.String("path", c.Path()))
			c.Response().Header().Set("Retry-After", "1")
			return errorf(http.StatusTooManyRequests, codeRateLimited, "too many requests from this address; retry later")
		},
		ErrorHandler: func(c echo.Context, err error) error {
			return errorf(http.StatusForbidden, codeForbidden, "cannot identify client address")
		},
	})
}

// accessLog writes one line per HTTP request. It never logs headers, cookies
// or query strings (tokens could travel there).
func (s *Server) accessLog(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		req := c.Request()
		if req.Context().Value(adminForwardKey{}) != nil {
			return nil // the console's own /admin/api line covers it
		}
		if req.URL.Path == "/healthz" || req.URL.Path == "/readyz" || req.URL.Path == "/metrics" {
			return nil
		}
		status := c.Response().Status
		if status == http.StatusSwitchingProtocols {
			// An upgraded connection: connmgr logs its open and close.
			// Every refused handshake is logged here, with its status.
			return nil
		}
		s.log.Info("http request",
			zap.String("method", clipLog(req.Method)),
			zap.String("path", clipLog(s.redactTokens(req.URL.Path))),
			zap.Int("status", status),
			zap.Duration("duration", time.Since(start)),
			zap.String("ip", c.RealIP()),
			zap.String("request_id", c.Response().Header().Get(echo.HeaderXRequestID)),
		)
		return nil
	}
}

// redactTokens replaces every segment of path that is a session token
// with "(token)": a client that puts its token in a URL (mistaking it for
// the handle) must not have it written to the access log.
func (s *Server) redactTokens(path string) string {
	if !strings.Contains(path, ".") {
		return path // a token always has one
	}
	segs := strings.Split(path, "/")
	redacted := false
	for i, seg := range segs {
		if _, err := s.d.Codec.Parse(seg); err == nil {
			segs[i] = "(token)"
			redacted = true
		}
	}
	if !redacted {
		return path
	}
	return strings.Join(segs, "/")
}

// maxLoggedValue bounds a client-supplied string in a log line (a path, an
// Origin): a 404 for a path of hundreds of KB must not become a log line
// that size.
const maxLoggedValue = 256

// clipLog cuts s to maxLoggedValue bytes, marking the cut, and keeps it
// valid UTF-8.
func clipLog(s string) string {
	if len(s) <= maxLoggedValue {
		return s
	}
	return strings.ToValidUTF8(s[:maxLoggedValue], "") + "...(clipped)"
}
