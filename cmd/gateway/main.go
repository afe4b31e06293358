// Command gateway runs one sessiongate instance. It only wires: config from
// flags and environment, the Redis client, the session store, the event bus,
// the authenticator and the gateway; SIGINT/SIGTERM drain it and it exits 0
// after a clean drain.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/gateway"
	"github.com/sessiongate/sessiongate/inbound"
	"github.com/sessiongate/sessiongate/inbound/echo"
	"github.com/sessiongate/sessiongate/inbound/webhook"
	"github.com/sessiongate/sessiongate/internal/memtune"
	"github.com/sessiongate/sessiongate/internal/wiring"
	"github.com/sessiongate/sessiongate/redisconn"
)

func main() {
	smallStacks()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.LookupEnv)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(os.Stderr, config.Usage())
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, env func(string) (string, bool)) error {
	cfg, err := config.Load(args, env)
	if err != nil {
		return err
	}
	log, err := newLogger(cfg)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	log = log.With(zap.String("instance", cfg.InstanceID))
	log.Info("starting sessiongate", cfg.LogFields()...)
	if cfg.EphemeralSecrets {
		log.Warn("ephemeral secrets", zap.String("detail", "SESSION_SECRET/SESSION_ENCRYPTION_KEY not set: random ones for this process; sessions will not survive a restart or work across instances"))
	}

	if cfg.Production() && cfg.DemoEnabled {
		log.Warn("demo page enabled in production")
	}

	if cfg.UsesExampleSecrets() {
		log.Warn("example secrets", zap.String("detail", "the SESSION_SECRET/SESSION_ENCRYPTION_KEY of .env.example: fine for development, refused in production"))
	}

	if cfg.MemoryHeadroom > 0 {
		if _, set := os.LookupEnv("GOMEMLIMIT"); !set {
			tuner := memtune.New(memtune.Config{Headroom: cfg.MemoryHeadroom / 100})
			tctx, stopTuner := context.WithCancel(ctx)
			tdone := make(chan struct{})
			go func() { defer close(tdone); tuner.Run(tctx) }()
			defer func() { stopTuner(); <-tdone }()
		}
	}

	deps := gateway.Deps{Log: log}
	var rdb redis.UniversalClient // nil: memory store and in-process bus
	if cfg.UseRedis {
		// go-redis reports pool dial failures through a process-wide logger;
		// send them to ours (at debug: redisconn logs the state changes).
		redis.SetLogger(redisconn.GoRedisLogger{L: log.Named("go-redis")})
		rm, err := redisconn.New(cfg.Redis, log.Named("redis"))
		if err != nil {
			return err
		}
		defer rm.Close()
		if err := rm.Connect(ctx); err != nil {
			if errors.Is(err, redisconn.ErrUnsupportedVersion) {
				return err // a configuration error, not an outage: never fall back
			}
			if cfg.Production() {
				return fmt.Errorf("redis unreachable at %s after the connect budget (production never falls back to memory): %w", cfg.Redis.Redacted(), err)
			}
			log.Error("memory store fallback",
				zap.String("detail", "redis unreachable after the connect budget: FALLING BACK TO THE MEMORY STORE; sessions are local to this process and /readyz reports degraded"),
				zap.String("redis", cfg.Redis.Redacted()), zap.Error(err))
			deps.Degraded = "redis unreachable at start: memory store fallback"
		} else {
			rdb = rm.Client()
			deps.Redis = rm
		}
	}
	parts, err := wiring.Build(cfg, rdb, log, nil)
	if err != nil {
		return err
	}
	deps.Codec, deps.Store, deps.Bus, deps.History, deps.Inbound = parts.Codec, parts.Store, parts.Bus, parts.History, parts.Inbound
	deps.Presence = parts.Presence

	switch cfg.AuthMode {
	case "webhook":
		deps.Auth = &gateway.WebhookAuthenticator{URL: cfg.AuthWebhookURL, Timeout: cfg.AuthWebhookTimeout}
	default:
		deps.Auth = gateway.DevAuthenticator{}
	}

	srv, err := gateway.New(gateway.ConfigFrom(cfg), deps)
	if err != nil {
		return err
	}
	if cfg.DebugAddr != "" {
		stop, err := serveDebug(cfg.DebugAddr, log)
		if err != nil {
			return err
		}
		defer stop()
	}
	if cfg.MetricsAddr != "" {
		stop, err := serveMetrics(cfg.MetricsAddr, srv.MetricsHandler(), log)
		if err != nil {
			return err
		}
		defer stop()
	}
	// No TCP keep-alive probes: every WebSocket is pinged by the gateway
	// (WS_PING_INTERVAL) and idle HTTP connections end at HTTP_IDLE_TIMEOUT,
	// so the probes would find nothing those do not, and enabling them
	// costs three setsockopt calls per accepted connection (6% of a
	// handshake's CPU in the load generator's profile).
	ln, err := (&net.ListenConfig{KeepAlive: -1}).Listen(ctx, "tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on GATEWAY_ADDR %s: %w", cfg.Addr, err)
	}
	stopWorker, err := startWorker(ctx, cfg, parts, rdb == nil, log)
	if err != nil {
		return err
	}
	defer stopWorker()
	return srv.Run(ctx, ln)
}

