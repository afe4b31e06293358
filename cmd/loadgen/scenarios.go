package main

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// cpuMeter measures the CPU seconds of a set of processes (pid 0 = this one)
// over an interval.
type cpuMeter struct {
	pids  []int
	start []float64
	busy0 float64
	t0    time.Time
}

// startServerCPU meters a server, this process and, when redisPid is not 0,
// the redis-server.
func startServerCPU(serverPid, redisPid int) *cpuMeter {
	if redisPid == 0 {
		return startCPU(serverPid, 0)
	}
	return startCPU(serverPid, 0, redisPid)
}

func startCPU(pids ...int) *cpuMeter {
	m := &cpuMeter{pids: pids, start: make([]float64, len(pids)), t0: time.Now()}
	m.busy0, _ = machineBusySeconds()
	for i, p := range pids {
		m.start[i], _ = cpuSeconds(p)
	}
	return m
}

// stop returns each process's CPU seconds since start and the wall time.
func (m *cpuMeter) stop() ([]float64, time.Duration) {
	out, wall, _ := m.stopAll()
	return out, wall
}

// stopAll is stop plus the CPU seconds the whole machine was busy.
func (m *cpuMeter) stopAll() ([]float64, time.Duration, float64) {
	out := make([]float64, len(m.pids))
	for i, p := range m.pids {
		v, _ := cpuSeconds(p)
		out[i] = v - m.start[i]
	}
	busy, _ := machineBusySeconds()
	return out, time.Since(m.t0), busy - m.busy0
}

// cpuUse is CPU time over a wall interval.
type cpuUse struct {
	ServerSec      float64 `json:"server_cpu_s"`
	ServerPctCore  float64 `json:"server_cpu_pct_of_core"`
	RedisSec       float64 `json:"redis_cpu_s,omitempty"`
	LoadgenSec     float64 `json:"loadgen_cpu_s"`
	LoadgenPctCore float64 `json:"loadgen_cpu_pct_of_core"`
	WallSec        float64 `json:"wall_s"`
	// OtherPctCores is CPU the rest of the machine used meanwhile (other
	// workloads), in percent of one core: a noisy neighbour shows here.
	OtherPctCores float64 `json:"others_cpu_pct_of_core"`
}

func measureCPU(m *cpuMeter) cpuUse {
	v, wall, busy := m.stopAll()
	u := cpuUse{WallSec: wall.Seconds(), ServerSec: v[0], LoadgenSec: v[1]}
	if len(v) > 2 {
		u.RedisSec = v[2]
	}
	u.OtherPctCores = max(0, 100*(busy-u.ServerSec-u.LoadgenSec-u.RedisSec)/u.WallSec)
	u.ServerPctCore = 100 * u.ServerSec / u.WallSec
	u.LoadgenPctCore = 100 * u.LoadgenSec / u.WallSec
	return u
}

// handshakeResult is one handshake-rate run: connect + welcome, then close.
type handshakeResult struct {
	OK          int64   `json:"ok"`
	Failed      int64   `json:"failed"`
	FirstError  string  `json:"first_error,omitempty"`
	PerSec      float64 `json:"per_sec"`
	Concurrency int     `json:"concurrency"`
	Latency     latency `json:"connect_latency"`
	CPU         cpuUse  `json:"cpu"`
}

