package pubsub

import (
	"context"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// ClusterConfig configures a [Cluster]. Zero fields take their defaults.
type ClusterConfig struct {
	// InstanceID names this instance in heartbeats. Required.
	InstanceID string
	// Addr is the address other instances and operators see.
	Addr string
	// Interval is the heartbeat period. Defaults to 5s.
	Interval time.Duration
	// MissedBeats is how many intervals without a heartbeat make an instance
	// gone. Defaults to 3.
	MissedBeats int
	// LivenessTimeout: this instance's own heartbeat must come back through
	// the bus within it, or pub/sub is considered cut. Defaults to 2*Interval.
	LivenessTimeout time.Duration
}

// withDefaults returns c with every zero field set to its default.
func (c ClusterConfig) withDefaults() ClusterConfig {
	if c.Interval <= 0 {
		c.Interval = 5 * time.Second
	}
	if c.MissedBeats <= 0 {
		c.MissedBeats = 3
	}
	if c.LivenessTimeout <= 0 {
		c.LivenessTimeout = 2 * c.Interval
	}
	return c
}

// InstanceView is one instance as this instance sees it.
type InstanceView struct {
	InstanceInfo
	// LastSeen is when this instance last received its heartbeat (local
	// clock, so clock skew between hosts does not matter).
	LastSeen time.Time `json:"last_seen"`
	// Alive is false once MissedBeats heartbeats were missed.
	Alive bool `json:"alive"`
	// Self marks this instance.
	Self bool `json:"self"`
}

// liveness states of the own-heartbeat check.
const (
	liveUnknown int32 = iota // no own heartbeat yet, timeout not reached
	liveUp
	liveDown
)

// Cluster publishes this instance's heartbeats, keeps the view of every
// instance from the heartbeats it observes, and checks that its own
// heartbeat comes back through the bus (self-liveness). All methods are safe
// for concurrent use; Run may run once at a time.
type Cluster struct {
	bus     Bus
	cfg     ClusterConfig
	stats   func() InstanceInfo
	log     *zap.Logger
	started time.Time // identifies this process among instances with the same id

	draining   atomic.Bool
	onLiveness atomic.Pointer[func(bool)]
	// lost counts transitions to not live; it moves with the state, under
	// mu, so a caller that saw Live false sees it counted.
	lost   atomic.Uint64
	dupLog logLimiter

	// notifyMu serialises liveness transitions with their callbacks, so fn
	// sees them in order. Taken before mu.
	notifyMu sync.Mutex

	mu       sync.Mutex
	members  map[string]*member
	selfSeen time.Time // last own heartbeat received
	runSince time.Time // when Run started
	live     int32
	pubFail  bool      // the last heartbeat publish failed
	kickedAt time.Time // last time a silent subscription was dropped
}

// resubscriber is a bus that can drop a subscription which answers PING
// but does not deliver, and subscribe again ([RedisBus]).
type resubscriber interface {
	resubscribe() // must not block
}

// member is one instance in the view.
type member struct {
	info     InstanceInfo
	lastSeen time.Time
	alive    bool
}

// NewCluster returns a cluster view that publishes heartbeats on bus (the
// caller's handler forwards heartbeat and draining events to
// [Cluster.Observe]). Besides Publish, a [RedisBus] is asked to subscribe
// again on a fresh connection when heartbeats are published but do not
// come back. stats, which may be nil, supplies the connection and session
// counts and the Redis latency of each heartbeat; it is called from Run's
// goroutine. It starts nothing.
func NewCluster(bus Bus, cfg ClusterConfig, stats func() InstanceInfo, log *zap.Logger) *Cluster {
	cfg = cfg.withDefaults()
	if stats == nil {
		stats = func() InstanceInfo { return InstanceInfo{} }
	}
	return &Cluster{
		bus:     bus,
		cfg:     cfg,
		stats:   stats,
		log:     log,
		started: time.Now().UTC().Round(0),
		dupLog:  logLimiter{every: time.Minute},
		members: make(map[string]*member),
	}
}

// OnLiveness sets fn to be called on every self-liveness transition: true
// when the own heartbeat comes back (the first time included), false when it
// did not within LivenessTimeout. It is called from Run's or Observe's
// goroutine, one call at a time and in order; fn must not block and must
// not call Observe (Live and View are fine).
func (c *Cluster) OnLiveness(fn func(live bool)) { c.onLiveness.Store(&fn) }

// LivenessLost returns how many times self-liveness was lost: the own
// heartbeat did not come back within LivenessTimeout after it had (or
// never did). A brief loss between two metric scrapes shows here, not in
// Live.
func (c *Cluster) LivenessLost() uint64 { return c.lost.Load() }

// Live reports whether this instance's own heartbeat came back through the
// bus within LivenessTimeout and, on a [ShardedBus], every shard channel
// is live too. It is false until the first heartbeat comes back.
func (c *Cluster) Live() bool {
	c.mu.Lock()
	up := c.live == liveUp
	c.mu.Unlock()
	if s, ok := c.bus.(shardLiveness); ok && up {
		return s.shardsLive()
	}
	return up
}

// shardLiveness is a bus whose shard channels prove themselves apart from
// the heartbeats ([ShardedBus]).
type shardLiveness interface {
	shardsLive() bool
}

// info returns this instance's heartbeat payload.
func (c *Cluster) info() *InstanceInfo {
	info := c.stats()
	info.ID = c.cfg.InstanceID
	info.Addr = c.cfg.Addr
	info.Draining = c.draining.Load()
	info.StartedAt = c.started
	return &info
}

// publish sends one heartbeat or draining event and logs failures once per
// outage.
func (c *Cluster) publish(ctx context.Context, kind Kind) {
	err := c.bus.Publish(ctx, Event{Kind: kind, Origin: c.cfg.InstanceID,
		Time: time.Now().UTC(), Instance: c.info()})
	c.mu.Lock()
	was := c.pubFail
	c.pubFail = err != nil
	c.mu.Unlock()
	switch {
	case err != nil && (!was || kind == KindDraining):
		c.log.Warn("heartbeat publish failed", zap.String("kind", string(kind)), zap.Error(err))
	case err == nil && was:
		c.log.Info("heartbeat publish recovered")
	}
}

// SetDraining marks this instance as draining: it publishes
// instance.draining at once, and every later heartbeat says draining=true.
func (c *Cluster) SetDraining(ctx context.Context) {
	c.draining.Store(true)
	c.publish(ctx, KindDraining)
}

// Observe takes a heartbeat or draining event received from the bus; other
// kinds are ignored. The gateway's handler calls it.
func (c *Cluster) Observe(e Event) {
	if (e.Kind != KindHeartbeat && e.Kind != KindDraining) || e.Instance == nil || e.Instance.ID == "" {
		return
	}
	info := *e.Instance
	if e.Kind == KindDraining {
		info.Draining = true
	}
	self := info.ID == c.cfg.InstanceID
	if self && !info.StartedAt.Equal(c.started) {
		if ok, _ := c.dupLog.allow(time.Now()); ok {
			c.log.Error("duplicate instance id",
				zap.String("addr", info.Addr), zap.Time("started_at", info.StartedAt))
		}
		return
	}
	if self {
		c.notifyMu.Lock()
		defer c.notifyMu.Unlock()
	}
	now := time.Now()

	c.mu.Lock()
	m, ok := c.members[info.ID]
	joined := !ok || !m.alive
	drained := info.Draining && (!ok || !m.info.Draining)
	if !ok {
		m = &member{}
		c.members[info.ID] = m
	}
	m.info, m.lastSeen, m.alive = info, now, true
	var changed, up bool
	if self {
		c.selfSeen = now
		changed, up = c.setLiveLocked(liveUp)
	}
	c.mu.Unlock()

	if joined {
		c.log.Info("instance joined", zap.String("peer", info.ID), zap.String("addr", info.Addr),
			zap.Bool("self", self))
	}
	if drained {
		c.log.Info("instance draining", zap.String("peer", info.ID), zap.Bool("self", self))
	}
	if changed {
		c.notify(up)
	}
}

// setLiveLocked moves the liveness state to s and reports whether that is a
// transition, and the new Live value. It logs the transition.
func (c *Cluster) setLiveLocked(s int32) (changed, up bool) {
	prev := c.live
	if prev == s {
		return false, s == liveUp
	}
	c.live = s
	switch {
	case s == liveDown:
		c.lost.Add(1)
		c.log.Warn("pub/sub liveness lost", zap.Duration("timeout", c.cfg.LivenessTimeout),
			zap.Time("last_own_heartbeat", c.selfSeen))
	case prev == liveUnknown:
		c.log.Info("pub/sub liveness established")
	default:
		c.log.Info("pub/sub liveness restored")
	}
	return true, s == liveUp
}

// notify calls the OnLiveness callback, if any.
func (c *Cluster) notify(up bool) {
	if fn := c.onLiveness.Load(); fn != nil && *fn != nil {
		(*fn)(up)
	}
}

// Run publishes a heartbeat every Interval (the first at once), marks
// instances gone after MissedBeats intervals without one, and checks
// self-liveness, until ctx is done.
func (c *Cluster) Run(ctx context.Context) {
	c.mu.Lock()
	c.runSince = time.Now()
	c.mu.Unlock()
	beat := time.NewTicker(c.cfg.Interval)
	defer beat.Stop()
	check := time.NewTicker(max(min(c.cfg.Interval, c.cfg.LivenessTimeout)/4, time.Millisecond))
	defer check.Stop()

	c.publish(ctx, KindHeartbeat)
	for {
		select {
		case <-ctx.Done():
			return
		case <-beat.C:
			c.publish(ctx, KindHeartbeat)
		case <-check.C:
			if c.check(time.Now()) {
				c.kick()
			}
		}
	}
}

// check marks silent instances gone, forgets long-gone ones, and updates
// self-liveness. It reports whether the subscription should be dropped:
// the own heartbeat is published but does not come back, so the
// subscription may look healthy to the bus (it answers PING) while it
// receives nothing, e.g. a connection left on a node that no longer gets
// the published events. At most once per LivenessTimeout.
func (c *Cluster) check(now time.Time) (kick bool) {
	goneAfter := time.Duration(c.cfg.MissedBeats) * c.cfg.Interval
	forgetAfter := 10 * goneAfter
	type gone struct {
		info   InstanceInfo
		silent time.Duration
	}
	var gones []gone

	c.notifyMu.Lock()
	defer c.notifyMu.Unlock()
	c.mu.Lock()
	for id, m := range c.members {
		silent := now.Sub(m.lastSeen)
		switch {
		case silent > forgetAfter:
			delete(c.members, id)
		case m.alive && silent > goneAfter:
			m.alive = false
			gones = append(gones, gone{m.info, silent})
		}
	}
	last := c.selfSeen
	if last.IsZero() {
		last = c.runSince
	}
	var changed, up bool
	if now.Sub(last) > c.cfg.LivenessTimeout {
		changed, up = c.setLiveLocked(liveDown)
		if !c.pubFail && now.Sub(c.kickedAt) >= c.cfg.LivenessTimeout {
			kick, c.kickedAt = true, now
		}
	}
	c.mu.Unlock()

	for _, g := range gones {
		lvl := zap.WarnLevel
		if g.info.Draining {
			lvl = zap.InfoLevel // a drained instance leaving is the normal way out
		}
		c.log.Log(lvl, "instance gone", zap.String("peer", g.info.ID), zap.String("addr", g.info.Addr),
			zap.Bool("draining", g.info.Draining), zap.Duration("silent", g.silent))
	}
	if changed {
		c.notify(up)
	}
	return kick
}

// kick asks the bus, if it can, to subscribe again on a fresh connection.
func (c *Cluster) kick() {
	if r, ok := c.bus.(resubscriber); ok {
		r.resubscribe() // the bus logs what it does
	}
}

// View returns a snapshot of every known instance, this one included, sorted
// by id. The caller owns the slice.
func (c *Cluster) View() []InstanceView {
	c.mu.Lock()
	out := make([]InstanceView, 0, len(c.members))
	for id, m := range c.members {
		out = append(out, InstanceView{InstanceInfo: m.info, LastSeen: m.lastSeen, Alive: m.alive,
			Self: id == c.cfg.InstanceID})
	}
	c.mu.Unlock()
	slices.SortFunc(out, func(a, b InstanceView) int { return strings.Compare(a.ID, b.ID) })
	return out
}
