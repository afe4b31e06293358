package redisconn

import (
	"context"
	"fmt"

	"go.uber.org/zap"
)

// GoRedisLogger adapts zap to go-redis's process-wide internal logger
// (redis.SetLogger): go-redis reports pool dial failures (Redis down)
// through it, as plain text on stderr otherwise, which no log pipeline
// expecting JSON can read. Lines go at debug: the Manager logs the state
// changes.
type GoRedisLogger struct{ L *zap.Logger }

// Printf implements go-redis's internal.Logging.
func (g GoRedisLogger) Printf(_ context.Context, format string, v ...any) {
	g.L.Debug("go-redis", zap.String("detail", fmt.Sprintf(format, v...)))
}
