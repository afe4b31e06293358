package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// inboundResult is the "inbound" phase: client messages through the
// gateway into the queue and through worker processes back to the
// client, next to the raw Redis Streams floor in the same run.
type inboundResult struct {
	Conns      int `json:"conns"`
	Workers    int `json:"workers"`
	Partitions int `json:"partitions"`
	// Enqueue: closed-loop steps, no worker running, a message done at
	// its ack. RoundTrip: with the workers, done at its echo.reply.
	// Paced: at half the round-trip peak.
	Enqueue   []inboundStep `json:"enqueue"`
	RoundTrip []inboundStep `json:"round_trip"`
	Paced     *inboundStep  `json:"round_trip_paced_half_peak,omitempty"`
	// Profiled is the extra round-trip step at the peak's concurrency
	// during which the gateway's CPU profile was taken (-inbound-cpuprofile).
	Profiled *inboundStep `json:"profiled,omitempty"`
	// The floor: XADD alone (done at XADD's answer), and XADD + one Go
	// consumer's XREADGROUP + XACK (done at the read); FloorPaced at half
	// the floor's own peak.
	FloorEnqueue   []inboundStep `json:"floor_xadd"`
	FloorRoundTrip []inboundStep `json:"floor_xadd_xreadgroup_xack"`
	FloorPaced     *inboundStep  `json:"floor_paced_half_peak,omitempty"`
	// StaleFrames are acks and replies of a step that had already ended.
	StaleFrames int64  `json:"stale_frames"`
	Error       string `json:"error,omitempty"`
}

// inboundPartitions is the gateway's INBOUND_PARTITIONS default; the
// floor uses as many streams.
const inboundPartitions = 16

// floorPool bounds the floor producers' Redis connections: with more
// messages in flight, producers wait for a connection (in the closed
// loop, as a real client's pool makes them).
const floorPool = 256

// inboundPhase measures the floor, then the gateway: the enqueue sweep
// without workers, the workers started, the round-trip sweep and the
// paced step. others are the pids of the run's other gateways, metered
// apart.
func (r *runner) inboundPhase(ctx context.Context, users, tokens []string, others []int) (res inboundResult, err error) {
	p := r.p
	n := min(p.InboundConns, len(tokens))
	users, tokens = users[:n], tokens[:n]
	res = inboundResult{Conns: n, Workers: r.inboundWorkers, Partitions: inboundPartitions}
	// rdb reads the counters and deletes keys; the floor has its own.
	rdb := redis.NewClient(&redis.Options{Addr: r.redisAddr, PoolSize: 4})
	defer rdb.Close()
	st := &inboundSteps{r: r, rdb: rdb, conns: n}
	if err := st.floor(ctx, users, others, &res); err != nil {
		return res, err
	}

	// The gateway.
	var gwEnv []string
	var debugAddr string
	if r.inboundProfile != "" {
		if debugAddr, err = freeAddr(); err != nil {
			return res, err
		}
		gwEnv = append(gwEnv, "GATEWAY_DEBUG_ADDR="+debugAddr)
	}
	r.logf("inbound: starting gateway gw-inbound, %d connections", n)
	gw, err := r.startGateway(ctx, "gw-inbound", gwEnv...)
	if err != nil {
		return res, err
	}
	defer func() { gw.api.close(); gw.p.stop(5 * time.Second) }()
	f, err := openInboundFleet(ctx, r.d, gw.addr, tokens)
	if err != nil {
		return res, err
	}
	defer func() { f.close(); res.StaleFrames = f.stale.Load() }()
	gs := gatewaySender{f: f}
	meter := inboundMeter(gw.p.pid(), r.redis.pid(), nil, others)
	for _, c := range p.InboundConcs {
		r.logf("inbound: enqueue (no worker), %d in flight, %s", c, p.InboundStep)
		res.Enqueue = append(res.Enqueue, st.run(ctx, gs, st.spec("enqueue", true, c, 0, p.InboundStep), meter, &f.cur))
		if err := deleteQueue(ctx, rdb); err != nil {
			return res, err
		}
	}

	workers, err := r.startWorkers(ctx, rdb, r.inboundWorkers)
	defer func() {
		for _, w := range workers {
			w.stop(10 * time.Second)
		}
	}()
	if err != nil {
		return res, err
	}
	pids := make([]int, len(workers))
	for i, w := range workers {
		pids[i] = w.pid()
	}
	meter = inboundMeter(gw.p.pid(), r.redis.pid(), pids, others)
	for _, c := range p.InboundConcs {
		r.logf("inbound: round trip through %d workers, %d in flight, %s", len(workers), c, p.InboundStep)
		res.RoundTrip = append(res.RoundTrip, st.run(ctx, gs, st.spec("round trip", false, c, 0, p.InboundStep), meter, &f.cur))
	}
	peak, ok := peakOf(res.RoundTrip)
	if !ok {
		return res, errors.New("no round-trip step completed")
	}
	rate := peak.PerSec / 2
	r.logf("inbound: round trip paced at %.0f/s (half the peak, %.1f/s per connection), %s", rate, rate/float64(n), p.InboundPaced)
	paced := st.run(ctx, gs, st.spec("round trip paced", false, 0, rate, p.InboundPaced), meter, &f.cur)
	res.Paced = &paced
	if debugAddr != "" {
		r.logf("inbound: round trip at %d in flight with a CPU profile of the gateway", peak.Conc)
		profDone := make(chan error, 1)
		secs := int((p.InboundWarm + p.InboundStep) / time.Second)
		go func() { profDone <- fetchProfile(ctx, debugAddr, r.inboundProfile, secs) }()
		prof := st.run(ctx, gs, st.spec("round trip profiled", false, peak.Conc, 0, p.InboundStep), meter, &f.cur)
		res.Profiled = &prof
		if err := <-profDone; err != nil {
			r.logf("  WARNING: inbound CPU profile: %v", err)
		} else {
			r.logf("  gateway CPU profile (%d s) in %s", secs, r.inboundProfile)
		}
	}
	return res, nil
}

