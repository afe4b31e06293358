package gateway

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/sessiongate/sessiongate/history"
)

// History API limits: a read returns at most maxHistoryLimit events,
// defaultHistoryLimit when the request names none.
const (
	defaultHistoryLimit = 100
	maxHistoryLimit     = 1000
	maxEpochLen         = 64
)

type historyEvent struct {
	ID     string          `json:"id"`
	Event  string          `json:"event"`
	Data   json.RawMessage `json:"data"`
	Offset uint64          `json:"offset"`
}

type historyPosition struct {
	Epoch  string `json:"epoch"`
	Offset uint64 `json:"offset"`
}

type historyResponse struct {
	UserID    string          `json:"user_id"`
	Stream    string          `json:"stream"`
	Epoch     string          `json:"epoch"`
	Events    []historyEvent  `json:"events"`
	Recovered bool            `json:"recovered"`
	Current   historyPosition `json:"current"`
}

// apiUserHistory is GET /api/v1/users/{user_id}/history: the events of the
// user's stream after ?epoch=&since= (both or neither), at most ?limit=.
// Without a position it returns the latest events: at most limit and at
// most HISTORY_SIZE of them, which the history always keeps.
func (s *Server) apiUserHistory(c echo.Context) error {
	u, err := userParam(c)
	if err != nil {
		return err
	}
	q := c.QueryParams()
	limit := defaultHistoryLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxHistoryLimit {
			return errorf(http.StatusBadRequest, codeBadRequest, "limit must be an integer from 1 to "+strconv.Itoa(maxHistoryLimit))
		}
		limit = n
	}
	epoch, since := q.Get("epoch"), q.Get("since")
	if (epoch == "") != (since == "") {
		return errorf(http.StatusBadRequest, codeBadRequest, "epoch and since go together: both, or neither for the latest events")
	}
	if !validEpoch(epoch) {
		return errorf(http.StatusBadRequest, codeBadRequest, "epoch must be 1 to 64 lowercase hex digits")
	}
	var pos history.Position
	if since != "" {
		off, err := strconv.ParseUint(since, 10, 64)
		if err != nil {
			return errorf(http.StatusBadRequest, codeBadRequest, "since must be a non-negative integer offset")
		}
		pos = history.Position{Epoch: epoch, Offset: off}
	}
	stream := history.UserStream(u)
	ctx := c.Request().Context()
	if since == "" && !s.cfg.HistoryOff {
		cur, err := s.d.History.Positions(ctx, stream)
		if err != nil {
			return s.historyError("positions", err)
		}
		n := uint64(min(limit, s.cfg.HistorySize))
		pos = history.Position{Epoch: cur[0].Epoch, Offset: cur[0].Offset - min(n, cur[0].Offset)}
	}
	res, err := s.reader.Since(ctx, stream, pos, limit)
	if err != nil {
		return s.historyError("since", err)
	}
	result := "ok"
	if !res.Recovered {
		result = "unrecovered"
	}
	s.metrics.historyReads.WithLabelValues("since", result).Inc()
	out := historyResponse{UserID: u, Stream: wireUser, Epoch: res.Current.Epoch, Events: make([]historyEvent, 0, len(res.Events)),
		Recovered: res.Recovered, Current: historyPosition{Epoch: res.Current.Epoch, Offset: res.Current.Offset}}
	for _, ev := range res.Events {
		var e struct {
			ID    string          `json:"id"`
			Event string          `json:"event"`
			Data  json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(ev.Data, &e); err != nil {
			continue // not an event this gateway stored; never fails the read
		}
		if len(e.Data) == 0 {
			e.Data = json.RawMessage("null")
		}
		out.Events = append(out.Events, historyEvent{ID: e.ID, Event: e.Event, Data: e.Data, Offset: ev.Offset})
	}
	return c.JSON(http.StatusOK, out)
}

// historyError logs a failed history read and answers 503.
func (s *Server) historyError(op string, err error) error {
	s.metrics.historyReads.WithLabelValues(op, "error").Inc()
	s.log.Error("history read failed", zap.String("op", op), zap.Error(err))
	return errorf(http.StatusServiceUnavailable, codeUnavailable, "history unavailable")
}

// validEpoch reports whether e is empty or 1 to 64 lowercase hex digits.
func validEpoch(e string) bool {
	if len(e) > maxEpochLen {
		return false
	}
	for _, c := range []byte(e) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
