package redistest

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// ClusterOptions shapes a [Cluster]. Zero fields take their defaults.
type ClusterOptions struct {
	// Masters is the number of masters; the 16384 slots are split evenly
	// between them. Defaults to 3.
	Masters int
	// Replicas is the number of replicas per master. Defaults to 0.
	Replicas int
	// NodeTimeout is cluster-node-timeout: how long a node may be
	// unreachable before it is failed over. Defaults to 2s.
	NodeTimeout time.Duration
	// Extra are more redis-server config lines for every node.
	Extra []string
}

// clusterWait bounds every wait of the cluster helper (healthy, a
// failover, a migration): a hang detector, far beyond what a loaded
// machine needs.
const clusterWait = 60 * time.Second

// Node is one redis-server of a [Cluster]. Its ID is the cluster node id,
// kept across Restart (nodes.conf stays in its directory).
type Node struct {
	*Server
	ID string

	mu      sync.Mutex
	down    bool // killed and not restarted
	stopped bool // SIGSTOPped and not continued
}

// NodeInfo is a node as the cluster sees it at one moment.
type NodeInfo struct {
	Node *Node
	// Master is true for a master, false for a replica.
	Master bool
	// MasterID is the id of a replica's master; "" for a master.
	MasterID string
	// Slots are the slot ranges a master serves ([lo, hi] pairs).
	Slots [][2]int
}

// Cluster is a real Redis Cluster of redis-server processes owned by a
// test, stopped by t.Cleanup. Its methods may be called from the test
// goroutine only.
type Cluster struct {
	t     testing.TB
	opts  ClusterOptions
	args  []string
	nodes []*Node
	// clients holds one plain client per node address.
	clients map[string]*redis.Client
}

// StartCluster starts Masters*(1+Replicas) redis-server processes in
// cluster mode on free ports, splits the slots evenly over the masters,
// attaches the replicas, and returns once every node reports
// cluster_state:ok, every node agrees on the slot owners and every
// replica is in sync with its master.
func StartCluster(t testing.TB, opts ClusterOptions) *Cluster {
	t.Helper()
	if opts.Masters <= 0 {
		opts.Masters = 3
	}
	if opts.Replicas < 0 {
		opts.Replicas = 0
	}
	if opts.NodeTimeout <= 0 {
		opts.NodeTimeout = 2 * time.Second
	}
	c := &Cluster{t: t, opts: opts}
	c.args = append([]string{
		"--cluster-enabled", "yes",
		"--cluster-config-file", "nodes.conf",
		"--cluster-node-timeout", strconv.FormatInt(opts.NodeTimeout.Milliseconds(), 10),
		// A replica may always be promoted, however long it was cut off.
		"--cluster-replica-validity-factor", "0",
		// Replicas sync at once, without the default 5 s wait.
		"--repl-diskless-sync", "yes",
		"--repl-diskless-sync-delay", "0",
	}, opts.Extra...)
	n := opts.Masters * (1 + opts.Replicas)
	for i := 0; i < n; i++ {
		srv := Start(t, c.args...)
		id, err := c.str(srv.Addr(), "cluster", "myid")
		if err != nil {
			t.Fatalf("redistest: cluster myid: %v", err)
		}
		// Distinct epochs up front, as redis-cli --cluster create does, so
		// that no epoch collision has to be resolved first.
		if err := c.ok(srv.Addr(), "cluster", "set-config-epoch", i+1); err != nil {
			t.Fatalf("redistest: set-config-epoch: %v", err)
		}
		c.nodes = append(c.nodes, &Node{Server: srv, ID: id})
	}
	per := 16384 / opts.Masters
	for i := 0; i < opts.Masters; i++ {
		lo, hi := i*per, (i+1)*per-1
		if i == opts.Masters-1 {
			hi = 16383
		}
		if err := c.ok(c.nodes[i].Addr(), "cluster", "addslotsrange", lo, hi); err != nil {
			t.Fatalf("redistest: addslotsrange: %v", err)
		}
	}
	for _, nd := range c.nodes[1:] {
		if err := c.ok(nd.Addr(), "cluster", "meet", "127.0.0.1", c.nodes[0].Port()); err != nil {
			t.Fatalf("redistest: cluster meet: %v", err)
		}
	}
	c.eventually("every node to know every other", func() error {
		for _, nd := range c.nodes {
			infos, err := c.view(nd)
			if err != nil {
				return err
			}
			if len(infos) != n {
				return fmt.Errorf("%s knows %d of %d nodes", nd.Addr(), len(infos), n)
			}
		}
		return nil
	})
	for i, nd := range c.nodes[opts.Masters:] {
		master := c.nodes[i%opts.Masters]
		if err := c.ok(nd.Addr(), "cluster", "replicate", master.ID); err != nil {
			t.Fatalf("redistest: cluster replicate: %v", err)
		}
	}
	c.WaitHealthy()
	return c
}

