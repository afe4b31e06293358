package main

import (
	"bytes"
	"encoding/json"
	"strconv"
	"sync/atomic"
)

// Stream indexes of a storm client's positions.
const (
	sUser = iota
	sAll
	nStreams
)

var streamNames = [nStreams]string{"user", "all"}

func streamIndex(name string) int {
	for i, n := range streamNames {
		if n == name {
			return i
		}
	}
	return -1
}

// streamPos is a position in one history stream.
type streamPos struct {
	Epoch  string `json:"epoch"`
	Offset uint64 `json:"offset"`
}

// frameHead is what the storm reads of a server frame.
type frameHead struct {
	Type      string               `json:"type"`
	Stream    string               `json:"stream"`
	Epoch     string               `json:"epoch"`
	Offset    uint64               `json:"offset"`
	Positions map[string]streamPos `json:"positions"`
	Recovered *bool                `json:"recovered"`
	Lost      []string             `json:"lost"`
}

// resumePath is the WebSocket path of a reconnect from pos, as client-js
// sends it: resume_user and resume_all for each stream it has a position
// for.
func resumePath(pos [nStreams]streamPos) string {
	b := []byte("/ws")
	sep := byte('?')
	for i, p := range pos {
		if p.Epoch == "" {
			continue
		}
		b = append(b, sep)
		b = append(b, "resume_"+streamNames[i]+"="+p.Epoch+":"...)
		b = strconv.AppendUint(b, p.Offset, 10)
		sep = '&'
	}
	return string(b)
}

// stormClient is one client of the resume storm: a distinct user that
// tracks its positions like client-js (from the welcome, advanced by every
// event), and after the reconnect accounts for every event it receives.
// Its fields belong to its reader goroutine; others read them after the
// reader has ended, except the atomics.
type stormClient struct {
	token string
	ws    *wsConn
	done  chan struct{} // closed when the current reader ends

	// pos is the client's position per stream (before the reconnect: the
	// last event delivered; what it resumes from).
	pos [nStreams]streamPos
	// want is, per stream, the last offset of the missed events.
	want [nStreams]uint64
	// After the reconnect:
	dialStart  int64 // unix ns
	welcomed   bool
	recovered  bool
	seen       [nStreams][]bool // missed offsets received, index offset-pos-1
	remaining  int              // missed events not yet received
	replayed   int              // missed events received (first copy)
	dups       int              // an event received twice, or one it had already
	extra      int              // an event after want that is not the barrier
	wrongEpoch int
	// gotBarrier: the live broadcast event sent after the storm (the
	// first broadcast after want) arrived; every frame the server queued
	// before it has too.
	gotBarrier bool
	liveAt     atomic.Int64 // unix ns when welcomed and every missed event arrived
	barrierAt  atomic.Int64
}

// expect prepares the accounting of the reconnect: the missed events are
// the offsets after pos up to want, per stream.
func (c *stormClient) expect(want [nStreams]uint64) {
	c.want = want
	c.remaining = 0
	for i := range nStreams {
		n := int(want[i] - min(want[i], c.pos[i].Offset))
		c.seen[i] = make([]bool, n)
		c.remaining += n
	}
}

// track advances the client's positions from one frame before the kill
// (the welcome's positions, then every event's). It reports whether the
// frame was an event.
func (c *stormClient) track(p []byte) bool {
	var h frameHead
	if json.Unmarshal(p, &h) != nil {
		return false
	}
	switch h.Type {
	case "welcome":
		for name, sp := range h.Positions {
			if i := streamIndex(name); i >= 0 {
				c.pos[i] = sp
			}
		}
	case "event":
		if i := streamIndex(h.Stream); i >= 0 && h.Offset > 0 {
			if h.Epoch != c.pos[i].Epoch || h.Offset > c.pos[i].Offset {
				c.pos[i] = streamPos{Epoch: h.Epoch, Offset: h.Offset}
			}
		}
		return true
	}
	return false
}

// account handles one frame after the reconnect and reports whether it
// made the client live (welcomed with recovered:true and no missed event
// left) and whether it was the barrier.
func (c *stormClient) account(p []byte) (live, barrier bool) {
	var h frameHead
	if json.Unmarshal(p, &h) != nil {
		return false, false
	}
	switch h.Type {
	case "welcome":
		c.welcomed = true
		c.recovered = h.Recovered != nil && *h.Recovered
	case "event":
		i := streamIndex(h.Stream)
		if i < 0 || h.Offset == 0 {
			c.extra++
			return false, false
		}
		from := c.pos[i]
		switch {
		case h.Epoch != from.Epoch:
			c.wrongEpoch++
		case h.Offset <= from.Offset:
			c.dups++
		case h.Offset <= c.want[i]:
			k := h.Offset - from.Offset - 1
			if c.seen[i][k] {
				c.dups++
				break
			}
			c.seen[i][k] = true
			c.remaining--
			c.replayed++
		case i == sAll && !c.gotBarrier:
			c.gotBarrier, barrier = true, true
		default:
			c.extra++
		}
	default:
		return false, false
	}
	return c.welcomed && c.recovered && c.remaining == 0, barrier
}

var welcomePrefix = []byte(`{"type":"welcome"`)

func isWelcome(p []byte) bool { return bytes.HasPrefix(p, welcomePrefix) }
