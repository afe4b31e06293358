package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/sessiongate/sessiongate/connmgr"
	"github.com/sessiongate/sessiongate/history"
	"github.com/sessiongate/sessiongate/presence"
	"github.com/sessiongate/sessiongate/pubsub"
	"github.com/sessiongate/sessiongate/redisconn"
	"github.com/sessiongate/sessiongate/revocation"
	"github.com/sessiongate/sessiongate/session"
	"github.com/sessiongate/sessiongate/sessioncache"
)

// Deps are the parts [New] wires together. Log, Store, Codec, Bus, History
// and Auth are required; Redis is nil in embedded mode.
type Deps struct {
	Log   *zap.Logger
	Store session.Store
	Codec *session.Codec
	Bus   pubsub.Bus
	// History stores every published message and publishes it on Bus's
	// channel (Config.EventChannel) in the same step.
	History History
	// Inbound queues client messages for the application's workers and
	// serves the operators' API and metrics of the queue.
	Inbound Inbound
	Auth    Authenticator
	// Presence is the presence store (Redis, or memory in embedded mode);
	// nil turns presence off (PRESENCE_ENABLED=false): the presence API
	// answers 404.
	Presence presence.Store
	// Redis is the process's Redis connection manager, or nil in embedded
	// mode. /readyz reports its health.
	Redis *redisconn.Manager
	// Degraded, when not empty, says why this instance runs degraded (e.g.
	// it fell back to the memory store); /readyz reports it.
	Degraded string
	// Now defaults to time.Now.
	Now func() time.Time
}

// Server is one gateway instance. Build it with [New], start its background
// work with [Server.Start], serve [Server.Handler] (or call [Server.Run]),
// and stop it with [Server.Shutdown].
type Server struct {
	cfg   Config
	log   *zap.Logger
	d     Deps
	now   func() time.Time
	echo  *echo.Echo
	conns *connmgr.Manager

	cluster *pubsub.Cluster
	// presence is nil when presence is off.
	presence *presence.Tracker
	metrics  *metrics
	// admin is the admin console's state (sessions, login limiter, event
	// tail); its tail is fed even when the console is off (it costs one
	// atomic load per event without subscribers).
	admin   *adminState
	proxies proxies
	rev     *revocation.Revoker
	// sessions answers handshakes' session reads, from memory for a
	// reconnect while the bus is live (package sessioncache).
	sessions *sessioncache.Cache
	started  time.Time
	// echoes are the publishes waiting for their event to come back from
	// the bus; reader coalesces identical history reads.
	echoes echoWaiters
	reader *history.Coalescing
	// gaps watches the offsets the bus delivers for holes; gapCheck wakes
	// the check of every watched stream after the bus subscribed again
	// following a gap (busGap).
	gaps gapWatch
	// replayFrames caches the frames of replayed history events.
	replayFrames replayCache
	gapCheck     chan struct{}
	busGap       atomic.Bool
	// busGaps counts the bus's gaps, first thing in each: a handshake that
	// saw the subscription down or the watch distrusted sees it counted.
	busGaps atomic.Uint64
	// busEpoch moves at every change of busLive, before the reconcile pass
	// the change asks for (busChanged): a handshake that saw it move since
	// its session check may have read a session whose revocation event was
	// lost, and registered after that pass looked (see handleWS).
	busEpoch atomic.Uint64

	draining   atomic.Bool
	subscribed atomic.Bool

	// baseCtx outlives requests: WebSocket connections run under it and end
	// when Shutdown has drained them.
	baseCtx    context.Context
	baseCancel context.CancelFunc
	wg         sync.WaitGroup
	startOnce  sync.Once
	stopOnce   sync.Once
}

