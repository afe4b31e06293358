package gateway

import (
	"context"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/sessiongate/sessiongate/connmgr"
	"github.com/sessiongate/sessiongate/history"
	"github.com/sessiongate/sessiongate/pubsub"
)

// gapWatch keeps, for every history stream this instance has connections
// of, the last position the bus delivered here. Every instance receives
// every event of every stream, in offset order, so the offsets a stream's
// events arrive with here follow each other: a hole means the bus lost
// events (pub/sub is at most once), and a connection that got the next
// event would take its offset as its position and never ask for the lost
// ones. The gateway closes such connections with 4010 instead: they
// reconnect and resume, and the history replays what they missed.
//
// Entries exist only for streams with local connections (a new
// connection's start adds its streams; an event of a stream nobody here
// follows drops the entry), so the watch is as big as the local users.
//
// The watch is also where a new connection takes a stream's position
// from, instead of a Redis read, while the bus is trusted ([gapWatch.current]).
type gapWatch struct {
	mu   sync.Mutex
	last map[string]watched
	// now and fresh bound how long after its last event a stream's
	// position is served from the watch (half the history's TTL: the
	// stream cannot have expired meanwhile). fresh 0 serves nothing.
	now   func() time.Time
	fresh time.Duration
	// suspect is set by a bus gap (any stream may have moved past its
	// entry unseen) and cleared by the check that follows it, unless
	// another gap came meanwhile (gen counts them).
	suspect bool
	gen     uint64
}

// watched is one stream's entry: its last position, and until when it may
// be served to new connections (zero: it comes from a read, not an event,
// so whether the stream still exists is unknown).
type watched struct {
	pos   history.Position
	until time.Time
}

// follow starts watching stream at pos, where a new connection's history
// read found it, unless it is watched already (the bus's position is
// then the one that matters).
func (w *gapWatch) follow(stream string, pos history.Position) {
	if pos.Epoch == "" {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.last == nil {
		w.last = map[string]watched{}
	}
	if _, ok := w.last[stream]; !ok {
		w.last[stream] = watched{pos: pos}
	}
}

// current returns stream's position for a new connection that is
// registered already (see Server.connStart), when the watch can stand in
// for the history's read: the stream is watched, an event of it came
// within fresh (so it exists, under this epoch), and no bus gap is
// unchecked. It is then at least as good as a read: every event after it
// has not been through the bus handler yet, which delivers it to the
// registered connection (or finds the hole and closes it with 4010), and
// an event up to it the connection may hold is skipped, as after a read.
// The caller must also know the bus live (its own heartbeats come back).
func (w *gapWatch) current(stream string) (history.Position, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	e, ok := w.last[stream]
	if !ok || w.suspect || w.fresh <= 0 || !w.now().Before(e.until) {
		return history.Position{}, false
	}
	return e.pos, true
}

// distrust stops current from serving until the check that follows a bus
// gap has compared every watched stream with its history (trust).
func (w *gapWatch) distrust() {
	w.mu.Lock()
	w.suspect = true
	w.gen++
	w.mu.Unlock()
}

// generation returns the count of bus gaps so far, for trust.
func (w *gapWatch) generation() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.gen
}

// trust lets current serve again after a check that started at
// generation gen, unless another gap came since.
func (w *gapWatch) trust(gen uint64) {
	w.mu.Lock()
	if w.gen == gen {
		w.suspect = false
	}
	w.mu.Unlock()
}

// observe records that the bus delivered an event at pos of a watched
// stream and reports whether events before it were missed. An event at or
// before the last position (a connection's read was ahead of the bus) is
// no gap. A new epoch is a gap unless it starts at offset 1.
func (w *gapWatch) observe(stream string, pos history.Position) (gap bool, last history.Position) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var until time.Time
	if w.fresh > 0 {
		until = w.now().Add(w.fresh) // the event was appended just now
	}
	e, ok := w.last[stream]
	last = e.pos
	switch {
	case !ok:
		if w.last == nil {
			w.last = map[string]watched{}
		}
		w.last[stream] = watched{pos: pos, until: until}
		return false, last
	case pos.Epoch != last.Epoch:
		w.last[stream] = watched{pos: pos, until: until}
		return pos.Offset > 1, last
	case pos.Offset <= last.Offset:
		w.last[stream] = watched{pos: last, until: until}
		return false, last
	}
	w.last[stream] = watched{pos: pos, until: until}
	return pos.Offset > last.Offset+1, last
}

// forget stops watching stream.
func (w *gapWatch) forget(stream string) {
	w.mu.Lock()
	delete(w.last, stream)
	w.mu.Unlock()
}

