package fakeclock

import (
	"testing"
	"time"
)

func TestClockMovesOnlyByAdd(t *testing.T) {
	start := time.Unix(1_700_000_000, 0)
	c := New(start)
	if !c.Now().Equal(start) {
		t.Fatalf("Now = %v, want %v", c.Now(), start)
	}
	c.Add(90 * time.Second)
	if got := c.Now().Sub(start); got != 90*time.Second {
		t.Fatalf("moved %v, want 90s", got)
	}
}
