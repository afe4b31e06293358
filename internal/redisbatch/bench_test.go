package redisbatch

import (
	"context"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/sessiongate/internal/redistest"
)

// BenchmarkGet: 64 goroutines reading one key each, one round trip per
// GET (the floor: what the gateway did) vs batched. Reports the CPU both
// processes spend per GET (this process and the redis-server, from INFO
// cpu), which is what a handshake storm pays on a loaded core; the wall
// ns/op depends on the machine's load.
func BenchmarkGet(b *testing.B) {
	srv := redistest.Start(b)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true, PoolSize: 128})
	defer rdb.Close()
	ctx := context.Background()
	if err := rdb.Set(ctx, "k", strings.Repeat("x", 300), 0).Err(); err != nil {
		b.Fatal(err)
	}
	run := func(b *testing.B, get func() error) {
		b.SetParallelism(32) // 64 goroutines on 2 cores
		own0, red0 := ownCPU(), redisCPU(b, rdb)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := get(); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.StopTimer()
		b.ReportMetric(1e6*(ownCPU()-own0)/float64(b.N), "client-cpu-µs/op")
		b.ReportMetric(1e6*(redisCPU(b, rdb)-red0)/float64(b.N), "redis-cpu-µs/op")
	}
	b.Run("direct", func(b *testing.B) {
		run(b, func() error { return rdb.Get(ctx, "k").Err() })
	})
	b.Run("batched", func(b *testing.B) {
		bt := New(rdb, Config{})
		run(b, func() error {
			cmd := redis.NewStringCmd(ctx, "get", "k")
			if err := bt.Do(ctx, cmd); err != nil {
				return err
			}
			return cmd.Err()
		})
	})
}

func ownCPU() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}

func redisCPU(b *testing.B, rdb *redis.Client) float64 {
	info, err := rdb.Info(context.Background(), "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	total := 0.0
	for _, line := range strings.Split(info, "\r\n") {
		k, v, _ := strings.Cut(line, ":")
		if k == "used_cpu_sys" || k == "used_cpu_user" {
			f, _ := strconv.ParseFloat(v, 64)
			total += f
		}
	}
	return total
}
