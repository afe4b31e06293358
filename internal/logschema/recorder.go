package logschema

import (
	"bytes"
	"fmt"
	"sync"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Recorder keeps every line written through its core, encoded as the
// production JSON encoder writes it, so a test suite can check all of them
// against the schema when it ends. Safe for concurrent use.
type Recorder struct {
	mu    sync.Mutex
	lines [][]byte
}

// Core returns a core that records at every level with the production JSON
// encoding (the gateway's LOG_FORMAT=json).
func (r *Recorder) Core() zapcore.Core {
	return zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(r), zapcore.DebugLevel)
}

// Write implements io.Writer for the core: one call per encoded line.
func (r *Recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, bytes.TrimSpace(bytes.Clone(p)))
	return len(p), nil
}

// Tee returns log writing to the recorder as well.
func (r *Recorder) Tee(log *zap.Logger) *zap.Logger {
	return log.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core { return zapcore.NewTee(c, r.Core()) }))
}

// Problems checks every recorded line against [Events] and returns one
// message per failing line (at most max), and how many lines it checked.
func (r *Recorder) Problems(max int) (problems []string, checked int) {
	r.mu.Lock()
	lines := r.lines
	r.mu.Unlock()
	events := Events()
	for _, l := range lines {
		if err := Check(l, events); err != nil && len(problems) < max {
			problems = append(problems, fmt.Sprintf("%v\n\t%s", err, l))
		}
	}
	return problems, len(lines)
}
