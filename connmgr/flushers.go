package connmgr

import "time"

// flushWorkerIdle is how long a flush worker waits for another connection
// to flush before it exits.
const flushWorkerIdle = 2 * time.Second

// startFlush runs m.flush(c), whose token the caller took (and counted in
// m.work), on a flush worker: one waiting for work if there is one, else a
// new one. A fan-out to n connections then reuses the few goroutines that
// keep up with it, whose stacks have already grown to what a write needs,
// instead of starting n goroutines that each grow a fresh stack; a worker
// blocked on a slow client holds up no one, since the next connection goes
// to another worker or a new one.
func (m *Manager) startFlush(c *conn) {
	select {
	case m.flushJobs <- c:
	default:
		go m.flushWorker(c)
	}
}

// flushWorker flushes c, then each connection handed to it, until it has
// waited flushWorkerIdle for one or the manager stops.
func (m *Manager) flushWorker(c *conn) {
	idle := time.NewTimer(flushWorkerIdle)
	defer idle.Stop()
	for {
		m.flush(c)
		m.work.done()
		idle.Reset(flushWorkerIdle)
		select {
		case c = <-m.flushJobs:
		case <-idle.C:
			return
		case <-m.stop:
			return
		}
	}
}
