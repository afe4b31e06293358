package history

import (
	"context"
	"testing"
)

// TestRedisLostHashDropsOrphanStream: when a stream's hash is gone but its
// Redis Stream survived (maxmemory eviction of one key), the next append
// starts a new epoch and the old entries are not served as the new
// epoch's.
func TestRedisLostHashDropsOrphanStream(t *testing.T) {
	ctx := context.Background()
	hh := newRedisHarness(t, newClient(t, startRedis(t).Addr()), Config{})
	old := appendN(t, hh.h, "user:alice", 1, 5)
	if err := hh.redis.Del(ctx, metaKey("", "user:alice")).Err(); err != nil {
		t.Fatal(err)
	}
	unrecoverable(t, since(t, hh.h, "user:alice", old[4], 10), "old position, hash lost")
	n := appendN(t, hh.h, "user:alice", 100, 1)[0]
	if n.Epoch == old[0].Epoch || n.Offset != 1 {
		t.Fatalf("append after the hash was lost = %+v", n)
	}
	r := since(t, hh.h, "user:alice", Position{n.Epoch, 0}, 10)
	if !r.Recovered {
		t.Fatalf("new epoch not readable: %+v", r)
	}
	checkEvents(t, r.Events, 1, 1, 99)
}

// TestRedisLostStreamKeepsHash: when the Redis Stream is gone but its hash
// survived, positions before the last offset are unrecoverable (not an
// empty success), and the position at the last offset still is.
func TestRedisLostStreamKeepsHash(t *testing.T) {
	ctx := context.Background()
	hh := newRedisHarness(t, newClient(t, startRedis(t).Addr()), Config{})
	ps := appendN(t, hh.h, "user:alice", 1, 5)
	if err := hh.redis.Del(ctx, streamKey("", "user:alice")).Err(); err != nil {
		t.Fatal(err)
	}
	unrecoverable(t, since(t, hh.h, "user:alice", ps[2], 10), "stream lost")
	if r := since(t, hh.h, "user:alice", ps[4], 10); !r.Recovered {
		t.Fatalf("nothing missed, yet %+v", r)
	}
}

// TestRedisRestartWithoutPersistence: a redis-server restarted without
// its data gives every stream a new epoch.
func TestRedisRestartWithoutPersistence(t *testing.T) {
	srv := startRedis(t)
	hh := newRedisHarness(t, newClient(t, srv.Addr()), Config{})
	ps := appendN(t, hh.h, "user:alice", 1, 5)
	srv.Restart()
	eventually(t, "the client to reconnect", func() bool {
		_, err := hh.h.Since(context.Background(), "user:alice", ps[4], 10)
		return err == nil
	})
	unrecoverable(t, since(t, hh.h, "user:alice", ps[4], 10), "after the restart")
	n := appendN(t, hh.h, "user:alice", 1, 1)[0]
	if n.Epoch == ps[0].Epoch || n.Offset != 1 {
		t.Fatalf("append after the restart = %+v", n)
	}
}
