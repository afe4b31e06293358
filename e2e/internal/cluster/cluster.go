package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options configure [Start]. Dir and GatewayBin are required; zero values
// elsewhere mean the documented default.
type Options struct {
	// Dir receives the generated configuration and one log file per process.
	Dir string
	// GatewayBin is the gateway binary (see [Build]).
	GatewayBin string
	// Instances is the number of gateway instances. Defaults to 3.
	Instances int
	// WorkerBin is the example worker binary (see [BuildWorker]); required
	// when Workers > 0.
	WorkerBin string
	// Workers is the number of example worker processes (cmd/worker,
	// named worker-1, worker-2, ...) consuming the inbound queue, started
	// after Redis with the instances' environment. Defaults to 0: client
	// messages are queued and acked, but nobody answers them.
	Workers int
	// LBPort is the load balancer's port on 127.0.0.1. Defaults to a free port.
	LBPort int
	// RedisPort is redis-server's port (topology "single"). Defaults to a
	// free port.
	RedisPort int
	// Redis is the Redis topology: [RedisSingle] ("single", the default: one
	// redis-server), [RedisClusterMode] ("cluster": a [ClusterRedis] of three
	// masters with a replica each; the instances get REDIS_ADDRS) or
	// [RedisSentinelMode] ("sentinel": a [SentinelRedis]; the instances get
	// the sentinels in REDIS_SENTINEL_ADDRS and REDIS_MASTER_NAME).
	Redis string
	// LB is the load balancer: LBHAProxy or LBNginx, both configured from
	// the files in deploy/. Defaults to LBHAProxy.
	LB string
	// Production runs the instances with GATEWAY_ENV=production and makes
	// the load balancer terminate TLS with a throwaway self-signed certificate.
	// Production refuses the development authenticator: pass AUTH_MODE=webhook
	// and AUTH_WEBHOOK_URL in Env.
	Production bool
	// Env adds to or overrides the instances' environment.
	Env map[string]string
	// Pages are served by the load balancer itself on its origin,
	// URL path -> file (haproxy reads it when it starts): a test's own application
	// page, served like an application's page behind the same load
	// balancer. Paths start with "/"; neither may contain spaces or quotes.
	Pages map[string]string
	// Prometheus, when set, starts a prometheus server scraping every
	// instance (see [PrometheusOptions]); nil: none.
	Prometheus *PrometheusOptions
	// Logf, when set, reports progress.
	Logf func(format string, args ...any)
}

// Cluster is a running redis-server + gateway instances + load balancer.
type Cluster struct {
	Dir      string
	APIKey   string
	Redis    *Redis
	Gateways []*Gateway
	Workers  []*Worker
	LB       *LB
	Prom     *Prometheus

	// RedisCluster is the Redis Cluster of topology "cluster" (Redis is
	// then nil).
	RedisCluster *ClusterRedis
	// Sentinel is the master, replica and sentinels of topology "sentinel"
	// (Redis is then nil).
	Sentinel *SentinelRedis

	sessionSecret string
	encryptionKey string
	closeOnce     sync.Once
}

// Start starts a cluster and waits until every instance is ready and the
// load balancer sees all of them up. On error, whatever was started is
// stopped again.
func Start(ctx context.Context, o Options) (c *Cluster, err error) {
	if o.Dir == "" || o.GatewayBin == "" {
		return nil, errors.New("cluster: Options.Dir and Options.GatewayBin are required")
	}
	if o.Instances <= 0 {
		o.Instances = 3
	}
	if o.Workers > 0 && o.WorkerBin == "" {
		return nil, errors.New("cluster: Options.WorkerBin is required with Options.Workers")
	}
	logf := o.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	lbProg, err := lbProgram(o.LB)
	if err != nil {
		return nil, err
	}
	if err := Need("redis-server", lbProg); err != nil {
		return nil, err
	}
	if err := mkdir(o.Dir); err != nil {
		return nil, err
	}
	ports, err := reservePorts(o.Instances + 3)
	if err != nil {
		return nil, err
	}
	lbPort, statsPort, redisPort := ports[0], ports[1], ports[2]
	if o.LBPort != 0 {
		lbPort = o.LBPort
	}
	if o.RedisPort != 0 {
		redisPort = o.RedisPort
	}
	c = &Cluster{
		Dir:           o.Dir,
		APIKey:        "sg-e2e-" + randomHex(16),
		sessionSecret: randomHex(32),
		encryptionKey: randomHex(32),
	}
	defer func() {
		if err != nil {
			c.Close()
			c = nil
		}
	}()

	if err := c.startRedisTopology(ctx, o, redisPort, logf); err != nil {
		return c, err
	}

	scheme := "http"
	certPath := ""
	if o.Production {
		scheme = "https"
		certPath = filepath.Join(o.Dir, "lb.pem")
		if err := WriteSelfSignedPEM(certPath); err != nil {
			return c, err
		}
	}
	lbOrigin := scheme + "://127.0.0.1:" + strconv.Itoa(lbPort)
	for i := 0; i < o.Workers; i++ {
		w := newWorker(o.WorkerBin, o.Dir, "worker-"+strconv.Itoa(i+1), c.env(o, lbOrigin))
		c.Workers = append(c.Workers, w)
		if err := w.Start(); err != nil {
			return c, err
		}
	}
	for i := 0; i < o.Instances; i++ {
		g := newGateway(o.GatewayBin, o.Dir, "gw"+strconv.Itoa(i+1), ports[3+i], c.env(o, lbOrigin))
		c.Gateways = append(c.Gateways, g)
		if err := g.Start(); err != nil {
			return c, err
		}
	}
	readyCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, g := range c.Gateways {
		if err := g.WaitReady(readyCtx); err != nil {
			return c, err
		}
		logf("gateway %s ready on %s (log %s)", g.ID, g.URL(), g.LogPath)
	}
	for _, w := range c.Workers {
		if err := w.WaitReady(readyCtx); err != nil {
			return c, err
		}
		logf("worker %s reads the inbound queue (log %s)", w.ID, w.LogPath)
	}
	pages, err := lbPages(o.Pages)
	if err != nil {
		return c, err
	}
	c.LB, err = startLB(ctx, o.LB, lbParams{Dir: o.Dir, Port: lbPort, StatsPort: statsPort, CertPath: certPath, Servers: c.Gateways, Pages: pages})
	if err != nil {
		return c, err
	}
	logf("load balancer on %s", c.LB.describe())
	if o.Prometheus != nil {
		if c.Prom, err = startPrometheus(ctx, o.Dir, *o.Prometheus, c.Gateways); err != nil {
			return c, err
		}
		logf("prometheus on %s (log %s)", c.Prom.URL(), c.Prom.LogPath)
	}
	return c, nil
}

