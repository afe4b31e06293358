package history

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"
)

// The cost of history on the publish path, on a real redis-server, one
// publish in flight at a time (so ns/op is one round trip plus the
// server's work). Compare the three in one run:
//
//	BenchmarkPublishBare:         PUBLISH only (history off)
//	BenchmarkPublishRawXAddPipe:  XADD MAXLEN ~ + PEXPIRE + PUBLISH, pipelined,
//	                              not atomic (the floor for a history)
//	BenchmarkAppendWithHistory:   Redis.Append: the Lua script (epoch, offset,
//	                              XADD, 2x PEXPIRE, PUBLISH), atomic
//
// The payload is about the size of a small message event.

var benchPayload = make([]byte, 200)

func benchClient(b *testing.B) redis.UniversalClient {
	b.Helper()
	rdb := newClient(b, startRedisB(b).Addr())
	// A subscriber on the channel, so PUBLISH does its real fan-out work.
	ps := rdb.Subscribe(context.Background(), "bench:live")
	if _, err := ps.Receive(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = ps.Close() })
	return rdb
}

func BenchmarkPublishBare(b *testing.B) {
	rdb := benchClient(b)
	ctx := context.Background()
	for b.Loop() {
		if err := rdb.Publish(ctx, "bench:live", benchPayload).Err(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPublishRawXAddPipe(b *testing.B) {
	rdb := benchClient(b)
	ctx := context.Background()
	key := streamKey("", UserStream("alice"))
	for b.Loop() {
		_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.XAdd(ctx, &redis.XAddArgs{Stream: key, MaxLen: DefaultSize, Approx: true, Values: []any{"d", benchPayload}})
			p.PExpire(ctx, key, DefaultTTL)
			p.Publish(ctx, "bench:live", benchPayload)
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendWithHistory(b *testing.B) {
	h := NewRedis(benchClient(b), Config{})
	ctx := context.Background()
	for b.Loop() {
		if _, err := h.Append(ctx, UserStream("alice"), benchPayload, "bench:live"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSince is one resume read of 10 missed events.
func BenchmarkSince(b *testing.B) {
	h := NewRedis(benchClient(b), Config{})
	ctx := context.Background()
	var from Position
	for i := range 50 {
		p, err := h.Append(ctx, "all", benchPayload, "")
		if err != nil {
			b.Fatal(err)
		}
		if i == 39 {
			from = p
		}
	}
	for b.Loop() {
		if r, err := h.Since(ctx, "all", from, 100); err != nil || len(r.Events) != 10 {
			b.Fatal(r, err)
		}
	}
}
