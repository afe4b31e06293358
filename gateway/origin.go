package gateway

import (
	"net/http"
	"net/url"
	"strings"
)

// originAllowed reports whether a browser request's Origin may act on this
// gateway. Requests without an Origin header come from non-browser clients
// (a browser always sends Origin on WebSocket handshakes and on POSTs), which
// cannot carry a victim's cookie across sites.
//
// With no configured origins, only the request's own origin is allowed:
// same scheme (see [proxies.scheme]), host and port, a missing port being
// the scheme's default. An http:// page must not act on an https://
// gateway: whoever can tamper with plain-HTTP traffic would control it.
func (s *Server) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if len(s.cfg.AllowedOrigins) > 0 {
		for _, o := range s.cfg.AllowedOrigins {
			if strings.EqualFold(o, origin) {
				return true
			}
		}
		return false
	}
	return s.sameOrigin(r, origin)
}

// sameOrigin reports whether origin is r's own origin: same scheme (see
// [proxies.scheme]), host and port, a missing port being the scheme's
// default.
func (s *Server) sameOrigin(r *http.Request, origin string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return false
	}
	scheme := s.proxies.scheme(r)
	if strings.ToLower(u.Scheme) != scheme {
		return false
	}
	oh, op := splitHostPort(u.Host, scheme)
	rh, rp := splitHostPort(r.Host, scheme)
	return oh != "" && strings.EqualFold(oh, rh) && op == rp
}

// splitHostPort splits host[:port] (IPv6 in brackets), filling in the
// scheme's default port.
func splitHostPort(hostport, scheme string) (host, port string) {
	u := url.URL{Host: hostport}
	host, port = u.Hostname(), u.Port()
	if port == "" {
		port = "80"
		if scheme == "https" {
			port = "443"
		}
	}
	return host, port
}

// csrfSafe is the CSRF check for cookie-authenticated, state-changing
// endpoints: on top of SameSite cookies, a cross-site request is refused by
// its Sec-Fetch-Site (modern browsers) or its Origin.
func (s *Server) csrfSafe(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default: // "cross-site", "same-site": only when the origin is allowed explicitly
		if r.Header.Get("Origin") == "" {
			return false
		}
	}
	return s.originAllowed(r)
}
