package redistest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// SentinelOptions shapes a Sentinel topology. Zero means default.
type SentinelOptions struct {
	// MasterName is the name the sentinels monitor. Defaults to "mymaster".
	MasterName string
	// Replicas is the number of replicas next to the master. Defaults to 2.
	Replicas int
	// DownAfter is the sentinels' down-after-milliseconds: how long a master
	// may not answer before it is considered down. Defaults to 1.5s: short
	// for fast failovers, long enough that a loaded machine does not fail
	// over by itself.
	DownAfter time.Duration
	// FailoverTimeout is the sentinels' failover-timeout (also the pause
	// before a failed failover is retried). Defaults to 6s.
	FailoverTimeout time.Duration
	// SentinelPassword, when set, is the sentinels' own requirepass (they
	// use it between themselves too). Clients then need it; the data nodes
	// stay without a password. Defaults to none.
	SentinelPassword string
}

func (o SentinelOptions) withDefaults() SentinelOptions {
	if o.MasterName == "" {
		o.MasterName = "mymaster"
	}
	if o.Replicas == 0 {
		o.Replicas = 2
	}
	if o.DownAfter == 0 {
		o.DownAfter = 1500 * time.Millisecond
	}
	if o.FailoverTimeout == 0 {
		o.FailoverTimeout = 6 * time.Second
	}
	return o
}

// sentinelCount is the number of redis-sentinel processes; the quorum is 2.
const sentinelCount = 3

// topologyTimeout bounds every wait for the topology to settle (a failover,
// a replica reconfigured, sentinels discovering each other): a hang
// detector, far beyond what a failover takes on a loaded machine.
const topologyTimeout = 90 * time.Second

// Sentinel is a real Sentinel topology owned by a test: one master, its
// replicas (redis-server processes) and three redis-sentinel processes, all
// on free loopback ports and all stopped by t.Cleanup. Its methods may be
// called from the test goroutine only.
type Sentinel struct {
	t         testing.TB
	opts      SentinelOptions
	nodes     []*Server // data nodes; nodes[0] is the first master
	sentinels []*Server
}

// StartSentinel starts the topology and returns once every sentinel knows
// the master, every replica and the other sentinels, and every replica is in
// sync, so that a failover can start at once. A missing redis-server or
// redis-sentinel fails the test (see [LookPath]).
func StartSentinel(t testing.TB, opts SentinelOptions) *Sentinel {
	t.Helper()
	opts = opts.withDefaults()
	LookPath(t, "redis-sentinel")
	s := &Sentinel{t: t, opts: opts}
	master := Start(t)
	s.nodes = append(s.nodes, master)
	for range opts.Replicas {
		s.nodes = append(s.nodes, Start(t, "--replicaof", "127.0.0.1", strconv.Itoa(master.Port())))
	}
	conf := fmt.Sprintf("sentinel resolve-hostnames no\n"+
		"sentinel monitor %[1]s 127.0.0.1 %[2]d 2\n"+
		"sentinel down-after-milliseconds %[1]s %[3]d\n"+
		"sentinel failover-timeout %[1]s %[4]d\n"+
		"sentinel parallel-syncs %[1]s %[5]d\n",
		opts.MasterName, master.Port(), opts.DownAfter.Milliseconds(), opts.FailoverTimeout.Milliseconds(), opts.Replicas)
	if opts.SentinelPassword != "" {
		conf += fmt.Sprintf("requirepass %[1]q\nsentinel sentinel-pass %[1]q\n", opts.SentinelPassword)
	}
	bin := LookPath(t, "redis-sentinel")
	for range sentinelCount {
		s.sentinels = append(s.sentinels, startSentinelProcess(t, bin, conf))
	}
	s.waitUntil("sentinels discover the topology", func(ctx context.Context) error {
		for _, sn := range s.sentinels {
			c := s.sentinelClient(sn.Addr())
			m, err := c.Master(ctx, opts.MasterName).Result()
			_ = c.Close()
			if err != nil {
				return err
			}
			if m["num-other-sentinels"] != strconv.Itoa(sentinelCount-1) || m["num-slaves"] != strconv.Itoa(opts.Replicas) {
				return fmt.Errorf("sentinel %s sees %s other sentinels and %s replicas", sn.Addr(), m["num-other-sentinels"], m["num-slaves"])
			}
		}
		for _, n := range s.nodes[1:] {
			if err := replicaOf(ctx, n.Addr(), master.Addr()); err != nil {
				return err
			}
		}
		return nil
	})
	return s
}

