// Command cluster (`make cluster`) runs a local sessiongate cluster for a
// person to try: Redis (one redis-server; with REDIS=cluster a Redis
// Cluster of three masters and three replicas; with REDIS=sentinel a
// master, a replica and three sentinels), three gateway instances built from
// ./cmd/gateway, haproxy in front (round robin, no stickiness) and one
// example worker built from ./cmd/worker, which answers the demo page's
// "Send message to server" with an echo.reply event, and a Prometheus
// server scraping every instance with deploy/prometheus's rules loaded. It
// prints the URLs, the API key and example commands, and stops everything
// on Ctrl-C.
//
// Environment: CLUSTER_REDIS (single, cluster or sentinel; default single;
// `make cluster REDIS=cluster` sets it), CLUSTER_PORT (load balancer port,
// default 8080), CLUSTER_REDIS_PORT (topology single; default: a free port),
// CLUSTER_PROMETHEUS_PORT (default: a free port), CLUSTER_INSTANCES (default 3),
// CLUSTER_WORKERS (example workers, default 1), CLUSTER_DIR (logs and
// config, default a new temporary directory), CLUSTER_LB (haproxy, the
// default, or nginx: the load balancer, configured from deploy/).
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/sessiongate/sessiongate/e2e/internal/cluster"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.LookupEnv); err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, env func(string) (string, bool)) error {
	lbPort, err := intEnv(env, "CLUSTER_PORT", 8080)
	if err != nil {
		return err
	}
	redisPort, err := intEnv(env, "CLUSTER_REDIS_PORT", 0)
	if err != nil {
		return err
	}
	promPort, err := intEnv(env, "CLUSTER_PROMETHEUS_PORT", 0)
	if err != nil {
		return err
	}
	instances, err := intEnv(env, "CLUSTER_INSTANCES", 3)
	if err != nil {
		return err
	}
	workers, err := intEnv(env, "CLUSTER_WORKERS", 1)
	if err != nil {
		return err
	}
	topology, _ := env("CLUSTER_REDIS")
	switch topology {
	case "":
		topology = cluster.RedisSingle
	case cluster.RedisSingle, cluster.RedisClusterMode, cluster.RedisSentinelMode:
	default:
		return fmt.Errorf("CLUSTER_REDIS (make cluster REDIS=...) = %q: want single, cluster or sentinel", topology)
	}
	lbKind, _ := env("CLUSTER_LB")
	dir, ok := env("CLUSTER_DIR")
	if !ok || dir == "" {
		if dir, err = os.MkdirTemp("", "sessiongate-cluster-"); err != nil {
			return err
		}
	}
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(root, "cmd", "gateway")); err != nil {
		return errors.New("run from the repository root (make cluster)")
	}
	logger := log.New(os.Stderr, "cluster: ", log.Ltime)
	logger.Printf("building ./cmd/gateway and ./cmd/worker")
	bin, err := cluster.Build(ctx, root, dir)
	if err != nil {
		return err
	}
	workerBin, err := cluster.BuildWorker(ctx, root, dir)
	if err != nil {
		return err
	}
	c, err := cluster.Start(ctx, cluster.Options{
		Dir:        dir,
		GatewayBin: bin,
		Instances:  instances,
		WorkerBin:  workerBin,
		Workers:    workers,
		LBPort:     lbPort,
		RedisPort:  redisPort,
		Redis:      topology,
		LB:         lbKind,
		Prometheus: &cluster.PrometheusOptions{
			Rules:          []string{filepath.Join(root, "deploy", "prometheus", "sessiongate.rules.yml")},
			Port:           promPort,
			ScrapeInterval: 5 * time.Second,
		},
		Env: map[string]string{
			// Friendlier than the test defaults for a person watching.
			"WS_PING_INTERVAL":          "25s",
			"WS_PONG_TIMEOUT":           "10s",
			"DRAIN_WINDOW":              "5s",
			"PUBSUB_HEARTBEAT_INTERVAL": "2s",
			"RECONCILE_INTERVAL":        "30s",
			"RATE_LIMIT_RPS":            "50",
			"RATE_LIMIT_BURST":          "100",
			"LOG_LEVEL":                 "info",
			// The operators' console at <url>/admin/, API key below.
			"ADMIN_ENABLED": "true",
		},
		Logf: logger.Printf,
	})
	if err != nil {
		return err
	}
	defer func() {
		logger.Printf("stopping (logs stay in %s)", dir)
		c.Close()
	}()

	url, key := c.URL(), c.APIKey
	messages := `"Send message to server" queues the message (the page logs "ack <msg_id>")
and the example worker answers it with an echo.reply event, through the load balancer.`
	if len(c.Workers) == 0 {
		messages = `No example worker (CLUSTER_WORKERS=0): "Send message to server" is acked
(queued in Redis) but nobody answers it.`
	}
	first := c.Gateways[0].URL()
	fmt.Printf(`
sessiongate cluster is up.

%s
Open %s/ in a browser and log in (any user id; development mode).
%s
API key: %s
Admin console: %s/admin/ (log in with the API key)

Try:
  export KEY=%s
  # publish to every connection (through the load balancer)
  curl -s -H "Authorization: Bearer $KEY" -d '{"target":{"all":true},"event":"hello","data":{"n":1}}' %s/api/v1/publish
  # publish to one user through one instance directly
  curl -s -H "Authorization: Bearer $KEY" -d '{"target":{"user_id":"alice"},"event":"hi","data":{}}' %s/api/v1/publish
  # who is in the cluster
  curl -s -H "Authorization: Bearer $KEY" %s/api/v1/cluster
  # revoke every session of alice (her sockets close with 4500 on every instance)
  curl -s -X DELETE -H "Authorization: Bearer $KEY" %s/api/v1/users/alice/sessions
  # drain one instance and watch its browsers move: kill -TERM %d

Prometheus: %s (rules of deploy/prometheus loaded: %s/alerts)
Grafana: import deploy/grafana/sessiongate.json and pick a Prometheus data source at that URL.

%s
Ctrl-C stops everything.
`, c.Summary(), url, messages, key, url, key, url, first, url, url, c.Gateways[0].Pid(), c.Prom.URL(), c.Prom.URL(), faultHints(ctx, c))

	// A worker that exits (a crash, or a kill -9 to watch redelivery) is
	// reported, not fatal: its messages wait in Redis for a worker.
	for _, w := range c.Workers {
		go func() {
			select {
			case <-w.Done():
				if ctx.Err() != nil {
					return // stopped by Ctrl-C
				}
				logger.Printf("%s exited (%v); its messages wait in Redis for a worker; see %s", w.ID, w.ExitErr(), w.LogPath)
			case <-ctx.Done():
			}
		}()
	}
	// On a single redis-server the demo cannot go on without it; on a
	// Cluster or behind Sentinel a killed node is a failover to watch.
	redisDone := make(chan error, 1)
	for _, r := range c.RedisProcesses() {
		go func() {
			select {
			case <-r.Done():
				if ctx.Err() != nil {
					return
				}
				if c.Redis != nil {
					redisDone <- errors.New("redis-server exited; see " + c.Redis.LogPath)
					return
				}
				logger.Printf("%s exited (%v); see %s", r.Name, r.ExitErr(), r.LogPath)
			case <-ctx.Done():
			}
		}()
	}
	select {
	case <-ctx.Done():
	case err := <-redisDone:
		return err
	case <-c.LB.Done():
		return errors.New(c.LB.Kind + " exited; see " + c.LB.LogPath)
	case <-c.Prom.Done():
		return errors.New("prometheus exited; see " + c.Prom.LogPath)
	}
	return nil
}

