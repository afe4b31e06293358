package gateway

import (
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/labstack/echo/v4"
)

// proxies says which peers are the load balancers in front of the gateway
// (GATEWAY_TRUSTED_PROXIES). Only their X-Forwarded-For and
// X-Forwarded-Proto are believed: anyone else could write any address or
// scheme there. Read-only after construction.
type proxies struct {
	ranges []netip.Prefix
}

// ipExtractor is echo's client IP rule: with no trusted proxies the peer
// address; otherwise X-Forwarded-For read right to left, skipping trusted
// proxies, so the client IP is the first address a proxy of ours saw (a
// client can prepend anything, never append after our proxy's entry). A
// peer outside the ranges is the client, whatever its headers say.
// X-Real-IP is never read.
func (p proxies) ipExtractor() echo.IPExtractor {
	if len(p.ranges) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, r := range p.ranges {
		opts = append(opts, echo.TrustIPRange(&net.IPNet{IP: r.Addr().AsSlice(), Mask: net.CIDRMask(r.Bits(), r.Addr().BitLen())}))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

// trustedPeer reports whether r's immediate peer is a trusted proxy.
func (p proxies) trustedPeer(r *http.Request) bool {
	if len(p.ranges) == 0 {
		return false
	}
	var a netip.Addr
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		a = ap.Addr()
	} else if a, err = netip.ParseAddr(r.RemoteAddr); err != nil {
		return false // as echo's extractor: an unparsable peer is no proxy
	}
	a = a.Unmap()
	for _, pr := range p.ranges {
		if pr.Contains(a) {
			return true
		}
	}
	return false
}

// scheme is the scheme the client used: https when the connection is TLS,
// else X-Forwarded-Proto's first entry when a trusted proxy sent it (the
// outermost proxy sets it), else http.
func (p proxies) scheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	if p.trustedPeer(r) {
		first, _, _ := strings.Cut(r.Header.Get("X-Forwarded-Proto"), ",")
		switch strings.ToLower(strings.TrimSpace(first)) {
		case "https":
			return "https"
		case "http":
			return "http"
		}
	}
	return "http"
}