// New builds a Server. It starts no goroutines.
func New(cfg Config, d Deps) (*Server, error) {
	cfg = cfg.withDefaults()
	switch {
	case d.Log == nil:
		return nil, errors.New("gateway: Deps.Log is required")
	case d.Store == nil:
		return nil, errors.New("gateway: Deps.Store is required")
	case d.Codec == nil:
		return nil, errors.New("gateway: Deps.Codec is required")
	case d.Bus == nil:
		return nil, errors.New("gateway: Deps.Bus is required")
	case d.Auth == nil:
		return nil, errors.New("gateway: Deps.Auth is required")
	case d.History == nil:
		return nil, errors.New("gateway: Deps.History is required")
	case d.Inbound == nil:
		return nil, errors.New("gateway: Deps.Inbound is required")
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	s := &Server{
		cfg:     cfg,
		log:     d.Log,
		d:       d,
		now:     d.Now,
		started: d.Now(),
		proxies: proxies{ranges: cfg.TrustedProxies},
	}
	s.baseCtx, s.baseCancel = context.WithCancel(context.Background())
	s.metrics = newMetrics(s)
	s.reader = history.NewCoalescing(d.History)
	s.gapCheck = make(chan struct{}, 1)
	s.gaps.now = d.Now
	if !cfg.HistoryOff {
		s.gaps.fresh = cfg.HistoryTTL / 2
	}
	hooks := s.metrics.connHooks(d.Log)
	hooks.OnMessage = s.onMessage
	if err := s.newPresence(&hooks); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	s.conns = connmgr.New(cfg.Conn, d.Log.Named("conn"), hooks)
	rev, err := revocation.New(revocation.Config{
		InstanceID:    cfg.InstanceID,
		SweepInterval: cfg.ReconcileInterval,
	}, revocation.Deps{
		Store:   d.Store,
		Bus:     countingPublisher{bus: d.Bus, errs: s.metrics.publishErrors},
		Conns:   s.conns,
		Log:     d.Log.Named("revocation"),
		Now:     d.Now,
		Metrics: s.metrics.reg,
		// After a pass that follows a bus gap, the streams that moved
		// meanwhile: revoked and lost sessions are closed by then with
		// their own codes, the rest with 4010 to resume.
		Reconciled: s.afterReconcile,
		// Sessions the store no longer has (deleted, expired, a reset)
		// must not be served from the session cache to the reconnecting
		// clients the pass is about to close.
		Forget: func(handles []string, all bool) {
			if all {
				s.sessions.Clear()
				return
			}
			s.sessions.Invalidate(handles...)
		},
	})
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	s.rev = rev
	s.cluster = pubsub.NewCluster(d.Bus, pubsub.ClusterConfig{
		InstanceID: cfg.InstanceID,
		Addr:       cfg.Addr,
		Interval:   cfg.HeartbeatInterval,
	}, s.instanceInfo, d.Log.Named("cluster"))
	s.sessions = sessioncache.New(sessioncache.Config{TTL: cfg.SessionCacheTTL, Now: d.Now}, d.Store, s.busLive)
	s.cluster.OnLiveness(func(live bool) {
		reason := "pub/sub liveness restored"
		if !live {
			reason = "pub/sub liveness lost"
		}
		s.busChanged(reason)
	})
	if b, ok := d.Bus.(interface{ OnSubscribed(func()) }); ok {
		b.OnSubscribed(func() {
			s.subscribed.Store(true)
			s.busChanged("pub/sub subscribed")
		})
	} else {
		s.subscribed.Store(true)
	}
	if b, ok := d.Bus.(interface{ OnGap(func(string)) }); ok {
		b.OnGap(func(reason string) {
			s.busGaps.Add(1)
			// Not live before the cache is emptied (busChanged): a lookup
			// that saw the bus live saw the cache before it was emptied,
			// and its fill is dropped (sessioncache reads its generation
			// first).
			s.subscribed.Store(false)
			s.gaps.distrust() // before the subscription can be back
			s.busGap.Store(true)
			s.busChanged("pub/sub gap: " + reason)
		})
	}
	if d.Redis != nil {
		d.Redis.ObserveCommands(s.metrics.observeRedis)
	}
	s.admin = s.newAdmin()
	s.echo = s.routes()
	return s, nil
}

// busLive reports whether the bus is proven to deliver: the subscription
// is confirmed and this instance's own heartbeats come back through it.
// The session cache serves only then, and a new connection takes
// positions from the bus only then.
func (s *Server) busLive() bool { return s.subscribed.Load() && s.cluster.Live() }

// busChanged follows every change of busLive (a gap, a subscription,
// liveness lost or restored), after the change: it moves busEpoch, empties
// the session cache (a session read while events could be lost is never
// kept past the moment they no longer can be; a lookup in flight drops its
// fill) and asks for a reconcile pass (what lost events revoked is closed;
// a handshake that registers after the pass looked sees busEpoch moved and
// asks for another, see handleWS).
func (s *Server) busChanged(reason string) {
	s.busEpoch.Add(1)
	s.sessions.Clear()
	s.requestReconcile(reason)
}

// Handler is the gateway's HTTP handler.
func (s *Server) Handler() http.Handler { return presized{s.echo} }

// Start starts the background work: the connection manager's heartbeat loop,
// the event bus subscription, cluster heartbeats and the reconciler. It
// returns at once; [Server.Shutdown] stops everything it started.
func (s *Server) Start() {
	s.startOnce.Do(func() {
		ctx := s.baseCtx
		s.goFn(func() { s.conns.Run(ctx) })
		s.goFn(func() {
			if err := s.d.Bus.Run(ctx, s.handleEvent); err != nil && ctx.Err() == nil {
				s.log.Error("event bus stopped", zap.Error(err))
			}
		})
		s.goFn(func() { s.cluster.Run(ctx) })
		s.goFn(func() { s.rev.Run(ctx) })
		s.goFn(func() { s.runGapChecks(ctx) })
		s.goFn(func() { s.sessions.Run(ctx) })
		if s.presence != nil {
			// Stops after the connections closed (Shutdown cancels ctx
			// then): its last flush takes their users offline.
			s.goFn(func() { s.presence.Run(ctx) })
		}
		if s.d.Redis != nil {
			s.goFn(func() { s.d.Redis.Run(ctx) })
		}
	})
}

func (s *Server) goFn(fn func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		fn()
	}()
}

