package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"go.uber.org/zap"

	"github.com/sessiongate/sessiongate/connmgr"
	"github.com/sessiongate/sessiongate/history"
	"github.com/sessiongate/sessiongate/internal/logfield"
	"github.com/sessiongate/sessiongate/pubsub"
)

// Resume query parameters of the WebSocket handshake, by wire stream.
var resumeParams = [...]struct{ param, stream string }{
	{"resume_user", wireUser},
	{"resume_all", wireAll},
}

// maxResumeParam bounds one resume parameter: a 64-digit epoch, ":" and
// a 20-digit offset.
const maxResumeParam = 64 + 1 + 20

// parseResume reads the positions a reconnecting client resumes from:
// resume_user and resume_all, each "<epoch>:<offset>" and at most once.
// It returns nil when the client names none. A malformed one is a 400:
// the client is broken, and guessing would replay the wrong events.
func parseResume(q url.Values) (map[string]history.Position, error) {
	var from map[string]history.Position
	for _, p := range resumeParams {
		vs, ok := q[p.param]
		if !ok {
			continue
		}
		if len(vs) != 1 {
			return nil, errorf(http.StatusBadRequest, codeBadRequest, "resume: "+p.param+" given more than once")
		}
		pos, ok := parsePosition(vs[0])
		if !ok {
			return nil, errorf(http.StatusBadRequest, codeBadRequest,
				"resume: "+p.param+" must be <epoch>:<offset>, the epoch 1 to 64 lowercase hex digits and the offset a decimal integer")
		}
		if from == nil {
			from = make(map[string]history.Position, len(resumeParams))
		}
		from[p.stream] = pos
	}
	return from, nil
}

// parsePosition parses "<epoch>:<offset>".
func parsePosition(v string) (history.Position, bool) {
	if len(v) > maxResumeParam {
		return history.Position{}, false
	}
	epoch, off, ok := strings.Cut(v, ":")
	if !ok || epoch == "" || !validEpoch(epoch) || off == "" || (len(off) > 1 && off[0] == '0') {
		return history.Position{}, false
	}
	n, err := strconv.ParseUint(off, 10, 64)
	if err != nil {
		return history.Position{}, false
	}
	return history.Position{Epoch: epoch, Offset: n}, true
}

// connStart decides how a new connection of sess begins (see
// connmgr.Manager.UpgradeWith): it runs once the connection is registered,
// so events published from then on are held for it, and reads the
// positions of the user's and the broadcast stream (or takes them from
// what the bus delivered here: gapWatch.current) and, for each stream
// the client resumes, the events after its position. A stream is
// recovered when its history still holds every event after the position,
// and there are at most RESUME_MAX_EVENTS of them (more is treated as
// lost: the client is better off refetching its state). A read that fails
// costs the stream its recovery, never the connection.
func (s *Server) connStart(ctx context.Context, userID, handle string, from map[string]history.Position) connmgr.Start {
	var st connmgr.Start
	if from != nil {
		recovered := true
		st.Recovered = &recovered
	}
	if s.cfg.HistoryOff {
		for _, p := range resumeParams {
			if _, ok := from[p.stream]; ok {
				s.metrics.resumes.WithLabelValues(p.stream, resumeOff).Inc()
				s.lose(&st, p.stream)
			}
		}
		return st
	}
	streams := [...]struct{ wire, name string }{{wireUser, history.UserStream(userID)}, {wireAll, history.Broadcast}}
	st.Positions = make(map[string]connmgr.StreamPosition, len(streams))
	// through is, per stream, the position the client has every event
	// up to once the Start is written: held frames up to it are skipped.
	var through [len(streams)]history.Position
	var unread []int // streams whose current position is still to read
	// The resumed streams are read at once (two round trips in parallel,
	// not one after the other).
	type read struct {
		res    history.Result
		reason string
	}
	var reads [len(streams)]read
	var wg sync.WaitGroup
	for i, str := range streams {
		if pos, asked := from[str.wire]; asked {
			wg.Add(1)
			go func() {
				defer wg.Done()
				reads[i].res, reads[i].reason = s.resumeRead(ctx, str.name, pos, userID, handle)
			}()
		}
	}
	wg.Wait()
	fromBus := s.busLive()
	for i, str := range streams {
		if _, asked := from[str.wire]; !asked {
			// A stream whose events the bus brought here lately needs no
			// read (gapWatch.current): this connection is registered.
			if fromBus {
				if p, ok := s.gaps.current(str.name); ok {
					s.metrics.historyReads.WithLabelValues("positions", "bus").Inc()
					through[i] = p
					st.Positions[str.wire] = connmgr.StreamPosition{Epoch: p.Epoch, Offset: p.Offset}
					continue
				}
			}
			unread = append(unread, i)
			continue
		}
		res, reason := reads[i].res, reads[i].reason
		s.metrics.resumes.WithLabelValues(str.wire, reason).Inc()
		if reason != resumeRecovered {
			s.lose(&st, str.wire)
		}
		if res.Current.Epoch == "" {
			// Unread (an error), or the stream is gone (expired, or
			// Redis lost it): read its new position, which creates it.
			unread = append(unread, i)
			continue
		}
		if reason == resumeRecovered {
			st.Replay = s.appendReplay(st.Replay, str.name, res, userID, handle)
		}
		through[i] = res.Current
		st.Positions[str.wire] = connmgr.StreamPosition{Epoch: res.Current.Epoch, Offset: res.Current.Offset}
	}
	if len(unread) > 0 {
		names := make([]string, len(unread))
		for j, i := range unread {
			names[j] = streams[i].name
		}
		ps, err := s.d.History.Positions(ctx, names...)
		if err != nil {
			s.metrics.historyReads.WithLabelValues("positions", "error").Inc()
			s.log.Warn("history positions failed", zap.String("user_id", userID), logfield.Handle(handle), zap.Error(err))
		} else {
			s.metrics.historyReads.WithLabelValues("positions", "ok").Inc()
			for j, i := range unread {
				through[i] = ps[j]
				st.Positions[streams[i].wire] = connmgr.StreamPosition{Epoch: ps[j].Epoch, Offset: ps[j].Offset}
			}
		}
	}
	for i, str := range streams {
		s.gaps.follow(str.name, through[i])
	}
	st.Skip = func(frame []byte) bool {
		var f struct {
			Stream string `json:"stream"`
			Epoch  string `json:"epoch"`
			Offset uint64 `json:"offset"`
		}
		if json.Unmarshal(frame, &f) != nil || f.Offset == 0 {
			return false
		}
		for i, str := range streams {
			if f.Stream == str.wire {
				return f.Epoch == through[i].Epoch && f.Offset <= through[i].Offset
			}
		}
		return false
	}
	return st
}

