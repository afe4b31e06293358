package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// runner holds what one run starts and must stop.
type runner struct {
	phases string
	// stormProfile, when set, is where the resume storm's gateway CPU
	// profile is written.
	stormProfile string
	// inboundProfile, when set, is where the inbound phase's gateway CPU
	// profile is written; inboundWorkers is its worker process count.
	inboundProfile string
	inboundWorkers int
	// profileDir, when set, receives a CPU profile of the gateway during
	// each judged phase (handshakes, fan-out, revocation on B), named
	// rep<N>-<phase>.pprof; fan-out's are per level and mode,
	// rep<N>-fanout-<level>-inflight<n>.pprof.
	profileDir string
	rep        int
	workerBin  string
	p          profile
	gatewayBin string
	self       string
	logDir     string
	serverCPU  string // taskset list for servers, "" when unpinned
	d          *dialers
	logf       func(format string, args ...any)

	secret, encKey string
	redis          *proc
	redisAddr      string
	procs          []*proc
	res            *results
}

const benchAPIKey = "loadgen-bench-api-key-0123456789"

// instance is one started gateway or floor server.
type instance struct {
	p    *proc
	addr string
	base string
	api  *apiClient
	// debugAddr is the gateway's pprof listener when -profile-dir is set.
	debugAddr string
}

func (r *runner) enabled(phase string) bool {
	return slices.Contains(strings.Split(r.phases, ","), phase)
}

func (r *runner) stopAll() {
	for i := len(r.procs) - 1; i >= 0; i-- {
		r.procs[i].stop(5 * time.Second)
	}
	r.procs = nil
}

func (r *runner) startRedis(ctx context.Context) error {
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	_, port, _ := cutLast(addr, ":")
	dir, err := os.MkdirTemp("", "loadgen-redis-")
	if err != nil {
		return err
	}
	p, err := startProc("redis", r.serverCPU, r.logDir, "redis-server", []string{
		"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", dir, "--daemonize", "no", "--loglevel", "warning", "--maxclients", "1000",
	}, nil)
	if err != nil {
		return err
	}
	r.procs = append(r.procs, p)
	r.redis, r.redisAddr = p, addr
	return waitTCP(ctx, p, addr, 10*time.Second)
}

