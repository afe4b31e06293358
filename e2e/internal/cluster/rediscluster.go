package cluster

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis topologies for [Options.Redis].
const (
	// RedisSingle is one redis-server (the default).
	RedisSingle = "single"
	// RedisClusterMode is a Redis Cluster of three masters with one replica
	// each ([ClusterRedis]).
	RedisClusterMode = "cluster"
	// RedisSentinelMode is a master, a replica and three redis-sentinel
	// processes ([SentinelRedis]).
	RedisSentinelMode = "sentinel"
)

// ClusterNodeTimeout is the cluster-node-timeout of [ClusterRedis]: small,
// so a failover takes seconds, yet well above the pauses a loaded machine
// gives a process (a false failover would be a fault nobody asked for).
const ClusterNodeTimeout = 2 * time.Second

// ClusterRedis is a Redis Cluster of six redis-server processes in cluster
// mode: three masters and one replica each, with the append-only file
// (fsynced every second) and cluster-replica-validity-factor 0 (a replica
// may always take over, however long it was cut off). Its fault helpers
// wait until the fault took effect and the cluster is healthy again, each
// bounded by its ctx. Its methods are safe for concurrent use, but faults
// are meant to be run one at a time.
type ClusterRedis struct {
	// Nodes are every node, masters and replicas alike (which is which
	// changes with failovers: ask [ClusterRedis.Masters]).
	Nodes []*Redis
}

// startClusterRedis starts six nodes on the given ports and joins them with
// `redis-cli --cluster create --cluster-replicas 1`.
func startClusterRedis(ctx context.Context, dir string, ports []int) (*ClusterRedis, error) {
	if len(ports) != 6 {
		return nil, fmt.Errorf("cluster: redis cluster needs 6 ports, got %d", len(ports))
	}
	cli, err := lookPath("redis-cli")
	if err != nil {
		return nil, err
	}
	rc := &ClusterRedis{}
	for _, port := range ports {
		n, err := newRedisNode(dir, port,
			"--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", strconv.Itoa(int(ClusterNodeTimeout/time.Millisecond)),
			"--cluster-replica-validity-factor", "0",
			"--appendonly", "yes",
			"--appendfsync", "everysec",
		)
		if err != nil {
			rc.Stop(time.Second)
			return nil, err
		}
		rc.Nodes = append(rc.Nodes, n)
		if err := n.Restart(ctx); err != nil {
			rc.Stop(time.Second)
			return nil, err
		}
	}
	args := []string{"--cluster", "create"}
	args = append(args, rc.Addrs()...)
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(cctx, cli, args...).CombinedOutput(); err != nil {
		rc.Stop(time.Second)
		return nil, fmt.Errorf("cluster: redis-cli --cluster create: %w\n%s", err, out)
	}
	if err := rc.WaitHealthy(ctx); err != nil {
		rc.Stop(time.Second)
		return nil, err
	}
	return rc, nil
}

// newRedisNode prepares (does not start) a redis-server on port with its own
// data directory under dir and the extra arguments.
func newRedisNode(dir string, port int, extra ...string) (*Redis, error) {
	bin, err := lookPath("redis-server")
	if err != nil {
		return nil, err
	}
	name := "redis-" + strconv.Itoa(port)
	data := filepath.Join(dir, name)
	if err := mkdir(data); err != nil {
		return nil, err
	}
	args := append([]string{
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--dir", data,
		"--daemonize", "no",
		"--loglevel", "notice",
	}, extra...)
	return &Redis{Process: newProcess(name, filepath.Join(dir, name+".log"), bin, args, minimalEnv(), data), Port: port}, nil
}

// Addrs are every node's "127.0.0.1:port" (REDIS_ADDRS of the instances).
func (rc *ClusterRedis) Addrs() []string {
	out := make([]string, len(rc.Nodes))
	for i, n := range rc.Nodes {
		out[i] = n.Addr()
	}
	return out
}

// Stop stops every node (SIGCONT first, in case one is paused).
func (rc *ClusterRedis) Stop(grace time.Duration) {
	for _, n := range rc.Nodes {
		_ = n.Signal(syscall.SIGCONT)
		n.Stop(grace)
	}
}

// LogFiles are the nodes' log files.
func (rc *ClusterRedis) LogFiles() []string {
	out := make([]string, len(rc.Nodes))
	for i, n := range rc.Nodes {
		out[i] = n.LogPath
	}
	return out
}

