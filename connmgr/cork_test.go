package connmgr

import (
	"bytes"
	"net"
	"sync"
	"testing"
	"time"
)

// countingConn records every write that reaches the socket.
type countingConn struct {
	net.Conn
	mu     sync.Mutex
	writes [][]byte
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.writes = append(c.writes, bytes.Clone(p))
	c.mu.Unlock()
	return len(p), nil
}

func (c *countingConn) SetWriteDeadline(time.Time) error { return nil }

// Corked writes reach the socket as one write, in order, at uncork; an
// uncorked write goes straight through; a batch never outgrows maxCorked.
func TestIdleConnCork(t *testing.T) {
	cc := &countingConn{}
	ic := &idleConn{Conn: cc}
	if _, err := ic.Write([]byte("a")); err != nil || len(cc.writes) != 1 {
		t.Fatalf("uncorked write: %d writes, %v", len(cc.writes), err)
	}
	ic.cork()
	for _, s := range []string{"b", "c", "d"} {
		if n, err := ic.Write([]byte(s)); n != 1 || err != nil {
			t.Fatalf("corked write: %d, %v", n, err)
		}
	}
	if len(cc.writes) != 1 {
		t.Fatalf("corked writes reached the socket: %q", cc.writes)
	}
	if err := ic.uncork(time.Second); err != nil {
		t.Fatal(err)
	}
	if len(cc.writes) != 2 || string(cc.writes[1]) != "bcd" {
		t.Fatalf("writes %q, want [a bcd]", cc.writes)
	}
	ic.cork()
	big := bytes.Repeat([]byte("x"), maxCorked-1)
	_, _ = ic.Write(big)
	_, _ = ic.Write([]byte("yz")) // would overflow: the batch goes first
	if err := ic.uncork(time.Second); err != nil {
		t.Fatal(err)
	}
	if len(cc.writes) != 4 || len(cc.writes[2]) != maxCorked-1 || string(cc.writes[3]) != "yz" {
		t.Fatalf("%d writes, want the full batch then the rest", len(cc.writes))
	}
	if ic.wbuf != nil {
		t.Fatal("an uncorked connection keeps its batch buffer")
	}
}
