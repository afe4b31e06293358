package bench

import (
	"context"
	"net"
	"net/http"
	"testing"

	"github.com/coder/websocket"
)

// BenchmarkHandshake: one authenticated upgrade (token check, session load
// from the memory store, Accept, registration, welcome) then close, next to
// a bare coder/websocket Accept + welcome. Run with -cpuprofile to see where
// the gateway's extra CPU per handshake goes.
func BenchmarkHandshake(b *testing.B) {
	run := func(b *testing.B, dial func() net.Conn) {
		b.ReportAllocs()
		for b.Loop() {
			dial().Close()
		}
	}
	b.Run("gateway", func(b *testing.B) {
		addr := startGateway(b)
		tok := createToken(b, addr, "u-hs")
		run(b, func() net.Conn { return rawDial(b, addr, "/ws", tok) })
	})
	b.Run("floor", func(b *testing.B) {
		addr := serve(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
			if err != nil {
				return
			}
			defer c.CloseNow()
			if c.Write(context.Background(), websocket.MessageText, floorWelcome) == nil {
				_, _, _ = c.Read(context.Background())
			}
		}))
		run(b, func() net.Conn { return rawDial(b, addr, "/", "") })
	})
}