func cutLast(s, sep string) (string, string, bool) {
	for i := len(s) - len(sep); i >= 0; i-- {
		if s[i:i+len(sep)] == sep {
			return s[:i], s[i+len(sep):], true
		}
	}
	return s, "", false
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// startGateway starts one gateway instance on a free port, sharing the
// run's Redis and secrets, and waits for /readyz. extra is appended to its
// environment (later entries win).
func (r *runner) startGateway(ctx context.Context, id string, extra ...string) (*instance, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	env := append(r.commonEnv(),
		"GATEWAY_ADDR="+addr,
		"GATEWAY_INSTANCE_ID="+id,
		"GATEWAY_API_KEYS="+benchAPIKey,
		"WS_PING_INTERVAL="+r.p.PingInterval.String(),
		"WS_PONG_TIMEOUT=10s",
	)
	base := "http://" + addr
	var debugAddr string
	if r.profileDir != "" {
		if debugAddr, err = freeAddr(); err != nil {
			return nil, err
		}
		env = append(env, "GATEWAY_DEBUG_ADDR="+debugAddr)
	}
	// RATE_LIMIT_RPS=0 turns the per-IP limit off: the load comes from a
	// few hundred addresses, far over any per-client limit.
	p, err := startProc(id, r.serverCPU, r.logDir, r.gatewayBin, nil, append(append(env, "RATE_LIMIT_RPS=0"), extra...))
	if err != nil {
		return nil, err
	}
	r.procs = append(r.procs, p)
	if err := waitHTTP(ctx, p, base+"/readyz", 20*time.Second); err != nil {
		return nil, err
	}
	return &instance{p: p, addr: addr, base: base, api: newAPIClient(base, benchAPIKey), debugAddr: debugAddr}, nil
}

// commonEnv is the environment every gateway and worker of the run
// shares: the run's Redis and secrets.
func (r *runner) commonEnv() []string {
	return []string{
		"GATEWAY_ENV=development",
		"USE_REDIS_SESSIONS=true",
		"REDIS_URL=redis://" + r.redisAddr + "/0",
		"SESSION_SECRET=" + r.secret,
		"SESSION_ENCRYPTION_KEY=" + r.encKey,
		"LOG_LEVEL=warn",
	}
}

// startFloor starts "loadgen floor-server" pinned like the gateway, named
// name, with extra appended to its arguments.
func (r *runner) startFloor(ctx context.Context, name string, extra ...string) (*instance, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	// The same runtime setting the gateway binary gives itself (see
	// cmd/gateway smallStacks), so the floor is measured like for like.
	p, err := startProc(name, r.serverCPU, r.logDir, r.self, append([]string{"floor-server", "-addr", addr}, extra...), []string{"GODEBUG=adaptivestackstart=0"})
	if err != nil {
		return nil, err
	}
	r.procs = append(r.procs, p)
	base := "http://" + addr
	if err := waitHTTP(ctx, p, base+"/readyz", 10*time.Second); err != nil {
		return nil, err
	}
	return &instance{p: p, addr: addr, base: base, api: newAPIClient(base, "")}, nil
}

// memPoint is a server's memory at one connection count.
type memPoint struct {
	Conns     int     `json:"conns"`
	RSS       float64 `json:"rss_bytes"`
	HeapInuse float64 `json:"heap_inuse_bytes"`
	// Where the resident memory is (the Go runtime's own figures, from
	// /metrics): heap objects not yet freed (live or garbage), goroutine
	// stacks, and free heap pages not yet returned to the OS.
	HeapAlloc      float64 `json:"heap_alloc_bytes,omitempty"`
	StackInuse     float64 `json:"stack_inuse_bytes,omitempty"`
	HeapUnreleased float64 `json:"heap_unreleased_bytes,omitempty"`
	Goroutines     float64 `json:"goroutines,omitempty"`
	RSSPerConn     float64 `json:"rss_per_conn_bytes"`
	HeapPerConn    float64 `json:"heap_per_conn_bytes"`
	GaugeOpen      float64 `json:"connections_open_gauge"`
	FailedToOpen   int     `json:"failed_to_open,omitempty"`
	OpenErrorText  string  `json:"open_error,omitempty"`
}

func readMem(ctx context.Context, in *instance) (memPoint, error) {
	s, err := scrape(ctx, in.base)
	if err != nil {
		return memPoint{}, err
	}
	rss, err := rssBytes(in.p.pid())
	if err != nil {
		return memPoint{}, err
	}
	return memPoint{
		RSS: rss, HeapInuse: s["go_memstats_heap_inuse_bytes"], GaugeOpen: s["sessiongate_connections_open"],
		HeapAlloc: s["go_memstats_heap_alloc_bytes"], StackInuse: s["go_memstats_stack_inuse_bytes"],
		HeapUnreleased: s["go_memstats_heap_idle_bytes"] - s["go_memstats_heap_released_bytes"], Goroutines: s["go_goroutines"],
	}, nil
}

// serverSide is every figure measured on one server kind (gateway or floor).
type serverSide struct {
	IdleCPU   *cpuUse          `json:"idle_cpu_no_conns,omitempty"`
	Baseline  memPoint         `json:"mem_baseline"`
	Memory    []memPoint       `json:"memory"`
	Heartbeat *heartbeatResult `json:"heartbeat,omitempty"`
	// FanoutAll is one run per fan-out level (largest first) and mode.
	FanoutAll  []fanoutResult  `json:"fanout_all"`
	FanoutUser fanoutResult    `json:"fanout_user"`
	Handshake  handshakeResult `json:"handshake"`
}

// heartbeatResult is gateway CPU with N idle connections answering pings.
type heartbeatResult struct {
	Conns         int     `json:"conns"`
	PingInterval  string  `json:"ping_interval"`
	Pings         int64   `json:"pings_answered"`
	CPU           cpuUse  `json:"cpu"`
	NetPctCore    float64 `json:"net_pct_of_core_over_idle"`
	MicrosPerPing float64 `json:"server_cpu_us_per_ping_net"`
	// Projected19k is the projection to 19,000 connections at a 25 s ping
	// interval from this run's idle baseline and per-ping cost (used when
	// the run did not hold 19k connections itself).
	Projected19kPct float64 `json:"projected_19k_25s_pct_of_core"`
}

// side runs the memory, heartbeat, fan-out and handshake phases against one
// server: it opens every memory level (reading memory at each), measures
// heartbeats (gateway only) at the largest, then fans out to all at each of
// the profile's fan-out levels, largest first, closing connections down to
// the next one in between; publish to user runs at the largest level.
// gateway says which WebSocket path and publish API to use.
func (r *runner) side(ctx context.Context, in *instance, gateway bool, users []string, tokens []string) (serverSide, error) {
	var out serverSide
	redisPid := 0
	if gateway {
		redisPid = r.redis.pid()
	}
	wsPath := "/hold"
	if gateway {
		wsPath = "/ws"
		r.logf("  idle gateway CPU, no connections, %s", r.p.HeartbeatWindow)
		m := startServerCPU(in.p.pid(), redisPid)
		sleep(ctx, r.p.HeartbeatWindow)
		u := measureCPU(m)
		out.IdleCPU = &u
	}
	time.Sleep(time.Second)
	base, err := readMem(ctx, in)
	if err != nil {
		return out, err
	}
	out.Baseline = base
	f := newFleet(r.d, in.addr, wsPath)
	defer f.closeAll()
	opened := 0
	for _, level := range r.p.MemLevels {
		r.logf("  opening %d idle connections", level)
		var toks []string
		if gateway {
			toks = tokens[opened:level]
		} else {
			toks = make([]string, level-opened)
		}
		_, err := f.open(ctx, toks, 64)
		opened = level
		time.Sleep(3 * time.Second)
		mp, merr := readMem(ctx, in)
		if merr != nil {
			return out, merr
		}
		mp.Conns = f.openCount()
		if err != nil {
			mp.FailedToOpen = level - mp.Conns
			mp.OpenErrorText = err.Error()
			r.logf("  WARNING: %v", err)
		}
		mp.RSSPerConn = (mp.RSS - base.RSS) / float64(max(mp.Conns, 1))
		mp.HeapPerConn = (mp.HeapInuse - base.HeapInuse) / float64(max(mp.Conns, 1))
		out.Memory = append(out.Memory, mp)
	}
	n := f.openCount()
	if n == 0 {
		return out, errors.New("no connection could be opened")
	}
	if gateway {
		r.logf("  heartbeats: %d idle connections, ping interval %s, %s", n, r.p.PingInterval, r.p.HeartbeatWindow)
		p0 := f.pings.Load()
		m := startServerCPU(in.p.pid(), redisPid)
		sleep(ctx, r.p.HeartbeatWindow)
		u := measureCPU(m)
		hb := &heartbeatResult{Conns: n, PingInterval: r.p.PingInterval.String(), Pings: f.pings.Load() - p0, CPU: u}
		idlePct := out.IdleCPU.ServerPctCore
		hb.NetPctCore = u.ServerPctCore - idlePct
		netSec := u.ServerSec - out.IdleCPU.ServerSec*u.WallSec/out.IdleCPU.WallSec
		hb.MicrosPerPing = 1e6 * netSec / float64(max(hb.Pings, 1))
		hb.Projected19kPct = idlePct + 100*hb.MicrosPerPing/1e6*19000/25
		out.Heartbeat = hb
	}

	var pubAll func(context.Context, int64) error
	var pubUser func(context.Context, int, int64) error
	if gateway {
		pubAll = func(ctx context.Context, t int64) error {
			return in.api.publish(ctx, []byte(`{"target":{"all":true},"event":"bench","data":`+eventData(t)+`}`))
		}
		pubUser = func(ctx context.Context, i int, t int64) error {
			return in.api.publish(ctx, []byte(`{"target":{"user_id":"`+users[i%n]+`"},"event":"bench","data":`+eventData(t)+`}`))
		}
	} else {
		pubAll = func(ctx context.Context, t int64) error {
			return in.api.do(ctx, http.MethodPost, "/fanout", floorEvent(t), http.StatusAccepted, nil)
		}
		pubUser = func(ctx context.Context, i int, t int64) error {
			return in.api.do(ctx, http.MethodPost, "/send?i="+strconv.Itoa(i%n), floorEvent(t), http.StatusAccepted, nil)
		}
	}
	// Fan-out to all at each level, largest first: memory has been read at
	// every level already (fan-out buffers and GC headroom would inflate a
	// later reading), so the lower levels are reached by closing the most
	// recently opened connections.
	for i, level := range r.p.fanoutLevels() {
		settle := ""
		if i > 0 {
			r.logf("  closing connections down to %d", level)
			f.closeNewest(f.size() - level)
			if err := waitConnsOpen(ctx, in.base, f.openCount(), 60*time.Second); err != nil {
				settle = "server did not let go of the closed connections: " + err.Error()
				r.logf("  WARNING: %s", settle)
			}
			time.Sleep(time.Second)
		}
		for _, m := range r.p.fanoutModes() {
			r.logf("  fan-out to all: %d connections, %d events, %d in flight", f.openCount(), m.Rounds*m.InFlight, m.InFlight)
			wait := r.profilePhase(ctx, in, fmt.Sprintf("fanout-%d-inflight%d", level, m.InFlight), 3)
			fr := fanoutAll(ctx, f, pubAll, m.Rounds, m.InFlight, in.p.pid(), redisPid)
			wait()
			fr.Level = level
			if fr.Error == "" {
				fr.Error = settle
			}
			out.FanoutAll = append(out.FanoutAll, fr)
		}
		if i == 0 {
			r.logf("  fan-out to one user: %d publishes, %d in flight", r.p.UserPublishes, r.p.UserConc)
			out.FanoutUser = fanoutUser(ctx, f, pubUser, r.p.UserPublishes, r.p.UserConc, in.p.pid(), redisPid)
		}
	}
	f.closeAll()
	time.Sleep(time.Second)

	r.logf("  handshake rate: %d in flight, %s", r.p.HandshakeConc, r.p.HandshakeRun)
	hsPath, hsTokens := "/upgrade", []string(nil)
	if gateway {
		hsPath, hsTokens = "/ws", tokens
	}
	wait := r.profilePhase(ctx, in, "handshake", int(r.p.HandshakeRun.Seconds())-1)
	out.Handshake = handshakeRate(ctx, r.d, in.addr, hsPath, hsTokens, r.p.HandshakeConc, r.p.HandshakeRun, in.p.pid(), redisPid)
	wait()
	return out, nil
}

// floorEvent is the frame the gateway would write for a publish: the bare
// fan-out floor writes these exact bytes.
func floorEvent(t int64) []byte {
	return []byte(`{"type":"event","id":"01JBENCHFLOOR0000000000000","event":"bench","data":` + eventData(t) + `}`)
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// revocation starts instance B next to A, opens RevokeOthers other
// connections and the ones to revoke on B, waits until both servers have
// settled, measures the raw Redis hop floor (on the machine as the
// revocations find it: B and its connections up), then revokes through A
// the sessions whose connections live on B.
func (r *runner) revocation(ctx context.Context, a *instance, others []string) (revocationResult, latency, error) {
	var hop latency
	r.logf("starting gateway B")
	b, err := r.startGateway(ctx, "gw-b")
	if err != nil {
		return revocationResult{}, hop, err
	}
	defer b.api.close()
	time.Sleep(time.Second)
	f := newFleet(r.d, b.addr, "/ws")
	defer f.closeAll()
	users := make([]string, r.p.Revocations)
	for i := range users {
		users[i] = fmt.Sprintf("r-%06d", i)
	}
	sess, err := a.api.createSessions(ctx, users, 32)
	if err != nil {
		return revocationResult{}, hop, fmt.Errorf("create revocation sessions: %w", err)
	}
	toks := make([]string, len(sess))
	handles := make([]string, len(sess))
	for i, s := range sess {
		toks[i], handles[i] = s.Token, s.Handle
	}
	conns, others0 := r.openRevocationConns(ctx, f, others, toks)
	// Before the servers settle: its collection is out of the window.
	r.heapProfile(ctx, b, "revocation-b-heap-before")
	waited := settle(ctx, a.p.pid(), b.p.pid())
	r.logf("  servers settled after %s (resident memory steady)", waited.Round(100*time.Millisecond))
	r.logf("  raw Redis PUBLISH->SUBSCRIBE hop: %d samples", r.p.RedisHops)
	if hop, err = redisHop(ctx, r.redisAddr, r.p.RedisHops); err != nil {
		return revocationResult{}, hop, fmt.Errorf("redis hop: %w", err)
	}
	r.logf("  revoking %d sessions through A, one at a time", len(toks))
	res := r.timeRevocations(ctx, a, b, "revocation", a.api.revoke, conns, handles, gatewayEventChannel, sessionRevokedHandle)
	r.heapProfile(ctx, b, "revocation-b-heap-after")
	res.OthersOpen = others0
	// B and its connections go before the path floor's servers start.
	f.closeAll()
	b.p.stop(5 * time.Second)
	// The path floor is a second reading of the same figures: when it
	// cannot run, the gateway's figures stand without it.
	if pf, err := r.revocationFloor(ctx, others, len(toks)); err != nil {
		r.logf("  WARNING: revocation path floor: %v", err)
	} else {
		res.PathFloor = &pf
	}
	return res, hop, nil
}

// revocationFloor measures the revocation path's floor: two bare floor
// servers on the run's redis-server, A' (DELETE /revoke/{token} ->
// PUBLISH, DEL) and B' (SUBSCRIBE -> close the connection with 4500), the same
// number of other connections and connections to revoke on B' as on B,
// settled the same way, then each revoked through A' in turn and timed
// like the gateway's: from sending the DELETE to the close frame arriving.
func (r *runner) revocationFloor(ctx context.Context, others []string, n int) (revocationResult, error) {
	r.logf("  revocation path floor: bare servers A' and B' on the same Redis")
	fa, err := r.startFloor(ctx, "floor-a", "-redis", r.redisAddr)
	if err != nil {
		return revocationResult{}, err
	}
	defer fa.p.stop(5 * time.Second)
	defer fa.api.close()
	fb, err := r.startFloor(ctx, "floor-b", "-redis", r.redisAddr)
	if err != nil {
		return revocationResult{}, err
	}
	defer fb.p.stop(5 * time.Second)
	f := newFleet(r.d, fb.addr, "/hold")
	defer f.closeAll()
	toks := make([]string, n)
	for i := range toks {
		toks[i] = fmt.Sprintf("rv-%06d-%s", i, randHex(8))
	}
	conns, others0 := r.openRevocationConns(ctx, f, others, toks)
	waited := settle(ctx, fa.p.pid(), fb.p.pid())
	r.logf("  floor servers settled after %s; revoking %d through A'", waited.Round(100*time.Millisecond), n)
	revoke := func(ctx context.Context, tok string) error {
		return fa.api.do(ctx, http.MethodDelete, "/revoke/"+tok, nil, http.StatusNoContent, nil)
	}
	if r.profileDir != "" {
		// The floor serves pprof on its own address.
		fa.debugAddr, fb.debugAddr = fa.addr, fb.addr
	}
	res := r.timeRevocations(ctx, fa, fb, "revocation-floor", revoke, conns, toks, floorRevokeChannel, floorRevokedToken)
	res.OthersOpen = others0
	return res, nil
}

// openRevocationConns opens the other connections on f, then one per token
// to revoke (64 handshakes in flight; failures are logged), and returns
// the connections to revoke in token order and how many others are open.
func (r *runner) openRevocationConns(ctx context.Context, f *fleet, others, toks []string) ([]*heldConn, int) {
	r.logf("  opening %d other connections and %d to revoke", len(others), len(toks))
	if _, err := f.open(ctx, others, 64); err != nil {
		r.logf("  WARNING: %v", err)
	}
	conns, err := f.open(ctx, toks, 64)
	if err != nil {
		r.logf("  WARNING: %v", err)
	}
	return conns, f.openCount() - len(toks)
}

// timeRevocations revokes conns one at a time (handles[i] through revoke,
// a request to a) and measures it the same way for the gateways and the
// path floor: latency (split where each revocation's event reaches the
// bus: a message on channel whose key is the handle revoked), a's, b's
// and redis-server's CPU, the heap a and b allocated and their
// collections (their /metrics just around it) and, with -profile-dir,
// their CPU profiles as <name>-a and <name>-b.
func (r *runner) timeRevocations(ctx context.Context, a, b *instance, name string, revoke func(context.Context, string) error, conns []*heldConn, handles []string, channel string, key func(string) (string, bool)) revocationResult {
	bus, err := watchBus(ctx, r.redisAddr, channel, key)
	if err != nil {
		r.logf("  WARNING: %v (the latency is not split at the bus)", err)
	}
	waitA := r.profilePhase(ctx, a, name+"-a", 1)
	waitB := r.profilePhase(ctx, b, name+"-b", 1)
	a0, _ := scrape(ctx, a.base)
	b0, _ := scrape(ctx, b.base)
	restore := quietCollector()
	m := startCPU(a.p.pid(), b.p.pid(), r.redis.pid())
	res := revokeAll(ctx, revoke, conns, handles, bus)
	v, _ := m.stop()
	restore()
	a1, _ := scrape(ctx, a.base)
	b1, _ := scrape(ctx, b.base)
	waitA()
	waitB()
	res.cpu(v)
	res.heapCost(a0, a1, b0, b1)
	return res
}

// settle waits until the resident memory of every pid has stayed within 1%
// for three readings a second apart (at most 20 s), and returns how long
// it waited. A gateway that has just opened thousands of connections
// collects and returns that burst's garbage (MEMORY_HEADROOM) within a
// second or two, a collection that stalls a one-core process for
// milliseconds; the revocation goal is about connections that are open,
// not being opened.
func settle(ctx context.Context, pids ...int) time.Duration {
	start := time.Now()
	last := make([]float64, len(pids))
	for steady := 0; steady < 3 && time.Since(start) < 20*time.Second && ctx.Err() == nil; {
		moved := false
		for i, pid := range pids {
			v, err := rssBytes(pid)
			if err != nil {
				return time.Since(start)
			}
			if v > last[i]*1.01 || v < last[i]*0.99 {
				moved = true
			}
			last[i] = v
		}
		if steady++; moved {
			steady = 0
		}
		if steady < 3 {
			sleep(ctx, time.Second)
		}
	}
	return time.Since(start)
}

// profilePhase starts a CPU profile of in over secs seconds when profiles
// are asked for; wait returns once it is written (errors are logged: a
// missing profile must not fail the measurement).
func (r *runner) profilePhase(ctx context.Context, in *instance, phase string, secs int) (wait func()) {
	if r.profileDir == "" || in.debugAddr == "" {
		return func() {}
	}
	path := filepath.Join(r.profileDir, fmt.Sprintf("rep%d-%s.pprof", r.rep, phase))
	done := make(chan error, 1)
	go func() { done <- fetchProfile(ctx, in.debugAddr, path, max(secs, 1)) }()
	return func() {
		if err := <-done; err != nil {
			r.logf("  WARNING: %s profile: %v", phase, err)
			return
		}
		r.logf("  %s CPU profile (%d s) in %s", phase, max(secs, 1), path)
	}
}

// heapProfile writes in's heap profile, after a collection, to
// rep<N>-<name>.pprof when profiles are asked for. Its allocation samples
// are cumulative and published by collections: the difference of two
// (go tool pprof -sample_index=alloc_space -base first second) is what was
// allocated between them, sampled at the runtime's rate (the gateway run
// with GODEBUG=memprofilerate=512 gives a fine one).
func (r *runner) heapProfile(ctx context.Context, in *instance, name string) {
	if r.profileDir == "" || in.debugAddr == "" {
		return
	}
	path := filepath.Join(r.profileDir, fmt.Sprintf("rep%d-%s.pprof", r.rep, name))
	if err := fetchPprof(ctx, in.debugAddr, "heap?gc=1", path); err != nil {
		r.logf("  WARNING: %s heap profile: %v", name, err)
		return
	}
	r.logf("  %s heap profile in %s", name, path)
}