// inboundSteps runs the phase's steps: each numbered (the message ids
// carry the number, so a late answer is never taken for another step's),
// with the redis-server's command counters read around it.
type inboundSteps struct {
	r     *runner
	rdb   *redis.Client
	conns int
	id    int
}

func (st *inboundSteps) spec(mode string, onAck bool, conc int, rate float64, measure time.Duration) stepSpec {
	return stepSpec{mode: mode, onAck: onAck, conc: conc, rate: rate, warm: st.r.p.InboundWarm, measure: measure, conns: st.conns}
}

func (st *inboundSteps) run(ctx context.Context, s sender, spec stepSpec, meter func() func() inboundCPU, cur *atomic.Pointer[loadRun]) inboundStep {
	st.id++
	before, berr := readRedisCounters(ctx, st.rdb)
	out := runStep(ctx, st.id, s, spec, meter, cur)
	if after, err := readRedisCounters(ctx, st.rdb); berr == nil && err == nil {
		d := diffRedis(before, after)
		out.Redis = &d
	}
	return out
}

// floor runs the floor's sweeps on the run's redis-server: XADD alone,
// then with the consumer, then paced at half the latter's peak. The
// producers get their own pool, at most floorPool connections (the
// redis-server allows 1000 clients; the gateway and workers need
// theirs), closed when it returns; the consumer its own connection.
func (st *inboundSteps) floor(ctx context.Context, users []string, others []int, res *inboundResult) error {
	p := st.r.p
	maxConc := slices.Max(p.InboundConcs)
	prdb := redis.NewClient(&redis.Options{Addr: st.r.redisAddr, PoolSize: min(maxConc, floorPool), PoolTimeout: time.Minute})
	defer prdb.Close()
	crdb := redis.NewClient(&redis.Options{Addr: st.r.redisAddr, PoolSize: 2})
	defer crdb.Close()
	var cur atomic.Pointer[loadRun]
	fl := newInboundFloor(prdb, crdb, users, inboundPartitions, maxConc, &cur)
	defer fl.close()
	meter := inboundMeter(0, st.r.redis.pid(), nil, others)
	for _, c := range p.InboundConcs {
		st.r.logf("inbound floor: XADD, %d in flight, %s", c, p.InboundStep)
		res.FloorEnqueue = append(res.FloorEnqueue, st.run(ctx, fl, st.spec("floor xadd", true, c, 0, p.InboundStep), meter, &cur))
		if err := fl.deleteKeys(ctx); err != nil {
			return err
		}
	}
	if err := fl.ensureGroups(ctx); err != nil {
		return fmt.Errorf("floor groups: %w", err)
	}
	cctx, stopConsumer := context.WithCancel(ctx)
	consumed := make(chan struct{})
	go func() { defer close(consumed); fl.consume(cctx) }()
	for _, c := range p.InboundConcs {
		st.r.logf("inbound floor: XADD + XREADGROUP + XACK, %d in flight, %s", c, p.InboundStep)
		res.FloorRoundTrip = append(res.FloorRoundTrip, st.run(ctx, fl, st.spec("floor round trip", false, c, 0, p.InboundStep), meter, &cur))
	}
	if peak, ok := peakOf(res.FloorRoundTrip); ok {
		rate := peak.PerSec / 2
		st.r.logf("inbound floor: paced at %.0f/s (half the peak), %s", rate, p.InboundPaced)
		paced := st.run(ctx, fl, st.spec("floor paced", false, 0, rate, p.InboundPaced), meter, &cur)
		res.FloorPaced = &paced
	}
	stopConsumer()
	<-consumed
	if err := fl.consumeErr.Load(); err != nil {
		res.Error = fmt.Sprintf("floor consumer: %v", *err)
	}
	return fl.deleteKeys(ctx)
}