// handshakeRate opens and closes connections with conc workers for dur.
func handshakeRate(ctx context.Context, d *dialers, addr, path string, tokens []string, conc int, dur time.Duration, serverPid, redisPid int) handshakeResult {
	rec := newRecorder(2_000_000)
	var (
		ok, failed atomic.Int64
		next       atomic.Uint64
		errOnce    sync.Once
		firstErr   string
		wg         sync.WaitGroup
	)
	m := startServerCPU(serverPid, redisPid)
	deadline := time.Now().Add(dur)
	for range conc {
		wg.Go(func() {
			for time.Now().Before(deadline) && ctx.Err() == nil {
				tok := ""
				if len(tokens) > 0 {
					tok = tokens[next.Add(1)%uint64(len(tokens))]
				}
				t0 := time.Now()
				err := handshakeOnce(ctx, d, addr, path, tok)
				if err != nil {
					failed.Add(1)
					errOnce.Do(func() { firstErr = err.Error() })
					continue
				}
				rec.add(int64(time.Since(t0)))
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	cpu := measureCPU(m)
	return handshakeResult{
		OK: ok.Load(), Failed: failed.Load(), FirstError: firstErr, Concurrency: conc,
		PerSec: float64(ok.Load()) / cpu.WallSec, Latency: summarize(rec.sorted()), CPU: cpu,
	}
}

func handshakeOnce(ctx context.Context, d *dialers, addr, path, tok string) error {
	hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ws, err := dialWS(hctx, d, addr, path, tok)
	if err != nil {
		return err
	}
	defer ws.nc.Close()
	_ = ws.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	op, _, err := ws.readMessage()
	if err != nil {
		return fmt.Errorf("read welcome: %w", err)
	}
	if op != opText {
		return fmt.Errorf("%w: first frame op %d", errBadFrame, op)
	}
	return nil
}

// fanoutResult is one fan-out run.
type fanoutResult struct {
	// Level is the memory level the run belongs to (the goal's name): Conns
	// is what was actually open, lower when some connection failed.
	Level int `json:"level,omitempty"`
	Conns int `json:"conns"`
	// InFlight is how many publishes were outstanding at once (to all: a
	// round's events, published back to back, then waited for).
	InFlight     int     `json:"in_flight"`
	Publishes    int     `json:"publishes"`
	Deliveries   int64   `json:"deliveries"`
	PerSec       float64 `json:"deliveries_per_sec"`
	Latency      latency `json:"latency"`
	CPU          cpuUse  `json:"cpu"`
	CPUSecPerM   float64 `json:"server_cpu_s_per_million_deliveries"`
	Error        string  `json:"error,omitempty"`
	ConnsAtEnd   int     `json:"conns_open_at_end"`
	PublishError string  `json:"publish_error,omitempty"`
}

// eventData is the data object of every benchmark event: the send time the
// client turns into a latency, and padding to a realistic size.
func eventData(t int64) string {
	return `{"t":` + strconv.FormatInt(t, 10) + `,"pad":"0123456789abcdef0123456789abcdef0123456789abcdef"}`
}

// fanoutAll publishes rounds x inFlight events to every connection:
// each round's events back to back, then it waits until every connection
// has them all before the next round (inFlight stays below the send queue,
// so no connection is closed as a slow consumer).
func fanoutAll(ctx context.Context, f *fleet, publish func(ctx context.Context, t int64) error, rounds, inFlight, serverPid, redisPid int) fanoutResult {
	n := f.openCount()
	res := fanoutResult{Conns: n, InFlight: inFlight, Publishes: rounds * inFlight}
	rec := newRecorder(min(rounds*inFlight*n, 4_000_000))
	f.rec.Store(rec)
	defer f.rec.Store(nil)
	e0 := f.events.Load()
	m := startServerCPU(serverPid, redisPid)
	for b := range rounds {
		for range inFlight {
			if err := publish(ctx, time.Now().UnixNano()); err != nil {
				res.PublishError = err.Error()
				break
			}
		}
		if err := f.waitEvents(ctx, e0+int64((b+1)*inFlight*n), 60*time.Second); err != nil {
			res.Error = err.Error()
			break
		}
	}
	res.CPU = measureCPU(m)
	res.Deliveries = f.events.Load() - e0
	res.PerSec = float64(res.Deliveries) / res.CPU.WallSec
	res.CPUSecPerM = res.CPU.ServerSec / float64(max(res.Deliveries, 1)) * 1e6
	res.Latency = summarize(rec.sorted())
	res.ConnsAtEnd = f.openCount()
	return res
}

// fanoutUser sends total single-connection publishes, conc in flight,
// addressed round-robin to connection i, and waits for all deliveries.
func fanoutUser(ctx context.Context, f *fleet, publish func(ctx context.Context, i int, t int64) error, total, conc, serverPid, redisPid int) fanoutResult {
	res := fanoutResult{Conns: f.openCount(), InFlight: conc, Publishes: total}
	rec := newRecorder(total)
	f.rec.Store(rec)
	defer f.rec.Store(nil)
	e0 := f.events.Load()
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
	)
	m := startServerCPU(serverPid, redisPid)
	for range conc {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(total) || ctx.Err() != nil {
					return
				}
				if err := publish(ctx, int(i), time.Now().UnixNano()); err != nil {
					errOnce.Do(func() { res.PublishError = err.Error() })
				}
			}
		})
	}
	wg.Wait()
	if err := f.waitEvents(ctx, e0+int64(total), 60*time.Second); err != nil {
		res.Error = err.Error()
	}
	res.CPU = measureCPU(m)
	res.Deliveries = f.events.Load() - e0
	res.PerSec = float64(res.Deliveries) / res.CPU.WallSec
	res.CPUSecPerM = res.CPU.ServerSec / float64(max(res.Deliveries, 1)) * 1e6
	res.Latency = summarize(rec.sorted())
	res.ConnsAtEnd = f.openCount()
	return res
}

