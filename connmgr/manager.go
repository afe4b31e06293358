package connmgr

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/zap"

	"github.com/sessiongate/sessiongate/internal/logfield"
)

// Manager holds this instance's live connections. All methods are safe for
// concurrent use. Create it with [New], run [Manager.Run] in a goroutine, hand
// it connections with [Manager.Serve] and stop it with [Manager.Shutdown].
type Manager struct {
	cfg   Config
	log   *zap.Logger
	hooks Hooks
	reg   *registry
	clock clock
	epoch time.Time
	ping  []byte // shared {"type":"ping"} frame

	// inInterval and inTolerance are Config.InboundRate and InboundBurst in
	// the form the per-connection limiter uses (see allowInbound).
	inInterval, inTolerance int64

	draining atomic.Bool
	work     group // Serve calls and the flush/close goroutines they cause
	runs     group // Run loops
	stop     chan struct{}
	stopOnce sync.Once
	// flushJobs hands a connection to flush to a waiting flush worker
	// (unbuffered: a send succeeds only if one is waiting).
	flushJobs chan *conn
	// directWrites: enqueue writes a frame to an idle upgraded connection
	// itself when the socket takes it at once (idleConn.tryWriteText), and
	// flush runs write frames directly under the socket's write deadline
	// (see writeDeadline). Only with the system clock: a fake clock cannot
	// drive a socket deadline, so tests on one take the context path.
	directWrites bool
	// owedWrites counts direct writes the socket took only in part (tests).
	owedWrites atomic.Int64
	// poll is where idle upgraded connections wait for input (see
	// poller.go), made by the first Upgrade; noPoller (tests) keeps a
	// goroutine per connection instead.
	pollOnce sync.Once
	poll     *poller
	noPoller bool
}

// New returns a Manager with cfg's defaults applied. It starts no goroutine.
// A nil log discards logs.
func New(cfg Config, log *zap.Logger, hooks Hooks) *Manager {
	return newManager(cfg, log, hooks, systemClock{})
}

// newManager is [New] on a given clock (tests pass a fake one).
func newManager(cfg Config, log *zap.Logger, hooks Hooks, clk clock) *Manager {
	if log == nil {
		log = zap.NewNop()
	}
	cfg = cfg.withDefaults()
	m := &Manager{
		cfg:   cfg,
		log:   log,
		hooks: hooks,
		reg: newRegistry(cfg.Shards, limits{
			total:      cfg.MaxConnections,
			perUser:    cfg.MaxConnectionsPerUser,
			perSession: cfg.MaxConnectionsPerSession,
		}),
		clock: clk,
		epoch: clk.Now(),
		ping:  []byte(pingFrame),
		stop:  make(chan struct{}),

		flushJobs: make(chan *conn),
	}
	m.inInterval, m.inTolerance = cfg.inboundLimit()
	_, m.directWrites = clk.(systemClock)
	return m
}

// now is the manager's monotonic clock in nanoseconds.
func (m *Manager) now() int64 {
	return int64(m.clock.Now().Sub(m.epoch))
}

// Admit reports whether a connection of userID and handle would be admitted
// now: nil, or [ErrSessionLimit], [ErrUserLimit] or [ErrInstanceFull] when
// that cap (see [Config]) is reached. The gateway calls it before upgrading
// so that a refusal is an HTTP error; registration checks the caps again,
// atomically, and closes a connection that lost a race for the last slot
// with [CodeConnectionLimit]. Empty userID or handle are not counted. It
// takes two shard read locks and never blocks on I/O.
func (m *Manager) Admit(userID, handle string) error {
	return m.reg.admit(userID, handle)
}

// Serve registers ws, queues the welcome frame and runs the connection's read
// loop in the caller's goroutine until the connection is closed, whoever
// closed it. ws must come from websocket.Accept; Serve owns it from now on and
// it is closed when Serve returns. Cancelling ctx closes the connection with
// [CodeGoingAway].
//
// Serve returns nil once the connection has closed (the code went to
// [Hooks.OnClose]), [ErrDraining] if [Manager.Shutdown] has begun,
// [ErrDuplicateID] if info.ID is taken, or [ErrInstanceFull],
// [ErrUserLimit] or [ErrSessionLimit] if a connection cap is reached (the
// connection was closed with [CodeConnectionLimit]).
func (m *Manager) Serve(ctx context.Context, ws *websocket.Conn, info Info) error {
	m.work.add()
	defer m.work.done()
	c, stop, err := m.register(ctx, ws, info, false)
	if err != nil {
		return err
	}
	m.flush(c) // welcome, plus whatever was queued meanwhile
	m.run(c, stop)
	return nil
}

