package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/coder/websocket"
)

// floorWelcome has the size and shape of the gateway's welcome frame, so
// both sides write the same bytes per handshake.
var floorWelcome = []byte(`{"type":"welcome","conn_id":"c0123456789abcdef01234","user_id":"u-000001","instance":"floor","ping_interval_ms":25000}`)

// floorServer is the bare coder/websocket server every figure is compared
// with: /upgrade accepts, writes a welcome and closes when the client does; /hold accepts, writes
// a welcome and holds the connection idle in one blocked Read; POST /fanout
// queues one pre-encoded frame that a single writer goroutine writes to every
// held connection; POST /send?i=k writes a frame to held connection k.
type floorServer struct {
	mu    sync.RWMutex
	conns []*websocket.Conn
	fanC  chan []byte
}

// runFloorServer is the "floor-server" subcommand.
func runFloorServer(args []string) error {
	fs := flag.NewFlagSet("floor-server", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
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
	f := &floorServer{fanC: make(chan []byte, 64)}
	go f.fanout()
	hs := &http.Server{Handler: f.handler(), ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() { <-ctx.Done(); _ = hs.Close() }()
	err = hs.Serve(ln)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// handler routes the floor server's endpoints; f.fanout must be running
// for POST /fanout to be written out.
func (f *floorServer) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /upgrade", f.upgrade)
	mux.HandleFunc("GET /hold", f.hold)
	mux.HandleFunc("POST /fanout", f.queueFanout)
	mux.HandleFunc("POST /send", f.send)
	mux.HandleFunc("GET /metrics", f.metrics)
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
	f.mu.Lock()
	f.conns = append(f.conns, c)
	f.mu.Unlock()
	for {
		if _, _, err := c.Read(context.Background()); err != nil {
			_ = c.CloseNow()
			f.remove(c)
			return
		}
	}
}

func (f *floorServer) remove(c *websocket.Conn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, x := range f.conns {
		if x == c {
			// Copy on write: fanout may be iterating a snapshot.
			f.conns = append(f.conns[:i:i], f.conns[i+1:]...)
			return
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
		f.mu.RLock()
		conns := f.conns
		f.mu.RUnlock()
		for _, c := range conns {
			_ = c.Write(context.Background(), websocket.MessageText, frame)
		}
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
	fmt.Fprintf(w, "go_memstats_heap_inuse_bytes %d\nprocess_resident_memory_bytes %.0f\nprocess_cpu_seconds_total %.2f\ngo_goroutines %d\nsessiongate_connections_open %d\n",
		ms.HeapInuse, rss, cpu, runtime.NumGoroutine(), n)
}
