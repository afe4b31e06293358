package inbound

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Read returns consumer's claimable messages, then new ones (see
// [Consumer]). On Redis Cluster it polls the partitions every few
// milliseconds while it waits; elsewhere one XREADGROUP BLOCK waits on
// every partition. go-redis does not interrupt a blocking command when
// ctx ends, so a Read returns at the latest block after it.
func (r *Redis) Read(ctx context.Context, consumer string, count int, block time.Duration) ([]Message, error) {
	count = max(count, 1)
	out, err := r.claim(ctx, consumer, count)
	if err != nil {
		return nil, err
	}
	if len(out) > 0 {
		block = 0 // what is at hand goes out now
	}
	fresh, err := r.readNew(ctx, consumer, count, block)
	if noGroup(err) {
		if err = r.EnsureGroup(ctx); err == nil {
			fresh, err = r.readNew(ctx, consumer, count, 0)
		}
	}
	if err != nil {
		return out, err
	}
	return append(out, fresh...), nil
}

// claimEvery is how often a consumer scans the pending entries for
// messages past their visibility timeout: a fraction of the timeout, so
// a dead consumer's messages wait at most about 1.25 timeouts, and at
// most once a second, so a busy consumer does not pay a scan per read.
func (r *Redis) claimEvery() time.Duration {
	return min(max(r.cfg.VisibilityTimeout/4, 10*time.Millisecond), time.Second)
}

// claim takes over the messages pending longer than the visibility
// timeout, at most count per partition, with their delivery counts.
// Messages delivered more than MaxDeliveries times go to the dead letters.
func (r *Redis) claim(ctx context.Context, consumer string, count int) ([]Message, error) {
	now := r.now()
	r.mu.Lock()
	if last, ok := r.lastClaim[consumer]; ok && now.Sub(last) < r.claimEvery() {
		r.mu.Unlock()
		return nil, nil
	}
	r.lastClaim[consumer] = now
	cursors := append([]string(nil), r.cursors...)
	r.mu.Unlock()

	cmds := make([]*redis.XAutoClaimCmd, r.cfg.Partitions)
	_, _ = r.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for p := range cmds {
			cmds[p] = pipe.XAutoClaim(ctx, &redis.XAutoClaimArgs{Stream: partitionKey(r.cfg.Prefix, p),
				Group: r.cfg.Group, Consumer: consumer, MinIdle: r.cfg.VisibilityTimeout, Start: cursors[p], Count: int64(count)})
		}
		return nil
	})
	type claimed struct {
		p int
		m redis.XMessage
	}
	var got []claimed
	for p, c := range cmds {
		msgs, next, err := c.Result()
		if noGroup(err) {
			continue // Read's XREADGROUP recreates the group
		}
		if err != nil {
			return nil, fmt.Errorf("inbound: claim on partition %d: %w", p, err)
		}
		r.mu.Lock()
		r.cursors[p] = next
		r.mu.Unlock()
		for _, m := range msgs {
			got = append(got, claimed{p, m})
		}
	}
	if len(got) == 0 {
		return nil, nil
	}
	// A scan that found work is repeated at the next read: a backlog of
	// claimable messages drains at full speed.
	r.mu.Lock()
	delete(r.lastClaim, consumer)
	r.mu.Unlock()

	counts := make([]*redis.XPendingExtCmd, len(got))
	_, _ = r.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for i, c := range got {
			counts[i] = pipe.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: partitionKey(r.cfg.Prefix, c.p),
				Group: r.cfg.Group, Start: c.m.ID, End: c.m.ID, Count: 1, Consumer: consumer})
		}
		return nil
	})
	out := make([]Message, 0, len(got))
	for i, c := range got {
		pend, err := counts[i].Result()
		if err != nil {
			return out, fmt.Errorf("inbound: delivery count: %w", err)
		}
		if len(pend) == 0 {
			continue // acked or claimed by another consumer meanwhile
		}
		m, err := r.message(ctx, c.p, c.m, int(pend[0].RetryCount))
		if err != nil {
			return out, err
		}
		if m.Deliveries > r.cfg.MaxDeliveries {
			m.Deliveries-- // this delivery does not happen
			if err := r.DeadLetter(ctx, &m, ErrTooManyDeliveries); err != nil {
				return out, err
			}
			continue
		}
		if m.ID != "" {
			out = append(out, m)
		}
	}
	r.countRedelivered(ctx, len(out))
	return out, nil
}