// Resume outcomes of one stream (the result label of
// sessiongate_resumes_total).
const (
	resumeRecovered    = "recovered"
	resumeLost         = "lost"           // other epoch, trimmed, expired, or a future offset
	resumeTooFarBehind = "too_far_behind" // more than RESUME_MAX_EVENTS missed
	resumeError        = "error"          // the history could not be read
	resumeOff          = "off"            // history is off
)

// resumeRead reads the events of stream after pos for a resume, through
// the coalescing reader: a mass reconnect asks mostly for the same
// positions. reason is resumeRecovered when res holds every event after
// pos.
func (s *Server) resumeRead(ctx context.Context, stream string, pos history.Position, userID, handle string) (res history.Result, reason string) {
	res, err := s.reader.Since(ctx, stream, pos, s.cfg.ResumeMaxEvents)
	switch {
	case err != nil:
		s.metrics.historyReads.WithLabelValues("resume", "error").Inc()
		s.log.Warn("resume read failed", zap.String("user_id", userID), logfield.Handle(handle),
			zap.String("stream", wireStream(stream)), zap.Error(err))
		return history.Result{}, resumeError
	case res.Complete(pos):
		s.metrics.historyReads.WithLabelValues("resume", "ok").Inc()
		return res, resumeRecovered
	}
	s.metrics.historyReads.WithLabelValues("resume", "unrecovered").Inc()
	if res.Recovered { // every event there, but more than the limit
		return res, resumeTooFarBehind
	}
	return res, resumeLost
}

// lose records in st that the client's stream was not recovered.
func (s *Server) lose(st *connmgr.Start, stream string) {
	if st.Recovered != nil {
		*st.Recovered = false
	}
	st.Lost = append(st.Lost, stream)
}

// appendReplay appends to frames the events of res (of stream) meant for
// a connection of userID and handle: every event of the broadcast stream,
// and those of the user's stream sent to the user or to this session (the
// user's other sessions' events are in the stream too). Each event is
// decoded and encoded into its frame once (s.replayFrames): a mass
// reconnect replays the same events to many clients.
func (s *Server) appendReplay(frames [][]byte, stream string, res history.Result, userID, handle string) [][]byte {
	n := len(frames)
	for _, ev := range res.Events {
		rf, ok := s.replayFrames.get(stream, res.Current.Epoch, ev.Offset)
		if !ok {
			e, err := pubsub.Decode(ev.Data)
			if err != nil || e.Target == nil {
				// Only the gateway appends, always a valid message event.
				s.log.Error("history event unreadable", zap.String("stream", wireStream(stream)), zap.Uint64("offset", ev.Offset), zap.Error(err))
				continue
			}
			pos := connmgr.EventPosition{Stream: wireStream(stream), StreamPosition: connmgr.StreamPosition{Epoch: res.Current.Epoch, Offset: ev.Offset}}
			rf = replayFrame{target: *e.Target, frame: connmgr.EncodeEventAt(e.ID, e.Name, e.Data, pos)}
			s.replayFrames.put(stream, res.Current.Epoch, ev.Offset, rf)
		}
		if stream != history.Broadcast && rf.target.UserID != userID && rf.target.Handle != handle {
			continue
		}
		frames = append(frames, rf.frame)
	}
	s.metrics.replayed.Add(float64(len(frames) - n))
	return frames
}

// replayFrame is a history event ready to replay: its frame and whom it
// was for.
type replayFrame struct {
	target pubsub.Target
	frame  []byte
}

// maxReplayFrames bounds the replay frame cache, in events.
const maxReplayFrames = 50_000

// replayCache keeps the frames of recently replayed events by (stream,
// epoch, offset), which name one event forever. When full it starts over:
// a storm replays the latest events of a few streams many times, and a
// miss costs one decode.
type replayCache struct {
	mu sync.Mutex
	m  map[replayKey]replayFrame
}

type replayKey struct {
	stream, epoch string
	offset        uint64
}

func (c *replayCache) get(stream, epoch string, offset uint64) (replayFrame, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f, ok := c.m[replayKey{stream, epoch, offset}]
	return f, ok
}

func (c *replayCache) put(stream, epoch string, offset uint64, f replayFrame) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxReplayFrames {
		c.m = make(map[replayKey]replayFrame)
	}
	c.m[replayKey{stream, epoch, offset}] = f
}
