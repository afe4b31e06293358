package connmgr

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock that moves only when a test calls Advance. Timers
// (AfterFunc) and deadlines (WithTimeout) fire inside Advance, in the
// caller's goroutine, once the time they wait for is reached; so when
// Advance returns, everything due has happened.
//
// In auto mode (for cleanups) AfterFunc timers fire at once; deadlines still
// wait for Advance.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
	auto   bool
}

type fakeTimer struct {
	c        *fakeClock
	at       time.Time
	f        func()
	deadline bool // made by WithTimeout
}

func newFakeClock() *fakeClock {
	// Real wall time, so contexts with real deadlines mean something.
	return &fakeClock{now: time.Now()}
}

func (fc *fakeClock) Now() time.Time {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return fc.now
}

func (fc *fakeClock) AfterFunc(d time.Duration, f func()) stopper {
	return fc.add(d, f, false)
}

func (fc *fakeClock) add(d time.Duration, f func(), deadline bool) *fakeTimer {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	t := &fakeTimer{c: fc, at: fc.now.Add(d), f: f, deadline: deadline}
	if d <= 0 || (fc.auto && !deadline) {
		go f()
		return t
	}
	fc.timers = append(fc.timers, t)
	return t
}

// Stop implements stopper.
func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	i := slices.Index(t.c.timers, t)
	if i < 0 {
		return false
	}
	t.c.timers = slices.Delete(t.c.timers, i, i+1)
	return true
}

// Advance moves the clock by d and runs what became due, in time order.
func (fc *fakeClock) Advance(d time.Duration) {
	fc.mu.Lock()
	fc.now = fc.now.Add(d)
	var due []*fakeTimer
	fc.timers = slices.DeleteFunc(fc.timers, func(t *fakeTimer) bool {
		if t.at.After(fc.now) {
			return false
		}
		due = append(due, t)
		return true
	})
	fc.mu.Unlock()
	slices.SortStableFunc(due, func(a, b *fakeTimer) int { return a.at.Compare(b.at) })
	for _, t := range due {
		t.f()
	}
}

// AdvanceTo moves the clock to at (never backwards).
func (fc *fakeClock) AdvanceTo(at time.Time) {
	if d := at.Sub(fc.Now()); d > 0 {
		fc.Advance(d)
	}
}

// setAuto turns auto mode on: pending timers fire now, later ones at once.
func (fc *fakeClock) setAuto() {
	fc.mu.Lock()
	fc.auto = true
	var due []*fakeTimer
	fc.timers = slices.DeleteFunc(fc.timers, func(t *fakeTimer) bool {
		if t.deadline {
			return false
		}
		due = append(due, t)
		return true
	})
	fc.mu.Unlock()
	for _, t := range due {
		go t.f()
	}
}

// waitTimer waits until an AfterFunc timer (not a write deadline) is
// pending and returns the time it fires at; done, when it is closed first,
// ends the wait with ok false.
func (fc *fakeClock) waitTimer(t *testing.T, done <-chan struct{}) (at time.Time, ok bool) {
	t.Helper()
	deadline := time.Now().Add(eventually)
	for {
		fc.mu.Lock()
		for _, tm := range fc.timers {
			if !tm.deadline {
				fc.mu.Unlock()
				return tm.at, true
			}
		}
		fc.mu.Unlock()
		select {
		case <-done:
			return time.Time{}, false
		case <-time.After(time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting for a timer")
		}
	}
}

// WithTimeout implements clock: the context's deadline is on the fake
// clock, its Err is context.DeadlineExceeded once Advance reaches it.
func (fc *fakeClock) WithTimeout(parent context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	ctx := &fakeCtx{parent: parent, done: make(chan struct{}), at: fc.Now().Add(d)}
	t := fc.add(d, func() { ctx.end(context.DeadlineExceeded) }, true)
	stopParent := context.AfterFunc(parent, func() { ctx.end(parent.Err()) })
	return ctx, func() {
		t.Stop()
		stopParent()
		ctx.end(context.Canceled)
	}
}

// fakeCtx is a context whose deadline is on a fakeClock.
type fakeCtx struct {
	parent context.Context
	at     time.Time
	done   chan struct{}
	mu     sync.Mutex
	err    error
}

func (c *fakeCtx) Deadline() (time.Time, bool) { return c.at, true }
func (c *fakeCtx) Done() <-chan struct{}       { return c.done }
func (c *fakeCtx) Value(key any) any           { return c.parent.Value(key) }

func (c *fakeCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *fakeCtx) end(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.err = err
		close(c.done)
	}
}
