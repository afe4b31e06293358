package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// stormResult is the "resume" phase: a resume storm.
type stormResult struct {
	Conns       int `json:"conns"`
	UserEvents  int `json:"missed_user_events_per_client"`
	AllEvents   int `json:"missed_broadcast_events"`
	Concurrency int `json:"handshakes_in_flight"`

	Reconnected  int    `json:"reconnected"`
	DialRetries  int64  `json:"dial_retries"`
	DialFailed   int    `json:"dial_failed"`
	FirstDialErr string `json:"first_dial_error,omitempty"`
	Live         int    `json:"live"`
	NotRecovered int    `json:"not_recovered"`
	// Missing, Duplicates, Extra, WrongEpoch: summed over clients, up to
	// the barrier (a live broadcast event after the storm, which every
	// connection must receive after all it was sent before).
	Missing        int `json:"missed_events_not_received"`
	Duplicates     int `json:"duplicates"`
	Extra          int `json:"unexpected_events"`
	WrongEpoch     int `json:"wrong_epoch_events"`
	BarrierMissing int `json:"barrier_not_received"`

	// DurationSec runs from the first reconnect's dial to the last client
	// live: welcome with recovered:true and every missed event received.
	DurationSec float64 `json:"first_reconnect_to_all_live_s"`
	// TimeToLive is per client, from the first reconnect; OwnTimeToLive
	// from the client's own dial.
	TimeToLive     latency `json:"first_reconnect_to_client_live"`
	OwnTimeToLive  latency `json:"own_dial_to_live"`
	Replayed       int64   `json:"replayed_events_received"`
	ReplayedMetric float64 `json:"replayed_events_metric"`
	ReplayedPerSec float64 `json:"replayed_events_per_sec"`
	// CPU: ServerSec is gateway B, RedisSec redis-server, over the storm.
	CPU   cpuUse     `json:"cpu"`
	Redis redisDelta `json:"redis"`
	Error string     `json:"error,omitempty"`
}

// resumePhase runs the resume storm: StormConns clients (distinct users) on
// gateway SA, live events to advance their positions, SA killed with -9,
// events published to every user's stream and to the broadcast stream,
// then every client reconnects to gateway SB with its positions at once.
// api publishes (another gateway of the run).
func (r *runner) resumePhase(ctx context.Context, api *apiClient, users, tokens []string) (stormResult, error) {
	p := r.p
	n := min(p.StormConns, len(tokens))
	res := stormResult{Conns: n, UserEvents: p.StormUserEvents, AllEvents: p.StormAllEvents, Concurrency: p.StormConc}
	r.logf("resume storm: starting gateways SA (to be killed) and SB")
	sa, err := r.startGateway(ctx, "gw-storm-a")
	if err != nil {
		return res, err
	}
	defer sa.api.close()
	var sbEnv []string
	var debugAddr string
	if r.stormProfile != "" {
		if debugAddr, err = freeAddr(); err != nil {
			return res, err
		}
		sbEnv = append(sbEnv, "GATEWAY_DEBUG_ADDR="+debugAddr)
	}
	sb, err := r.startGateway(ctx, "gw-storm-b", sbEnv...)
	if err != nil {
		return res, err
	}
	defer func() { sb.api.close(); sb.p.stop(5 * time.Second) }()

	clients := make([]*stormClient, n)
	for i := range clients {
		clients[i] = &stormClient{token: tokens[i]}
	}
	defer closeStorm(clients)
	r.logf("  opening %d connections on SA", n)
	var events atomic.Int64
	if err := openStorm(ctx, r.d, sa.addr, clients, &events); err != nil {
		return res, err
	}

	r.logf("  live events: 1 broadcast, 1 per user")
	if _, err := api.publishAt(ctx, stormEvent(`{"all":true}`)); err != nil {
		return res, err
	}
	if _, err := publishUsers(ctx, api, users[:n], 1); err != nil {
		return res, err
	}
	if err := waitCount(ctx, &events, int64(2*n), 60*time.Second, "live events before the kill"); err != nil {
		return res, err
	}

	r.logf("  killing SA (SIGKILL)")
	sa.p.kill()
	if err := waitDone(clients, 30*time.Second); err != nil {
		return res, err
	}

	r.logf("  missed events: %d broadcast, %d per user", p.StormAllEvents, p.StormUserEvents)
	var want [nStreams]uint64
	var allEpoch string
	for range p.StormAllEvents {
		pe, err := api.publishAt(ctx, stormEvent(`{"all":true}`))
		if err != nil {
			return res, err
		}
		want[sAll], allEpoch = pe.Offset, pe.Epoch
	}
	last, err := publishUsers(ctx, api, users[:n], p.StormUserEvents)
	if err != nil {
		return res, err
	}
	for i, c := range clients {
		w := want
		w[sUser] = last[i].Offset
		if c.pos[sUser].Epoch != last[i].Epoch || c.pos[sAll].Epoch != allEpoch {
			return res, fmt.Errorf("client %d: epoch changed between its welcome and the missed events", i)
		}
		c.expect(w)
	}

	rdb := redis.NewClient(&redis.Options{Addr: r.redisAddr})
	defer rdb.Close()
	before, err := readRedisCounters(ctx, rdb)
	if err != nil {
		return res, err
	}
	m0, err := scrape(ctx, sb.base)
	if err != nil {
		return res, err
	}

	r.logf("  storm: %d clients reconnect to SB with resume positions, %d handshakes in flight", n, p.StormConc)
	st := &storm{clients: clients, allLive: make(chan struct{}), allBarrier: make(chan struct{})}
	var profDone chan error
	if debugAddr != "" {
		profDone = make(chan error, 1)
		go func() { profDone <- fetchProfile(ctx, debugAddr, r.stormProfile, p.StormProfileSec) }()
	}
	m := startCPU(sb.p.pid(), 0, r.redis.pid())
	t0 := time.Now()
	st.reconnect(ctx, r.d, sb.addr, p.StormConc, &res)
	select {
	case <-st.allLive:
	case <-ctx.Done():
	case <-time.After(60 * time.Second):
		res.Error = "timed out waiting for every client to be live"
	}
	res.CPU = measureCPU(m)
	after, err := readRedisCounters(ctx, rdb)
	if err != nil {
		return res, err
	}
	res.Redis = diffRedis(before, after)
	if m1, err := scrape(ctx, sb.base); err == nil {
		res.ReplayedMetric = m1["sessiongate_resume_replayed_events_total"] - m0["sessiongate_resume_replayed_events_total"]
	}

	r.logf("  barrier: one live broadcast event after the storm")
	if _, err := api.publishAt(ctx, stormEvent(`{"all":true}`)); err != nil {
		return res, err
	}
	select {
	case <-st.allBarrier:
	case <-ctx.Done():
	case <-time.After(30 * time.Second):
	}
	closeStorm(clients)
	if err := waitDone(clients, 30*time.Second); err != nil {
		return res, err
	}
	st.tally(&res, t0)
	if profDone != nil {
		if err := <-profDone; err != nil {
			r.logf("  WARNING: storm CPU profile: %v", err)
		} else {
			r.logf("  storm CPU profile of SB (%ds from the first reconnect) in %s", p.StormProfileSec, r.stormProfile)
		}
	}
	return res, nil
}

