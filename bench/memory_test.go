package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/zap"

	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/gateway"
	"github.com/sessiongate/sessiongate/internal/wiring"
	"github.com/sessiongate/sessiongate/presence"
)

// floorWelcome is the size and shape of the gateway's welcome frame.
var floorWelcome = []byte(`{"type":"welcome","conn_id":"c0123456789abcdef01234","user_id":"u-000001","instance":"floor","ping_interval_ms":25000}`)

const (
	benchConns = 2000
	apiKey     = "bench-api-key-0123456789abcdef"
)

// serve serves h on a loopback listener until the benchmark ends.
func serve(b *testing.B, h http.Handler) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	b.Cleanup(func() { _ = hs.Close() })
	return ln.Addr().String()
}

// startGateway runs an embedded-mode gateway (memory store, local bus) in
// this process.
// Extra env pairs (name, value, ...) override the defaults.
func startGateway(b *testing.B, extra ...string) string {
	b.Helper()
	return startGatewayPresence(b, nil, extra...)
}

// startGatewayPresence is [startGateway] with pres as the presence store
// (nil: presence off, as in every other benchmark).
func startGatewayPresence(b *testing.B, pres presence.Store, extra ...string) string {
	b.Helper()
	env := map[string]string{
		"GATEWAY_API_KEYS": apiKey, "RATE_LIMIT_RPS": "0",
		"LOG_LEVEL": "error", "GATEWAY_INSTANCE_ID": "bench",
		// The heartbeat and handshake benchmarks hold many connections of
		// one user or one session: the per-user and per-session caps would
		// refuse most of them.
		"WS_MAX_CONNECTIONS_PER_USER": "0", "WS_MAX_CONNECTIONS_PER_SESSION": "0",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		env[extra[i]] = extra[i+1]
	}
	cfg, err := config.Load(nil, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		b.Fatal(err)
	}
	log := zap.NewNop()
	parts, err := wiring.Build(cfg, nil, log, nil)
	if err != nil {
		b.Fatal(err)
	}
	srv, err := gateway.New(gateway.ConfigFrom(cfg), gateway.Deps{
		Log: log, Codec: parts.Codec, Store: parts.Store, Bus: parts.Bus, History: parts.History, Inbound: parts.Inbound, Auth: gateway.DevAuthenticator{},
		Presence: pres,
	})
	if err != nil {
		b.Fatal(err)
	}
	srv.Start()
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return serve(b, srv.Handler())
}

// createToken creates one session through the server API.
func createToken(b *testing.B, addr, user string) string {
	b.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/api/v1/sessions", strings.NewReader(`{"user_id":"`+user+`"}`))
	req.Header.Set("Authorization", "Bearer "+apiKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Token string }
	if resp.StatusCode != http.StatusCreated || json.NewDecoder(resp.Body).Decode(&out) != nil {
		b.Fatalf("create session: HTTP %d", resp.StatusCode)
	}
	return out.Token
}

// rawDial opens a WebSocket with a bare net.Conn and reads the 101 and the
// first frame header, then leaves the connection idle: the client keeps no
// buffers, so this process's heap growth is the server's. (The idle run is
// shorter than the ping interval, so nothing needs answering.)
func rawDial(b *testing.B, addr, path, token string) net.Conn {
	b.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer %s\r\n\r\n", path, addr, token)
	br := bufio.NewReaderSize(c, 512)
	status, err := br.ReadString('\n')
	if err != nil || !strings.Contains(status, " 101 ") {
		b.Fatalf("upgrade: %q %v", status, err)
	}
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			b.Fatal(err)
		}
		if len(bytes.TrimSpace(line)) == 0 {
			break
		}
	}
	if _, err := br.Peek(2); err != nil { // the welcome frame arrived
		b.Fatal(err)
	}
	return c
}

// memInuse is heap and goroutine-stack bytes in use after two full GCs.
func memInuse() (heap, stack uint64) {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse, ms.StackInuse
}

// measureIdle opens benchConns connections via dial and reports heap and
// stack bytes and goroutines per connection, after a full GC.
func measureIdle(b *testing.B, dial func(i int) net.Conn, profile string) {
	b.Helper()
	for range b.N {
		h0, s0 := memInuse()
		g0 := runtime.NumGoroutine()
		conns := make([]net.Conn, benchConns)
		for i := range conns {
			conns[i] = dial(i)
		}
		time.Sleep(500 * time.Millisecond)
		h1, s1 := memInuse()
		g1 := runtime.NumGoroutine()
		if profile != "" {
			f, err := os.Create(profile)
			if err == nil {
				_ = pprof.WriteHeapProfile(f)
				f.Close()
			}
		}
		// Signed: an instance whose connections hold no goroutine can end
		// with fewer stack bytes than it started with.
		b.ReportMetric((float64(h1)-float64(h0))/benchConns, "heap-B/conn")
		b.ReportMetric((float64(s1)-float64(s0))/benchConns, "stack-B/conn")
		b.ReportMetric(float64(g1-g0)/benchConns, "goroutines/conn")
		for _, c := range conns {
			c.Close()
		}
	}
}

// BenchmarkIdleConnMemory: heap and goroutines per idle connection, the
// gateway (authenticated, registered, heartbeats on) next to a bare
// coder/websocket holder (Accept, welcome, one blocked Read).
func BenchmarkIdleConnMemory(b *testing.B) {
	b.Run("gateway", func(b *testing.B) {
		addr := startGateway(b)
		tokens := make([]string, benchConns)
		for i := range tokens {
			tokens[i] = createToken(b, addr, fmt.Sprintf("u-%05d", i))
		}
		b.ResetTimer()
		measureIdle(b, func(i int) net.Conn { return rawDial(b, addr, "/ws", tokens[i]) }, os.Getenv("BENCH_HEAPPROFILE"))
	})
	b.Run("floor", func(b *testing.B) {
		addr := serve(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
			if err != nil {
				return
			}
			defer c.CloseNow()
			if c.Write(context.Background(), websocket.MessageText, floorWelcome) != nil {
				return
			}
			for {
				if _, _, err := c.Read(context.Background()); err != nil {
					return
				}
			}
		}))
		b.ResetTimer()
		measureIdle(b, func(int) net.Conn { return rawDial(b, addr, "/", "") }, "")
	})
}
