package deploy

import (
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/config"
)

// directive returns the value of the first line of conf that starts with
// name (indentation and a trailing ";" ignored), or "".
func directive(conf []byte, name string) string {
	for _, l := range strings.Split(string(conf), "\n") {
		l = strings.TrimSuffix(strings.TrimSpace(l), ";")
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// An upgraded connection is idle between messages except for the
// gateway's pings: every load balancer timeout that applies to it must
// outlast a ping interval plus its pong timeout (the defaults), or the
// load balancer cuts healthy sockets.
func TestLBTimeoutsOutlastThePing(t *testing.T) {
	cfg, err := config.Load(nil, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	floor := cfg.WSPingInterval + cfg.WSPongTimeout
	for _, tt := range []struct {
		file, name string
		conf       []byte
	}{
		{"nginx", "proxy_read_timeout", NginxConf()},
		{"nginx", "proxy_send_timeout", NginxConf()},
		{"haproxy", "timeout tunnel", HAProxyCfg()},
	} {
		v := directive(tt.conf, tt.name)
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Errorf("%s %s = %q: %v", tt.file, tt.name, v, err)
			continue
		}
		if d <= floor {
			t.Errorf("%s %s = %s, want above WS_PING_INTERVAL + WS_PONG_TIMEOUT = %s", tt.file, tt.name, d, floor)
		}
	}
}
