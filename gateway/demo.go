package gateway

import (
	_ "embed"
	"net/http"

	"github.com/labstack/echo/v4"

	clientjs "github.com/sessiongate/sessiongate/client-js"
)

//go:embed web/index.html
var demoPage []byte

func (s *Server) handleDemo(c echo.Context) error {
	h := c.Response().Header()
	h.Set("Content-Security-Policy", "default-src 'self'; connect-src 'self' ws: wss:; style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	return c.Blob(http.StatusOK, "text/html; charset=utf-8", demoPage)
}

func (s *Server) handleClientJS(c echo.Context) error {
	c.Response().Header().Set("X-Content-Type-Options", "nosniff")
	c.Response().Header().Set("Cache-Control", "no-cache")
	return c.Blob(http.StatusOK, "text/javascript; charset=utf-8", clientjs.Source)
}