// Nodes returns every node of the cluster, in start order.
func (c *Cluster) Nodes() []*Node { return append([]*Node(nil), c.nodes...) }

// Addrs returns the address of every node, in start order: seed
// addresses for a cluster client.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.Addr()
	}
	return out
}

// Addr is the address of the first node.
func (c *Cluster) Addr() string { return c.nodes[0].Addr() }

// Topology returns every running node with its role, as a running node
// that is in the majority's view sees it.
func (c *Cluster) Topology() []NodeInfo {
	c.t.Helper()
	var last error
	for _, n := range c.nodes {
		if !n.running() {
			continue
		}
		infos, err := c.view(n)
		if err != nil {
			last = err
			continue
		}
		return infos
	}
	c.t.Fatalf("redistest: no node answers CLUSTER NODES: %v", last)
	return nil
}

// Masters returns the running masters.
func (c *Cluster) Masters() []*Node {
	var out []*Node
	for _, i := range c.Topology() {
		if i.Master && i.Node.running() {
			out = append(out, i.Node)
		}
	}
	return out
}

// ReplicasOf returns the running replicas of master m.
func (c *Cluster) ReplicasOf(m *Node) []*Node {
	var out []*Node
	for _, i := range c.Topology() {
		if !i.Master && i.MasterID == m.ID && i.Node.running() {
			out = append(out, i.Node)
		}
	}
	return out
}

// MasterOfSlot returns the master serving slot.
func (c *Cluster) MasterOfSlot(slot int) *Node {
	c.t.Helper()
	for _, i := range c.Topology() {
		for _, r := range i.Slots {
			if i.Master && slot >= r[0] && slot <= r[1] {
				return i.Node
			}
		}
	}
	c.t.Fatalf("redistest: no master serves slot %d", slot)
	return nil
}

// MasterOfKey returns the master serving key's slot (a shard channel's
// name is hashed like a key).
func (c *Cluster) MasterOfKey(key string) *Node { return c.MasterOfSlot(Slot(key)) }

// Kill kills n with SIGKILL (kill -9) and waits for it to exit.
func (c *Cluster) Kill(n *Node) {
	n.mu.Lock()
	n.down, n.stopped = true, false
	n.mu.Unlock()
	n.Stop()
}

// Restart starts a killed node again on its port, with its node id (its
// nodes.conf is kept) and no data: a master that was failed over meanwhile
// comes back as a replica. It does not wait for the cluster to be healthy.
func (c *Cluster) Restart(n *Node) {
	c.t.Helper()
	n.Restart(c.args...)
	n.mu.Lock()
	n.down, n.stopped = false, false
	n.mu.Unlock()
}

// Pause stops n with SIGSTOP: the process holds its sockets and answers
// nothing, like a hung host.
func (c *Cluster) Pause(n *Node) { c.signal(n, syscall.SIGSTOP, true) }

// Cont resumes a node stopped by Pause with SIGCONT.
func (c *Cluster) Cont(n *Node) { c.signal(n, syscall.SIGCONT, false) }

func (c *Cluster) signal(n *Node, sig syscall.Signal, stopped bool) {
	c.t.Helper()
	n.Server.mu.Lock()
	cmd := n.Server.cmd
	n.Server.mu.Unlock()
	if cmd == nil {
		c.t.Fatalf("redistest: signal %v: node %s is not running", sig, n.Addr())
	}
	if err := cmd.Process.Signal(sig); err != nil {
		c.t.Fatalf("redistest: signal %v to %s: %v", sig, n.Addr(), err)
	}
	n.mu.Lock()
	n.stopped = stopped
	n.mu.Unlock()
}

