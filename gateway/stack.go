package gateway

import "net/http"

// handshakeStack is the frame growStack needs: with what net/http's
// connection goroutine has used by the time it calls the handler, the
// stack grows to 16 KiB, which the whole handshake (session read from
// Redis included) fits in.
const handshakeStack = 12 << 10

// presized is the Server's http.Handler. net/http starts every
// connection's goroutine on a 2 KiB stack, and a WebSocket handshake's
// goroutine doubles it three times on the way down the handler chain, each
// time copying a deeper stack (6% of the gateway's CPU per handshake in
// the handshake benchmark). A handshake's goroutine is grown once instead,
// while its stack is still shallow; it ends with the handshake, the
// upgraded connection's reader runs on a goroutine of its own, so the
// larger stack is held only for the handshake.
type presized struct{ next http.Handler }

func (p presized) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == wsPath {
		growStack()
	}
	p.next.ServeHTTP(w, r)
}

// growStack has a frame of handshakeStack bytes, so calling it grows the
// goroutine's stack to fit that at once.
//
//go:noinline
func growStack() {
	var pad [handshakeStack]byte
	keep(&pad)
}

// keep makes pad's frame real: the compiler drops an array nothing reads.
//
//go:noinline
func keep(pad *[handshakeStack]byte) { pad[0] = 1 }
