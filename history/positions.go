package history

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/sessiongate/internal/redisbatch"
)

// Positions returns the current position of each stream, in order, like
// [Redis.Position] for each (a stream that does not exist is created), in
// one pipelined round trip: a WebSocket welcome needs the user's stream
// and the broadcast stream. When the server lacks the script (after a
// restart or SCRIPT FLUSH) it falls back to one Position per stream, which
// loads it. With history off it returns zero Positions without a call.
func (r *Redis) Positions(ctx context.Context, streams ...string) ([]Position, error) {
	out := make([]Position, len(streams))
	for _, s := range streams {
		if err := checkStream(s); err != nil {
			return nil, err
		}
	}
	if r.cfg.Off() || len(streams) == 0 {
		return out, nil
	}
	// Every new connection asks for its positions: through the batcher,
	// concurrent handshakes share round trips.
	cmds := make([]*redis.Cmd, len(streams))
	batch := make([]redis.Cmder, len(streams))
	for i, s := range streams {
		ks := r.keys(s)
		cmds[i] = redisbatch.EvalSha(ctx, r.s.position, []string{ks.stream, ks.meta}, newEpoch(), r.ttlMillis())
		batch[i] = cmds[i]
	}
	err := r.batch.Do(ctx, batch...)
	for _, c := range cmds {
		if err == nil && c.Err() != nil {
			err = c.Err()
		}
	}
	if redisbatch.IsNoScript(err) {
		for i, s := range streams {
			if out[i], err = r.Position(ctx, s); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("history: positions: %w", err)
	}
	for i, c := range cmds {
		if out[i], err = parsePosition(c.Val()); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Positions returns the current position of each stream, in order. See
// [Redis.Positions].
func (m *Memory) Positions(ctx context.Context, streams ...string) ([]Position, error) {
	out := make([]Position, len(streams))
	for i, s := range streams {
		p, err := m.Position(ctx, s)
		if err != nil {
			return nil, err
		}
		out[i] = p
	}
	return out, nil
}
