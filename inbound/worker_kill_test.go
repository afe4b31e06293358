package inbound

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/sessiongate/internal/redistest"
)

// childEnv makes a re-run of this test binary the worker process that
// the test kills; childRedisEnv gives it the redis-server's address.
const (
	childEnv      = "INBOUND_TEST_WORKER_CHILD"
	childRedisEnv = "INBOUND_TEST_REDIS_ADDR"
)

// killConfig is the queue both processes use.
var killConfig = Config{Prefix: "kill:", VisibilityTimeout: 2 * time.Second, MaxDeliveries: 5}

// startedKey is where the child writes the id of the message it started.
const startedKey = "kill:test:started"

// A worker process killed with SIGKILL in the middle of a message: the
// message stays pending, and once its visibility timeout has passed
// another worker claims it, with its delivery count, and handles it once.
func TestWorkerKilledMidMessage(t *testing.T) {
	if os.Getenv(childEnv) != "" {
		runKilledChild(t)
		return
	}
	srv := redistest.Start(t)
	rdb := newClient(t, srv.Addr())
	q := NewRedis(rdb, killConfig)
	if err := q.EnsureGroup(context.Background()); err != nil {
		t.Fatal(err)
	}
	in := msg("alice", 1)
	id := enqueue(t, q, in)[0]

	cmd := exec.Command(os.Args[0], "-test.run=^TestWorkerKilledMidMessage$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), childEnv+"=1", childRedisEnv+"="+srv.Addr())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	eventually(t, "the child worker to start the message", func() bool {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("the child worker exited (%v):\n%s", err, out.String())
		default:
		}
		return rdb.Get(context.Background(), startedKey).Val() == id
	})
	if err := cmd.Process.Signal(os.Kill); err != nil {
		t.Fatal(err)
	}
	err := <-exited
	exited <- err // for the cleanup
	if s := stats(t, q); s.Pending != 1 || s.Length != 1 {
		t.Fatalf("after the kill: stats %+v, want the message pending", s)
	}

	handled := make(chan Message, 10)
	startWorker(t, Worker{Consumer: q, Name: "survivor", Handlers: map[string]Handler{"chat": func(_ context.Context, m *Message) error {
		handled <- *m
		return nil
	}}})
	select {
	case m := <-handled:
		same(t, m, in, id, 2)
	case <-time.After(waitFor):
		t.Fatalf("the message was not redelivered within %s", waitFor)
	}
	if s := drained(t, q); s.Dead != 0 || s.Pending != 0 {
		t.Fatalf("stats = %+v", s)
	}
	if len(handled) != 0 {
		t.Fatalf("handled again: %+v", <-handled)
	}
}

// runKilledChild is the child process: a worker whose handler marks the
// message started and then never finishes, until the parent kills it.
func runKilledChild(t *testing.T) {
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{os.Getenv(childRedisEnv)}})
	defer rdb.Close()
	w := Worker{Consumer: NewRedis(rdb, killConfig), Name: "doomed", Block: 50 * time.Millisecond,
		Handlers: map[string]Handler{"chat": func(ctx context.Context, m *Message) error {
			if err := rdb.Set(ctx, startedKey, m.ID, 0).Err(); err != nil {
				return err
			}
			<-ctx.Done()
			return ctx.Err()
		}}}
	if err := w.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
}
