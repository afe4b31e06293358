package config

import (
	"net/netip"
	"strings"
)

// PrivateProxyRanges are the ranges GATEWAY_TRUST_PROXY=true trusts:
// loopback, RFC 1918 private IPv4, IPv6 unique local addresses. It returns a
// fresh slice.
func PrivateProxyRanges() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{"127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

// loadTrustedProxies parses GATEWAY_TRUSTED_PROXIES and folds in the
// deprecated GATEWAY_TRUST_PROXY.
func loadTrustedProxies(s *source, c *Config) {
	const name = "GATEWAY_TRUSTED_PROXIES"
	items := s.list(name)
	for i, item := range items {
		p, err := parseProxy(item)
		if err != "" {
			s.problemf("%s entry %d %s; got %q", name, i+1, err, clip(item))
			continue
		}
		c.TrustedProxies = append(c.TrustedProxies, p)
	}
	trust, _ := s.boolean("GATEWAY_TRUST_PROXY")
	switch {
	case !trust:
	case c.Production():
		s.problemf("GATEWAY_TRUST_PROXY=true trusts X-Forwarded-For from every loopback and private address and is refused in production: list the load balancers' addresses in GATEWAY_TRUSTED_PROXIES (e.g. 10.0.3.7,10.0.3.8 or 10.0.3.0/28)")
	case len(items) > 0:
		s.problemf("GATEWAY_TRUST_PROXY=true and GATEWAY_TRUSTED_PROXIES are both set: drop GATEWAY_TRUST_PROXY (deprecated), GATEWAY_TRUSTED_PROXIES alone says which peers are trusted")
	default:
		c.TrustedProxies = PrivateProxyRanges()
	}
}

// parseProxy parses one CIDR or IP; on failure it returns what is wrong.
func parseProxy(item string) (netip.Prefix, string) {
	var p netip.Prefix
	if strings.Contains(item, "/") {
		var err error
		if p, err = netip.ParsePrefix(item); err != nil {
			return p, "must be an IP address or a CIDR such as 10.0.0.0/8 or fd00::/8"
		}
	} else {
		a, err := netip.ParseAddr(item)
		if err != nil || a.Zone() != "" {
			return p, "must be an IP address or a CIDR such as 10.0.0.0/8 or fd00::/8"
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if p.Addr().Is4In6() {
		return p, "must write an IPv4 address in dotted form, not IPv4-mapped IPv6"
	}
	if p.Masked() != p {
		return p, "has bits set after the prefix length (write " + p.Masked().String() + " for the range, or the address alone)"
	}
	return p, ""
}