func (c *Cluster) env(o Options, lbOrigin string) map[string]string {
	env := map[string]string{
		"GATEWAY_ENV":             "development",
		"GATEWAY_API_KEYS":        c.APIKey,
		"GATEWAY_ALLOWED_ORIGINS": lbOrigin,
		// The load balancer connects from 127.0.0.1; it replaces the
		// clients' own X-Forwarded-* headers (see deploy/).
		"GATEWAY_TRUSTED_PROXIES":   "127.0.0.1",
		"USE_REDIS_SESSIONS":        "true",
		"REDIS_KEY_PREFIX":          "sge2e:",
		"SESSION_SECRET":            c.sessionSecret,
		"SESSION_ENCRYPTION_KEY":    c.encryptionKey,
		"AUTH_MODE":                 "dev",
		"WS_PING_INTERVAL":          "5s",
		"WS_PONG_TIMEOUT":           "5s",
		"DRAIN_WINDOW":              "1s",
		"SHUTDOWN_TIMEOUT":          "10s",
		"PUBSUB_HEARTBEAT_INTERVAL": "500ms",
		"RECONCILE_INTERVAL":        "2s",
		"RATE_LIMIT_RPS":            "1000",
		"RATE_LIMIT_BURST":          "2000",
		"LOG_FORMAT":                "json",
		"LOG_LEVEL":                 "debug",
	}
	c.redisEnv(env)
	if o.Production {
		env["GATEWAY_ENV"] = "production"
	}
	for k, v := range o.Env {
		env[k] = v
	}
	return env
}

// URL is the load balancer's base URL.
func (c *Cluster) URL() string { return c.LB.URL() }

// Gateway returns the instance with the given id, or nil.
func (c *Cluster) Gateway(id string) *Gateway {
	for _, g := range c.Gateways {
		if g.ID == id {
			return g
		}
	}
	return nil
}

// Worker returns the worker with the given id (e.g. "worker-1"), or nil.
func (c *Cluster) Worker(id string) *Worker {
	for _, w := range c.Workers {
		if w.ID == id {
			return w
		}
	}
	return nil
}

// Secrets are the values no log may contain: the API key, the session
// secret and the encryption key.
func (c *Cluster) Secrets() []string {
	return []string{c.APIKey, c.sessionSecret, c.encryptionKey}
}

// LogFiles lists every process's log file.
func (c *Cluster) LogFiles() []string {
	var out []string
	for _, r := range c.RedisProcesses() {
		out = append(out, r.LogPath)
	}
	for _, g := range c.Gateways {
		out = append(out, g.LogPath)
	}
	for _, w := range c.Workers {
		out = append(out, w.LogPath)
	}
	if c.LB != nil {
		out = append(out, c.LB.LogFiles()...)
	}
	if c.Prom != nil {
		out = append(out, c.Prom.LogPath)
	}
	return out
}

// Close stops Prometheus and the load balancer, then the instances and the workers (SIGTERM, a
// bounded drain, then SIGKILL), then redis-server. Safe to call twice.
func (c *Cluster) Close() {
	c.closeOnce.Do(func() {
		if c.Prom != nil {
			c.Prom.Stop(5 * time.Second)
		}
		if c.LB != nil {
			c.LB.Stop(3 * time.Second)
		}
		var wg sync.WaitGroup
		for _, g := range c.Gateways {
			wg.Add(1)
			go func() {
				defer wg.Done()
				g.Stop(15 * time.Second)
			}()
		}
		for _, w := range c.Workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				w.Stop(15 * time.Second)
			}()
		}
		wg.Wait()
		c.stopRedis(5 * time.Second)
	})
}

// reservePorts returns n distinct free loopback ports.
func reservePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	out := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("cluster: free port: %w", err)
		}
		ls = append(ls, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Summary describes the cluster for a person: URLs and log files.
func (c *Cluster) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "load balancer  %s\n", c.LB.describe())
	for _, g := range c.Gateways {
		fmt.Fprintf(&b, "instance %-5s %s   log %s\n", g.ID, g.URL(), g.LogPath)
	}
	for _, w := range c.Workers {
		fmt.Fprintf(&b, "worker %-7s pid %d   log %s\n", w.ID, w.Pid(), w.LogPath)
	}
	b.WriteString(c.redisSummary())
	if c.Prom != nil {
		fmt.Fprintf(&b, "prometheus     %s   log %s\n", c.Prom.URL(), c.Prom.LogPath)
	}
	fmt.Fprintf(&b, "logs           %s\n", c.Dir)
	return b.String()
}
