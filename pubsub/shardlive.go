package pubsub

import (
	"context"
	"strings"
	"time"

	"go.uber.org/zap"
)

// pingHeader starts a shard ping: "p1\n" + the bus's token. It is neither
// JSON nor a live envelope, and never reaches a handler.
const pingHeader = "p1\n"

// pong takes a payload of sh's channel: a ping (this bus's, recorded, or
// another instance's, ignored) is swallowed; anything else is an event.
func (b *ShardedBus) pong(sh *shard, payload string) bool {
	token, ok := strings.CutPrefix(payload, pingHeader)
	if !ok {
		return false
	}
	if token == b.token {
		sh.pongAt.Store(time.Now().UnixNano())
	}
	return true
}

// shardLive reports whether sh's subscription is confirmed and its own
// ping came back since, within LivenessTimeout of now.
func (b *ShardedBus) shardLive(sh *shard, now time.Time) bool {
	pong := sh.pongAt.Load()
	return sh.up.Load() && pong > sh.upAt.Load() && now.Sub(time.Unix(0, pong)) <= b.cfg.LivenessTimeout
}

// watch pings sh every LivenessInterval (and at once after each
// confirmation), logs its liveness transitions, and drops its
// subscription when the pings are published but do not come back within
// LivenessTimeout (a subscription left on a node that no longer serves
// the channel, say), at most once per timeout.
func (b *ShardedBus) watch(ctx context.Context, sh *shard) {
	cfg := b.cfg
	tick := time.NewTicker(max(cfg.LivenessInterval/4, time.Millisecond))
	defer tick.Stop()
	payload := []byte(pingHeader + b.token)
	var lastPing, kickedAt time.Time
	pingFailed := false
	for {
		force := false
		select {
		case <-ctx.Done():
			return
		case <-sh.ping:
			force = true
		case <-tick.C:
		}
		now := time.Now()
		if force || now.Sub(lastPing) >= cfg.LivenessInterval {
			lastPing = now
			err := publishOn(ctx, b.rdb, "spublish", sh.channel, payload, cfg.PublishTimeout)
			if ctx.Err() != nil {
				return
			}
			sh.pingOK.Store(err == nil)
			switch {
			case err != nil && !pingFailed:
				b.log.Warn("pub/sub shard ping failed", zap.Int("shard", sh.n), zap.Error(err))
			case err == nil && pingFailed:
				b.log.Info("pub/sub shard ping recovered", zap.Int("shard", sh.n))
			}
			pingFailed = err != nil
			now = time.Now()
		}
		live := b.shardLive(sh, now)
		if was := sh.live.Swap(live); was != live {
			if live {
				b.log.Info("pub/sub shard live", zap.Int("shard", sh.n),
					zap.Uint64("resubscribes", sh.resubscribes.Load()))
			} else {
				b.log.Warn("pub/sub shard not live", zap.Int("shard", sh.n),
					zap.Duration("timeout", cfg.LivenessTimeout))
			}
		}
		if live || !sh.up.Load() || !sh.pingOK.Load() {
			continue
		}
		ref := time.Unix(0, max(sh.pongAt.Load(), sh.upAt.Load()))
		if now.Sub(ref) > cfg.LivenessTimeout && now.Sub(kickedAt) >= cfg.LivenessTimeout {
			kickedAt = now
			sh.bus.resubscribe() // the shard's bus logs what it does
		}
	}
}
