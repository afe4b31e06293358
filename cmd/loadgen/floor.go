package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coder/websocket"
	"github.com/redis/go-redis/v9"
)

// floorWelcome has the size and shape of the gateway's welcome frame, so
// both sides write the same bytes per handshake.
var floorWelcome = []byte(`{"type":"welcome","conn_id":"c0123456789abcdef01234","user_id":"u-000001","instance":"floor","ping_interval_ms":25000}`)

// floorServer is the bare coder/websocket server every figure is compared
// with: /upgrade accepts, writes a welcome and closes when the client does; /hold accepts, writes
// a welcome and holds the connection idle in one blocked Read; POST /fanout
// queues one pre-encoded frame that a single writer goroutine writes to every
// held connection; POST /send?i=k writes a frame to held connection k.
//
// With -redis it is also the floor of the revocation path (the shape of a
// revocation through gateway A to a connection on gateway B, with nothing
// but the parts): DELETE /revoke/{token} PUBLISHes the token on
// floorRevokeChannel, DELetes its session key and answers 204; every
// instance subscribes to the channel and closes the held connection that
// presented that bearer token with code 4500 (coder/websocket's close
// handshake, as the gateway's).
type floorServer struct {
	mu      sync.RWMutex
	conns   []*websocket.Conn
	index   map[*websocket.Conn]int // position in conns
	byToken map[string]*websocket.Conn
	fanC    chan []byte
	rdb     *redis.Client
}

// The revocation path floor's pub/sub channel, and the prefix of the
// session key a revocation deletes.
const (
	floorRevokeChannel = "loadgen:revoke"
	floorSessionPrefix = "loadgen:session:"
)

