package main

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// inboundFleet is the inbound phase's clients: one connection per user,
// each with a reader that matches acks, errors and echo.reply events to
// the current step's messages.
type inboundFleet struct {
	conns []*wsConn
	cur   atomic.Pointer[loadRun]
	// stale counts frames of a step that already ended (late replies).
	stale atomic.Int64
	pings atomic.Int64
	wg    sync.WaitGroup
}

// openInboundFleet connects one client per token to addr (64 handshakes
// in flight) and starts their readers.
func openInboundFleet(ctx context.Context, d *dialers, addr string, tokens []string) (*inboundFleet, error) {
	f := &inboundFleet{conns: make([]*wsConn, len(tokens))}
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		first   error
	)
	for range 64 {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(len(tokens)) || ctx.Err() != nil {
					return
				}
				ws, err := dialWelcomed(ctx, d, addr, tokens[i])
				if err != nil {
					errOnce.Do(func() { first = fmt.Errorf("client %d: %w", i, err) })
					return
				}
				f.conns[i] = ws
			}
		})
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	for _, ws := range f.conns {
		if ws != nil {
			f.wg.Go(func() { f.read(ws) })
		}
	}
	if first != nil {
		f.close()
	}
	return f, first
}

// dialWelcomed opens a WebSocket to addr's /ws and reads its welcome.
func dialWelcomed(ctx context.Context, d *dialers, addr, token string) (*wsConn, error) {
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	ws, err := dialWS(dctx, d, addr, "/ws", token)
	if err != nil {
		return nil, err
	}
	_ = ws.nc.SetReadDeadline(time.Now().Add(15 * time.Second))
	op, p, err := ws.readMessage()
	if err != nil || op != opText || !isWelcome(p) {
		ws.nc.Close()
		if err == nil {
			err = fmt.Errorf("%w: first frame is not a welcome", errBadFrame)
		}
		return nil, err
	}
	_ = ws.nc.SetReadDeadline(time.Time{})
	return ws, nil
}

// close closes every connection and waits for the readers.
func (f *inboundFleet) close() {
	for _, ws := range f.conns {
		if ws != nil {
			_ = ws.nc.Close()
		}
	}
	f.wg.Wait()
}

var (
	ackPrefix   = []byte(`{"type":"ack"`)
	errorPrefix = []byte(`{"type":"error"`)
	idKey       = []byte(`"id":"`)
	clientIDKey = []byte(`"client_id":"`)
	codeKey     = []byte(`"code":"`)
)

func (f *inboundFleet) read(ws *wsConn) {
	for {
		op, p, err := ws.readMessage()
		now := time.Now().UnixNano()
		if err != nil || op == opClose {
			return
		}
		if op != opText {
			continue
		}
		switch {
		case bytes.HasPrefix(p, pingPrefix):
			f.pings.Add(1)
			_ = ws.writePong()
		case bytes.HasPrefix(p, ackPrefix):
			f.match(p, idKey, func(r *loadRun, k int64) { r.ack(k, now) })
		case bytes.HasPrefix(p, errorPrefix):
			code := string(stringAfter(p, codeKey))
			if !f.match(p, idKey, func(r *loadRun, k int64) { r.fail(k, code) }) {
				if r := f.cur.Load(); r != nil {
					r.fail(-1, code)
				}
			}
		case bytes.HasPrefix(p, eventPrefix):
			f.match(p, clientIDKey, func(r *loadRun, k int64) { r.reply(k, now) })
		}
	}
}

// match finds the message reference after key in p and, when it is a
// message of the current step, calls fn. It reports whether p named a
// message of any step.
func (f *inboundFleet) match(p, key []byte, fn func(r *loadRun, k int64)) bool {
	run, k, ok := parseMsgRef(stringAfter(p, key))
	if !ok {
		return false
	}
	if r := f.cur.Load(); r != nil && r.id == run {
		fn(r, k)
	} else {
		f.stale.Add(1)
	}
	return true
}

// stringAfter is the JSON string value that follows key (which ends with
// the opening quote) in p, or nil. The values looked for have no escapes.
func stringAfter(p, key []byte) []byte {
	i := bytes.Index(p, key)
	if i < 0 {
		return nil
	}
	rest := p[i+len(key):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return nil
	}
	return rest[:j]
}

// msgRef is the client id of message k of step run: "r<run>-<k>".
func msgRef(dst []byte, run int, k int64) []byte {
	dst = append(dst, 'r')
	dst = strconv.AppendInt(dst, int64(run), 10)
	dst = append(dst, '-')
	return strconv.AppendInt(dst, k, 10)
}

// parseMsgRef parses msgRef's form.
func parseMsgRef(b []byte) (run int, k int64, ok bool) {
	if len(b) < 4 || b[0] != 'r' {
		return 0, 0, false
	}
	i := bytes.IndexByte(b, '-')
	if i < 2 {
		return 0, 0, false
	}
	r, err1 := strconv.Atoi(string(b[1:i]))
	n, err2 := strconv.ParseInt(string(b[i+1:]), 10, 64)
	if err1 != nil || err2 != nil || r < 0 || n < 0 {
		return 0, 0, false
	}
	return r, n, true
}

// inboundMessage is the client frame of message k of step run: an "echo"
// message whose data looks like a short chat message.
func inboundMessage(dst []byte, run int, k int64) []byte {
	dst = append(dst, `{"type":"message","id":"`...)
	dst = msgRef(dst, run, k)
	dst = append(dst, `","event":"echo","data":{"text":"hello from the load generator","k":`...)
	dst = strconv.AppendInt(dst, k, 10)
	return append(dst, `}}`...)
}

// gatewaySender sends message k on connection k mod N, so the messages
// of a step go round-robin over the connections and each connection
// sends 1/N of the step's rate.
type gatewaySender struct{ f *inboundFleet }

func (g gatewaySender) send(_ context.Context, r *loadRun, k int64) error {
	ws := g.f.conns[int(k%int64(len(g.f.conns)))]
	var buf [160]byte
	msg := inboundMessage(buf[:0], r.id, k)
	r.markSent(k, time.Now().UnixNano())
	return ws.writeFrame(opText, msg)
}
