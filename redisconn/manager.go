package redisconn

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/sessiongate/sessiongate/internal/backoff"
)

// Manager owns one [redis.UniversalClient] and observes its connection. All
// methods are safe for concurrent use, except that [Manager.OnStateChange]
// and [Manager.ObserveCommands] must be called before [Manager.Connect] and
// [Manager.Run].
type Manager struct {
	cfg      Config // defaults applied
	log      *zap.Logger
	client   redis.UniversalClient
	redacted string
	secrets  []string // texts to scrub from error messages

	closing   chan struct{}
	closeOnce sync.Once
	closeErr  error
	wg        sync.WaitGroup // Run

	onChange func(from, to State)

	// rtt is the round trip of the last successful PING of Connect or Run.
	rtt atomic.Int64

	mu      sync.Mutex
	closed  bool
	state   State
	since   time.Time
	lastErr string
}

// New validates cfg and builds the client with [redis.NewUniversalClient]:
// a single-node client for URL or one address, a Sentinel-backed failover
// client when MasterName is set, a Cluster client for several Addrs. It does
// no I/O and starts no goroutine; call [Manager.Connect] and [Manager.Run].
func New(cfg Config, log *zap.Logger) (*Manager, error) {
	if log == nil {
		log = zap.NewNop()
	}
	cfg = cfg.withDefaults()
	if err := cfg.check(); err != nil {
		return nil, err
	}
	opts, err := cfg.universalOptions()
	if err != nil {
		return nil, err
	}
	m := &Manager{
		cfg:      cfg,
		redacted: cfg.Redacted(),
		secrets:  []string{opts.Password, cfg.Password, cfg.SentinelPassword},
		client:   redis.NewUniversalClient(opts),
		closing:  make(chan struct{}),
		state:    StateConnecting,
		since:    time.Now(),
	}
	m.log = log.With(zap.String("redis", m.redacted))
	return m, nil
}

// Client returns the shared client. The Manager owns it: callers must not
// close it; [Manager.Close] does.
func (m *Manager) Client() redis.UniversalClient { return m.client }

// State returns the state observed last.
func (m *Manager) State() State {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state
}

// OnStateChange registers fn, called synchronously on every state
// transition (from the goroutine running Connect or Run). Call it before
// Connect and Run; fn must not block.
func (m *Manager) OnStateChange(fn func(from, to State)) { m.onChange = fn }

// Connect PINGs Redis until it answers, at most Config.ConnectAttempts
// times with exponential backoff between attempts, logging one line per
// failed attempt, then reads the server version (INFO server; every node of
// a Cluster). It returns an error wrapping [ErrUnsupportedVersion] at once
// for a server older than [MinVersion] (a server that does not say is
// accepted with a warning), an error wrapping [ErrUnavailable] when the
// budget is exhausted, or ctx's error when ctx ends first.
func (m *Manager) Connect(ctx context.Context) error {
	n := m.cfg.ConnectAttempts
	for attempt := 1; ; attempt++ {
		start := time.Now()
		err := m.ping(ctx, m.cfg.DialTimeout)
		if err == nil {
			lat := time.Since(start)
			var ver string
			ver, err = m.checkVersion(ctx)
			if errors.Is(err, ErrUnsupportedVersion) {
				msg := m.redactErr(err)
				m.log.Error("redis unsupported", zap.String("redis_version", ver), zap.String("min_version", MinVersion))
				m.transition(StateDown, msg)
				return err
			}
			if err == nil {
				m.rtt.Store(int64(lat))
				m.log.Info("redis connected", zap.Int("attempt", attempt),
					zap.Duration("latency", lat), zap.String("redis_version", ver))
				m.transition(StateConnected, "")
				return nil
			}
		}
		if ctx.Err() != nil {
			return fmt.Errorf("redisconn: connect: %w", ctx.Err())
		}
		if m.isClosed() {
			return ErrClosed
		}
		msg := m.redactErr(err)
		if attempt >= n {
			m.log.Error("redis unavailable",
				zap.String("attempt", fmt.Sprintf("%d/%d", attempt, n)), zap.String("error", msg))
			m.transition(StateDown, msg)
			return fmt.Errorf("%w: no answer to PING from %s after %d attempts: %s", ErrUnavailable, m.redacted, n, msg)
		}
		delay := m.retryDelay(attempt)
		m.log.Warn("redis connect attempt failed",
			zap.String("attempt", fmt.Sprintf("%d/%d", attempt, n)),
			zap.Duration("next_delay", delay), zap.String("error", msg))
		m.setLastErr(msg)
		if err := m.sleep(ctx, delay); err != nil {
			return err
		}
	}
}

// Latency is the PING round trip of the last successful check by Connect or
// Run (zero before any). It does no I/O: periodic reporters (heartbeats) use
// it instead of adding PINGs of their own. Safe for concurrent use.
func (m *Manager) Latency() time.Duration { return time.Duration(m.rtt.Load()) }

// Health PINGs Redis now, with a timeout of at most one second (or
// DialTimeout if shorter), and reports the result together with the
// observed state.
func (m *Manager) Health(ctx context.Context) Health {
	start := time.Now()
	err := m.ping(ctx, min(m.cfg.DialTimeout, time.Second))
	lat := time.Since(start)
	m.mu.Lock()
	h := Health{State: m.state, Since: m.since, LastError: m.lastErr}
	m.mu.Unlock()
	if err == nil {
		h.Status, h.Latency, h.LastError = StatusOK, lat, ""
		h.LatencyMS = float64(lat) / float64(time.Millisecond)
		return h
	}
	h.LastError = m.redactErr(err)
	if h.State == StateConnected {
		h.Status = StatusError
	} else {
		h.Status = h.State.String()
	}
	return h
}

// Close stops Run, waits for it to return and closes the client. It is
// safe to call more than once; later calls return the first result.
func (m *Manager) Close() error {
	m.closeOnce.Do(func() {
		m.mu.Lock()
		m.closed = true
		m.mu.Unlock()
		close(m.closing)
		m.wg.Wait()
		m.closeErr = m.client.Close()
	})
	return m.closeErr
}

func (m *Manager) isClosed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.closed
}

// ping sends one PING bounded by timeout.
func (m *Manager) ping(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return m.client.Ping(ctx).Err()
}

// sleep waits d, or returns early when ctx ends or the Manager closes.
func (m *Manager) sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("redisconn: connect: %w", ctx.Err())
	case <-m.closing:
		return ErrClosed
	}
}

func (m *Manager) redactErr(err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout: no answer from redis"
	}
	return redactText(err.Error(), m.secrets...)
}

func (m *Manager) setLastErr(msg string) {
	m.mu.Lock()
	m.lastErr = msg
	m.mu.Unlock()
}

// transition records the new state (and the error that led to it, empty
// when healthy) and notifies the observer if the state changed.
func (m *Manager) transition(to State, lastErr string) {
	m.mu.Lock()
	from := m.state
	m.lastErr = lastErr
	if from != to {
		m.state = to
		m.since = time.Now()
	}
	m.mu.Unlock()
	if from != to && m.onChange != nil {
		m.onChange(from, to)
	}
}

// retryDelay is the wait after the attempt-th consecutive failure:
// BackoffMin doubling to BackoffMax, ±20% jitter so that many instances
// losing the same Redis do not retry in lockstep.
func (m *Manager) retryDelay(attempt int) time.Duration {
	return backoff.Policy{Min: m.cfg.BackoffMin, Max: m.cfg.BackoffMax, Jitter: 0.2}.Delay(attempt)
}
