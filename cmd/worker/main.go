// Command worker is the example application worker: it consumes the
// inbound queue of client messages from Redis and answers each with an
// "echo.reply" event to the session that sent it (package inbound/echo),
// through the same history and channel the gateways use, so the reply
// reaches the sender's connections on any instance, with its offset.
//
// It reads the gateway's environment (REDIS_*, REDIS_KEY_PREFIX,
// HISTORY_*, INBOUND_*; see .env.example) and WORKER_NAME (default: the
// host name and the pid). SIGINT/SIGTERM stop it gracefully: running
// handlers finish, unstarted messages go back to the queue.
//
// It is an example of the inbound worker library: an application's own
// worker replaces echo.Handler with its handlers.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/history"
	"github.com/sessiongate/sessiongate/inbound"
	"github.com/sessiongate/sessiongate/inbound/echo"
	"github.com/sessiongate/sessiongate/internal/wiring"
	"github.com/sessiongate/sessiongate/redisconn"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.LookupEnv)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(os.Stderr, config.Usage())
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, env func(string) (string, bool)) error {
	cfg, err := config.Load(args, env)
	if err != nil {
		return err
	}
	if !cfg.UseRedis {
		return errors.New("the worker consumes the Redis queue: set USE_REDIS_SESSIONS=true and REDIS_URL (an embedded gateway runs the example worker itself)")
	}
	zc := zap.NewProductionConfig()
	if cfg.LogFormat != "json" {
		zc = zap.NewDevelopmentConfig()
		zc.DisableStacktrace = true
	}
	zc.Sampling = nil
	lvl, err := zapcore.ParseLevel(cfg.LogLevel)
	if err != nil {
		return fmt.Errorf("LOG_LEVEL: %w", err)
	}
	zc.Level = zap.NewAtomicLevelAt(lvl)
	log, err := zc.Build()
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	name, ok := env("WORKER_NAME")
	if !ok || name == "" {
		host, _ := os.Hostname()
		name = host + "-" + strconv.Itoa(os.Getpid())
	}
	log = log.With(zap.String("instance", name))

	// go-redis reports pool dial failures through a process-wide logger.
	redis.SetLogger(redisconn.GoRedisLogger{L: log.Named("go-redis")})
	rm, err := redisconn.New(cfg.Redis, log.Named("redis"))
	if err != nil {
		return err
	}
	defer rm.Close()
	if err := rm.Connect(ctx); err != nil {
		return fmt.Errorf("redis at %s: %w", cfg.Redis.Redacted(), err)
	}
	go rm.Run(ctx)
	rdb := rm.Client()
	q := inbound.NewRedis(rdb, wiring.InboundConfig(cfg))
	replier := inbound.RedisReplier{
		History: history.NewRedis(rdb, wiring.HistoryConfig(cfg)),
		Channel: wiring.EventChannel(cfg),
		Origin:  "worker:" + name,
	}
	w := inbound.Worker{Consumer: q, Name: name, Default: echo.Handler(replier, name), Log: log.Named("worker")}
	return w.Run(ctx)
}
