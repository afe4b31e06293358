package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/sessiongate/sessiongate/connmgr"
	"github.com/sessiongate/sessiongate/inbound"
	"github.com/sessiongate/sessiongate/presence"
)

// Presence event names, as the application's workers see them
// (inbound.Message.Event, with System set).
const (
	EventPresenceOnline  = "presence.online"
	EventPresenceOffline = "presence.offline"
)

// defaultPresenceLimit is the page size of GET /api/v1/presence without
// a limit.
const defaultPresenceLimit = 100

// newPresence builds the presence tracker when Deps.Presence is set, and
// hooks it into the connection manager's open and close.
func (s *Server) newPresence(hooks *connmgr.Hooks) error {
	if s.d.Presence == nil {
		return nil
	}
	d := presence.Deps{
		Store:   s.d.Presence,
		Alive:   s.aliveInstances,
		Log:     s.log.Named("presence"),
		Metrics: s.metrics.reg,
	}
	if s.cfg.PresenceEvents {
		d.Emit = s.emitPresence
	}
	t, err := presence.New(presence.Config{
		Instance:      s.cfg.InstanceID,
		FlushInterval: s.cfg.PresenceFlushInterval,
		Interval:      s.cfg.HeartbeatInterval,
	}, d)
	if err != nil {
		return err
	}
	s.presence = t
	open, closed := hooks.OnOpen, hooks.OnClose
	hooks.OnOpen = func(info *connmgr.Info) {
		t.Open(info.UserID, info.Handle)
		if open != nil {
			open(info)
		}
	}
	hooks.OnClose = func(info *connmgr.Info, code connmgr.CloseCode, dur time.Duration) {
		t.Close(info.UserID, info.Handle)
		if closed != nil {
			closed(info, code, dur)
		}
	}
	return nil
}

// aliveInstances are the instances the cluster view sees alive: the only
// ones presence reports.
func (s *Server) aliveInstances() []string {
	view := s.cluster.View()
	out := make([]string, 0, len(view))
	for _, v := range view {
		if v.Alive {
			out = append(out, v.ID)
		}
	}
	return out
}

// presenceEventData is the data of a presence event.
type presenceEventData struct {
	UserID string `json:"user_id"`
	// Seq orders the user's events: apply one only if its seq is higher
	// than the last applied.
	Seq    int64  `json:"seq"`
	Reason string `json:"reason"`
}

// emitPresence queues presence transitions as system messages for the
// application, in order. An error leaves the rest (and the failed one) to
// the next flush: delivery is at least once.
func (s *Server) emitPresence(ctx context.Context, ts []presence.Transition) error {
	ctx, cancel := context.WithTimeout(ctx, enqueueTimeout)
	defer cancel()
	for i, t := range ts {
		name := EventPresenceOffline
		if t.Online {
			name = EventPresenceOnline
		}
		data, err := json.Marshal(presenceEventData{UserID: t.UserID, Seq: t.Seq, Reason: t.Reason})
		if err != nil {
			return err
		}
		if _, err := s.d.Inbound.Enqueue(ctx, inbound.Message{
			Event:    name,
			Data:     data,
			UserID:   t.UserID,
			Instance: s.cfg.InstanceID,
			Received: s.now(),
			System:   true,
		}); err != nil {
			return fmt.Errorf("queue %s of %s (%d queued before it): %w", name, t.UserID, i, err)
		}
	}
	return nil
}

type presenceInstance struct {
	ID          string `json:"id"`
	Connections int    `json:"connections"`
	Sessions    int    `json:"sessions"`
}

type userPresenceResponse struct {
	UserID      string             `json:"user_id"`
	Online      bool               `json:"online"`
	Connections int                `json:"connections"`
	Sessions    int                `json:"sessions"`
	Instances   []presenceInstance `json:"instances"`
}

type presenceUser struct {
	UserID      string   `json:"user_id"`
	Connections int      `json:"connections"`
	Sessions    int      `json:"sessions"`
	Instances   []string `json:"instances"`
}

type presenceListResponse struct {
	Users      []presenceUser `json:"users"`
	NextCursor string         `json:"next_cursor"`
}

// requirePresence answers 404 while presence is off.
func (s *Server) requirePresence() error {
	if s.presence == nil {
		return errorf(http.StatusNotFound, codeNotFound, "presence is off (PRESENCE_ENABLED=false)")
	}
	return nil
}

// apiUserPresence: GET /api/v1/users/{user_id}/presence.
func (s *Server) apiUserPresence(c echo.Context) error {
	u, err := userParam(c)
	if err != nil {
		return err
	}
	if err := s.requirePresence(); err != nil {
		return err
	}
	p, err := s.presence.User(c.Request().Context(), u)
	if err != nil {
		return s.presenceError(err)
	}
	total := p.Total()
	out := userPresenceResponse{UserID: u, Online: total.Conns > 0, Connections: total.Conns,
		Sessions: total.Sessions, Instances: make([]presenceInstance, 0, len(p.Instances))}
	for _, pl := range p.Instances {
		out.Instances = append(out.Instances, presenceInstance{ID: pl.Instance, Connections: pl.Conns, Sessions: pl.Sessions})
	}
	return c.JSON(http.StatusOK, out)
}

// apiPresence: GET /api/v1/presence?limit=N&cursor=C.
func (s *Server) apiPresence(c echo.Context) error {
	limit := defaultPresenceLimit
	q := c.Request().URL.Query()
	if v := q.Get("limit"); v != "" || q.Has("limit") {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > presence.MaxPageSize {
			return errorf(http.StatusBadRequest, codeBadRequest,
				"limit must be an integer from 1 to "+strconv.Itoa(presence.MaxPageSize))
		}
		limit = n
	}
	cursor := q.Get("cursor")
	after, err := presence.DecodeCursor(cursor)
	if err == nil && after != "" {
		err = validUserID(after)
	}
	if err != nil {
		return errorf(http.StatusBadRequest, codeBadRequest, "cursor is not one this API returned (start without a cursor)")
	}
	if err := s.requirePresence(); err != nil {
		return err
	}
	users, next, err := s.presence.Page(c.Request().Context(), cursor, limit)
	if err != nil {
		return s.presenceError(err)
	}
	out := presenceListResponse{Users: make([]presenceUser, 0, len(users)), NextCursor: next}
	for _, u := range users {
		t := u.Total()
		pu := presenceUser{UserID: u.UserID, Connections: t.Conns, Sessions: t.Sessions, Instances: make([]string, 0, len(u.Instances))}
		for _, pl := range u.Instances {
			pu.Instances = append(pu.Instances, pl.Instance)
		}
		out.Users = append(out.Users, pu)
	}
	return c.JSON(http.StatusOK, out)
}

// presenceError maps a presence read failure to a response.
func (s *Server) presenceError(err error) error {
	if errors.Is(err, presence.ErrBadCursor) || errors.Is(err, presence.ErrBadLimit) {
		return errorf(http.StatusBadRequest, codeBadRequest, err.Error())
	}
	s.log.Warn("presence read failed", zap.Error(err))
	return errorf(http.StatusServiceUnavailable, codeUnavailable, "presence is unavailable; retry later")
}