// deleteQueue removes the gateway's queue partitions (and their group),
// so the enqueue sweep never fills them.
func deleteQueue(ctx context.Context, rdb *redis.Client) error {
	keys := make([]string, inboundPartitions)
	for p := range keys {
		keys[p] = "sessiongate:in:{" + strconv.Itoa(p) + "}"
	}
	return rdb.Del(ctx, keys...).Err()
}

// startWorkers starts k bin/worker processes, pinned like the servers,
// and waits until each has started (its "inbound worker started" log
// line, written once its group exists on every partition) and the group
// exists on every partition. (Redis before 7.2 creates a consumer only
// once it reads a message, so consumers cannot be waited for.)
func (r *runner) startWorkers(ctx context.Context, rdb *redis.Client, k int) ([]*proc, error) {
	var out []*proc
	for i := range k {
		name := "worker-" + strconv.Itoa(i+1)
		w, err := startProc(name, r.serverCPU, r.logDir, r.workerBin, nil, append(r.commonEnv(), "WORKER_NAME=loadgen-"+name, "LOG_LEVEL=info"))
		if err != nil {
			return out, err
		}
		r.procs = append(r.procs, w)
		out = append(out, w)
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, w := range out {
		for {
			b, _ := os.ReadFile(w.log.Name())
			if bytes.Contains(b, []byte("inbound worker started")) {
				break
			}
			if w.exited() {
				return out, fmt.Errorf("%s exited during start-up (see its log)", w.name)
			}
			if time.Now().After(deadline) {
				return out, fmt.Errorf("%s not started within 20 s (see its log)", w.name)
			}
			sleep(ctx, 50*time.Millisecond)
			if ctx.Err() != nil {
				return out, ctx.Err()
			}
		}
	}
	for p := range inboundPartitions {
		key := "sessiongate:in:{" + strconv.Itoa(p) + "}"
		gs, err := rdb.XInfoGroups(ctx, key).Result()
		if err != nil || !slices.ContainsFunc(gs, func(g redis.XInfoGroup) bool { return g.Name == "app" }) {
			return out, fmt.Errorf("workers started but partition %d has no group %q (err: %v)", p, "app", err)
		}
	}
	return out, nil
}