// countRedelivered adds n to the queue's redelivery counter. A failure
// costs the counter, never the delivery.
func (r *Redis) countRedelivered(ctx context.Context, n int) {
	if n > 0 {
		_ = r.rdb.HIncrBy(ctx, countsKey(r.cfg.Prefix), "redelivered", int64(n)).Err()
	}
}

// readNew reads messages never delivered to the group, at most count per
// partition, waiting up to block when there are none.
func (r *Redis) readNew(ctx context.Context, consumer string, count int, block time.Duration) ([]Message, error) {
	if !r.cluster {
		streams := make([]string, 0, 2*r.cfg.Partitions)
		for p := range r.cfg.Partitions {
			streams = append(streams, partitionKey(r.cfg.Prefix, p))
		}
		for range r.cfg.Partitions {
			streams = append(streams, ">")
		}
		res, err := r.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: r.cfg.Group, Consumer: consumer,
			Streams: streams, Count: int64(count), Block: blockArg(block)}).Result()
		if errors.Is(err, redis.Nil) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("inbound: read: %w", err)
		}
		var out []Message
		for _, s := range res {
			p := r.partitionOf(s.Stream)
			for _, e := range s.Messages {
				m, err := r.message(ctx, p, e, 1)
				if err != nil {
					return out, err
				}
				if m.ID != "" {
					out = append(out, m)
				}
			}
		}
		return out, nil
	}
	deadline := time.Now().Add(block)
	for {
		out, err := r.pollNew(ctx, consumer, count)
		if err != nil || len(out) > 0 || !time.Now().Before(deadline) {
			return out, err
		}
		t := time.NewTimer(min(clusterPoll, time.Until(deadline)))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, nil
		case <-t.C:
		}
	}
}

// pollNew reads new messages from each partition without blocking, one
// pipelined XREADGROUP per partition (Redis Cluster).
func (r *Redis) pollNew(ctx context.Context, consumer string, count int) ([]Message, error) {
	cmds := make([]*redis.XStreamSliceCmd, r.cfg.Partitions)
	_, _ = r.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for p := range cmds {
			cmds[p] = pipe.XReadGroup(ctx, &redis.XReadGroupArgs{Group: r.cfg.Group, Consumer: consumer,
				Streams: []string{partitionKey(r.cfg.Prefix, p), ">"}, Count: int64(count), Block: -1})
		}
		return nil
	})
	var out []Message
	for p, c := range cmds {
		res, err := c.Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return out, fmt.Errorf("inbound: read partition %d: %w", p, err)
		}
		for _, s := range res {
			for _, e := range s.Messages {
				m, err := r.message(ctx, p, e, 1)
				if err != nil {
					return out, err
				}
				if m.ID != "" {
					out = append(out, m)
				}
			}
		}
	}
	return out, nil
}

// blockArg is go-redis's Block for a wait of d: -1 means no BLOCK (0 would
// block forever).
func blockArg(d time.Duration) time.Duration {
	if d < time.Millisecond {
		return -1
	}
	return d
}

// partitionOf maps a partition key back to its number.
func (r *Redis) partitionOf(key string) int {
	for p := range r.cfg.Partitions {
		if partitionKey(r.cfg.Prefix, p) == key {
			return p
		}
	}
	return -1
}

// message decodes entry e of partition p. An entry that is not a message
// goes to the dead letters at once and yields the zero Message.
func (r *Redis) message(ctx context.Context, p int, e redis.XMessage, deliveries int) (Message, error) {
	raw, _ := e.Values[field].(string)
	m, err := decode(raw)
	id := messageID(p, e.ID)
	if err != nil {
		bad := Message{ID: id, Deliveries: deliveries}
		if err := r.deadLetter(ctx, &bad, []byte(raw), err); err != nil {
			return Message{}, err
		}
		return Message{}, nil
	}
	m.ID, m.Deliveries = id, deliveries
	return m, nil
}
