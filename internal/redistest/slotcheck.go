package redistest

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// SlotCheck is a go-redis hook (client.AddHook) that records every atomic
// unit a client sends and the keys it names: a Lua script (EVAL, EVALSHA,
// FCALL), a MULTI/EXEC transaction, a command naming several keys. Redis
// Cluster refuses a unit whose keys are in different hash slots
// (CROSSSLOT); a single Redis runs it. So a test that attaches a SlotCheck
// to any client, even a miniredis one, proves "one operation, one slot"
// for what it exercised. Plain pipelines are not units: they are not
// atomic, and go-redis splits them per slot on a Cluster.
//
// Its methods are safe for concurrent use.
type SlotCheck struct {
	mu    sync.Mutex
	units []SlotUnit
}

// SlotUnit is one atomic unit: its command (for a transaction, "multi"
// followed by the commands in it) and the keys it names.
type SlotUnit struct {
	Command string
	Keys    []string
}

// Slots are the distinct hash slots of the unit's keys, in key order.
func (u SlotUnit) Slots() []int {
	var out []int
	for _, k := range u.Keys {
		s := Slot(k)
		if !containsInt(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// Units returns the units recorded so far. The caller owns the slice.
func (c *SlotCheck) Units() []SlotUnit {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]SlotUnit(nil), c.units...)
}

// Violations describes every recorded unit whose keys span more than one
// hash slot; empty when every unit is Cluster-safe.
func (c *SlotCheck) Violations() []string {
	var out []string
	for _, u := range c.Units() {
		if s := u.Slots(); len(s) > 1 {
			out = append(out, fmt.Sprintf("%s touches slots %v: keys %q", u.Command, s, u.Keys))
		}
	}
	return out
}

// DialHook implements redis.Hook.
func (c *SlotCheck) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		return next(ctx, network, addr)
	}
}

// ProcessHook implements redis.Hook: a script or a multi-key command.
func (c *SlotCheck) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.single(cmd)
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook implements redis.Hook: a transaction is one unit
// (go-redis hands it to the hook wrapped in MULTI ... EXEC); in a plain
// pipeline each command is looked at alone.
func (c *SlotCheck) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) > 0 && strings.EqualFold(cmds[0].Name(), "multi") {
			u := SlotUnit{Command: "multi"}
			for _, cmd := range cmds[1:] {
				if name := strings.ToLower(cmd.Name()); name != "exec" {
					u.Command += " " + name
					u.Keys = append(u.Keys, commandKeys(cmd.Args())...)
				}
			}
			c.add(u)
		} else {
			for _, cmd := range cmds {
				c.single(cmd)
			}
		}
		return next(ctx, cmds)
	}
}

// single records cmd when it is a unit of its own: a script, or a command
// naming more than one key.
func (c *SlotCheck) single(cmd redis.Cmder) {
	name := strings.ToLower(cmd.Name())
	keys := commandKeys(cmd.Args())
	if isScript(name) || len(keys) > 1 {
		c.add(SlotUnit{Command: name, Keys: keys})
	}
}

func (c *SlotCheck) add(u SlotUnit) {
	c.mu.Lock()
	c.units = append(c.units, u)
	c.mu.Unlock()
}

func isScript(name string) bool {
	switch name {
	case "eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro":
		return true
	}
	return false
}

// commandKeys returns the keys a command names, for the commands this
// project sends (and the common multi-key ones); keyless commands name
// none, and any other command is taken to name one key, its first
// argument.
func commandKeys(args []any) []string {
	if len(args) == 0 {
		return nil
	}
	str := func(a any) string { return fmt.Sprint(a) }
	all := func(from int) []string {
		var out []string
		for _, a := range args[min(from, len(args)):] {
			out = append(out, str(a))
		}
		return out
	}
	switch name := strings.ToLower(str(args[0])); name {
	case "eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro":
		if len(args) < 3 {
			return nil
		}
		n, err := strconv.Atoi(str(args[2]))
		if err != nil || n < 0 || 3+n > len(args) {
			return nil
		}
		return all(3)[:n]
	case "del", "unlink", "exists", "mget", "touch", "watch", "sinter", "sunion", "sdiff",
		"sinterstore", "sunionstore", "sdiffstore", "pfcount", "pfmerge":
		return all(1)
	case "mset", "msetnx":
		var out []string
		for i := 1; i < len(args); i += 2 {
			out = append(out, str(args[i]))
		}
		return out
	case "rename", "renamenx", "copy", "smove", "lmove", "blmove", "rpoplpush", "brpoplpush":
		if len(args) < 3 {
			return nil
		}
		return []string{str(args[1]), str(args[2])}
	case "xread", "xreadgroup":
		for i, a := range args {
			if strings.EqualFold(str(a), "streams") {
				rest := all(i + 1)
				return rest[:len(rest)/2]
			}
		}
		return nil
	case "ping", "echo", "publish", "spublish", "subscribe", "ssubscribe", "psubscribe",
		"unsubscribe", "sunsubscribe", "punsubscribe", "pubsub", "info", "script", "cluster",
		"client", "command", "hello", "auth", "select", "multi", "exec", "discard", "flushall",
		"flushdb", "dbsize", "time", "config", "keys", "scan", "role", "readonly", "quit":
		return nil
	default:
		if len(args) < 2 {
			return nil
		}
		return []string{str(args[1])}
	}
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// CheckedCluster starts a real one-node Redis Cluster and returns a
// cluster client on it with a SlotCheck attached: the cluster refuses a
// unit spanning slots (CROSSSLOT) and the check names it. Both stop with
// the test.
func CheckedCluster(t testing.TB) (*redis.ClusterClient, *SlotCheck) {
	t.Helper()
	c := StartCluster(t, ClusterOptions{Masters: 1})
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), DialTimeout: 5 * time.Second})
	t.Cleanup(func() { _ = rdb.Close() })
	check := &SlotCheck{}
	rdb.AddHook(check)
	return rdb, check
}