// Failover runs CLUSTER FAILOVER on replica (a manual failover, agreed
// with its master) and waits until replica is a master in its own view.
func (c *Cluster) Failover(replica *Node) {
	c.t.Helper()
	if err := c.ok(replica.Addr(), "cluster", "failover"); err != nil {
		c.t.Fatalf("redistest: cluster failover on %s: %v", replica.Addr(), err)
	}
	c.eventually("the replica to be promoted", func() error {
		role, err := c.str(replica.Addr(), "role")
		if err != nil {
			return err
		}
		if role != "master" {
			return fmt.Errorf("%s is still a %s", replica.Addr(), role)
		}
		return nil
	})
}

// MoveSlot migrates slot, with its keys, to master to: SETSLOT IMPORTING
// on the target, MIGRATING on the source, MIGRATE of every key, then
// SETSLOT NODE on the target, the source and every other master, as
// redis-cli --cluster reshard does. It waits until every node agrees.
func (c *Cluster) MoveSlot(slot int, to *Node) {
	c.t.Helper()
	from := c.MasterOfSlot(slot)
	if from == to {
		return
	}
	step := func(addr string, args ...any) {
		c.t.Helper()
		if err := c.ok(addr, args...); err != nil {
			c.t.Fatalf("redistest: move slot %d: %v on %s: %v", slot, args, addr, err)
		}
	}
	step(to.Addr(), "cluster", "setslot", slot, "importing", from.ID)
	step(from.Addr(), "cluster", "setslot", slot, "migrating", to.ID)
	for {
		keys, err := c.client(from.Addr()).ClusterGetKeysInSlot(context.Background(), slot, 100).Result()
		if err != nil {
			c.t.Fatalf("redistest: getkeysinslot %d: %v", slot, err)
		}
		if len(keys) == 0 {
			break
		}
		args := []any{"migrate", "127.0.0.1", to.Port(), "", 0, 5000, "replace", "keys"}
		for _, k := range keys {
			args = append(args, k)
		}
		step(from.Addr(), args...)
	}
	step(to.Addr(), "cluster", "setslot", slot, "node", to.ID)
	step(from.Addr(), "cluster", "setslot", slot, "node", to.ID)
	for _, m := range c.Masters() {
		if m != to && m != from {
			step(m.Addr(), "cluster", "setslot", slot, "node", to.ID)
		}
	}
	c.eventually(fmt.Sprintf("every node to see slot %d on %s", slot, to.Addr()), func() error {
		for _, n := range c.nodes {
			if !n.running() {
				continue
			}
			infos, err := c.view(n)
			if err != nil {
				return err
			}
			if owner := ownerOf(infos, slot); owner != to.ID {
				return fmt.Errorf("%s sees slot %d on %s", n.Addr(), slot, owner)
			}
		}
		return nil
	})
}

// WaitHealthy waits until every running node reports cluster_state:ok,
// the running nodes agree on who serves which slot and see no running
// node failing, and every running replica is in sync with its master.
func (c *Cluster) WaitHealthy() {
	c.t.Helper()
	c.eventually("the cluster to be healthy", c.healthy)
}

func (c *Cluster) healthy() error {
	ctx := context.Background()
	var sig string
	for _, n := range c.nodes {
		if !n.running() {
			continue
		}
		info, err := c.client(n.Addr()).ClusterInfo(ctx).Result()
		if err != nil {
			return err
		}
		if !strings.Contains(info, "cluster_state:ok") {
			return fmt.Errorf("%s: cluster_state not ok", n.Addr())
		}
		infos, err := c.view(n)
		if err != nil {
			return err
		}
		s := slotSignature(infos)
		if sig != "" && s != sig {
			return fmt.Errorf("%s disagrees on the roles or the slot owners", n.Addr())
		}
		sig = s
		raw, err := c.client(n.Addr()).ClusterNodes(ctx).Result()
		if err != nil {
			return err
		}
		for _, line := range strings.Split(strings.TrimSpace(raw), "\n") {
			f := strings.Fields(line)
			if len(f) < 3 {
				continue
			}
			if other := c.byID(f[0]); other != nil && other.running() &&
				(strings.Contains(f[2], "fail") || strings.Contains(f[2], "handshake")) {
				return fmt.Errorf("%s sees %s as %s", n.Addr(), other.Addr(), f[2])
			}
		}
		repl, err := c.client(n.Addr()).Info(ctx, "replication").Result()
		if err != nil {
			return err
		}
		if strings.Contains(repl, "role:slave") &&
			(!strings.Contains(repl, "master_link_status:up") || !strings.Contains(repl, "master_sync_in_progress:0")) {
			return fmt.Errorf("replica %s not in sync", n.Addr())
		}
	}
	if sig == "" {
		return fmt.Errorf("no node is running")
	}
	return nil
}

