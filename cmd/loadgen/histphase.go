package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// publishRun is one publish run: publishes to users round-robin, each
// received once (by the user's WebSocket, or by the floor's subscriber).
type publishRun struct {
	Publishes   int     `json:"publishes"`
	Concurrency int     `json:"concurrency"`
	Received    int64   `json:"received"`
	PerSec      float64 `json:"publishes_per_sec"`
	// Latency is publish-to-receive under the throughput run (Concurrency
	// in flight); Latency1 with one publish in flight.
	Latency  latency `json:"publish_to_receive"`
	Latency1 latency `json:"publish_to_receive_one_in_flight"`
	CPU      cpuUse  `json:"cpu"`
	// MicrosPerPublish is the server's plus redis-server's CPU per publish
	// in the throughput run.
	MicrosPerPublish float64 `json:"server_and_redis_cpu_us_per_publish"`
	// AllocPerPublish and Collections: the gateway's heap bytes allocated
	// per publish and the collections it ran over the throughput run (from
	// its /metrics around it; zero for the floors and when a scrape
	// failed): a run whose collector works harder shows here.
	AllocPerPublish float64 `json:"alloc_bytes_per_publish,omitempty"`
	Collections     int     `json:"collections,omitempty"`
	Error           string  `json:"error,omitempty"`
}

// historyResult is the "history" phase: the gateway's publish API with
// history on and off, and raw Redis floors, in one run.
type historyResult struct {
	Conns int `json:"conns"`
	// On and Off are the gateway (HISTORY_SIZE default, and 0).
	On  publishRun `json:"history_on"`
	Off publishRun `json:"history_off"`
	// Floor is XADD MAXLEN ~ + PUBLISH pipelined from the generator,
	// received by a SUBSCRIBE: the floor of a history hop. FloorPublish
	// is a bare PUBLISH, the floor of a hop without history.
	Floor        publishRun `json:"floor_xadd_publish"`
	FloorPublish publishRun `json:"floor_publish"`
}

// historyMaxLen is the floor's MAXLEN ~, the gateway's default
// HISTORY_SIZE.
const historyMaxLen = 100

// historyPhase measures the publish path with history on and off, each on
// a freshly started gateway, next to the raw Redis floors.
func (r *runner) historyPhase(ctx context.Context, users, tokens []string) (historyResult, error) {
	p := r.p
	n := min(p.HistConns, len(tokens))
	res := historyResult{Conns: n}
	r.logf("history: raw XADD MAXLEN ~ %d + PUBLISH -> SUBSCRIBE floor, %d publishes, %d in flight", historyMaxLen, p.HistPublishes, p.HistConc)
	res.Floor = redisPublishFloor(ctx, r.redisAddr, r.redis.pid(), users[:n], p.HistPublishes, p.HistConc, p.HistLatencySamples, true)
	r.logf("history: raw PUBLISH -> SUBSCRIBE floor")
	res.FloorPublish = redisPublishFloor(ctx, r.redisAddr, r.redis.pid(), users[:n], p.HistPublishes, p.HistConc, p.HistLatencySamples, false)
	for _, side := range []struct {
		id  string
		env []string
		out *publishRun
	}{
		{"gw-hist-on", nil, &res.On},
		{"gw-hist-off", []string{"HISTORY_SIZE=0"}, &res.Off},
	} {
		r.logf("history: %s, %d connections, %d publishes to users, %d in flight", side.id, n, p.HistPublishes, p.HistConc)
		run, err := r.gatewayPublishRun(ctx, side.id, side.env, users[:n], tokens[:n])
		if err != nil {
			return res, fmt.Errorf("%s: %w", side.id, err)
		}
		*side.out = run
	}
	return res, nil
}

// gatewayPublishRun starts a gateway, opens one connection per user and
// publishes to them through POST /api/v1/publish.
func (r *runner) gatewayPublishRun(ctx context.Context, id string, env, users, tokens []string) (publishRun, error) {
	p := r.p
	in, err := r.startGateway(ctx, id, env...)
	if err != nil {
		return publishRun{}, err
	}
	defer func() {
		in.api.close()
		in.p.stop(5 * time.Second)
	}()
	f := newFleet(r.d, in.addr, "/ws")
	defer f.closeAll()
	if _, err := f.open(ctx, tokens, 64); err != nil {
		return publishRun{}, err
	}
	pub := func(ctx context.Context, i int, t int64) error {
		return in.api.publish(ctx, []byte(`{"target":{"user_id":"`+users[i%len(users)]+`"},"event":"bench","data":`+eventData(t)+`}`))
	}
	// The throughput run takes 6-12 s here: 5 s of it is profiled.
	wait := r.profilePhase(ctx, in, "history-"+strings.TrimPrefix(id, "gw-hist-"), 5)
	m0, _ := scrape(ctx, in.base)
	thr := fanoutUser(ctx, f, pub, p.HistPublishes, p.HistConc, in.p.pid(), r.redis.pid())
	m1, _ := scrape(ctx, in.base)
	wait()
	one := fanoutUser(ctx, f, pub, p.HistLatencySamples, 1, in.p.pid(), r.redis.pid())
	out := publishRun{
		Publishes: thr.Publishes, Concurrency: p.HistConc, Received: thr.Deliveries, PerSec: thr.PerSec,
		Latency: thr.Latency, Latency1: one.Latency, CPU: thr.CPU,
		MicrosPerPublish: 1e6 * (thr.CPU.ServerSec + thr.CPU.RedisSec) / float64(max(thr.Publishes, 1)),
	}
	out.AllocPerPublish, out.Collections, _ = heapDelta(m0, m1, out.Publishes)
	for _, e := range []string{thr.Error, thr.PublishError, one.Error, one.PublishError} {
		if e != "" && out.Error == "" {
			out.Error = e
		}
	}
	return out, nil
}

