package inbound

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Stats reads every partition's length and group figures (XLEN, XINFO
// GROUPS) and the number of dead letters, in one pipeline.
func (r *Redis) Stats(ctx context.Context) (Stats, error) {
	lens := make([]*redis.IntCmd, r.cfg.Partitions)
	groups := make([]*redis.XInfoGroupsCmd, r.cfg.Partitions)
	var dead *redis.IntCmd
	var redelivered *redis.StringCmd
	_, _ = r.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for p := range lens {
			key := partitionKey(r.cfg.Prefix, p)
			lens[p] = pipe.XLen(ctx, key)
			groups[p] = pipe.XInfoGroups(ctx, key)
		}
		dead = pipe.XLen(ctx, deadKey(r.cfg.Prefix))
		redelivered = pipe.HGet(ctx, countsKey(r.cfg.Prefix), "redelivered")
		return nil
	})
	s := Stats{Partitions: make([]PartitionStats, r.cfg.Partitions)}
	for p := range lens {
		n, err := lens[p].Result()
		if err != nil {
			return Stats{}, fmt.Errorf("inbound: stats: %w", err)
		}
		ps := PartitionStats{Partition: p, Length: n, Lag: n} // no group yet: nothing read
		gs, err := groups[p].Result()
		if err != nil && !strings.Contains(err.Error(), "no such key") {
			return Stats{}, fmt.Errorf("inbound: stats: %w", err)
		}
		for _, g := range gs {
			if g.Name == r.cfg.Group {
				ps.Pending, ps.Lag = g.Pending, g.Lag
			}
		}
		s.Partitions[p] = ps
	}
	var err error
	if s.Dead, err = dead.Result(); err != nil {
		return Stats{}, fmt.Errorf("inbound: stats: %w", err)
	}
	if s.Redelivered, err = redelivered.Int64(); err != nil && !errors.Is(err, redis.Nil) {
		return Stats{}, fmt.Errorf("inbound: stats: %w", err)
	}
	s.total()
	return s, nil
}

// DeadLetters lists dead letters after the id after, oldest first.
func (r *Redis) DeadLetters(ctx context.Context, after string, count int) ([]DeadLetter, error) {
	start := "-"
	if after != "" {
		if !validEntryID(after) {
			return nil, fmt.Errorf("%w: %.80q", ErrBadID, after)
		}
		start = "(" + after
	}
	es, err := r.rdb.XRangeN(ctx, deadKey(r.cfg.Prefix), start, "+", int64(max(count, 1))).Result()
	if err != nil {
		return nil, fmt.Errorf("inbound: dead letters: %w", err)
	}
	out := make([]DeadLetter, len(es))
	for i, e := range es {
		out[i] = deadLetterOf(e)
	}
	return out, nil
}

// Redrive queues dead letters again (see [Admin]). Each is appended to
// its partition before it is removed from the dead letters: a failure in
// between leaves it in both, never in neither.
func (r *Redis) Redrive(ctx context.Context, ids ...string) (int, error) {
	for _, id := range ids {
		if !validEntryID(id) {
			return 0, fmt.Errorf("%w: %.80q", ErrBadID, id)
		}
	}
	n := 0
	for _, id := range ids {
		es, err := r.rdb.XRange(ctx, deadKey(r.cfg.Prefix), id, id).Result()
		if err != nil {
			return n, fmt.Errorf("inbound: redrive: %w", err)
		}
		if len(es) == 0 {
			continue
		}
		raw, _ := es[0].Values[field].(string)
		m, err := decode(raw)
		if err != nil {
			return n, fmt.Errorf("inbound: redrive %s: %w", id, err)
		}
		if _, err := r.Enqueue(ctx, m); err != nil {
			return n, err
		}
		if err := r.rdb.XDel(ctx, deadKey(r.cfg.Prefix), id).Err(); err != nil {
			return n, fmt.Errorf("inbound: redrive: %w", err)
		}
		n++
	}
	return n, nil
}

// unixMilli is the time of ms milliseconds since the epoch, in UTC.
func unixMilli(ms int64) time.Time { return time.UnixMilli(ms).UTC() }