// view parses CLUSTER NODES as n sees it. Only nodes of this cluster
// count (a node may briefly know a handshake id).
func (c *Cluster) view(n *Node) ([]NodeInfo, error) {
	raw, err := c.client(n.Addr()).ClusterNodes(context.Background()).Result()
	if err != nil {
		return nil, err
	}
	var out []NodeInfo
	for _, line := range strings.Split(strings.TrimSpace(raw), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		nd := c.byID(f[0])
		if nd == nil || strings.Contains(f[2], "handshake") {
			continue
		}
		info := NodeInfo{Node: nd, Master: strings.Contains(f[2], "master")}
		if !info.Master {
			info.MasterID = f[3]
		}
		for _, s := range f[8:] {
			if strings.HasPrefix(s, "[") { // a migration in progress, not ownership
				continue
			}
			lo, hi, found := strings.Cut(s, "-")
			if !found {
				hi = lo
			}
			l, err1 := strconv.Atoi(lo)
			h, err2 := strconv.Atoi(hi)
			if err1 == nil && err2 == nil {
				info.Slots = append(info.Slots, [2]int{l, h})
			}
		}
		out = append(out, info)
	}
	return out, nil
}

func (c *Cluster) byID(id string) *Node {
	for _, n := range c.nodes {
		if n.ID == id {
			return n
		}
	}
	return nil
}

// ownerOf returns the id of the master serving slot in infos, or "".
func ownerOf(infos []NodeInfo, slot int) string {
	for _, i := range infos {
		for _, r := range i.Slots {
			if i.Master && slot >= r[0] && slot <= r[1] {
				return i.Node.ID
			}
		}
	}
	return ""
}

// slotSignature is a comparable summary of who serves which slots and
// which node replicates which, as one node sees it.
func slotSignature(infos []NodeInfo) string {
	var b strings.Builder
	for _, i := range infos {
		if !i.Node.running() {
			continue
		}
		fmt.Fprintf(&b, "%s:%v:%s:%v;", i.Node.ID, i.Master, i.MasterID, i.Slots)
	}
	parts := strings.Split(b.String(), ";")
	slices.Sort(parts)
	return strings.Join(parts, ";")
}

// running reports whether n is neither killed nor paused.
func (n *Node) running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return !n.down && !n.stopped
}

// client returns the plain client of one node (no cluster redirections,
// no retries), made on first use and closed when the test ends.
func (c *Cluster) client(addr string) *redis.Client {
	if rdb, ok := c.clients[addr]; ok {
		return rdb
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: time.Second,
		ReadTimeout: 3 * time.Second, WriteTimeout: 3 * time.Second, MaxRetries: -1, PoolSize: 2})
	if c.clients == nil {
		c.clients = map[string]*redis.Client{}
	}
	c.clients[addr] = rdb
	c.t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// str runs one command on addr and returns its reply as a string (the
// first element of an array reply, as ROLE returns).
func (c *Cluster) str(addr string, args ...any) (string, error) {
	v, err := c.client(addr).Do(context.Background(), args...).Result()
	if err != nil {
		return "", err
	}
	switch v := v.(type) {
	case string:
		return v, nil
	case []any:
		if len(v) > 0 {
			return fmt.Sprint(v[0]), nil
		}
	}
	return fmt.Sprint(v), nil
}

// ok runs one command on addr and returns its error.
func (c *Cluster) ok(addr string, args ...any) error {
	return c.client(addr).Do(context.Background(), args...).Err()
}

// eventually fails the test unless cond returns nil within clusterWait.
func (c *Cluster) eventually(what string, cond func() error) {
	c.t.Helper()
	deadline := time.Now().Add(clusterWait)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("redistest: timed out waiting for %s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Slot is the Redis Cluster hash slot of key: CRC16 (XMODEM) of the key,
// or of its hash tag (the part between the first "{" and the next "}", if
// not empty), mod 16384.
func Slot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	var crc uint16
	for k := 0; k < len(key); k++ {
		crc ^= uint16(key[k]) << 8
		for b := 0; b < 8; b++ {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc) % 16384
}