// runFloorServer is the "floor-server" subcommand.
func runFloorServer(args []string) error {
	fs := flag.NewFlagSet("floor-server", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	redisAddr := fs.String("redis", "", "Redis address: serve the revocation path floor (DELETE /revoke/{token}) through its pub/sub")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if _, err := raiseNoFile(); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	f := newFloorServer()
	go f.fanout()
	hs := &http.Server{Handler: f.handler(), ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if *redisAddr != "" {
		release, err := f.serveRevocations(ctx, *redisAddr)
		if err != nil {
			return err
		}
		defer release()
	}
	go func() { <-ctx.Done(); _ = hs.Close() }()
	err = hs.Serve(ln)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func newFloorServer() *floorServer {
	return &floorServer{fanC: make(chan []byte, 64), index: map[*websocket.Conn]int{}, byToken: map[string]*websocket.Conn{}}
}

// serveRevocations connects f to the Redis at addr for the revocation path
// floor: DELETE /revoke/{token} publishes, and every published token's held
// connection is closed until ctx ends. release closes the Redis clients.
func (f *floorServer) serveRevocations(ctx context.Context, addr string) (release func(), err error) {
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	sub := rdb.Subscribe(ctx, floorRevokeChannel)
	if _, err := sub.Receive(ctx); err != nil {
		_ = sub.Close()
		_ = rdb.Close()
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	f.mu.Lock()
	f.rdb = rdb
	f.mu.Unlock()
	go f.closeRevoked(ctx, sub)
	return func() { _ = sub.Close(); _ = rdb.Close() }, nil
}

// handler routes the floor server's endpoints; f.fanout must be running
// for POST /fanout to be written out.
func (f *floorServer) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /upgrade", f.upgrade)
	mux.HandleFunc("GET /hold", f.hold)
	mux.HandleFunc("POST /fanout", f.queueFanout)
	mux.HandleFunc("POST /send", f.send)
	mux.HandleFunc("DELETE /revoke/{token}", f.revoke)
	mux.HandleFunc("GET /metrics", f.metrics)
	// For the load generator's -profile-dir (the revocation path floor's
	// profiles); the floor listens on loopback only.
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.Handle("GET /debug/pprof/heap", pprof.Handler("heap"))
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	return mux
}

var acceptOpts = &websocket.AcceptOptions{InsecureSkipVerify: true, CompressionMode: websocket.CompressionDisabled}

func (f *floorServer) upgrade(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, acceptOpts)
	if err != nil {
		return
	}
	// Like the gateway's handshake run: write the welcome, then end when the
	// client goes away.
	if err := c.Write(context.Background(), websocket.MessageText, floorWelcome); err == nil {
		_, _, _ = c.Read(context.Background())
	}
	_ = c.CloseNow()
}

func (f *floorServer) hold(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, acceptOpts)
	if err != nil {
		return
	}
	if err := c.Write(context.Background(), websocket.MessageText, floorWelcome); err != nil {
		_ = c.CloseNow()
		return
	}
	token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	f.mu.Lock()
	f.index[c] = len(f.conns)
	f.conns = append(f.conns, c)
	if token != "" {
		f.byToken[token] = c
	}
	f.mu.Unlock()
	for {
		if _, _, err := c.Read(context.Background()); err != nil {
			_ = c.CloseNow()
			f.remove(c, token)
			return
		}
	}
}

func (f *floorServer) remove(c *websocket.Conn, token string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.byToken[token] == c {
		delete(f.byToken, token)
	}
	// In constant time (the revocation path floor closes thousands of
	// 12,000): the last connection takes c's place.
	i, ok := f.index[c]
	if !ok {
		return
	}
	last := len(f.conns) - 1
	f.conns[i] = f.conns[last]
	f.index[f.conns[i]] = i
	f.conns[last] = nil
	f.conns = f.conns[:last]
	delete(f.index, c)
}

// revoke publishes the token for every instance's closeRevoked.
func (f *floorServer) revoke(w http.ResponseWriter, r *http.Request) {
	f.mu.RLock()
	rdb := f.rdb
	f.mu.RUnlock()
	if rdb == nil {
		http.Error(w, "no -redis", http.StatusNotFound)
		return
	}
	token := r.PathValue("token")
	if err := rdb.Publish(r.Context(), floorRevokeChannel, token).Err(); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	// The least a revocation must also do: delete the session's key.
	if err := rdb.Del(r.Context(), floorSessionPrefix+token).Err(); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// closeRevoked closes, with code 4500, the held connection whose token each
// message names, until ctx ends. The close handshake runs in its own
// goroutine so the next message is not held behind it.
func (f *floorServer) closeRevoked(ctx context.Context, sub *redis.PubSub) {
	for {
		msg, err := sub.ReceiveMessage(ctx)
		if err != nil {
			return
		}
		f.mu.RLock()
		c := f.byToken[msg.Payload]
		f.mu.RUnlock()
		if c != nil {
			go func() { _ = c.Close(4500, "revoked") }()
		}
	}
}

func (f *floorServer) queueFanout(w http.ResponseWriter, r *http.Request) {
	frame, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.fanC <- frame
	w.WriteHeader(http.StatusAccepted)
}

// fanout is the one writer: it writes each queued frame to every held
// connection in turn.
func (f *floorServer) fanout() {
	for frame := range f.fanC {
		// Under the read lock throughout: remove reorders the slice in
		// place.
		f.mu.RLock()
		for _, c := range f.conns {
			_ = c.Write(context.Background(), websocket.MessageText, frame)
		}
		f.mu.RUnlock()
	}
}

func (f *floorServer) send(w http.ResponseWriter, r *http.Request) {
	frame, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	i, _ := strconv.Atoi(r.URL.Query().Get("i"))
	f.mu.RLock()
	var c *websocket.Conn
	if len(f.conns) > 0 {
		c = f.conns[i%len(f.conns)]
	}
	f.mu.RUnlock()
	if c != nil {
		_ = c.Write(r.Context(), websocket.MessageText, frame)
	}
	w.WriteHeader(http.StatusAccepted)
}

// metrics exposes the same gauge names as the gateway's /metrics, so one
// scraper reads both.
func (f *floorServer) metrics(w http.ResponseWriter, _ *http.Request) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rss, _ := rssBytes(os.Getpid())
	cpu, _ := cpuSeconds(0)
	f.mu.RLock()
	n := len(f.conns)
	f.mu.RUnlock()
	fmt.Fprintf(w, "go_memstats_heap_inuse_bytes %d\n%s %d\n%s %d\nprocess_resident_memory_bytes %.0f\nprocess_cpu_seconds_total %.2f\ngo_goroutines %d\nsessiongate_connections_open %d\n",
		ms.HeapInuse, metricAllocBytes, ms.TotalAlloc, metricGCCount, ms.NumGC, rss, cpu, runtime.NumGoroutine(), n)
}
