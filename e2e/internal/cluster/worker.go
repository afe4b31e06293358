package cluster

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// workerStarted is the worker's log line once it reads the queue (the
// "msg" of the inbound library's start line, in JSON logs).
const workerStarted = `"msg":"inbound worker started"`

// runMarker starts every run's section of a process's log (see
// [Process.Start]).
const runMarker = "=== cluster: starting "

// BuildWorker compiles ./cmd/worker (the example echo worker) of the
// module at repoRoot into outDir and returns the binary's path.
func BuildWorker(ctx context.Context, repoRoot, outDir string) (string, error) {
	return build(ctx, repoRoot, outDir, "worker")
}

// Worker is one example worker process (cmd/worker): it consumes the
// inbound queue from the cluster's Redis and answers every client message
// with an "echo.reply" event to its sender.
type Worker struct {
	*Process
	// ID is its WORKER_NAME, e.g. "worker-1": the consumer name in the
	// queue's group and the "worker" of its replies.
	ID string
}

func newWorker(bin, dir, id string, env map[string]string) *Worker {
	env["WORKER_NAME"] = id
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	list := minimalEnv()
	for _, k := range keys {
		list = append(list, k+"="+env[k])
	}
	return &Worker{Process: newProcess(id, filepath.Join(dir, id+".log"), bin, nil, list, dir), ID: id}
}

// Restart starts the worker (again) once it has stopped, and waits until
// it reads the queue.
func (w *Worker) Restart(ctx context.Context) error {
	if w.Running() {
		return fmt.Errorf("cluster: %s is running; stop or kill it first", w.ID)
	}
	if err := w.Start(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	return w.WaitReady(ctx)
}

// WaitReady waits until the current run has logged that it reads the queue
// (or the process exits, or ctx ends). The worker has no HTTP endpoint: its
// log line is its readiness.
func (w *Worker) WaitReady(ctx context.Context) error {
	return poll(ctx, 25*time.Millisecond, w.ID+" started", func() error {
		if !w.Running() {
			return fmt.Errorf("%w: %s: %v (see %s)", ErrExited, w.ID, w.ExitErr(), w.LogPath)
		}
		b, err := os.ReadFile(w.LogPath)
		if err != nil {
			return err
		}
		if !startedInLastRun(b) {
			return fmt.Errorf("no %s line yet in %s", workerStarted, w.LogPath)
		}
		return nil
	})
}

// startedInLastRun reports whether the last run's section of a worker's
// log has the start line: the log appends across restarts, so a line of an
// earlier run does not count.
func startedInLastRun(log []byte) bool {
	if i := bytes.LastIndex(log, []byte(runMarker)); i >= 0 {
		log = log[i:]
	}
	return bytes.Contains(log, []byte(workerStarted))
}