// redisHop measures raw PUBLISH -> SUBSCRIBE one-way latency with go-redis:
// time from calling PUBLISH to the subscriber reading the message, one
// message in flight at a time (as the sequential revocations are).
func redisHop(ctx context.Context, addr string, hops int) (latency, error) {
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	sub := rdb.Subscribe(ctx, "loadgen:floor")
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		return latency{}, err
	}
	rec := newRecorder(hops)
	defer quietCollector()()
	for range hops {
		t0 := time.Now()
		if err := rdb.Publish(ctx, "loadgen:floor", "x").Err(); err != nil {
			return latency{}, err
		}
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := sub.ReceiveMessage(rctx)
		cancel()
		if err != nil {
			return latency{}, err
		}
		rec.add(int64(time.Since(t0)))
	}
	return summarize(rec.sorted()), nil
}

// revocationResult is the cross-instance revocation run.
type revocationResult struct {
	Revocations int     `json:"revocations"`
	OthersOpen  int     `json:"other_conns_open_on_b"`
	Latency     latency `json:"revoke_to_close_latency"`
	// ToBus and BusToClose split Latency at the bus (see busWatch): from
	// the DELETE to the revocation's event reaching a subscriber in the
	// load generator, and from there to the close frame at the client.
	// Empty when the watch could not subscribe.
	ToBus        latency `json:"revoke_to_bus_latency"`
	BusToClose   latency `json:"bus_to_close_latency"`
	APILatency   latency `json:"revoke_api_roundtrip"`
	WrongCode    int     `json:"wrong_close_code"`
	TimedOut     int     `json:"timed_out"`
	Errors       int     `json:"api_errors"`
	FirstError   string  `json:"first_error,omitempty"`
	ServerCPUSec float64 `json:"servers_cpu_s"`
	// A's, B's and the redis-server's CPU over the revocations (ServerCPUSec
	// is A's + B's).
	CPUSecA     float64 `json:"cpu_s_a"`
	CPUSecB     float64 `json:"cpu_s_b"`
	RedisCPUSec float64 `json:"redis_cpu_s"`
	// Heap bytes allocated per revocation by A and B (A' and B' in the
	// path floor), and the collections each ran during the phase (from
	// their /metrics around it; zero when a scrape failed): B's
	// collections are what its slowest revocations wait behind.
	AllocPerRevocationA float64 `json:"alloc_bytes_per_revocation_a"`
	AllocPerRevocationB float64 `json:"alloc_bytes_per_revocation_b"`
	CollectionsA        int     `json:"collections_a"`
	CollectionsB        int     `json:"collections_b"`
	// Slowest is where the slowest 1% of the revocations fell: a
	// collection on B shows as most of them in one short window.
	Slowest slowest `json:"slowest_1pct"`
	// PathFloor is the same revocations through bare servers (see
	// runner.revocationFloor); nil in the floor's own result.
	PathFloor *revocationResult `json:"path_floor,omitempty"`
}

// The Go runtime's metrics heapDelta reads: heap bytes allocated so far,
// and collections so far.
const (
	metricAllocBytes = "go_memstats_alloc_bytes_total"
	metricGCCount    = "go_gc_duration_seconds_count"
)

// heapDelta is what a process allocated per unit of work (n units) and the
// collections it ran between its metrics m0 and m1; ok is false when a
// scrape failed or there was no work.
func heapDelta(m0, m1 promSample, n int) (allocPer float64, collections int, ok bool) {
	if m0 == nil || m1 == nil || n == 0 {
		return 0, 0, false
	}
	return (m1[metricAllocBytes] - m0[metricAllocBytes]) / float64(n), int(m1[metricGCCount] - m0[metricGCCount]), true
}

// cpu fills the CPU figures from A's, B's and redis-server's CPU seconds.
func (r *revocationResult) cpu(v []float64) {
	r.CPUSecA, r.CPUSecB, r.RedisCPUSec = v[0], v[1], v[2]
	r.ServerCPUSec = v[0] + v[1]
}

