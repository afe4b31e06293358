//go:build linux

package connmgr

import (
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// poller is one epoll instance in which idle upgraded connections wait for
// input, each armed for one wake-up (EPOLLONESHOT, level-triggered: arming
// a socket that has input already reports it at once, so no input that
// came while the connection was being armed is missed). Its own descriptor
// is non-blocking and waited on through the runtime's netpoller, by one
// goroutine per manager (loop).
type poller struct {
	m    *Manager
	epfd int
	file *os.File
	rc   syscall.RawConn

	mu sync.Mutex
	// byFD is the connection armed under each descriptor. A slot can be
	// stale (its connection closed, the descriptor reused): a wake-up it
	// causes finds the connection not parked, or a socket with no input,
	// and is harmless.
	byFD []*conn

	events [128]syscall.EpollEvent // loop's only
	closed atomic.Bool
}

func newPoller(m *Manager) (*poller, error) {
	fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		_ = syscall.Close(fd)
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "connmgr-epoll")
	// A descriptor the runtime's netpoller did not take cannot be waited
	// on without parking a thread: no poller then.
	if err := f.SetReadDeadline(time.Time{}); err != nil {
		_ = f.Close()
		return nil, err
	}
	rc, err := f.SyscallConn()
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	p := &poller{m: m, epfd: fd, file: f, rc: rc}
	m.runs.add()
	go p.loop()
	return p, nil
}

// loop hands every connection whose socket became ready to a wake
// goroutine, until the poller is closed.
func (p *poller) loop() {
	defer p.m.runs.done()
	for {
		n := 0
		var werr error
		err := p.rc.Read(func(fd uintptr) bool {
			for {
				k, err := syscall.EpollWait(int(fd), p.events[:], 0)
				if err == syscall.EINTR {
					continue
				}
				n, werr = k, err
				// Nothing ready: wait until the epoll descriptor is
				// readable (the runtime's poller is edge-triggered; it
				// was drained here, so the next event is a new edge).
				return k != 0 || err != nil
			}
		})
		if err != nil || werr != nil {
			if !p.closed.Load() {
				// Not reachable but for a runtime or kernel fault; parked
				// connections would never be read again, so say it loudly.
				p.m.log.Error("connection poller stopped: idle connections are no longer read", zap.NamedError("read_error", err), zap.NamedError("epoll_error", werr))
			}
			return
		}
		p.mu.Lock()
		for i := range n {
			fd := int(p.events[i].Fd)
			var c *conn
			if fd >= 0 && fd < len(p.byFD) {
				c = p.byFD[fd]
			}
			if c != nil && c.idle.state.CompareAndSwap(readParked, readRunning) {
				go p.m.wake(c)
			}
		}
		p.mu.Unlock()
	}
}

// park arms c for one wake-up and gives up its read side. It reports false
// when c stays with the caller (readRunning): the socket is closed (err
// nil: the caller's next read reports it), or epoll refused it (err).
func (p *poller) park(c *idleConn) (bool, error) {
	op := syscall.EPOLL_CTL_MOD
	if c.fd < 0 {
		op = syscall.EPOLL_CTL_ADD
		// First arming: the slot first, so a wake-up finds c.
		if err := c.raw.Control(func(fd uintptr) {
			p.mu.Lock()
			if int(fd) >= len(p.byFD) {
				grown := make([]*conn, max(int(fd)+1, 2*len(p.byFD)))
				copy(grown, p.byFD)
				p.byFD = grown
			}
			p.byFD[fd] = c.owner
			p.mu.Unlock()
			c.fd = int32(fd)
		}); err != nil {
			return false, nil // closed
		}
	}
	c.state.Store(readParked)
	var err error
	cerr := c.raw.Control(func(fd uintptr) {
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: int32(fd)}
		err = syscall.EpollCtl(p.epfd, op, int(fd), &ev)
	})
	if cerr == nil && err == nil {
		return true, nil
	}
	if !c.state.CompareAndSwap(readParked, readRunning) {
		return true, nil // the socket's close took it (and ends it)
	}
	if cerr != nil {
		return false, nil
	}
	return false, err
}

// forget drops c's slot (if still its own) once c has ended. Its
// descriptor left the epoll set when the socket was closed.
func (p *poller) forget(c *idleConn) {
	if p == nil || c.fd < 0 {
		return
	}
	p.mu.Lock()
	if int(c.fd) < len(p.byFD) && p.byFD[c.fd] == c.owner {
		p.byFD[c.fd] = nil
	}
	p.mu.Unlock()
}

// close stops loop.
func (p *poller) close() {
	p.closed.Store(true)
	_ = p.file.Close()
}
