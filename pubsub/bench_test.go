package pubsub

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/sessiongate/sessiongate/internal/redistest"
)

// reportLatencies reports the p50 and p99 of one-way hop latencies.
func reportLatencies(b *testing.B, lat []time.Duration) {
	b.Helper()
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[int(float64(len(lat)-1)*p)].Nanoseconds()) / 1e3
	}
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
}

// BenchmarkRawPubSubHop measures raw go-redis PUBLISH -> SUBSCRIBE one-way
// latency on a real redis-server, one message in flight at a time. It is the
// floor BenchmarkBusHop is compared with.
func BenchmarkRawPubSubHop(b *testing.B) {
	srv := redistest.Start(b)
	rdb := newClient(b, srv.Addr())
	ctx := context.Background()
	ps := rdb.Subscribe(ctx, "bench:raw")
	b.Cleanup(func() { _ = ps.Close() })
	if _, err := ps.Receive(ctx); err != nil { // subscription confirmation
		b.Fatal(err)
	}
	payload := make([]byte, 200) // about the size of a small message event
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sent := time.Now()
		if err := rdb.Publish(ctx, "bench:raw", payload).Err(); err != nil {
			b.Fatal(err)
		}
		if _, err := ps.ReceiveMessage(ctx); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(sent))
	}
	b.StopTimer()
	reportLatencies(b, lat)
}

// BenchmarkBusHop measures the same hop through the bus: Event encode +
// PUBLISH -> SUBSCRIBE + decode + queue + handler, one event in flight.
func BenchmarkBusHop(b *testing.B) {
	srv := redistest.Start(b)
	bus := NewRedisBus(newClient(b, srv.Addr()), RedisConfig{Channel: "bench:bus"}, zap.NewNop())
	subscribed := make(chan struct{}, 1)
	bus.OnSubscribed(func() {
		select {
		case subscribed <- struct{}{}:
		default:
		}
	})
	got := make(chan time.Time, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = bus.Run(ctx, func(_ context.Context, e Event) { got <- time.Now() })
	}()
	b.Cleanup(func() { cancel(); <-done })
	<-subscribed

	e := Event{Kind: KindMessage, Origin: "bench", Target: &Target{UserID: "alice"}, Name: "chat",
		Data: []byte(`{"text":"hello, this is a short chat message of ordinary size"}`)}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e.ID = strconv.Itoa(i)
		sent := time.Now()
		if err := bus.Publish(ctx, e); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, (<-got).Sub(sent))
	}
	b.StopTimer()
	reportLatencies(b, lat)
}