// Shutdown drains the instance: /readyz turns 503 at once, other instances
// are told it is draining, live connections close with 1001 spread over the
// drain window, then the background work stops. It waits for every goroutine
// the Server started, or until ctx is done.
func (s *Server) Shutdown(ctx context.Context) error {
	var err error
	s.stopOnce.Do(func() {
		s.draining.Store(true)
		s.log.Info("draining", zap.Int("connections", s.conns.Stats().Connections),
			zap.Duration("drain_window", s.conns.DrainWindow()))
		pubCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		s.cluster.SetDraining(pubCtx)
		cancel()
		err = s.conns.Shutdown(ctx)
		s.baseCancel()
		done := make(chan struct{})
		go func() { s.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			if err == nil {
				err = fmt.Errorf("gateway: shutdown: %w", ctx.Err())
			}
		}
	})
	return err
}

// Run serves HTTP on ln until ctx is done, then drains and returns nil
// after a clean drain (bounded by the configured shutdown timeout).
//
// The listener stays open through the drain: /readyz answers 503
// "draining", new WebSockets get a 503, other requests are served, while
// the live connections close with 1001 spread over the drain window. Only
// once the connections are gone and the window has passed does the HTTP
// server stop, so a load balancer sees the instance leave through its
// health checks rather than through refused connections.
func (s *Server) Run(ctx context.Context, ln net.Listener) error {
	hs := s.httpServer()
	s.Start()
	errC := make(chan error, 1)
	go func() { errC <- hs.Serve(ln) }()
	s.log.Info("listening", zap.String("addr", ln.Addr().String()))
	select {
	case err := <-errC:
		sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
		defer cancel()
		_ = s.Shutdown(sctx)
		return fmt.Errorf("gateway: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	windowEnd := time.Now().Add(s.conns.DrainWindow())
	err := s.Shutdown(sctx)
	if wait := time.Until(windowEnd); wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-sctx.Done():
		}
		t.Stop()
	}
	// Stop taking connections; in-flight requests finish (hijacked
	// WebSockets are not http.Server's to wait for, and are gone by now).
	if herr := hs.Shutdown(sctx); herr != nil {
		_ = hs.Close()
		if err == nil {
			err = fmt.Errorf("gateway: http shutdown: %w", herr)
		}
	}
	<-errC // http.ErrServerClosed
	if err != nil {
		return err
	}
	s.log.Info("drained")
	return nil
}

// maxHeaderBytes bounds a request's headers (net/http's default is 1 MB):
// far above any cookie or token the gateway issues, and it caps what one
// slow client can make the server hold. net/http answers a larger request
// with a 431 itself.
const maxHeaderBytes = 64 << 10

// httpServer is the http.Server Run uses. Every phase of a request is
// bounded, so a client that trickles or withholds its headers or body, or
// never reads the answer, cannot hold a connection and a goroutine for
// long. net/http clears these deadlines when a WebSocket handshake hijacks
// the connection: WebSockets live under the connection manager's own
// ping, pong and write timeouts.
func (s *Server) httpServer() *http.Server {
	read := s.cfg.HTTPReadTimeout
	return &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: read,
		ReadTimeout:       read,
		WriteTimeout:      s.cfg.HTTPWriteTimeout,
		IdleTimeout:       s.cfg.HTTPIdleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          zap.NewStdLog(s.log.Named("http")),
	}
}

// instanceInfo is what this instance's heartbeats say about it.
func (s *Server) instanceInfo() pubsub.InstanceInfo {
	st := s.conns.Stats()
	info := pubsub.InstanceInfo{
		ID:          s.cfg.InstanceID,
		Addr:        s.cfg.Addr,
		Connections: st.Connections,
		Sessions:    st.Sessions,
		Draining:    s.draining.Load(),
		StartedAt:   s.started,
	}
	if s.d.Redis != nil {
		// The connection manager's own periodic check measured it: no
		// PING per heartbeat, and no heartbeat held up by a slow Redis.
		info.RedisLatencyMS = float64(s.d.Redis.Latency()) / float64(time.Millisecond)
	}
	return info
}