// stormEvent is a publish body with the given target.
func stormEvent(target string) []byte {
	return []byte(`{"target":` + target + `,"event":"storm","data":` + eventData(time.Now().UnixNano()) + `}`)
}

// publishUsers publishes k events to each user (64 in flight) and returns,
// per user, the position of the last one.
func publishUsers(ctx context.Context, api *apiClient, users []string, k int) ([]published, error) {
	last := make([]published, len(users))
	var (
		mu    sync.Mutex
		first error
		next  atomic.Int64
		wg    sync.WaitGroup
	)
	total := int64(len(users) * k)
	for range 64 {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= total || ctx.Err() != nil {
					return
				}
				u := int(i) % len(users)
				pe, err := api.publishAt(ctx, stormEvent(`{"user_id":"`+users[u]+`"}`))
				mu.Lock()
				switch {
				case err != nil:
					if first == nil {
						first = err
					}
				case pe.Offset > last[u].Offset:
					last[u] = pe
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		first = ctx.Err()
	}
	return last, first
}

// openStorm connects every client to addr (64 handshakes in flight),
// reads its welcome and starts its reader, which tracks positions and
// counts events in events.
func openStorm(ctx context.Context, d *dialers, addr string, clients []*stormClient, events *atomic.Int64) error {
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		first   error
	)
	for range 64 {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(len(clients)) || ctx.Err() != nil {
					return
				}
				c := clients[i]
				if err := c.open(ctx, d, addr, events); err != nil {
					errOnce.Do(func() { first = fmt.Errorf("client %d: %w", i, err) })
					return
				}
			}
		})
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// open connects c, reads its welcome (its first positions) and starts the
// reader that advances them.
func (c *stormClient) open(ctx context.Context, d *dialers, addr string, events *atomic.Int64) error {
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	ws, err := dialWS(dctx, d, addr, "/ws", c.token)
	if err != nil {
		return err
	}
	_ = ws.nc.SetReadDeadline(time.Now().Add(15 * time.Second))
	op, p, err := ws.readMessage()
	if err != nil || op != opText || !isWelcome(p) {
		ws.nc.Close()
		if err == nil {
			err = fmt.Errorf("%w: first frame is not a welcome", errBadFrame)
		}
		return err
	}
	c.track(p)
	if c.pos[sUser].Epoch == "" || c.pos[sAll].Epoch == "" {
		ws.nc.Close()
		return errors.New("welcome without positions (is history on?)")
	}
	_ = ws.nc.SetReadDeadline(time.Time{})
	c.ws, c.done = ws, make(chan struct{})
	go func() {
		defer close(c.done)
		defer ws.nc.Close()
		for {
			op, p, err := ws.readMessage()
			if err != nil || op == opClose {
				return
			}
			if op != opText {
				continue
			}
			if bytes.HasPrefix(p, pingPrefix) {
				_ = ws.writePong()
				continue
			}
			if c.track(p) {
				events.Add(1)
			}
		}
	}()
	return nil
}