// Start is [Serve] for servers with many idle connections: it registers ws
// and writes the welcome in the caller's goroutine, then runs the read loop
// in a new goroutine and returns at once. The caller (typically an HTTP
// handler with a deep stack holding the whole request) can then return, so
// an idle connection costs one goroutine with a shallow stack and nothing of
// the request that opened it. Errors are those of Serve; on error ws is
// already closed. [Manager.Shutdown] waits for the read loop.
func (m *Manager) Start(ctx context.Context, ws *websocket.Conn, info Info) error {
	m.work.add()
	c, stop, err := m.register(ctx, ws, info, false)
	if err != nil {
		m.work.done()
		return err
	}
	m.flush(c)
	go func() {
		defer m.work.done()
		m.run(c, stop)
	}()
	return nil
}

// register makes ws a live connection with its welcome queued first (with
// deferWelcome, a nil placeholder that begin replaces: UpgradeWith's
// welcome depends on its start) and the flush
// token held by the caller, who must call m.flush(c) next. stop releases the
// ctx watcher and must be passed to run.
func (m *Manager) register(ctx context.Context, ws *websocket.Conn, info Info, deferWelcome bool) (c *conn, stop func() bool, err error) {
	if m.draining.Load() {
		_ = ws.Close(websocket.StatusCode(CodeGoingAway), CodeGoingAway.String())
		return nil, nil, ErrDraining
	}
	if info.ID == "" {
		info.ID = strconv.FormatUint(rand.Uint64(), 36)
	}
	ws.SetReadLimit(m.cfg.MaxMessageBytes)

	now := m.now()
	c = &conn{ws: ws, info: info, opened: now}
	c.lastSeen.Store(now)
	// A random first ping spreads a herd of new connections over the interval.
	c.nextPing.Store(now + 1 + rand.Int64N(int64(m.cfg.PingInterval)))
	// The welcome goes first: queue it and hold the flush token before the
	// connection becomes visible to senders.
	var welcome []byte
	if !deferWelcome {
		welcome = EncodeWelcome(info.ID, info.UserID, m.cfg.InstanceID, m.cfg.PingInterval, Start{})
	}
	c.queue = [][]byte{welcome}
	c.flushing = true

	c.mu.Lock()
	err = m.reg.add(c, &m.draining)
	if err != nil {
		// A sender that found c in an index before add undid it waits on
		// c.mu: let it see a closed connection and drop its frame.
		c.closing = true
		c.queue = nil
	}
	c.mu.Unlock()
	if err != nil {
		code := registerErrCode(err)
		if code == CodeConnectionLimit {
			m.log.Info("connection refused",
				zap.String("conn_id", info.ID),
				zap.String("user_id", info.UserID),
				zap.String("reason", limitReason(err)),
				zap.Int("code", int(code)),
				zap.String("remote", info.Remote),
			)
		}
		_ = ws.Close(websocket.StatusCode(code), code.String())
		return nil, nil, err
	}
	m.log.Info("connection opened",
		zap.String("conn_id", info.ID),
		zap.String("user_id", info.UserID),
		logfield.Handle(info.Handle),
		zap.String("remote", info.Remote),
	)
	if m.hooks.OnOpen != nil {
		m.hooks.OnOpen(&c.info)
	}
	stop = func() bool { return false }
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, func() { m.closeConn(c, CodeGoingAway, false) })
	}
	return c, stop, nil
}

// registerErrCode is the close code of a connection whose registration
// failed with err.
func registerErrCode(err error) CloseCode {
	switch {
	case errors.Is(err, ErrDraining):
		return CodeGoingAway
	case errors.Is(err, ErrInstanceFull), errors.Is(err, ErrUserLimit), errors.Is(err, ErrSessionLimit):
		return CodeConnectionLimit
	}
	return CodeInternal
}

// limitReason names the cap behind a limit error, for logs: "instance_cap",
// "user_cap" or "session_cap".
func limitReason(err error) string {
	switch {
	case errors.Is(err, ErrInstanceFull):
		return "instance_cap"
	case errors.Is(err, ErrUserLimit):
		return "user_cap"
	case errors.Is(err, ErrSessionLimit):
		return "session_cap"
	}
	return "unknown"
}

