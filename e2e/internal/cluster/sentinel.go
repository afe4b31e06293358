package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// SentinelMasterName is the master name the sentinels monitor
// (REDIS_MASTER_NAME of the instances).
const SentinelMasterName = "sgmaster"

// SentinelDownAfter is the sentinels' down-after-milliseconds: small, so a
// failover after a kill takes seconds.
const SentinelDownAfter = 2 * time.Second

// SentinelRedis is a Sentinel setup: two redis-server data nodes (a master
// and its replica, append-only file fsynced every second) and three
// redis-sentinel processes with quorum 2. Its fault helpers wait until the
// fault took effect and every running sentinel agrees on the master, each
// bounded by its ctx. Faults are meant to be run one at a time.
type SentinelRedis struct {
	// Data are the two data nodes (which one is the master changes with
	// failovers: ask [SentinelRedis.Master]).
	Data []*Redis
	// Sentinels are the redis-sentinel processes.
	Sentinels []*Redis
}

// startSentinelRedis starts the data nodes on ports[0:2] (the first the
// master) and the sentinels on ports[2:5], and waits until every sentinel
// knows the master, its replica and the other sentinels.
func startSentinelRedis(ctx context.Context, dir string, ports []int) (sr *SentinelRedis, err error) {
	if len(ports) != 5 {
		return nil, fmt.Errorf("cluster: sentinel needs 5 ports, got %d", len(ports))
	}
	sentinelBin, err := lookPath("redis-sentinel")
	if err != nil {
		return nil, err
	}
	sr = &SentinelRedis{}
	defer func() {
		if err != nil {
			sr.Stop(time.Second)
		}
	}()
	master, err := newRedisNode(dir, ports[0], "--appendonly", "yes", "--appendfsync", "everysec")
	if err != nil {
		return sr, err
	}
	replica, err := newRedisNode(dir, ports[1], "--appendonly", "yes", "--appendfsync", "everysec",
		"--replicaof", "127.0.0.1", strconv.Itoa(ports[0]))
	if err != nil {
		return sr, err
	}
	sr.Data = []*Redis{master, replica}
	for _, n := range sr.Data {
		if err := n.Restart(ctx); err != nil {
			return sr, err
		}
	}
	for _, port := range ports[2:] {
		name := "sentinel-" + strconv.Itoa(port)
		data := filepath.Join(dir, name)
		if err := mkdir(data); err != nil {
			return sr, err
		}
		// A sentinel rewrites its configuration file (the replicas and
		// sentinels it learnt, the current master), so each has its own.
		conf := filepath.Join(data, "sentinel.conf")
		text := fmt.Sprintf(`port %d
bind 127.0.0.1
daemonize no
dir %s
sentinel monitor %s 127.0.0.1 %d 2
sentinel down-after-milliseconds %s %d
sentinel failover-timeout %s 10000
sentinel parallel-syncs %s 1
`, port, data, SentinelMasterName, ports[0], SentinelMasterName, SentinelDownAfter.Milliseconds(), SentinelMasterName, SentinelMasterName)
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			return sr, fmt.Errorf("cluster: %w", err)
		}
		s := &Redis{Process: newProcess(name, filepath.Join(dir, name+".log"), sentinelBin, []string{conf}, minimalEnv(), data), Port: port}
		sr.Sentinels = append(sr.Sentinels, s)
		if err := s.Restart(ctx); err != nil {
			return sr, err
		}
	}
	if err := sr.WaitHealthy(ctx); err != nil {
		return sr, err
	}
	return sr, nil
}

// Addrs are the sentinels' addresses (REDIS_ADDRS of the instances).
func (sr *SentinelRedis) Addrs() []string {
	out := make([]string, len(sr.Sentinels))
	for i, s := range sr.Sentinels {
		out[i] = s.Addr()
	}
	return out
}

// Stop stops the sentinels, then the data nodes.
func (sr *SentinelRedis) Stop(grace time.Duration) {
	for _, s := range sr.Sentinels {
		s.Stop(grace)
	}
	for _, n := range sr.Data {
		n.Stop(grace)
	}
}

// LogFiles are every process's log file.
func (sr *SentinelRedis) LogFiles() []string {
	var out []string
	for _, n := range append(append([]*Redis(nil), sr.Data...), sr.Sentinels...) {
		out = append(out, n.LogPath)
	}
	return out
}

func (sr *SentinelRedis) dataNode(addr string) *Redis {
	for _, n := range sr.Data {
		if n.Addr() == addr {
			return n
		}
	}
	return nil
}

