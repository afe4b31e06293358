package redisconn

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/redis/go-redis/v9"
)

// ObserveCommands calls fn after every command the client runs, with the
// command name (lowercase, e.g. "get"), its duration and its error;
// redis.Nil (a missing key) is reported as a nil error because it is an
// expected answer. A pipeline or transaction is reported once as
// "pipeline" with its total duration and first error. The commands that set
// up a new connection (HELLO, and AUTH/SELECT as a pipeline) are reported
// too. fn runs on the caller's goroutine and must be fast and safe for
// concurrent use. Call it before the client is used concurrently (typically
// right after [New]); each call adds one more observer.
func (m *Manager) ObserveCommands(fn func(cmd string, d time.Duration, err error)) {
	m.client.AddHook(observeHook{fn: fn})
}

type observeHook struct {
	fn func(cmd string, d time.Duration, err error)
}

func (h observeHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		return next(ctx, network, addr)
	}
}

func (h observeHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmd)
		h.fn(cmd.Name(), time.Since(start), realErr(err))
		return err
	}
}

func (h observeHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmds)
		first := realErr(err)
		for _, c := range cmds {
			if first != nil {
				break
			}
			first = realErr(c.Err())
		}
		h.fn("pipeline", time.Since(start), first)
		return err
	}
}

func realErr(err error) error {
	if errors.Is(err, redis.Nil) {
		return nil
	}
	return err
}
