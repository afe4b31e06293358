package connmgr

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/zap"
)

// BenchmarkSendAll measures one fan-out to n loopback connections, from
// SendAll to the last client having read the frame (ns/conn), and the
// sender's own cost, the SendAll call alone (enqueue-ns/conn). The floor
// sub-benchmarks do the same with bare coder/websocket connections written
// in turn by one goroutine (the load generator's fan-out floor), against
// the same clients, so their ratio is the manager's overhead.
func BenchmarkSendAll(b *testing.B) {
	for _, n := range []int{100, 1000, 5000} {
		for _, mode := range []string{"manager", "floor"} {
			b.Run(fmt.Sprintf("%s/conns=%d", mode, n), func(b *testing.B) {
				benchSendAll(b, mode, n)
			})
		}
	}
}

func benchSendAll(b *testing.B, mode string, n int) {
	var got, target atomic.Int64
	done := make(chan struct{}, 1)
	reader := func(ws *websocket.Conn) {
		for {
			if _, _, err := ws.Read(context.Background()); err != nil {
				return
			}
			if got.Add(1) == target.Load() {
				done <- struct{}{}
			}
		}
	}
	var send func(frame []byte) int
	switch mode {
	case "manager":
		h := newHarnessLog(b, Config{PingInterval: time.Hour}, zap.NewNop())
		for i := range n {
			c := h.dial(fmt.Sprint("u", i), fmt.Sprint("s", i))
			go reader(c.ws)
		}
		send = h.m.SendAll
	case "floor":
		var mu sync.Mutex
		var conns []*websocket.Conn
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, ws)
			mu.Unlock()
			_, _, _ = ws.Read(context.Background())
			_ = ws.CloseNow()
		}))
		b.Cleanup(srv.Close)
		for range n {
			ws, _, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = ws.CloseNow() })
			go reader(ws)
		}
		for {
			mu.Lock()
			k := len(conns)
			mu.Unlock()
			if k == n {
				break
			}
			runtime.Gosched()
		}
		send = func(frame []byte) int {
			for _, ws := range conns {
				_ = ws.Write(context.Background(), websocket.MessageText, frame)
			}
			return len(conns)
		}
	}
	frame := EncodeEvent("e1", "bench", json.RawMessage(`{"price":101.25,"symbol":"ACME","seq":12345}`))
	b.ReportAllocs()
	var enqueue time.Duration
	for b.Loop() {
		target.Add(int64(n))
		start := time.Now()
		q := send(frame)
		enqueue += time.Since(start)
		if q != n {
			b.Fatalf("sent to %d, want %d", q, n)
		}
		<-done
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/conn")
	b.ReportMetric(float64(enqueue.Nanoseconds())/float64(b.N*n), "enqueue-ns/conn")
}

func BenchmarkEncodeEvent(b *testing.B) {
	data := json.RawMessage(`{"price":101.25,"symbol":"ACME","seq":12345}`)
	b.ReportAllocs()
	for b.Loop() {
		EncodeEvent("01J9Z3", "tick", data)
	}
}

func BenchmarkParseClientMessage(b *testing.B) {
	in := []byte(`{"type":"message","data":{"text":"hello","room":"r1"}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseClientMessage(in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIdleConnMemory reports the live heap and stack per idle
// connection held server-side, for three holders in the same run:
//
//	hijack:  net/http hijack, then a blocking 1-byte read (the floor of any
//	         net/http based server);
//	bare:    websocket.Accept, then a blocking ws.Read;
//	manager: websocket.Accept, then Manager.Serve (welcome sent, registered).
//
// Clients are raw TCP connections that did the handshake and hold no
// goroutine or buffer, so nearly all the memory measured is server-side.
func BenchmarkIdleConnMemory(b *testing.B) {
	const n = 2000
	for _, mode := range []string{"hijack", "bare", "manager"} {
		b.Run(mode, func(b *testing.B) {
			for b.Loop() {
				heap, stack := idleConnMemory(b, mode, n)
				b.ReportMetric(heap, "heap-B/conn")
				b.ReportMetric(stack, "stack-B/conn")
				b.ReportMetric(heap+stack, "B/conn")
			}
		})
	}
}

func idleConnMemory(b *testing.B, mode string, n int) (heap, stack float64) {
	b.Helper()
	b.StopTimer()
	defer b.StartTimer()

	m := New(Config{PingInterval: time.Hour, DrainWindow: time.Millisecond}, zap.NewNop(), Hooks{})
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan struct{})
	go func() { defer close(runDone); m.Run(ctx) }()
	var held atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch mode {
		case "hijack":
			conn, brw, err := w.(http.Hijacker).Hijack()
			if err != nil {
				return
			}
			_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
			_ = brw.Flush()
			held.Add(1)
			var one [1]byte
			_, _ = conn.Read(one[:])
			_ = conn.Close()
		case "bare":
			ws, err := websocket.Accept(w, r, nil)
			if err != nil {
				return
			}
			held.Add(1)
			_, _, _ = ws.Read(context.Background())
			_ = ws.CloseNow()
		case "manager":
			ws, err := websocket.Accept(w, r, nil)
			if err != nil {
				return
			}
			held.Add(1)
			_ = m.Serve(r.Context(), ws, Info{UserID: "u" + r.URL.Query().Get("i"), Handle: "h" + r.URL.Query().Get("i")})
		}
	}))
	addr := strings.TrimPrefix(srv.URL, "http://")

	before := liveMemory()
	conns := make([]net.Conn, 0, n)
	for i := range n {
		conns = append(conns, rawHandshake(b, addr, i))
	}
	for held.Load() < int64(n) || (mode == "manager" && m.Stats().Connections < n) {
		time.Sleep(time.Millisecond)
	}
	after := liveMemory()

	for _, c := range conns {
		_ = c.Close()
	}
	sctx, scancel := context.WithTimeout(context.Background(), time.Minute)
	defer scancel()
	if err := m.Shutdown(sctx); err != nil {
		b.Fatalf("Shutdown: %v", err)
	}
	cancel()
	<-runDone
	srv.Close()
	return float64(after.heap-before.heap) / float64(n), float64(after.stack-before.stack) / float64(n)
}

type memSample struct{ heap, stack int64 }

func liveMemory() memSample {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return memSample{heap: int64(ms.HeapAlloc), stack: int64(ms.StackInuse)}
}

// rawHandshake opens a WebSocket at the TCP level and returns the bare
// connection; the client side keeps no buffer and no goroutine.
func rawHandshake(b *testing.B, addr string, i int) net.Conn {
	b.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatalf("dial: %v", err)
	}
	req := fmt.Sprintf("GET /ws?i=%d HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", i, addr)
	if _, err := c.Write([]byte(req)); err != nil {
		b.Fatalf("write handshake: %v", err)
	}
	br := bufio.NewReaderSize(c, 64)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			b.Fatalf("read handshake: %v", err)
		}
		if line == "\r\n" {
			return c
		}
	}
}