// storm is the reconnect of every client at once.
type storm struct {
	clients    []*stormClient
	live       atomic.Int64
	barriers   atomic.Int64
	allLive    chan struct{}
	allBarrier chan struct{}
}

// reconnect dials every client to addr with its positions, conc
// handshakes (TCP connect and HTTP upgrade) in flight; each client's
// reader takes over once upgraded. A failed dial is retried twice, as a
// client would. It returns once every dial was made.
func (st *storm) reconnect(ctx context.Context, d *dialers, addr string, conc int, res *stormResult) {
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		retries atomic.Int64
		mu      sync.Mutex
	)
	n := int64(len(st.clients))
	for range conc {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				c := st.clients[i]
				c.dialStart = time.Now().UnixNano()
				path := resumePath(c.pos)
				var err error
				for attempt := range 3 {
					if attempt > 0 {
						retries.Add(1)
					}
					dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
					var ws *wsConn
					ws, err = dialWS(dctx, d, addr, path, c.token)
					cancel()
					if err == nil {
						c.ws, c.done = ws, make(chan struct{})
						go st.read(c)
						break
					}
				}
				if err != nil {
					mu.Lock()
					res.DialFailed++
					if res.FirstDialErr == "" {
						res.FirstDialErr = err.Error()
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	res.DialRetries = retries.Load()
}

// read is a reconnected client's reader: it accounts for every frame.
func (st *storm) read(c *stormClient) {
	defer close(c.done)
	defer c.ws.nc.Close()
	n := int64(len(st.clients))
	for {
		op, p, err := c.ws.readMessage()
		now := time.Now().UnixNano()
		if err != nil || op == opClose {
			return
		}
		if op != opText {
			continue
		}
		if bytes.HasPrefix(p, pingPrefix) {
			_ = c.ws.writePong()
			continue
		}
		live, barrier := c.account(p)
		if live && c.liveAt.CompareAndSwap(0, now) && st.live.Add(1) == n {
			close(st.allLive)
		}
		if barrier {
			c.barrierAt.Store(now)
			if st.barriers.Add(1) == n {
				close(st.allBarrier)
			}
		}
	}
}

// tally sums the clients' accounting into res; every reader has ended.
func (st *storm) tally(res *stormResult, t0 time.Time) {
	var ttl, own []int64
	lastLive := int64(0)
	for _, c := range st.clients {
		if c.welcomed {
			res.Reconnected++
		}
		if c.welcomed && !c.recovered {
			res.NotRecovered++
		}
		res.Missing += c.remaining
		res.Duplicates += c.dups
		res.Extra += c.extra
		res.WrongEpoch += c.wrongEpoch
		res.Replayed += int64(c.replayed)
		if !c.gotBarrier {
			res.BarrierMissing++
		}
		if at := c.liveAt.Load(); at > 0 {
			res.Live++
			ttl = append(ttl, at-t0.UnixNano())
			own = append(own, at-c.dialStart)
			lastLive = max(lastLive, at)
		}
	}
	slices.Sort(ttl)
	slices.Sort(own)
	res.TimeToLive, res.OwnTimeToLive = summarize(ttl), summarize(own)
	if res.Live == len(st.clients) {
		res.DurationSec = float64(lastLive-t0.UnixNano()) / 1e9
		res.ReplayedPerSec = float64(res.Replayed) / max(res.DurationSec, 1e-9)
	}
}

// closeStorm closes every client's connection.
func closeStorm(clients []*stormClient) {
	for _, c := range clients {
		if c.ws != nil {
			_ = c.ws.nc.Close()
		}
	}
}

// waitDone waits until every started reader has ended.
func waitDone(clients []*stormClient, timeout time.Duration) error {
	deadline := time.After(timeout)
	for i, c := range clients {
		if c.done == nil {
			continue
		}
		select {
		case <-c.done:
		case <-deadline:
			return fmt.Errorf("client %d: connection still open after %s", i, timeout)
		}
	}
	return nil
}

// waitCount polls v until it reaches want.
func waitCount(ctx context.Context, v *atomic.Int64, want int64, timeout time.Duration, what string) error {
	deadline := time.Now().Add(timeout)
	for v.Load() < want {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out: %d of %d %s", v.Load(), want, what)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}

// fetchProfile writes a CPU profile of secs seconds from the gateway's
// pprof listener at addr to path.
func fetchProfile(ctx context.Context, addr, path string, secs int) error {
	return fetchPprof(ctx, addr, "profile?seconds="+strconv.Itoa(secs), path)
}

// fetchPprof writes the gateway's /debug/pprof/<what> to path.
func fetchPprof(ctx context.Context, addr, what, path string) error {
	url := "http://" + addr + "/debug/pprof/" + what
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("pprof: HTTP %d", resp.StatusCode)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
