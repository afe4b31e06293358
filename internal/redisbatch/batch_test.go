package redisbatch

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/sessiongate/internal/redistest"
)

// roundTrips counts what reaches the connection: single commands and
// pipelines (with their sizes), and can hold the first single command so a
// test can queue callers behind it.
type roundTrips struct {
	singles   atomic.Int64
	mu        sync.Mutex
	pipelines []int
	hold      chan struct{} // while non-nil, the next single command waits on it
	holding   chan struct{} // closed once a command is held
}

func (h *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "hello" || cmd.Name() == "client" {
			return next(ctx, cmd)
		}
		h.singles.Add(1)
		h.mu.Lock()
		hold, holding := h.hold, h.holding
		h.hold = nil
		h.mu.Unlock()
		if hold != nil {
			close(holding)
			<-hold
		}
		return next(ctx, cmd)
	}
}
func (h *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if n := cmds[0].Name(); n == "hello" || n == "client" || n == "auth" {
			return next(ctx, cmds) // a new connection's handshake
		}
		h.mu.Lock()
		h.pipelines = append(h.pipelines, len(cmds))
		h.mu.Unlock()
		return next(ctx, cmds)
	}
}

func client(t *testing.T, addr string) (*redis.Client, *roundTrips) {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true, MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	h := &roundTrips{}
	rdb.AddHook(h)
	return rdb, h
}

// Every caller gets its own answers, in order, whatever batch its commands
// went out in.
func TestConcurrentCallersGetTheirOwnAnswers(t *testing.T) {
	srv := redistest.Start(t)
	rdb, _ := client(t, srv.Addr())
	b := New(rdb, Config{})
	ctx := context.Background()
	const callers, rounds = 64, 50
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range rounds {
				key := fmt.Sprintf("k:%d", i)
				val := strconv.Itoa(i*1000 + j)
				set := redis.NewStatusCmd(ctx, "set", key, val)
				get := redis.NewStringCmd(ctx, "get", key)
				missing := redis.NewStringCmd(ctx, "get", fmt.Sprintf("missing:%d", i))
				if err := b.Do(ctx, set, get, missing); err != nil {
					errs <- err
					return
				}
				if set.Err() != nil || get.Val() != val || !errors.Is(missing.Err(), redis.Nil) {
					errs <- fmt.Errorf("caller %d round %d: set %v, get %q (want %q), missing %v", i, j, set.Err(), get.Val(), val, missing.Err())
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// Callers that arrive while a batch is in flight go out together in the
// next one: one pipeline, not one round trip each.
func TestCallersQueuedBehindABatchShareOnePipeline(t *testing.T) {
	srv := redistest.Start(t)
	rdb, h := client(t, srv.Addr())
	b := New(rdb, Config{MaxInFlight: 1})
	ctx := context.Background()

	h.hold, h.holding = make(chan struct{}), make(chan struct{})
	hold := h.hold
	first := make(chan error, 1)
	go func() { first <- b.Do(ctx, redis.NewStringCmd(ctx, "get", "a")) }()
	<-h.holding // the first batch is in flight, held

	const queued = 20
	gets := make([]*redis.StringCmd, queued)
	done := make(chan error, queued)
	for i := range gets {
		gets[i] = redis.NewStringCmd(ctx, "echo", strconv.Itoa(i))
		go func() { done <- b.Do(ctx, gets[i]) }()
	}
	waitFor(t, "20 callers queued", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.pending) == queued
	})
	close(hold)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	for range queued {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	for i, g := range gets {
		if g.Val() != strconv.Itoa(i) {
			t.Fatalf("caller %d got %q", i, g.Val())
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.pipelines) != 1 || h.pipelines[0] != queued {
		t.Fatalf("pipelines = %v, want one of %d commands", h.pipelines, queued)
	}
	if n := h.singles.Load(); n != 1 {
		t.Fatalf("single round trips = %d, want 1 (the held first call)", n)
	}
}

// A batch never holds more than MaxCommands commands (a caller's commands
// stay together).
func TestBatchesRespectMaxCommands(t *testing.T) {
	srv := redistest.Start(t)
	rdb, h := client(t, srv.Addr())
	b := New(rdb, Config{MaxInFlight: 1, MaxCommands: 5})
	ctx := context.Background()
	h.hold, h.holding = make(chan struct{}), make(chan struct{})
	hold := h.hold
	go func() { _ = b.Do(ctx, redis.NewStringCmd(ctx, "get", "a")) }()
	<-h.holding
	done := make(chan error, 6)
	for range 6 {
		go func() {
			done <- b.Do(ctx, redis.NewStringCmd(ctx, "echo", "x"), redis.NewStringCmd(ctx, "echo", "y"))
		}()
	}
	waitFor(t, "6 callers queued", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.pending) == 6
	})
	close(hold)
	for range 6 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	total := 0
	for _, n := range h.pipelines {
		if n > 5 || n%2 != 0 {
			t.Fatalf("pipelines = %v: a batch over 5 commands or a caller split", h.pipelines)
		}
		total += n
	}
	if total != 12 {
		t.Fatalf("pipelines = %v, want 12 commands in all", h.pipelines)
	}
}

// A caller whose context ends stops waiting at once; the batch it was in
// still answers the others.
func TestCallerGivingUpDoesNotFailOthers(t *testing.T) {
	srv := redistest.Start(t)
	rdb, h := client(t, srv.Addr())
	b := New(rdb, Config{MaxInFlight: 1})
	bg := context.Background()
	h.hold, h.holding = make(chan struct{}), make(chan struct{})
	hold := h.hold
	go func() { _ = b.Do(bg, redis.NewStringCmd(bg, "get", "a")) }()
	<-h.holding

	ctx, cancel := context.WithCancel(bg)
	quitter := make(chan error, 1)
	go func() { quitter <- b.Do(ctx, redis.NewStringCmd(ctx, "echo", "q")) }()
	other := redis.NewStringCmd(bg, "echo", "o")
	otherDone := make(chan error, 1)
	go func() { otherDone <- b.Do(bg, other) }()
	waitFor(t, "2 callers queued", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.pending) == 2
	})
	cancel()
	if err := <-quitter; !errors.Is(err, context.Canceled) {
		t.Fatalf("quitter: %v, want context.Canceled", err)
	}
	close(hold)
	if err := <-otherDone; err != nil || other.Val() != "o" {
		t.Fatalf("other: %v %q", err, other.Val())
	}
}

// With Redis gone every command reports the error; nobody hangs.
func TestRedisDownFailsCommandsNotCallers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	rdb, _ := client(t, addr)
	b := New(rdb, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			get := redis.NewStringCmd(ctx, "get", "k")
			if err := b.Do(ctx, get); err != nil {
				t.Errorf("Do: %v (the context did not end)", err)
			}
			if get.Err() == nil || errors.Is(get.Err(), redis.Nil) || !strings.Contains(get.Err().Error(), "refused") {
				t.Errorf("get err = %v, want connection refused", get.Err())
			}
		}()
	}
	wg.Wait()
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