// heapCost fills the allocation and collection figures from A's and B's
// metrics before (a0, b0) and after (a1, b1) the revocations: both or
// neither.
func (r *revocationResult) heapCost(a0, a1, b0, b1 promSample) {
	allocA, gcsA, okA := heapDelta(a0, a1, r.Revocations)
	allocB, gcsB, okB := heapDelta(b0, b1, r.Revocations)
	if okA && okB {
		r.AllocPerRevocationA, r.CollectionsA = allocA, gcsA
		r.AllocPerRevocationB, r.CollectionsB = allocB, gcsB
	}
}

// revokeAll revokes each connection's session (revoke(handles[i]), a
// request to instance A), one at a time, and measures until that
// connection (on B) sees its close frame. With bus (may be nil), it also
// splits each revocation at the moment its event reached the bus.
func revokeAll(ctx context.Context, revoke func(ctx context.Context, handle string) error, conns []*heldConn, handles []string, bus *busWatch) revocationResult {
	res := revocationResult{Revocations: len(conns)}
	api := newRecorder(len(conns))
	starts := make([]int64, 0, len(conns))
	keys := make([]string, 0, len(conns))
	lats := make([]int64, 0, len(conns))
	ends := make([]int64, 0, len(conns))
	for i, c := range conns {
		if c == nil {
			res.Errors++
			continue
		}
		t0 := time.Now()
		if err := revoke(ctx, handles[i]); err != nil {
			res.Errors++
			if res.FirstError == "" {
				res.FirstError = err.Error()
			}
			continue
		}
		api.add(int64(time.Since(t0)))
		select {
		case <-c.done:
		case <-time.After(5 * time.Second):
			res.TimedOut++
			continue
		}
		if c.code.Load() != 4500 {
			res.WrongCode++
		}
		starts = append(starts, t0.UnixNano())
		keys = append(keys, handles[i])
		ends = append(ends, c.closedAt.Load())
		lats = append(lats, c.closedAt.Load()-t0.UnixNano())
	}
	if bus != nil {
		toBus, busToClose := splitAtBus(starts, ends, keys, bus.stop())
		res.ToBus, res.BusToClose = summarize(toBus), summarize(busToClose)
	}
	res.Latency = summarize(slices.Sorted(slices.Values(lats)))
	res.Slowest = slowestOf(starts, lats, slowWindow)
	res.APILatency = summarize(api.sorted())
	return res
}

// slowWindow is the window slowest counts its samples' clustering in:
// about one collection's mark on a gateway holding 12,000 connections.
const slowWindow = 200 * time.Millisecond

// slowest is where in a timed run its slowest 1% of samples fell.
type slowest struct {
	// N is how many samples are the slowest 1% (at least one); MinMs is
	// the fastest of them.
	N     int     `json:"n"`
	MinMs float64 `json:"min_ms"`
	// FirstAtMs and LastAtMs are when the first and the last of them
	// started, from the run's first sample.
	FirstAtMs float64 `json:"first_at_ms"`
	LastAtMs  float64 `json:"last_at_ms"`
	// InWindow is how many of them started within the window (WindowMs)
	// that holds the most.
	InWindow int     `json:"in_densest_window"`
	WindowMs float64 `json:"window_ms"`
}

// slowestOf finds the slowest 1% of samples (start and latency, in
// nanoseconds, in start order) and where they fell.
func slowestOf(starts, lats []int64, window time.Duration) slowest {
	if len(lats) == 0 {
		return slowest{}
	}
	idx := make([]int, len(lats))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(lats[b], lats[a]) })
	idx = idx[:max(len(lats)/100, 1)]
	at := make([]int64, len(idx))
	for i, j := range idx {
		at[i] = starts[j] - starts[0]
	}
	slices.Sort(at)
	best := 0
	for i, lo := 0, 0; i < len(at); i++ {
		for at[i]-at[lo] >= int64(window) {
			lo++
		}
		best = max(best, i-lo+1)
	}
	ms := func(ns int64) float64 { return float64(ns) / 1e6 }
	return slowest{
		N: len(idx), MinMs: ms(lats[idx[len(idx)-1]]),
		FirstAtMs: ms(at[0]), LastAtMs: ms(at[len(at)-1]),
		InWindow: best, WindowMs: ms(int64(window)),
	}
}
