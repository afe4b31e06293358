package bench

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

const (
	hbConns    = 1000
	hbInterval = 250 * time.Millisecond
	hbWindow   = 3 * time.Second
)

var pongFrame = []byte{0x81, 0x80 | 15, 0, 0, 0, 0} // masked with a zero key

// respond answers every {"type":"ping"} text frame on c with {"type":"pong"}
// and counts the pings, until c fails.
func respond(c net.Conn, pings *atomic.Int64) {
	frame := append(append([]byte{}, pongFrame...), `{"type":"pong"}`...)
	br := bufio.NewReaderSize(c, 256)
	var h [2]byte
	buf := make([]byte, 256)
	for {
		if _, err := io.ReadFull(br, h[:]); err != nil {
			return
		}
		n := int(h[1] & 0x7F)
		if n >= 126 {
			var e [2]byte
			if _, err := io.ReadFull(br, e[:]); err != nil {
				return
			}
			n = int(binary.BigEndian.Uint16(e[:]))
		}
		if n > len(buf) {
			buf = make([]byte, n)
		}
		if _, err := io.ReadFull(br, buf[:n]); err != nil {
			return
		}
		if h[0]&0x0F == 0x1 && n >= 14 && string(buf[:14]) == `{"type":"ping"` {
			pings.Add(1)
			if _, err := c.Write(frame); err != nil {
				return
			}
		}
	}
}

// allocated is the bytes this process has allocated on the heap so far.
func allocated() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// measureHeartbeat holds hbConns connections that answer pings for hbWindow
// and reports process CPU (server and client side together) per ping.
func measureHeartbeat(b *testing.B, dial func(i int) net.Conn) {
	b.Helper()
	var pings atomic.Int64
	conns := make([]net.Conn, hbConns)
	var wg sync.WaitGroup
	for i := range conns {
		conns[i] = dial(i)
		wg.Go(func() { respond(conns[i], &pings) })
	}
	b.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
		wg.Wait()
	})
	time.Sleep(2 * hbInterval)
	b.ResetTimer()
	for range b.N {
		p0, c0, a0 := pings.Load(), cpuTime(), allocated()
		time.Sleep(hbWindow)
		p := pings.Load() - p0
		b.ReportMetric(float64(cpuTime()-c0)/float64(time.Microsecond)/float64(max(p, 1)), "process-CPU-µs/ping")
		b.ReportMetric(float64(allocated()-a0)/float64(max(p, 1)), "heap-B/ping")
		b.ReportMetric(float64(p)/hbWindow.Seconds(), "pings/s")
	}
	// A goroutine's stack stays as grown unless a collection finds it
	// using under a quarter of it: what the connections' goroutines
	// (server and client side) still hold after pings and a collection.
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.StackInuse)/hbConns, "stack-B/conn")
}

// BenchmarkHeartbeat: CPU per ping+pong with 1000 idle connections and a
// 250 ms ping interval, the gateway (connmgr's sweep, queue, flush, parse)
// next to a bare floor (one ticker writing a pre-encoded ping to each
// connection in turn, one blocked Read per connection). Run with
// -cpuprofile and focus on the server side: go tool pprof -top -focus
// 'connmgr|coder/websocket' cpu.out.
func BenchmarkHeartbeat(b *testing.B) {
	b.Run("gateway", func(b *testing.B) {
		addr := startGateway(b, "WS_PING_INTERVAL", hbInterval.String())
		tokens := make([]string, hbConns)
		for i := range tokens {
			tokens[i] = createToken(b, addr, "u-hb")
		}
		measureHeartbeat(b, func(i int) net.Conn { return rawDial(b, addr, "/ws", tokens[i]) })
	})
	b.Run("floor", func(b *testing.B) {
		var (
			mu    sync.Mutex
			conns []*websocket.Conn
		)
		ping := []byte(`{"type":"ping"}`)
		ctx, cancel := context.WithCancel(context.Background())
		b.Cleanup(cancel)
		go func() {
			t := time.NewTicker(hbInterval)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				mu.Lock()
				snap := conns
				mu.Unlock()
				for _, c := range snap {
					_ = c.Write(context.Background(), websocket.MessageText, ping)
				}
			}
		}()
		addr := serve(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
			if err != nil {
				return
			}
			defer c.CloseNow()
			if c.Write(context.Background(), websocket.MessageText, floorWelcome) != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			for {
				if _, _, err := c.Read(context.Background()); err != nil {
					return
				}
			}
		}))
		measureHeartbeat(b, func(int) net.Conn { return rawDial(b, addr, "/", "") })
	})
}