// agreedMaster returns the master every running sentinel names, checking
// that it runs and says it is a master, and that the other data node, if
// it runs, is its replica with the link up, and that every sentinel sees
// the other two.
func (sr *SentinelRedis) agreedMaster(ctx context.Context) (*Redis, error) {
	var addr string
	for _, s := range sr.Sentinels {
		if !s.Running() {
			continue
		}
		a, err := adminDo(ctx, s, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SentinelMasterName).StringSlice()
		if err != nil || len(a) != 2 {
			return nil, fmt.Errorf("sentinel %s: master address: %v %v", s.Addr(), a, err)
		}
		got := a[0] + ":" + a[1]
		if addr != "" && got != addr {
			return nil, fmt.Errorf("sentinels disagree: %s and %s", addr, got)
		}
		addr = got
		others, err := adminDo(ctx, s, "SENTINEL", "SENTINELS", SentinelMasterName).Slice()
		if err != nil {
			return nil, fmt.Errorf("sentinel %s: SENTINEL SENTINELS: %w", s.Addr(), err)
		}
		if len(others) < len(sr.Sentinels)-1 {
			return nil, fmt.Errorf("sentinel %s knows %d other sentinels", s.Addr(), len(others))
		}
	}
	m := sr.dataNode(addr)
	if m == nil {
		return nil, fmt.Errorf("sentinels name %q, not a data node", addr)
	}
	if !m.Running() {
		return nil, fmt.Errorf("sentinels still name stopped %s", addr)
	}
	role, err := adminDo(ctx, m, "INFO", "replication").Text()
	if err != nil {
		return nil, err
	}
	if !strings.Contains(role, "role:master") {
		return nil, fmt.Errorf("%s is not a master yet", addr)
	}
	for _, n := range sr.Data {
		if n == m || !n.Running() {
			continue
		}
		repl, err := adminDo(ctx, n, "INFO", "replication").Text()
		if err != nil {
			return nil, err
		}
		if !strings.Contains(repl, "role:slave") || !strings.Contains(repl, "master_port:"+strconv.Itoa(m.Port)) ||
			!strings.Contains(repl, "master_link_status:up") {
			return nil, fmt.Errorf("%s is not %s's replica with the link up yet", n.Addr(), addr)
		}
	}
	return m, nil
}

// WaitHealthy waits (at most a minute) until the sentinels agree on a
// running master and the other data node, if it runs, replicates from it.
func (sr *SentinelRedis) WaitHealthy(ctx context.Context) error {
	_, err := sr.waitMaster(ctx, nil)
	return err
}

// waitMaster waits until the agreed master is not notThis.
func (sr *SentinelRedis) waitMaster(ctx context.Context, notThis *Redis) (*Redis, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var m *Redis
	err := poll(ctx, 100*time.Millisecond, "sentinel master agreed", func() error {
		got, err := sr.agreedMaster(ctx)
		if err != nil {
			return err
		}
		if got == notThis {
			return fmt.Errorf("%s is still the master", got.Addr())
		}
		m = got
		return nil
	})
	return m, err
}

// Master returns the master the sentinels agree on.
func (sr *SentinelRedis) Master(ctx context.Context) (*Redis, error) {
	m, err := sr.agreedMaster(ctx)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	return m, nil
}

// Failover runs SENTINEL FAILOVER on a sentinel and waits until every
// sentinel names the other data node and the old master replicates from
// it. It returns the new master.
func (sr *SentinelRedis) Failover(ctx context.Context) (*Redis, error) {
	old, err := sr.Master(ctx)
	if err != nil {
		return nil, err
	}
	var s *Redis
	for _, x := range sr.Sentinels {
		if x.Running() {
			s = x
			break
		}
	}
	if s == nil {
		return nil, errors.New("cluster: no sentinel running")
	}
	if err := adminDo(ctx, s, "SENTINEL", "FAILOVER", SentinelMasterName).Err(); err != nil {
		return nil, fmt.Errorf("cluster: SENTINEL FAILOVER: %w", err)
	}
	return sr.waitMaster(ctx, old)
}

// KillMaster kills the master with SIGKILL and waits until the sentinels
// agree on the replica as the new master. It returns the killed node (see
// [SentinelRedis.RestartNode]) and the new master.
func (sr *SentinelRedis) KillMaster(ctx context.Context) (killed, master *Redis, err error) {
	old, err := sr.Master(ctx)
	if err != nil {
		return nil, nil, err
	}
	old.Kill()
	m, err := sr.waitMaster(ctx, old)
	return old, m, err
}

// RestartNode starts a stopped data node again and waits until it
// replicates from the master the sentinels agree on (an old master comes
// back believing it is the master; the sentinels turn it into a replica).
func (sr *SentinelRedis) RestartNode(ctx context.Context, n *Redis) error {
	if err := n.Restart(ctx); err != nil {
		return err
	}
	_, err := sr.waitMaster(ctx, n)
	return err
}
