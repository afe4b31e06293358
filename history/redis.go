package history

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/sessiongate/internal/redisbatch"
)

// Redis is the history kept in Redis: one Redis Stream and one hash per
// stream (see docs/HISTORY.md). Its methods are safe for concurrent use;
// it starts no goroutine and holds nothing to close (the client is the
// caller's).
type Redis struct {
	rdb   redis.UniversalClient
	batch *redisbatch.Batcher // Positions of concurrent handshakes share round trips
	cfg   Config
	s     scripts
}

// NewRedis returns the history kept in Redis through rdb.
func NewRedis(rdb redis.UniversalClient, cfg Config) *Redis {
	return &Redis{rdb: rdb, batch: redisbatch.New(rdb, redisbatch.Config{}), cfg: cfg.withDefaults(), s: newScripts()}
}

// ttlMillis is the TTL in whole milliseconds, at least 1.
func (r *Redis) ttlMillis() int64 { return max(r.cfg.TTL.Milliseconds(), 1) }

// Append appends data to stream and, when channel is not empty, publishes
// its live envelope ([EncodeLive]) on channel in the same atomic step. It
// returns the event's position. With history off it only publishes, with
// the zero Position.
//
// On Redis Cluster the script's keys are in the stream's slot; the channel
// may be any: a classic PUBLISH from a script is not bound to the slot and
// reaches subscribers on every node. With Config.Shards set, a user
// stream's event goes out with SPUBLISH on its shard channel instead
// (channel + ":{n}", see [keyspace]), whose slot is the slot of the
// stream's keys: Redis refuses a script's SPUBLISH to a channel another
// node serves ("non local key"), and a channel in another slot of the same
// node would break when one of the two slots migrates.
func (r *Redis) Append(ctx context.Context, stream string, data []byte, channel string) (Position, error) {
	if err := checkStream(stream); err != nil {
		return Position{}, err
	}
	ks := r.keys(stream)
	publish := "p"
	if channel != "" && ks.sharded {
		channel, publish = ks.channel(channel), "s"
	}
	if r.cfg.Off() {
		if channel == "" {
			return Position{}, nil
		}
		live := EncodeLive(stream, Position{}, data)
		cmd := r.rdb.Publish(ctx, channel, live)
		if publish == "s" {
			cmd = r.rdb.SPublish(ctx, channel, live)
		}
		if err := cmd.Err(); err != nil {
			return Position{}, fmt.Errorf("history: publish: %w", err)
		}
		return Position{}, nil
	}
	v, err := run(ctx, r.rdb, r.s.append, []string{ks.stream, ks.meta},
		newEpoch(), r.cfg.Size, r.ttlMillis(), data, channel, stream, publish)
	if err != nil {
		return Position{}, fmt.Errorf("history: append: %w", err)
	}
	return parsePosition(v)
}

// Position returns stream's current position: its epoch and last offset.
// A stream that does not exist is created (an epoch, offset 0, the TTL),
// so every position a client is given names a real epoch and a history
// lost later is detected. With history off it returns the zero Position.
func (r *Redis) Position(ctx context.Context, stream string) (Position, error) {
	if err := checkStream(stream); err != nil {
		return Position{}, err
	}
	if r.cfg.Off() {
		return Position{}, nil
	}
	ks := r.keys(stream)
	v, err := run(ctx, r.rdb, r.s.position, []string{ks.stream, ks.meta}, newEpoch(), r.ttlMillis())
	if err != nil {
		return Position{}, fmt.Errorf("history: position: %w", err)
	}
	return parsePosition(v)
}

// Since returns the events of stream after pos, at most limit of them, in
// one MULTI/EXEC (HMGET of the hash, XRANGE of the stream), so the epoch
// and the events are read at one instant. A position that cannot be
// recovered is a Result with Recovered false, not an error. It never
// creates the stream. With history off Recovered is always false.
func (r *Redis) Since(ctx context.Context, stream string, pos Position, limit int) (Result, error) {
	if err := checkStream(stream); err != nil {
		return Result{}, err
	}
	if err := checkLimit(limit); err != nil {
		return Result{}, err
	}
	if r.cfg.Off() {
		return Result{}, nil
	}
	ks := r.keys(stream)
	var meta *redis.SliceCmd
	var xr *redis.XMessageSliceCmd
	_, err := r.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		meta = p.HMGet(ctx, ks.meta, "e", "o")
		start := "0" // offset 0 cannot be an entry: nothing is missing below 1
		if pos.Offset < 1<<63 {
			start = strconv.FormatUint(pos.Offset+1, 10)
		}
		xr = p.XRangeN(ctx, ks.stream, start, "+", int64(limit))
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return Result{}, fmt.Errorf("history: since: %w", err)
	}
	cur, err := metaPosition(meta.Val())
	if err != nil {
		return Result{}, err
	}
	kept := make([]Event, 0, len(xr.Val()))
	for _, m := range xr.Val() {
		off, err := entryOffset(m.ID)
		if err != nil {
			return Result{}, err
		}
		d, _ := m.Values["d"].(string)
		kept = append(kept, Event{Offset: off, Data: []byte(d)})
	}
	return recoverFrom(pos, cur, kept), nil
}

// metaPosition is the position in a hash's HMGET e o reply; the zero
// Position when the hash does not exist.
func metaPosition(v []any) (Position, error) {
	if len(v) != 2 || v[0] == nil {
		return Position{}, nil
	}
	e, ok1 := v[0].(string)
	o, ok2 := v[1].(string)
	off, err := strconv.ParseUint(o, 10, 64)
	if !ok1 || !ok2 || err != nil || e == "" {
		return Position{}, fmt.Errorf("%w: stream hash %q", ErrUnexpectedReply, v)
	}
	return Position{Epoch: e, Offset: off}, nil
}

// entryOffset is the offset of a stream entry ID "<offset>-0".
func entryOffset(id string) (uint64, error) {
	ms, seq, ok := strings.Cut(id, "-")
	off, err := strconv.ParseUint(ms, 10, 64)
	if !ok || seq != "0" || err != nil || off == 0 {
		return 0, fmt.Errorf("%w: stream entry id %q", ErrUnexpectedReply, id)
	}
	return off, nil
}

// parsePosition is the position in a script's {epoch, offset} reply.
func parsePosition(v any) (Position, error) {
	a, ok := v.([]any)
	if !ok || len(a) != 2 {
		return Position{}, fmt.Errorf("%w: %v", ErrUnexpectedReply, v)
	}
	e, ok1 := a[0].(string)
	o, ok2 := a[1].(int64)
	if !ok1 || !ok2 || e == "" || o < 0 {
		return Position{}, fmt.Errorf("%w: %v", ErrUnexpectedReply, v)
	}
	return Position{Epoch: e, Offset: uint64(o)}, nil
}
