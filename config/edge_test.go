package config

import (
	"net/netip"
	"reflect"
	"testing"
)

func TestTrustedProxiesLoad(t *testing.T) {
	pfx := func(ss ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, s := range ss {
			out = append(out, netip.MustParsePrefix(s))
		}
		return out
	}
	tests := []struct {
		name string
		env  map[string]string
		want []netip.Prefix
	}{
		{name: "none by default", env: nil, want: nil},
		{name: "bare addresses are single hosts", env: map[string]string{"GATEWAY_TRUSTED_PROXIES": "10.0.3.7, ::1"}, want: pfx("10.0.3.7/32", "::1/128")},
		{name: "CIDRs", env: map[string]string{"GATEWAY_TRUSTED_PROXIES": "10.0.3.0/28,fd00::/8"}, want: pfx("10.0.3.0/28", "fd00::/8")},
		{name: "deprecated trust proxy means private ranges in development", env: map[string]string{"GATEWAY_TRUST_PROXY": "true"}, want: PrivateProxyRanges()},
		{name: "deprecated trust proxy false is nothing", env: map[string]string{"GATEWAY_TRUST_PROXY": "false"}, want: nil},
		{name: "production list", env: with(prodEnv(), "GATEWAY_TRUSTED_PROXIES=10.1.2.3"), want: pfx("10.1.2.3/32")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustLoad(t, nil, tt.env)
			if !reflect.DeepEqual(c.TrustedProxies, tt.want) {
				t.Fatalf("TrustedProxies = %v, want %v", c.TrustedProxies, tt.want)
			}
		})
	}
}

func TestDemoEnabledDefaults(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want bool
	}{
		{name: "development default on", env: nil, want: true},
		{name: "development turned off", env: map[string]string{"DEMO_ENABLED": "false"}, want: false},
		{name: "production default off", env: prodEnv(), want: false},
		{name: "production turned on explicitly", env: with(prodEnv(), "DEMO_ENABLED=true"), want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mustLoad(t, nil, tt.env).DemoEnabled; got != tt.want {
				t.Fatalf("DemoEnabled = %v, want %v", got, tt.want)
			}
		})
	}
}