// startSentinelProcess starts one redis-sentinel on a free port.
func startSentinelProcess(t testing.TB, bin, conf string) *Server {
	t.Helper()
	s := &Server{t: t, bin: bin, dir: t.TempDir(), sentinelConf: conf}
	t.Cleanup(s.Stop)
	for attempt := 1; ; attempt++ {
		s.port = FreePort(t)
		err := s.start()
		if err == nil {
			return s
		}
		if !errors.Is(err, errExited) || attempt == startAttempts {
			t.Fatalf("redistest: sentinel: %v", err)
		}
		t.Logf("redistest: sentinel: %v; trying another port", err)
	}
}

// MasterName is the name the sentinels monitor (REDIS_MASTER_NAME).
func (s *Sentinel) MasterName() string { return s.opts.MasterName }

// SentinelAddrs are the sentinels' host:port addresses.
func (s *Sentinel) SentinelAddrs() []string {
	addrs := make([]string, len(s.sentinels))
	for i, sn := range s.sentinels {
		addrs[i] = sn.Addr()
	}
	return addrs
}

// Sentinels are the redis-sentinel processes.
func (s *Sentinel) Sentinels() []*Server { return s.sentinels }

// Nodes are the data nodes (master and replicas, in start order).
func (s *Sentinel) Nodes() []*Server { return s.nodes }

// Node returns the data node listening on addr and fails the test if there
// is none.
func (s *Sentinel) Node(addr string) *Server {
	s.t.Helper()
	for _, n := range s.nodes {
		if n.Addr() == addr {
			return n
		}
	}
	s.t.Fatalf("redistest: no sentinel data node at %s", addr)
	return nil
}