// run is the connection's read loop and the end of its life.
func (m *Manager) run(c *conn, stop func() bool) {
	defer stop()
	code := m.readLoop(c)
	m.closeConn(c, code, true)
	m.waitClosed(c)
}

// SendSession queues frame on every local connection of the session handle
// and returns how many accepted it. It never blocks; frame must not be
// modified afterwards (see [EncodeEvent]).
func (m *Manager) SendSession(handle string, frame []byte) int {
	var buf [8]*conn
	return m.sendTo(m.reg.lookup(true, handle, buf[:0]), frame)
}

// SendUser queues frame on every local connection of userID and returns how
// many accepted it. It never blocks.
func (m *Manager) SendUser(userID string, frame []byte) int {
	var buf [8]*conn
	return m.sendTo(m.reg.lookup(false, userID, buf[:0]), frame)
}

// SendAll queues frame on every local connection and returns how many
// accepted it. It never blocks on a connection; it takes each shard's read
// lock in turn only to copy pointers. It writes in the order the
// connections registered (see [registry.ordered]).
func (m *Manager) SendAll(frame []byte) int {
	all := m.reg.ordered()
	n := m.sendTo(*all, frame)
	m.reg.release(all)
	return n
}

func (m *Manager) sendTo(conns []*conn, frame []byte) int {
	n := 0
	for _, c := range conns {
		if m.enqueue(c, frame) {
			n++
		}
	}
	return n
}

// CloseSession closes every local connection of the session handle with code
// and returns how many it closed. It does not wait for the close handshakes.
func (m *Manager) CloseSession(handle string, code CloseCode) int {
	var buf [8]*conn
	return m.closeAll(m.reg.lookup(true, handle, buf[:0]), code)
}

// CloseUser closes every local connection of userID with code and returns
// how many it closed. It does not wait for the close handshakes.
func (m *Manager) CloseUser(userID string, code CloseCode) int {
	var buf [8]*conn
	return m.closeAll(m.reg.lookup(false, userID, buf[:0]), code)
}

// CloseAll closes every local connection with code and returns how many it
// closed. It does not wait for the close handshakes.
func (m *Manager) CloseAll(code CloseCode) int {
	n := 0
	var buf []*conn
	for i := range m.reg.shards {
		buf = m.reg.snapshotShard(i, buf[:0])
		n += m.closeAll(buf, code)
	}
	clear(buf)
	return n
}

// UserConns returns the number of local connections of userID.
func (m *Manager) UserConns(userID string) int {
	if userID == "" {
		return 0
	}
	s := m.reg.shardFor(userID)
	s.mu.RLock()
	n := len(s.byUser[userID])
	s.mu.RUnlock()
	return n
}

func (m *Manager) closeAll(conns []*conn, code CloseCode) int {
	n := 0
	for _, c := range conns {
		if m.closeConn(c, code, false) {
			n++
		}
	}
	return n
}

// Sessions returns the distinct sessions with local connections, in no
// particular order. The caller owns the slice.
func (m *Manager) Sessions() []SessionRef {
	var out []SessionRef
	for i := range m.reg.shards {
		s := &m.reg.shards[i]
		s.mu.RLock()
		for h, conns := range s.bySession {
			ref := SessionRef{Handle: h, Conns: len(conns)}
			for _, c := range conns {
				if c.info.ExpiresAt.After(ref.ExpiresAt) {
					ref.ExpiresAt = c.info.ExpiresAt
				}
			}
			out = append(out, ref)
		}
		s.mu.RUnlock()
	}
	return out
}

// SessionConns returns the number of local connections of the session handle.
func (m *Manager) SessionConns(handle string) int {
	if handle == "" {
		return 0
	}
	s := m.reg.shardFor(handle)
	s.mu.RLock()
	n := len(s.bySession[handle])
	s.mu.RUnlock()
	return n
}

// Stats counts the local connections, sessions and users.
func (m *Manager) Stats() Stats {
	var st Stats
	for i := range m.reg.shards {
		s := &m.reg.shards[i]
		s.mu.RLock()
		st.Connections += len(s.byID)
		st.Sessions += len(s.bySession)
		st.Users += len(s.byUser)
		s.mu.RUnlock()
	}
	return st
}
