package bench

import (
	"fmt"
	"net"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/sessiongate/internal/redistest"
	"github.com/sessiongate/sessiongate/presence"
)

// BenchmarkHandshakePresence: the cost presence adds to a connect, next to
// BenchmarkHandshake's gateway and floor. Each op opens an authenticated
// connection of one of presenceUsers users and closes the one opened
// presenceUsers ops before, so every user goes online and offline again
// (one write each way, not coalesced away) while the flush runs every
// 100ms in the background, in the same process:
//   - off: PRESENCE_ENABLED=false;
//   - memory: the embedded-mode store;
//   - redis: the Redis store on a real redis-server (the session store
//     stays in memory, so only presence talks to Redis).
func BenchmarkHandshakePresence(b *testing.B) {
	run := func(b *testing.B, pres func(b *testing.B) presence.Store) {
		var store presence.Store
		if pres != nil {
			store = pres(b)
		}
		addr := startGatewayPresence(b, store)
		toks := make([]string, presenceUsers)
		for i := range toks {
			toks[i] = createToken(b, addr, fmt.Sprintf("u-pr-%04d", i))
		}
		open := make([]net.Conn, presenceUsers)
		b.Cleanup(func() {
			for _, c := range open {
				if c != nil {
					c.Close()
				}
			}
		})
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			k := i % presenceUsers
			if open[k] != nil {
				open[k].Close()
			}
			open[k] = rawDial(b, addr, "/ws", toks[k])
			i++
		}
	}
	b.Run("off", func(b *testing.B) { run(b, nil) })
	b.Run("memory", func(b *testing.B) {
		run(b, func(*testing.B) presence.Store { return presence.NewMemory(nil) })
	})
	b.Run("redis", func(b *testing.B) {
		run(b, func(b *testing.B) presence.Store {
			srv := redistest.Start(b)
			rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
			b.Cleanup(func() { rdb.Close() })
			return presence.NewRedis(rdb, presence.RedisConfig{Prefix: "bench:"})
		})
	})
}

// presenceUsers is how many users (and connections) the presence
// benchmark cycles through.
const presenceUsers = 256