func intEnv(env func(string) (string, bool), name string, def int) (int, error) {
	v, ok := env(name)
	if !ok || v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 65535 {
		return 0, fmt.Errorf("%s=%q: want a number from 0 to 65535", name, v)
	}
	return n, nil
}

// faultHints suggests failovers to try on a Redis Cluster or behind
// Sentinel ("" on a single redis-server).
func faultHints(ctx context.Context, c *cluster.Cluster) string {
	switch {
	case c.RedisCluster != nil:
		masters, err := c.RedisCluster.Masters(ctx)
		if err != nil || len(masters) == 0 {
			return ""
		}
		m := masters[0]
		r, err := c.RedisCluster.ReplicaOf(ctx, m)
		if err != nil {
			return ""
		}
		return fmt.Sprintf(`Redis Cluster faults to try (the instances follow; /readyz shows pub/sub):
  # coordinated failover: replica %s takes over from %s
  redis-cli -p %d cluster failover
  # kill a master (pid %d of %s): its replica is promoted after cluster-node-timeout
  kill -9 %d
  # who owns what now
  redis-cli -p %d cluster nodes
`, r.Addr(), m.Addr(), r.Port, m.Pid(), m.Addr(), m.Pid(), r.Port)
	case c.Sentinel != nil:
		m, err := c.Sentinel.Master(ctx)
		if err != nil {
			return ""
		}
		s := c.Sentinel.Sentinels[0]
		return fmt.Sprintf(`Sentinel faults to try (the instances follow; /readyz shows pub/sub):
  # a failover ordered by hand
  redis-cli -p %d sentinel failover %s
  # kill the master (pid %d of %s): the sentinels promote the replica
  kill -9 %d
  # which master the sentinels name now
  redis-cli -p %d sentinel get-master-addr-by-name %s
`, s.Port, cluster.SentinelMasterName, m.Pid(), m.Addr(), m.Pid(), s.Port, cluster.SentinelMasterName)
	}
	return ""
}
