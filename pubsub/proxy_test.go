package pubsub

import (
	"bytes"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// proxy is a TCP proxy between the bus and a real redis-server that can
// cut every connection and, for new connections, swallow every reply once
// the client has sent SUBSCRIBE: a server that takes the SUBSCRIBE and
// never answers it, as a lost packet or a stuck middlebox would.
type proxy struct {
	ln     net.Listener
	target string

	// muteSubscribe applies to connections that send SUBSCRIBE while set.
	muteSubscribe atomic.Bool
	// muted counts the connections whose replies were swallowed.
	muted atomic.Int64

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// startProxy listens on a free loopback port and forwards to target until
// the test ends.
func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		_ = ln.Close()
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		p.cutAll()
		p.wg.Wait()
	})
	return p
}

// Addr is the address clients dial.
func (p *proxy) Addr() string { return p.ln.Addr().String() }

// cutAll closes every proxied connection, both sides.
func (p *proxy) cutAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		_ = c.Close()
	}
}

// track registers c for cutAll; after the test it closes c instead.
func (p *proxy) track(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		_ = c.Close()
		return
	}
	p.conns[c] = struct{}{}
}

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = client.Close()
			continue
		}
		p.track(client)
		p.track(server)
		var mute atomic.Bool
		p.wg.Add(2)
		go p.pump(server, client, func(b []byte) {
			if !mute.Load() && p.muteSubscribe.Load() && bytes.Contains(bytes.ToLower(b), []byte("subscribe")) {
				mute.Store(true)
				p.muted.Add(1)
			}
		}, nil)
		go p.pump(client, server, nil, &mute)
	}
}

// pump copies from src to dst until either side fails; see is shown every
// chunk read, and nothing is written while drop is set.
func (p *proxy) pump(dst, src net.Conn, see func([]byte), drop *atomic.Bool) {
	defer p.wg.Done()
	defer func() {
		_ = src.Close()
		_ = dst.Close()
		p.mu.Lock()
		delete(p.conns, src)
		delete(p.conns, dst)
		p.mu.Unlock()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if see != nil {
				see(buf[:n])
			}
			if drop == nil || !drop.Load() {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
		}
		if err != nil {
			return // EOF, reset or closed by cutAll
		}
	}
}