// node returns the node listening on addr ("127.0.0.1:port"), or nil.
func (rc *ClusterRedis) node(addr string) *Redis {
	for _, n := range rc.Nodes {
		if n.Addr() == addr {
			return n
		}
	}
	return nil
}

// nodeInfo is one line of CLUSTER NODES.
type nodeInfo struct {
	id, addr, masterID string
	master, failing    bool
	slots              int
	ranges             []string
}

// clusterNodes asks n for CLUSTER NODES.
func clusterNodes(ctx context.Context, n *Redis) ([]nodeInfo, error) {
	text, err := adminDo(ctx, n, "CLUSTER", "NODES").Text()
	if err != nil {
		return nil, fmt.Errorf("cluster: CLUSTER NODES on %s: %w", n.Addr(), err)
	}
	var out []nodeInfo
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		addr, _, _ := strings.Cut(f[1], "@")
		ni := nodeInfo{id: f[0], addr: addr, masterID: f[3]}
		for _, flag := range strings.Split(f[2], ",") {
			switch flag {
			case "master":
				ni.master = true
			case "fail", "fail?", "handshake", "noaddr":
				ni.failing = true
			}
		}
		for _, r := range f[8:] {
			if strings.HasPrefix(r, "[") {
				continue // a slot being migrated or imported: counted where it is owned
			}
			ni.ranges = append(ni.ranges, r)
			lo, hi, ok := strings.Cut(r, "-")
			a, _ := strconv.Atoi(lo)
			b := a
			if ok {
				b, _ = strconv.Atoi(hi)
			}
			ni.slots += b - a + 1
		}
		out = append(out, ni)
	}
	return out, nil
}

// adminDo runs one command on n over a short-lived connection.
func adminDo(ctx context.Context, n *Redis, args ...any) *redis.Cmd {
	c := redis.NewClient(&redis.Options{Addr: n.Addr(), MaxRetries: -1, DialTimeout: time.Second,
		ReadTimeout: 3 * time.Second, WriteTimeout: 3 * time.Second, PoolSize: 1})
	defer c.Close()
	return c.Do(ctx, args...)
}

// view is the cluster as one node sees it: the masters owning slots (by
// address) and the replicas of each.
type view struct {
	masters  map[string]int      // addr -> slots owned
	replicas map[string][]string // master addr -> replica addrs
	failing  []string
}

func (rc *ClusterRedis) viewFrom(ctx context.Context, n *Redis) (view, error) {
	nodes, err := clusterNodes(ctx, n)
	if err != nil {
		return view{}, err
	}
	byID := map[string]string{}
	for _, ni := range nodes {
		byID[ni.id] = ni.addr
	}
	v := view{masters: map[string]int{}, replicas: map[string][]string{}}
	for _, ni := range nodes {
		if ni.failing {
			v.failing = append(v.failing, ni.addr)
			continue
		}
		if ni.master && ni.slots > 0 {
			v.masters[ni.addr] = ni.slots
		}
		if !ni.master {
			m := byID[ni.masterID]
			v.replicas[m] = append(v.replicas[m], ni.addr)
		}
	}
	return v, nil
}