// snapshot returns the watched streams and their last positions.
func (w *gapWatch) snapshot() ([]string, []history.Position) {
	w.mu.Lock()
	defer w.mu.Unlock()
	streams := make([]string, 0, len(w.last))
	pos := make([]history.Position, 0, len(w.last))
	for s, e := range w.last {
		streams = append(streams, s)
		pos = append(pos, e.pos)
	}
	return streams, pos
}

// streamUser is the user of a user stream, "" for the broadcast stream.
func streamUser(stream string) string {
	u, _ := strings.CutPrefix(stream, "user:")
	if stream == history.Broadcast {
		return ""
	}
	return u
}

// followed reports whether this instance has connections that get
// stream's events, and drops the watch of a stream nobody here follows.
func (s *Server) followed(stream string) bool {
	if stream == history.Broadcast || s.conns.UserConns(streamUser(stream)) > 0 {
		return true
	}
	s.gaps.forget(stream)
	return false
}

// checkGap runs in the bus handler for every positioned event before it is
// delivered: when events of its stream were missed here, it closes the
// stream's local connections with 4010 and reports true (the event is not
// delivered: the resume replays it with the ones before).
func (s *Server) checkGap(e pubsub.Event) bool {
	if !s.followed(e.Stream) {
		return false
	}
	pos := history.Position{Epoch: e.Epoch, Offset: e.Offset}
	gap, last := s.gaps.observe(e.Stream, pos)
	if !gap {
		return false
	}
	s.closeMissed(e.Stream, "offsets", last, pos)
	return true
}

// closeMissed closes the local connections that follow stream, which
// missed events between last and now.
func (s *Server) closeMissed(stream, cause string, last, now history.Position) {
	var n int
	if u := streamUser(stream); u != "" {
		n = s.conns.CloseUser(u, connmgr.CodeEventsMissed)
	} else {
		n = s.conns.CloseAll(connmgr.CodeEventsMissed)
	}
	s.gaps.forget(stream)
	if n == 0 {
		// Nobody here was following it any more (e.g. the reconcile
		// already closed the sessions a Redis restart lost, with 4504).
		return
	}
	s.metrics.eventGaps.WithLabelValues(wireStream(stream), cause).Inc()
	s.log.Warn("events missed", zap.String("stream", wireStream(stream)), zap.String("user_id", streamUser(stream)),
		zap.String("cause", cause), zap.Uint64("last_offset", last.Offset), zap.Uint64("offset", now.Offset),
		zap.Bool("epoch_changed", last.Epoch != now.Epoch), zap.Int("closed", n))
}

// gapCheckBatch is how many streams' positions one pipelined read asks
// for after a bus gap.
const gapCheckBatch = 500

// checkMissed runs after the bus subscribed again following a gap: every
// watched stream whose history moved past the last event delivered here
// lost events in the gap, and its local connections are closed with 4010
// to resume. A stream that cannot be read is treated the same way: its
// clients learn from the resume whether they missed anything.
func (s *Server) checkMissed(ctx context.Context) {
	defer s.metrics.gapChecks.Inc()
	gen := s.gaps.generation()
	streams, last := s.gaps.snapshot()
	for i := 0; i < len(streams); i += gapCheckBatch {
		j := min(i+gapCheckBatch, len(streams))
		cur, err := s.d.History.Positions(ctx, streams[i:j]...)
		for k := i; k < j; k++ {
			if !s.followed(streams[k]) {
				continue
			}
			if err != nil {
				s.closeMissed(streams[k], "unreadable", last[k], history.Position{})
				continue
			}
			c := cur[k-i]
			if c.Epoch != last[k].Epoch || c.Offset > last[k].Offset {
				s.closeMissed(streams[k], "bus_gap", last[k], c)
			}
		}
	}
	// Every stream still watched is where its history is (or was watched
	// only from here on, by a new connection's read or an event after
	// the gap): the watch may serve positions again.
	s.gaps.trust(gen)
}

// afterReconcile wakes the check for missed events after the first
// reconcile pass that follows a bus gap with the subscription back.
func (s *Server) afterReconcile() {
	if s.cfg.HistoryOff || !s.subscribed.Load() || !s.busGap.Swap(false) {
		return
	}
	select {
	case s.gapCheck <- struct{}{}:
	default: // one is pending already
	}
}

// gapCheckTimeout bounds one check after a bus gap.
const gapCheckTimeout = 30 * time.Second

// runGapChecks runs checkMissed each time the bus subscribed again after
// a gap, until ctx ends.
func (s *Server) runGapChecks(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.gapCheck:
		}
		cctx, cancel := context.WithTimeout(ctx, gapCheckTimeout)
		s.checkMissed(cctx)
		cancel()
	}
}