// Master asks the sentinels for the current master's address: the first
// sentinel that answers. It fails the test when none answers within the
// topology timeout.
func (s *Sentinel) Master() string {
	s.t.Helper()
	var addr string
	s.waitUntil("a sentinel names the master", func(ctx context.Context) error {
		var errs []error
		for _, sn := range s.sentinels {
			a, err := s.askMaster(ctx, sn.Addr())
			if err == nil {
				addr = a
				return nil
			}
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	})
	return addr
}

// KillMaster kills the current master with SIGKILL (kill -9: no shutdown,
// no goodbye to the replicas) and returns its address.
func (s *Sentinel) KillMaster() string {
	s.t.Helper()
	addr := s.Master()
	s.Node(addr).Stop()
	return addr
}

// Failover asks a sentinel for a manual failover (SENTINEL FAILOVER) and
// returns the master's address before it. It retries while the sentinel
// refuses (a failover already in progress, no replica ready yet).
func (s *Sentinel) Failover() string {
	s.t.Helper()
	old := s.Master()
	s.waitUntil("SENTINEL FAILOVER accepted", func(ctx context.Context) error {
		c := s.sentinelClient(s.sentinels[0].Addr())
		defer c.Close()
		return c.Failover(ctx, s.opts.MasterName).Err()
	})
	return old
}

// WaitMaster waits until every running sentinel names the same master, a
// node other than old, and that node reports itself master; it returns the
// new master's address.
func (s *Sentinel) WaitMaster(old string) string {
	s.t.Helper()
	var addr string
	s.waitUntil("a new master other than "+old, func(ctx context.Context) error {
		addr = ""
		for _, sn := range s.sentinels {
			a, err := s.askMaster(ctx, sn.Addr())
			if err != nil {
				return err
			}
			if a == old {
				return fmt.Errorf("sentinel %s still names %s", sn.Addr(), old)
			}
			if addr != "" && a != addr {
				return fmt.Errorf("sentinels disagree: %s and %s", addr, a)
			}
			addr = a
		}
		role, err := roleOf(ctx, addr)
		if err != nil {
			return err
		}
		if role != "master" {
			return fmt.Errorf("%s reports role %s", addr, role)
		}
		return nil
	})
	return addr
}

// Restart starts a killed data node again on its port, empty and as a
// master, as a crashed server without persistence comes back. The sentinels
// then reconfigure it as a replica of the current master: wait for that with
// [Sentinel.WaitReplica].
func (s *Sentinel) Restart(addr string) {
	s.t.Helper()
	s.Node(addr).Restart()
}

// WaitReplica waits until the node at addr replicates the current master
// with its link up.
func (s *Sentinel) WaitReplica(addr string) {
	s.t.Helper()
	s.waitUntil(addr+" replicates the master", func(ctx context.Context) error {
		var errs []error
		for _, sn := range s.sentinels {
			m, err := s.askMaster(ctx, sn.Addr())
			if err != nil {
				errs = append(errs, err)
				continue
			}
			return replicaOf(ctx, addr, m)
		}
		return errors.Join(errs...)
	})
}

// sentinelClient is a client of one sentinel, with its password if any.
func (s *Sentinel) sentinelClient(addr string) *redis.SentinelClient {
	return redis.NewSentinelClient(&redis.Options{Addr: addr, Password: s.opts.SentinelPassword, DialerRetries: 1})
}

// askMaster asks one sentinel for the master's address.
func (s *Sentinel) askMaster(ctx context.Context, sentinel string) (string, error) {
	c := s.sentinelClient(sentinel)
	defer c.Close()
	hp, err := c.GetMasterAddrByName(ctx, s.opts.MasterName).Result()
	if err != nil {
		return "", fmt.Errorf("sentinel %s: %w", sentinel, err)
	}
	if len(hp) != 2 {
		return "", fmt.Errorf("sentinel %s: master address %q", sentinel, hp)
	}
	return hp[0] + ":" + hp[1], nil
}

// waitUntil polls cond every 100 ms until it returns nil, and fails the
// test with cond's last error when the topology timeout passes first.
func (s *Sentinel) waitUntil(what string, cond func(ctx context.Context) error) {
	s.t.Helper()
	deadline := time.Now().Add(topologyTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := cond(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redistest: sentinel: %s: not within %s: %v", what, topologyTimeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// info reads one INFO section of the node at addr as key/value pairs.
func info(ctx context.Context, addr, section string) (map[string]string, error) {
	c := redis.NewClient(&redis.Options{Addr: addr, DialerRetries: 1, MaxRetries: -1, DisableIdentity: true})
	defer c.Close()
	text, err := c.Info(ctx, section).Result()
	if err != nil {
		return nil, fmt.Errorf("%s: INFO %s: %w", addr, section, err)
	}
	kv := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			kv[k] = v
		}
	}
	return kv, nil
}

// roleOf is the node's replication role ("master" or "slave").
func roleOf(ctx context.Context, addr string) (string, error) {
	kv, err := info(ctx, addr, "replication")
	if err != nil {
		return "", err
	}
	return kv["role"], nil
}

// replicaOf reports nil when the node at addr replicates master with its
// link up.
func replicaOf(ctx context.Context, addr, master string) error {
	kv, err := info(ctx, addr, "replication")
	if err != nil {
		return err
	}
	got := kv["master_host"] + ":" + kv["master_port"]
	if kv["role"] != "slave" || got != master || kv["master_link_status"] != "up" {
		return fmt.Errorf("%s: role %s, master %s, link %s; want replica of %s with link up",
			addr, kv["role"], got, kv["master_link_status"], master)
	}
	return nil
}