// String lists the masters, their slot counts and replicas in a stable
// order (two nodes agree when their Strings are equal).
func (v view) String() string {
	var parts []string
	for m, s := range v.masters {
		rs := append([]string(nil), v.replicas[m]...)
		sort.Strings(rs)
		parts = append(parts, fmt.Sprintf("%s(%d slots, replicas %v)", m, s, rs))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

// healthy checks, from every running node, that the cluster is healthy:
// cluster_state ok, no running node seen failing, the 16384 slots owned by
// running masters, every running node either such a master or a replica
// whose link to its master is up, and every node agreeing on who owns what.
func (rc *ClusterRedis) healthy(ctx context.Context) (view, error) {
	var first *view
	for _, n := range rc.Nodes {
		if !n.Running() {
			continue
		}
		info, err := adminDo(ctx, n, "CLUSTER", "INFO").Text()
		if err != nil {
			return view{}, fmt.Errorf("CLUSTER INFO on %s: %w", n.Addr(), err)
		}
		if !strings.Contains(info, "cluster_state:ok") {
			return view{}, fmt.Errorf("%s: cluster_state not ok", n.Addr())
		}
		v, err := rc.viewFrom(ctx, n)
		if err != nil {
			return view{}, err
		}
		total := 0
		for m, s := range v.masters {
			if mn := rc.node(m); mn == nil || !mn.Running() {
				return view{}, fmt.Errorf("%s sees stopped %s owning slots", n.Addr(), m)
			}
			total += s
		}
		if total != 16384 {
			return view{}, fmt.Errorf("%s sees %d slots owned", n.Addr(), total)
		}
		for _, f := range v.failing {
			if fn := rc.node(f); fn != nil && fn.Running() {
				return view{}, fmt.Errorf("%s sees running %s failing", n.Addr(), f)
			}
		}
		if first == nil {
			first = &v
		} else if v.String() != first.String() {
			return view{}, fmt.Errorf("views differ: %s sees %s; another node sees %s", n.Addr(), v, first)
		}
		if _, owns := v.masters[n.Addr()]; !owns {
			repl, err := adminDo(ctx, n, "INFO", "replication").Text()
			if err != nil {
				return view{}, err
			}
			if !strings.Contains(repl, "role:slave") || !strings.Contains(repl, "master_link_status:up") {
				return view{}, fmt.Errorf("%s is neither a master with slots nor a replica with its link up", n.Addr())
			}
		}
	}
	if first == nil {
		return view{}, errors.New("no node running")
	}
	return *first, nil
}

// WaitHealthy waits until every running node agrees the cluster is healthy
// (see healthy) or ctx ends (then at most a minute).
func (rc *ClusterRedis) WaitHealthy(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return poll(ctx, 100*time.Millisecond, "redis cluster healthy", func() error {
		_, err := rc.healthy(ctx)
		return err
	})
}

// Describe is the cluster as the running nodes agree on it, e.g. for a log
// line: "127.0.0.1:7001(5461 slots, replicas [127.0.0.1:7004]) ...".
func (rc *ClusterRedis) Describe(ctx context.Context) string {
	v, err := rc.healthy(ctx)
	if err != nil {
		return "not healthy: " + err.Error()
	}
	return v.String()
}

// Masters returns the masters that own slots, by address order.
func (rc *ClusterRedis) Masters(ctx context.Context) ([]*Redis, error) {
	v, err := rc.healthy(ctx)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	var out []*Redis
	for m := range v.masters {
		out = append(out, rc.node(m))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Port < out[j].Port })
	return out, nil
}

// ReplicaOf returns master's replica.
func (rc *ClusterRedis) ReplicaOf(ctx context.Context, master *Redis) (*Redis, error) {
	v, err := rc.healthy(ctx)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	rs := v.replicas[master.Addr()]
	if len(rs) == 0 {
		return nil, fmt.Errorf("cluster: %s has no replica (%s)", master.Addr(), v)
	}
	return rc.node(rs[0]), nil
}

// KeySlot is CLUSTER KEYSLOT name: the slot of a key or of a shard channel.
func (rc *ClusterRedis) KeySlot(ctx context.Context, name string) (int, error) {
	for _, n := range rc.Nodes {
		if !n.Running() {
			continue
		}
		s, err := adminDo(ctx, n, "CLUSTER", "KEYSLOT", name).Int()
		if err != nil {
			return 0, fmt.Errorf("cluster: CLUSTER KEYSLOT: %w", err)
		}
		return s, nil
	}
	return 0, errors.New("cluster: no node running")
}

// SlotOwner returns the master that owns slot.
func (rc *ClusterRedis) SlotOwner(ctx context.Context, slot int) (*Redis, error) {
	masters, err := rc.Masters(ctx)
	if err != nil {
		return nil, err
	}
	for _, m := range masters {
		nodes, err := clusterNodes(ctx, m)
		if err != nil {
			return nil, err
		}
		for _, ni := range nodes {
			if ni.addr != m.Addr() {
				continue
			}
			for _, r := range ni.ranges {
				lo, hi, ok := strings.Cut(r, "-")
				a, _ := strconv.Atoi(lo)
				b := a
				if ok {
					b, _ = strconv.Atoi(hi)
				}
				if slot >= a && slot <= b {
					return m, nil
				}
			}
		}
	}
	return nil, fmt.Errorf("cluster: nobody owns slot %d", slot)
}

// nodeID is n's cluster node id.
func nodeID(ctx context.Context, n *Redis) (string, error) {
	id, err := adminDo(ctx, n, "CLUSTER", "MYID").Text()
	if err != nil {
		return "", fmt.Errorf("cluster: CLUSTER MYID on %s: %w", n.Addr(), err)
	}
	return id, nil
}

// promoted waits until the running nodes agree on a healthy cluster in
// which want owns slots.
func (rc *ClusterRedis) promoted(ctx context.Context, want *Redis) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return poll(ctx, 100*time.Millisecond, want.Addr()+" promoted", func() error {
		v, err := rc.healthy(ctx)
		if err != nil {
			return err
		}
		if _, ok := v.masters[want.Addr()]; !ok {
			return fmt.Errorf("%s is not a master yet (%s)", want.Addr(), v)
		}
		return nil
	})
}

