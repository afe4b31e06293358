package cluster

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// startRedisTopology starts the Redis of o.Redis: one redis-server on
// redisPort, a [ClusterRedis] or a [SentinelRedis] (on free ports).
func (c *Cluster) startRedisTopology(ctx context.Context, o Options, redisPort int, logf func(string, ...any)) error {
	var err error
	switch o.Redis {
	case "", RedisSingle:
		c.Redis, err = startRedis(ctx, o.Dir, redisPort)
		if err == nil {
			logf("redis-server on %s", c.Redis.Addr())
		}
	case RedisClusterMode:
		if err := Need("redis-cli"); err != nil {
			return err
		}
		ports, perr := reservePorts(6)
		if perr != nil {
			return perr
		}
		c.RedisCluster, err = startClusterRedis(ctx, o.Dir, ports)
		if err == nil {
			logf("redis cluster on %s: %s", strings.Join(c.RedisCluster.Addrs(), ","), c.RedisCluster.Describe(ctx))
		}
	case RedisSentinelMode:
		if err := Need("redis-sentinel"); err != nil {
			return err
		}
		ports, perr := reservePorts(5)
		if perr != nil {
			return perr
		}
		c.Sentinel, err = startSentinelRedis(ctx, o.Dir, ports)
		if err == nil {
			logf("redis master %s, replica %s, sentinels %s (master name %s)", c.Sentinel.Data[0].Addr(),
				c.Sentinel.Data[1].Addr(), strings.Join(c.Sentinel.Addrs(), ","), SentinelMasterName)
		}
	default:
		return fmt.Errorf("cluster: Options.Redis %q: want %q, %q or %q", o.Redis, RedisSingle, RedisClusterMode, RedisSentinelMode)
	}
	return err
}

// redisEnv sets the instances' Redis address variables for the topology.
func (c *Cluster) redisEnv(env map[string]string) {
	switch {
	case c.RedisCluster != nil:
		env["REDIS_ADDRS"] = strings.Join(c.RedisCluster.Addrs(), ",")
	case c.Sentinel != nil:
		env["REDIS_SENTINEL_ADDRS"] = strings.Join(c.Sentinel.Addrs(), ",")
		env["REDIS_MASTER_NAME"] = SentinelMasterName
	case c.Redis != nil:
		env["REDIS_URL"] = c.Redis.URL()
	}
}

// RedisProcesses are every Redis process of the topology: the
// redis-server, the cluster's nodes, or the sentinel setup's data nodes and
// sentinels.
func (c *Cluster) RedisProcesses() []*Redis {
	switch {
	case c.RedisCluster != nil:
		return c.RedisCluster.Nodes
	case c.Sentinel != nil:
		return append(append([]*Redis(nil), c.Sentinel.Data...), c.Sentinel.Sentinels...)
	case c.Redis != nil:
		return []*Redis{c.Redis}
	}
	return nil
}

// stopRedis stops whatever Redis topology runs.
func (c *Cluster) stopRedis(grace time.Duration) {
	switch {
	case c.RedisCluster != nil:
		c.RedisCluster.Stop(grace)
	case c.Sentinel != nil:
		c.Sentinel.Stop(grace)
	case c.Redis != nil:
		c.Redis.Stop(grace)
	}
}

// redisSummary describes the Redis topology for a person, one line each.
func (c *Cluster) redisSummary() string {
	var b strings.Builder
	switch {
	case c.RedisCluster != nil:
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		fmt.Fprintf(&b, "redis cluster  %s\n", strings.Join(c.RedisCluster.Addrs(), ","))
		fmt.Fprintf(&b, "               %s\n", c.RedisCluster.Describe(ctx))
		fmt.Fprintf(&b, "               (redis-cli -c -p %d cluster nodes)\n", c.RedisCluster.Nodes[0].Port)
	case c.Sentinel != nil:
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		master := "unknown"
		if m, err := c.Sentinel.Master(ctx); err == nil {
			master = m.Addr()
		}
		fmt.Fprintf(&b, "redis master   %s (data nodes %s,%s; master name %s)\n", master,
			c.Sentinel.Data[0].Addr(), c.Sentinel.Data[1].Addr(), SentinelMasterName)
		fmt.Fprintf(&b, "sentinels      %s   (redis-cli -p %d sentinel masters)\n", strings.Join(c.Sentinel.Addrs(), ","), c.Sentinel.Sentinels[0].Port)
	case c.Redis != nil:
		fmt.Fprintf(&b, "redis-server   %s\n", c.Redis.URL())
	}
	return b.String()
}
