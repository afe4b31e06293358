package cluster

import (
	"context"
	"fmt"
)

// Load balancers for [Options].LB.
const (
	// LBHAProxy is haproxy: active health checks on /readyz.
	LBHAProxy = "haproxy"
	// LBNginx is nginx (OSS): passive failure detection, retries on the
	// next instance (see [Nginx]).
	LBNginx = "nginx"
)

// LB is the load balancer in front of the instances, haproxy or nginx. It
// embeds its process (LogPath, Kill, Stop, Done, ...); its methods are safe
// for concurrent use.
type LB struct {
	*Process
	// Kind is LBHAProxy or LBNginx.
	Kind string

	haproxy *HAProxy
	nginx   *Nginx
}

// lbProgram checks an Options.LB value and returns the program it runs.
func lbProgram(kind string) (string, error) {
	switch kind {
	case "", LBHAProxy:
		return "haproxy", nil
	case LBNginx:
		return "nginx", nil
	}
	return "", fmt.Errorf("cluster: Options.LB %q: want %q or %q", kind, LBHAProxy, LBNginx)
}

// lbParams is what either load balancer needs to start.
type lbParams struct {
	Dir             string
	Port, StatsPort int
	CertPath        string
	Servers         []*Gateway
	Pages           []lbPage
}

func startLB(ctx context.Context, kind string, p lbParams) (*LB, error) {
	if kind == LBNginx {
		n, err := startNginx(ctx, nginxParams{Dir: p.Dir, Port: p.Port, CertPath: p.CertPath, Servers: p.Servers, Pages: p.Pages})
		if err != nil {
			return nil, err
		}
		return &LB{Process: n.Process, Kind: LBNginx, nginx: n}, nil
	}
	h, err := startHAProxy(ctx, p.Dir, haproxyParams{Port: p.Port, StatsPort: p.StatsPort, CertPath: p.CertPath, Servers: p.Servers, Pages: p.Pages})
	if err != nil {
		return nil, err
	}
	return &LB{Process: h.Process, Kind: LBHAProxy, haproxy: h}, nil
}

// HAProxy is the haproxy behind this LB, or nil.
func (l *LB) HAProxy() *HAProxy { return l.haproxy }

// Nginx is the nginx behind this LB, or nil.
func (l *LB) Nginx() *Nginx { return l.nginx }

// URL is the load balancer's base URL, e.g. "http://127.0.0.1:8080".
func (l *LB) URL() string {
	if l.nginx != nil {
		return l.nginx.URL()
	}
	return l.haproxy.URL()
}

// Restart starts the load balancer again on the same port once it has
// stopped (a Kill cuts every client off at once) and waits until it sends
// requests to the named instances (every instance when none is named).
func (l *LB) Restart(ctx context.Context, up ...string) error {
	if l.nginx != nil {
		return l.nginx.Restart(ctx, up...)
	}
	return l.haproxy.Restart(ctx, up...)
}

// WaitUp waits until the load balancer sends new requests to each named
// instance: haproxy's health checks see it UP; nginx has passed it a
// request.
func (l *LB) WaitUp(ctx context.Context, ids ...string) error {
	if l.nginx != nil {
		return l.nginx.WaitUp(ctx, ids...)
	}
	return l.haproxy.WaitUp(ctx, ids...)
}

// LogFiles lists the load balancer's log files: its output (LogPath) and,
// for nginx, its access log.
func (l *LB) LogFiles() []string {
	if l.nginx != nil {
		return []string{l.LogPath, l.nginx.AccessLog}
	}
	return []string{l.LogPath}
}

// AccessLog is the file holding one line per request (haproxy logs them
// with everything else, to LogPath).
func (l *LB) AccessLog() string {
	if l.nginx != nil {
		return l.nginx.AccessLog
	}
	return l.LogPath
}

// describe is the load balancer's line in [Cluster.Summary].
func (l *LB) describe() string {
	if l.nginx != nil {
		return fmt.Sprintf("%s   (nginx; access log %s)", l.URL(), l.nginx.AccessLog)
	}
	return fmt.Sprintf("%s   (haproxy stats http://127.0.0.1:%d/stats)", l.URL(), l.haproxy.StatsPort)
}