// floorChannel is the floor's pub/sub channel.
const floorChannel = "loadgen:floor:live"

// floorPayload is about what the gateway publishes for one event to a
// user: the event with its target, carrying the send time.
func floorPayload(user string, t int64) string {
	return `{"kind":"message","id":"01JBENCHFLOOR0000000000000","target":{"user_id":"` + user + `"},"name":"bench","data":` + eventData(t) + `}`
}

// redisPublishFloor publishes total messages, conc in flight, then
// samples with one in flight, from this process straight to Redis: with
// xadd, each is one pipelined round trip of XADD (to the user's stream,
// MAXLEN ~) and PUBLISH; without, a bare PUBLISH. One SUBSCRIBE connection
// receives them and computes publish-to-receive latency.
func redisPublishFloor(ctx context.Context, addr string, redisPid int, users []string, total, conc, samples int, xadd bool) publishRun {
	out := publishRun{Publishes: total, Concurrency: conc}
	rdb := redis.NewClient(&redis.Options{Addr: addr, PoolSize: conc + 4})
	defer rdb.Close()
	sub := rdb.Subscribe(ctx, floorChannel)
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		out.Error = err.Error()
		return out
	}
	var (
		received atomic.Int64
		rec      atomic.Pointer[recorder]
		rwg      sync.WaitGroup
	)
	rctx, stopRecv := context.WithCancel(ctx)
	rwg.Go(func() {
		for {
			m, err := sub.ReceiveMessage(rctx)
			if err != nil {
				return
			}
			now := time.Now().UnixNano()
			if r := rec.Load(); r != nil {
				if t := stampOf([]byte(m.Payload)); t > 0 {
					r.add(now - t)
				}
			}
			received.Add(1)
		}
	})
	// ReceiveMessage does not return on ctx alone while it waits on the
	// socket: closing the subscription ends it.
	defer func() { stopRecv(); _ = sub.Close(); rwg.Wait() }()

	keys := make([]string, len(users))
	for i, u := range users {
		keys[i] = "loadgen:floor:h:{" + u + "}"
	}
	publishOne := func(ctx context.Context, i int) error {
		u := i % len(users)
		payload := floorPayload(users[u], time.Now().UnixNano())
		if !xadd {
			return rdb.Publish(ctx, floorChannel, payload).Err()
		}
		_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.XAdd(ctx, &redis.XAddArgs{Stream: keys[u], MaxLen: historyMaxLen, Approx: true, Values: []any{"d", payload}})
			p.Publish(ctx, floorChannel, payload)
			return nil
		})
		return err
	}
	run := func(n, conc int) (latency, cpuUse, error) {
		r := newRecorder(n)
		rec.Store(r)
		defer rec.Store(nil)
		want := received.Load() + int64(n)
		var (
			next    atomic.Int64
			wg      sync.WaitGroup
			errOnce sync.Once
			first   error
		)
		m := startServerCPU(redisPid, 0)
		for range conc {
			wg.Go(func() {
				for {
					i := next.Add(1) - 1
					if i >= int64(n) || ctx.Err() != nil {
						return
					}
					if err := publishOne(ctx, int(i)); err != nil {
						errOnce.Do(func() { first = err })
					}
				}
			})
		}
		wg.Wait()
		deadline := time.Now().Add(60 * time.Second)
		for received.Load() < want && first == nil {
			if time.Now().After(deadline) || ctx.Err() != nil {
				first = fmt.Errorf("timed out: %d of %d received", received.Load()-(want-int64(n)), n)
				break
			}
			time.Sleep(200 * time.Microsecond)
		}
		return summarize(r.sorted()), measureCPU(m), first
	}
	r0 := received.Load()
	lat, cpu, err := run(total, conc)
	out.Received = received.Load() - r0
	out.Latency, out.CPU = lat, cpu
	out.PerSec = float64(out.Received) / cpu.WallSec
	// Only redis-server is a server here (ServerSec is redis's CPU).
	out.MicrosPerPublish = 1e6 * cpu.ServerSec / float64(max(total, 1))
	if err != nil {
		out.Error = err.Error()
		return out
	}
	lat1, _, err := run(samples, 1)
	out.Latency1 = lat1
	if err != nil {
		out.Error = err.Error()
	}
	return out
}

// costPct is how much of the publish throughput history costs, in percent
// of the throughput without it.
func (h historyResult) costPct() float64 {
	if h.Off.PerSec == 0 {
		return 0
	}
	return 100 * (1 - h.On.PerSec/h.Off.PerSec)
}
