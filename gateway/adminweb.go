package gateway

import (
	"embed"
	"net/http"
	"path"

	"github.com/labstack/echo/v4"
)

// adminWeb is the console's page, script and style sheet: plain files, no
// build step, no external assets.
//
//go:embed web/admin
var adminWeb embed.FS

// adminCSP allows the console's own script, style and API, and nothing
// else: no inline script, no frames, no form posts elsewhere.
const adminCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

func (s *Server) adminAsset(name string) echo.HandlerFunc {
	types := map[string]string{".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
	return func(c echo.Context) error {
		b, err := adminWeb.ReadFile("web/admin/" + name)
		if err != nil {
			return errorf(http.StatusNotFound, codeNotFound, "not found")
		}
		c.Response().Header().Set("Content-Security-Policy", adminCSP)
		return c.Blob(http.StatusOK, types[path.Ext(name)], b)
	}
}