// startWorker runs the in-process consumer of the inbound queue, if any,
// until the returned stop is called (after the drain):
//   - with INBOUND_WEBHOOK_URL, the HTTP forwarder (every gateway is then a
//     consumer of the group, INBOUND_WEBHOOK_CONCURRENCY posts at once);
//   - otherwise, in embedded mode with the demo page, the example echo
//     worker: the queue lives in this process, so its worker must too
//     (with Redis, cmd/worker is a process of its own).
func startWorker(ctx context.Context, cfg config.Config, parts wiring.Parts, embedded bool, log *zap.Logger) (stop func(), err error) {
	replier := inbound.RedisReplier{History: parts.History, Channel: wiring.EventChannel(cfg), Origin: cfg.InstanceID + "-worker"}
	w := inbound.Worker{Consumer: parts.Inbound, Log: log.Named("worker")}
	switch {
	case cfg.InboundWebhookURL != "":
		h, err := webhook.New(webhook.Config{URL: cfg.InboundWebhookURL, Secret: cfg.InboundWebhookSecret, Timeout: cfg.InboundWebhookTimeout},
			replier, webhook.NewClient(cfg.InboundWebhookTimeout), log.Named("webhook"))
		if err != nil {
			return nil, err
		}
		w.Name, w.Default, w.Concurrency = cfg.InstanceID+"-webhook", h, cfg.InboundWebhookConcurrency
	case embedded && cfg.DemoEnabled:
		w.Name = cfg.InstanceID + "-echo"
		w.Default = echo.Handler(replier, w.Name)
	default:
		return func() {}, nil
	}
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := w.Run(wctx); err != nil && wctx.Err() == nil {
			log.Error("inbound worker ended", zap.String("worker", w.Name), zap.Error(err))
		}
	}()
	return func() { cancel(); <-done }, nil
}

// smallStacks re-executes the gateway once with
// GODEBUG=adaptivestackstart=0 (unless GODEBUG already sets it). Since Go
// 1.19 new goroutines start with the average stack size seen at the last GC;
// while connections are being opened that average is inflated by deep HTTP
// handler stacks, so idle connections' read loops start at 4 KiB and, a
// stack being shrunk only below a quarter of its use, stay there. With the
// fixed 2 KiB start they stay at 2 KiB: about a quarter of what an idle
// connection costs. The setting is read only at process start, hence the
// exec (same pid, same arguments). If the exec fails the gateway just runs.
func smallStacks() {
	if strings.Contains(os.Getenv("GODEBUG"), "adaptivestackstart=") {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	_ = syscall.Exec(exe, os.Args, withGODEBUG(os.Environ(), "adaptivestackstart=0"))
}

// withGODEBUG returns env with setting added to its GODEBUG, as one entry:
// a process reads the first of duplicate entries, so a second GODEBUG
// appended after the operator's would be ignored, and smallStacks would
// re-execute forever.
func withGODEBUG(env []string, setting string) []string {
	const key = "GODEBUG="
	value, found := "", false
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, key) {
			out = append(out, kv)
		} else if !found {
			value, found = kv[len(key):], true
		}
	}
	if value != "" {
		value += ","
	}
	return append(out, key+value+setting)
}

// serveDebug serves net/http/pprof on a loopback address of its own (config
// refuses any other), never on the public listener.
func serveDebug(addr string, log *zap.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on GATEWAY_DEBUG_ADDR %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	log.Info("pprof listening", zap.String("debug_addr", ln.Addr().String()))
	return func() { _ = hs.Close() }, nil
}

// serveMetrics serves /metrics on a listener of its own
// (GATEWAY_METRICS_ADDR), so the public port need not expose it. It runs
// until stop, which the process calls on its way out.
func serveMetrics(addr string, h http.Handler, log *zap.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on GATEWAY_METRICS_ADDR %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	hs := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          zap.NewStdLog(log.Named("metrics")),
	}
	go func() { _ = hs.Serve(ln) }()
	log.Info("metrics listening", zap.String("metrics_addr", ln.Addr().String()))
	return func() { _ = hs.Close() }, nil
}

func newLogger(cfg config.Config) (*zap.Logger, error) {
	var lvl zapcore.Level
	if err := lvl.UnmarshalText([]byte(strings.ToLower(cfg.LogLevel))); err != nil {
		return nil, fmt.Errorf("LOG_LEVEL: %w", err)
	}
	var zc zap.Config
	if cfg.LogFormat == "json" {
		zc = zap.NewProductionConfig()
	} else {
		zc = zap.NewDevelopmentConfig()
		zc.DisableStacktrace = true
	}
	zc.Level = zap.NewAtomicLevelAt(lvl)
	zc.Sampling = nil
	return zc.Build()
}
