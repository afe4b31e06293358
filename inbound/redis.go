package inbound

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is the queue kept in Redis Streams: one stream per partition,
// read through a consumer group, and a stream of dead letters (see
// docs/INBOUND.md). Its methods are safe for concurrent use; it starts no
// goroutine and holds nothing to close (the client is the caller's). It
// implements [Producer], [Consumer] and [Admin].
type Redis struct {
	rdb     redis.UniversalClient
	cfg     Config
	cluster bool // XREADGROUP cannot span partitions: poll them one by one
	now     func() time.Time

	mu        sync.Mutex
	cursors   []string             // XAUTOCLAIM cursor per partition
	lastClaim map[string]time.Time // per consumer: when Read last claimed
}

// clusterPoll is how often a Read on Redis Cluster polls the partitions
// while it waits for new messages: XREADGROUP BLOCK can wait on several
// streams only when they are in one slot, and partitions are not.
const clusterPoll = 20 * time.Millisecond

// NewRedis returns the queue kept in Redis through rdb.
func NewRedis(rdb redis.UniversalClient, cfg Config) *Redis {
	cfg = cfg.withDefaults()
	_, cluster := rdb.(*redis.ClusterClient)
	cursors := make([]string, cfg.Partitions)
	for i := range cursors {
		cursors[i] = "0-0"
	}
	return &Redis{rdb: rdb, cfg: cfg, cluster: cluster, now: time.Now,
		cursors: cursors, lastClaim: map[string]time.Time{}}
}

// Config returns the queue's configuration, defaults applied.
func (r *Redis) Config() Config { return r.cfg }

// Enqueue appends m to the partition of m.UserID (one atomic script: the
// length check and the XADD) and returns its ID. It implements [Producer].
func (r *Redis) Enqueue(ctx context.Context, m Message) (string, error) {
	p := Partition(m.UserID, r.cfg.Partitions)
	b, err := encode(m)
	if err != nil {
		return "", err
	}
	return r.add(ctx, p, b)
}

// add appends an encoded message to partition p unless it is full.
func (r *Redis) add(ctx context.Context, p int, b []byte) (string, error) {
	v, err := enqueueScript.Run(ctx, r.rdb, []string{partitionKey(r.cfg.Prefix, p)}, r.cfg.MaxLen, b).Result()
	if errors.Is(err, redis.Nil) {
		return "", fmt.Errorf("%w: partition %d holds %d messages", ErrFull, p, r.cfg.MaxLen)
	}
	if err != nil {
		return "", fmt.Errorf("inbound: enqueue: %w", err)
	}
	id, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("inbound: enqueue: unexpected reply %T", v)
	}
	return messageID(p, id), nil
}

// EnsureGroup creates the group on every partition that lacks it,
// creating the partition's stream if needed. Safe to call from every
// worker at every start.
func (r *Redis) EnsureGroup(ctx context.Context) error {
	cmds := make([]*redis.StatusCmd, r.cfg.Partitions)
	_, _ = r.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for p := range cmds {
			cmds[p] = pipe.XGroupCreateMkStream(ctx, partitionKey(r.cfg.Prefix, p), r.cfg.Group, "0")
		}
		return nil
	})
	for p, c := range cmds {
		if err := c.Err(); err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
			return fmt.Errorf("inbound: create group on partition %d: %w", p, err)
		}
	}
	return nil
}

// noGroup reports whether err says the group (or its stream) is gone,
// e.g. after a FLUSHALL: EnsureGroup brings it back.
func noGroup(err error) bool {
	return err != nil && strings.Contains(err.Error(), "NOGROUP")
}
