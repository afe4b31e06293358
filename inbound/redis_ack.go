package inbound

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// Ack acks and deletes the messages ids (XACK and XDEL in one MULTI per
// partition), so a partition's length counts only what is not done.
func (r *Redis) Ack(ctx context.Context, ids ...string) error {
	byPart := map[int][]string{}
	for _, id := range ids {
		p, e, err := parseID(id, r.cfg.Partitions)
		if err != nil {
			return err
		}
		byPart[p] = append(byPart[p], e)
	}
	for p, entries := range byPart {
		key := partitionKey(r.cfg.Prefix, p)
		_, err := r.rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
			pipe.XAck(ctx, key, r.cfg.Group, entries...)
			pipe.XDel(ctx, key, entries...)
			return nil
		})
		if err != nil && !noGroup(err) {
			return fmt.Errorf("inbound: ack: %w", err)
		}
	}
	return nil
}

// Extend restarts m's visibility timeout for consumer.
func (r *Redis) Extend(ctx context.Context, consumer string, m *Message) error {
	_, err := r.touch(ctx, consumer, m, 0, 0)
	return err
}

// Retry counts another delivery of m to consumer.
func (r *Redis) Retry(ctx context.Context, consumer string, m *Message) error {
	n, err := r.touch(ctx, consumer, m, 1, 0)
	if err == nil {
		m.Deliveries = n
		r.countRedelivered(ctx, 1)
	}
	return err
}

// Release makes ms claimable at once, uncounting their last delivery.
func (r *Redis) Release(ctx context.Context, consumer string, ms []Message) error {
	for i := range ms {
		if _, err := r.touch(ctx, consumer, &ms[i], -1, r.cfg.VisibilityTimeout.Milliseconds()); err != nil && !errors.Is(err, ErrNotHeld) {
			return err
		}
	}
	return nil
}

// touch runs touchScript on m for consumer and returns the new count.
func (r *Redis) touch(ctx context.Context, consumer string, m *Message, delta int, idleMS int64) (int, error) {
	p, e, err := parseID(m.ID, r.cfg.Partitions)
	if err != nil {
		return 0, err
	}
	n, err := touchScript.Run(ctx, r.rdb, []string{partitionKey(r.cfg.Prefix, p)},
		r.cfg.Group, consumer, e, delta, idleMS).Int()
	if noGroup(err) {
		return 0, fmt.Errorf("%w: %s (the group is gone)", ErrNotHeld, m.ID)
	}
	if err != nil {
		return 0, fmt.Errorf("inbound: touch: %w", err)
	}
	if n < 0 {
		return 0, fmt.Errorf("%w: %s", ErrNotHeld, m.ID)
	}
	return n, nil
}

// Dead-letter entry fields besides the message.
const (
	deadError      = "error"
	deadDeliveries = "deliveries"
	deadFailed     = "failed" // Unix milliseconds
)

// DeadLetter writes m to the dead letters with cause, then acks it.
func (r *Redis) DeadLetter(ctx context.Context, m *Message, cause error) error {
	b, err := encode(*m)
	if err != nil {
		return err
	}
	return r.deadLetter(ctx, m, b, cause)
}

// deadLetter writes the encoded message b (m's, or a malformed entry's
// raw bytes) to the dead letters with cause, then acks m.
func (r *Redis) deadLetter(ctx context.Context, m *Message, b []byte, cause error) error {
	msg := "unknown error"
	if cause != nil {
		msg = cause.Error()
	}
	err := r.rdb.XAdd(ctx, &redis.XAddArgs{Stream: deadKey(r.cfg.Prefix), Values: []any{
		field, b, "id", m.ID, deadError, msg, deadDeliveries, m.Deliveries, deadFailed, r.now().UnixMilli(),
	}}).Err()
	if err != nil {
		return fmt.Errorf("inbound: dead letter: %w", err)
	}
	return r.Ack(ctx, m.ID)
}

// deadLetterOf decodes a dead-letter entry.
func deadLetterOf(e redis.XMessage) DeadLetter {
	str := func(k string) string { s, _ := e.Values[k].(string); return s }
	d := DeadLetter{ID: e.ID, Error: str(deadError)}
	if m, err := decode(str(field)); err == nil {
		d.Message = m
	}
	d.Message.ID = str("id")
	d.Deliveries, _ = strconv.Atoi(str(deadDeliveries))
	d.Message.Deliveries = d.Deliveries
	if ms, err := strconv.ParseInt(str(deadFailed), 10, 64); err == nil {
		d.Failed = unixMilli(ms)
	}
	return d
}