// KillMaster kills master with SIGKILL and waits until its replica took
// over (the running nodes agree on a healthy cluster with the replica a
// master). It returns the promoted replica. The killed node stays down:
// [ClusterRedis.RestartNode] brings it back as a replica.
func (rc *ClusterRedis) KillMaster(ctx context.Context, master *Redis) (*Redis, error) {
	replica, err := rc.ReplicaOf(ctx, master)
	if err != nil {
		return nil, err
	}
	master.Kill()
	if err := rc.promoted(ctx, replica); err != nil {
		return nil, err
	}
	return replica, nil
}

// RestartNode starts a stopped node again and waits until the cluster is
// healthy with it (a former master rejoins as a replica of whoever took
// over its slots).
func (rc *ClusterRedis) RestartNode(ctx context.Context, n *Redis) error {
	if err := n.Restart(ctx); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return poll(ctx, 100*time.Millisecond, n.Addr()+" rejoined", func() error {
		v, err := rc.healthy(ctx)
		if err != nil {
			return err
		}
		for _, rs := range v.replicas {
			for _, r := range rs {
				if r == n.Addr() {
					return nil
				}
			}
		}
		return fmt.Errorf("%s is not a replica yet (%s)", n.Addr(), v)
	})
}

// Failover runs CLUSTER FAILOVER on replica (a coordinated failover: its
// master stops writes until the replica caught up, so nothing is lost) and
// waits until the cluster is healthy with replica a master and its old
// master its replica.
func (rc *ClusterRedis) Failover(ctx context.Context, replica *Redis) error {
	if err := adminDo(ctx, replica, "CLUSTER", "FAILOVER").Err(); err != nil {
		return fmt.Errorf("cluster: CLUSTER FAILOVER on %s: %w", replica.Addr(), err)
	}
	return rc.promoted(ctx, replica)
}

