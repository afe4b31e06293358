package connmgr

import (
	"testing"

	"go.uber.org/zap"
)

// OnQueueHigh fires when a queue grows to half its bound, once per climb:
// not again while it stays above, again after it drained and came back.
func TestOnQueueHigh(t *testing.T) {
	var highs int
	m := newManager(Config{SendQueue: 8}, zap.NewNop(), Hooks{OnQueueHigh: func() { highs++ }}, systemClock{})
	// flushing: a writer "owns" the connection, so enqueue only queues.
	c := &conn{flushing: true}
	for i := range 7 {
		if !m.enqueue(c, []byte("x")) {
			t.Fatalf("frame %d refused", i+1)
		}
		if want := min((i+1)/4, 1); highs != want {
			t.Fatalf("after %d frames: %d OnQueueHigh calls, want %d", i+1, highs, want)
		}
	}
	c.mu.Lock()
	c.queue = c.queue[:2] // the writer caught up
	c.mu.Unlock()
	m.enqueue(c, []byte("x"))
	m.enqueue(c, []byte("x"))
	if highs != 2 {
		t.Fatalf("%d OnQueueHigh calls after the queue came back to half, want 2", highs)
	}
}
