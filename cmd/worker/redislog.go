package main

import (
	"context"
	"fmt"

	"go.uber.org/zap"
)

// redisLogger adapts zap to go-redis's internal logger, like the
// gateway's: without it go-redis prints its pool dial failures (Redis
// down) as plain text on stderr, lines no log pipeline expecting JSON can
// read.
type redisLogger struct{ l *zap.Logger }

func (r redisLogger) Printf(_ context.Context, format string, v ...any) {
	r.l.Debug("go-redis", zap.String("detail", fmt.Sprintf(format, v...)))
}