// Pause stops master with SIGSTOP, keeps it stopped until its replica took
// over (which takes longer than cluster-node-timeout: the other masters
// must first see it fail), then resumes it with SIGCONT and waits until it
// rejoined as a replica. It returns the promoted replica.
func (rc *ClusterRedis) Pause(ctx context.Context, master *Redis) (*Redis, error) {
	replica, err := rc.ReplicaOf(ctx, master)
	if err != nil {
		return nil, err
	}
	if err := master.Signal(syscall.SIGSTOP); err != nil {
		return nil, fmt.Errorf("cluster: SIGSTOP %s: %w", master.Addr(), err)
	}
	stopped := true
	defer func() {
		if stopped {
			_ = master.Signal(syscall.SIGCONT)
		}
	}()
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	// The paused node cannot answer, so ask the others.
	err = poll(wctx, 100*time.Millisecond, replica.Addr()+" took over", func() error {
		v, err := rc.viewFrom(wctx, replica)
		if err != nil {
			return err
		}
		if _, ok := v.masters[replica.Addr()]; !ok {
			return fmt.Errorf("%s is not a master yet (%s)", replica.Addr(), v)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := master.Signal(syscall.SIGCONT); err != nil {
		return nil, fmt.Errorf("cluster: SIGCONT %s: %w", master.Addr(), err)
	}
	stopped = false
	err = poll(wctx, 100*time.Millisecond, master.Addr()+" rejoined", func() error {
		v, err := rc.healthy(wctx)
		if err != nil {
			return err
		}
		for _, r := range v.replicas[replica.Addr()] {
			if r == master.Addr() {
				return nil
			}
		}
		return fmt.Errorf("%s is not %s's replica yet (%s)", master.Addr(), replica.Addr(), v)
	})
	if err != nil {
		return nil, err
	}
	return replica, nil
}

// MigrateSlot moves slot, with its keys, from its owner to the master to
// (the procedure `redis-cli --cluster reshard` follows, for one chosen
// slot: IMPORTING on to, MIGRATING on the owner, MIGRATE the keys in
// batches, then SETSLOT NODE on every master), and waits until the cluster
// is healthy with to owning it. Moving a slot to its owner is an error.
func (rc *ClusterRedis) MigrateSlot(ctx context.Context, slot int, to *Redis) error {
	from, err := rc.SlotOwner(ctx, slot)
	if err != nil {
		return err
	}
	if from == to {
		return fmt.Errorf("cluster: slot %d is already on %s", slot, to.Addr())
	}
	fromID, err := nodeID(ctx, from)
	if err != nil {
		return err
	}
	toID, err := nodeID(ctx, to)
	if err != nil {
		return err
	}
	s := strconv.Itoa(slot)
	if err := adminDo(ctx, to, "CLUSTER", "SETSLOT", s, "IMPORTING", fromID).Err(); err != nil {
		return fmt.Errorf("cluster: SETSLOT IMPORTING on %s: %w", to.Addr(), err)
	}
	if err := adminDo(ctx, from, "CLUSTER", "SETSLOT", s, "MIGRATING", toID).Err(); err != nil {
		return fmt.Errorf("cluster: SETSLOT MIGRATING on %s: %w", from.Addr(), err)
	}
	for {
		keys, err := adminDo(ctx, from, "CLUSTER", "GETKEYSINSLOT", s, "100").StringSlice()
		if err != nil {
			return fmt.Errorf("cluster: GETKEYSINSLOT on %s: %w", from.Addr(), err)
		}
		if len(keys) == 0 {
			break
		}
		args := []any{"MIGRATE", "127.0.0.1", strconv.Itoa(to.Port), "", "0", "5000", "REPLACE", "KEYS"}
		for _, k := range keys {
			args = append(args, k)
		}
		if err := adminDo(ctx, from, args...).Err(); err != nil && !errors.Is(err, redis.Nil) {
			return fmt.Errorf("cluster: MIGRATE %d keys of slot %d: %w", len(keys), slot, err)
		}
	}
	// The new owner first, then the old one, then everyone else (as
	// redis-cli does), so no node ever points the slot back.
	masters, err := rc.mastersBestEffort(ctx)
	if err != nil {
		return err
	}
	order := []*Redis{to, from}
	for _, m := range masters {
		if m != to && m != from {
			order = append(order, m)
		}
	}
	for _, m := range order {
		if err := adminDo(ctx, m, "CLUSTER", "SETSLOT", s, "NODE", toID).Err(); err != nil {
			return fmt.Errorf("cluster: SETSLOT NODE on %s: %w", m.Addr(), err)
		}
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return poll(wctx, 100*time.Millisecond, "slot "+s+" on "+to.Addr(), func() error {
		if _, err := rc.healthy(wctx); err != nil {
			return err
		}
		owner, err := rc.SlotOwner(wctx, slot)
		if err != nil {
			return err
		}
		if owner != to {
			return fmt.Errorf("slot %s still on %s", s, owner.Addr())
		}
		return nil
	})
}

// mastersBestEffort lists the masters owning slots as the first running
// node sees them, without requiring the cluster to be healthy (during a
// migration it is, but views may briefly differ).
func (rc *ClusterRedis) mastersBestEffort(ctx context.Context) ([]*Redis, error) {
	for _, n := range rc.Nodes {
		if !n.Running() {
			continue
		}
		v, err := rc.viewFrom(ctx, n)
		if err != nil {
			return nil, err
		}
		var out []*Redis
		for m := range v.masters {
			out = append(out, rc.node(m))
		}
		return out, nil
	}
	return nil, errors.New("cluster: no node running")
}

// RandomKey returns a key some master holds (RANDOMKEY on each master in
// turn), e.g. to migrate a slot that holds data.
func (rc *ClusterRedis) RandomKey(ctx context.Context) (string, error) {
	masters, err := rc.Masters(ctx)
	if err != nil {
		return "", err
	}
	for _, m := range masters {
		k, err := adminDo(ctx, m, "RANDOMKEY").Text()
		if err == nil && k != "" {
			return k, nil
		}
	}
	return "", errors.New("cluster: no master holds a key")
}
