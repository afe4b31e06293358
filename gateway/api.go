package gateway

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/sessiongate/sessiongate/internal/logfield"

	"github.com/sessiongate/sessiongate/history"
	"github.com/sessiongate/sessiongate/pubsub"
	"github.com/sessiongate/sessiongate/session"
)

// requireAPIKey guards /api/v1 with "Authorization: Bearer <api key>". Keys
// are compared in constant time over their SHA-256, so neither the content
// nor the length of a configured key leaks through timing.
func (s *Server) requireAPIKey(next echo.HandlerFunc) echo.HandlerFunc {
	sums := make([][32]byte, len(s.cfg.APIKeys))
	for i, k := range s.cfg.APIKeys {
		sums[i] = sha256.Sum256([]byte(k))
	}
	return func(c echo.Context) error {
		if isAdmin(c.Request()) {
			return next(c) // forwarded by the admin console: its session stands for the key
		}
		h := c.Request().Header.Get("Authorization")
		if len(sums) == 0 {
			return errorf(http.StatusUnauthorized, codeUnauthorized, "server API disabled: no GATEWAY_API_KEYS configured")
		}
		if len(h) < 8 || !strings.EqualFold(h[:7], "bearer ") {
			return errorf(http.StatusUnauthorized, codeUnauthorized, "missing API key (Authorization: Bearer <key>)")
		}
		got := sha256.Sum256([]byte(strings.TrimSpace(h[7:])))
		match := 0
		for i := range sums {
			match |= subtle.ConstantTimeCompare(got[:], sums[i][:])
		}
		if match != 1 {
			s.log.Warn("API key refused", zap.String("ip", c.RealIP()), zap.String("path", c.Path()))
			return errorf(http.StatusUnauthorized, codeUnauthorized, "invalid API key")
		}
		return next(c)
	}
}

// bindJSON decodes a body that is exactly one JSON object into v; unknown
// fields are a 400 like any other malformed body.
func bindJSON(c echo.Context, v any) error {
	body, err := readJSONObject(c)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errorf(http.StatusBadRequest, codeBadRequest, "invalid JSON body: "+err.Error())
	}
	return nil
}

type createSessionRequest struct {
	UserID string          `json:"user_id"`
	Data   json.RawMessage `json:"data"`
}

type createSessionResponse struct {
	Token     string `json:"token"`
	Handle    string `json:"handle"`
	ExpiresAt string `json:"expires_at"`
}

func (s *Server) apiCreateSession(c echo.Context) error {
	var req createSessionRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	if err := validUserID(req.UserID); err != nil {
		return errorf(http.StatusBadRequest, codeBadRequest, err.Error())
	}
	if !isJSONObjectOrNull(req.Data) {
		return errorf(http.StatusBadRequest, codeBadRequest, `"data" must be a JSON object`)
	}
	token, sess, err := s.createSession(c.Request().Context(), req.UserID, req.Data)
	if err != nil {
		if errors.Is(err, session.ErrInvalidUser) || errors.Is(err, session.ErrInvalidData) {
			return errorf(http.StatusBadRequest, codeBadRequest, err.Error())
		}
		return s.storeError("create session", err)
	}
	s.log.Info("session created via API", zap.String("user_id", sess.UserID), logfield.Handle(sess.Handle))
	return c.JSON(http.StatusCreated, createSessionResponse{
		Token: token, Handle: sess.Handle, ExpiresAt: sess.ExpiresAt.UTC().Format("2006-01-02T15:04:05Z07:00"),
	})
}

func handleParam(c echo.Context) (string, error) {
	h, err := pathParam(c, "handle")
	if err != nil {
		return "", err
	}
	if !session.ValidHandle(h) {
		return "", errorf(http.StatusBadRequest, codeBadRequest, "handle must be 64 lowercase hex characters")
	}
	return h, nil
}

func userParam(c echo.Context) (string, error) {
	u, err := pathParam(c, "user_id")
	if err != nil {
		return "", err
	}
	if err := validUserID(u); err != nil {
		return "", errorf(http.StatusBadRequest, codeBadRequest, err.Error())
	}
	return u, nil
}

// pathParam returns the named path parameter, percent-decoded exactly once.
// echo routes on the request's RawPath whenever it has one (the path holds
// an escape that is not the default encoding, such as %40 for "@" or %2F for
// "/"), and then hands parameters over still encoded; without a RawPath they
// arrive decoded already. So: decode when, and only when, echo matched the
// raw path. %2F stays inside its segment (routing saw it encoded), and "+"
// stays a plus sign (paths are not form-encoded).
func pathParam(c echo.Context, name string) (string, error) {
	v := c.Param(name)
	if c.Request().URL.RawPath == "" {
		return v, nil
	}
	d, err := url.PathUnescape(v)
	if err != nil {
		return "", errorf(http.StatusBadRequest, codeBadRequest, name+" in the path is not valid percent-encoding")
	}
	return d, nil
}

func (s *Server) apiGetSession(c echo.Context) error {
	h, err := handleParam(c)
	if err != nil {
		return err
	}
	sess, ok, err := s.d.Store.Get(c.Request().Context(), h)
	if err != nil {
		return s.storeError("get session", err)
	}
	if !ok {
		return errorf(http.StatusNotFound, codeNotFound, "no such session")
	}
	out := toSessionResponse(sess)
	n := s.conns.SessionConns(h)
	out.Connections = &n
	return c.JSON(http.StatusOK, out)
}

func (s *Server) apiRevokeSession(c echo.Context) error {
	h, err := handleParam(c)
	if err != nil {
		return err
	}
	res := s.rev.RevokeSession(c.Request().Context(), h, revokeReason(c.Request()))
	switch {
	case res.Pending:
		return c.JSON(http.StatusAccepted, revocationPending)
	case !res.Existed:
		return errorf(http.StatusNotFound, codeNotFound, "no such session")
	}
	return c.NoContent(http.StatusNoContent)
}

// revocationPendingResponse answers a revocation the store or the bus
// could not confirm yet: the local sockets are closed and the revocation
// is retried until both confirm it.
type revocationPendingResponse struct {
	Status string `json:"status"`
}

var revocationPending = revocationPendingResponse{Status: "pending"}

type userSessionsResponse struct {
	UserID   string            `json:"user_id"`
	Sessions []sessionResponse `json:"sessions"`
}

func (s *Server) apiListUserSessions(c echo.Context) error {
	u, err := userParam(c)
	if err != nil {
		return err
	}
	list, err := s.d.Store.ListUser(c.Request().Context(), u)
	if err != nil {
		return s.storeError("list user sessions", err)
	}
	out := userSessionsResponse{UserID: u, Sessions: make([]sessionResponse, 0, len(list))}
	for _, sess := range list {
		r := toSessionResponse(sess)
		n := s.conns.SessionConns(sess.Handle)
		r.Connections = &n
		out.Sessions = append(out.Sessions, r)
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) apiRevokeUser(c echo.Context) error {
	u, err := userParam(c)
	if err != nil {
		return err
	}
	res, err := s.rev.RevokeUser(c.Request().Context(), u, revokeReason(c.Request()))
	if err != nil {
		return errorf(http.StatusBadRequest, codeBadRequest, err.Error())
	}
	if res.Pending {
		return c.JSON(http.StatusAccepted, revocationPending)
	}
	return c.JSON(http.StatusOK, map[string]int{"revoked": res.Sessions})
}

func (s *Server) apiPublish(c echo.Context) error {
	var req publishRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	if err := req.validate(); err != nil {
		return err
	}
	if req.Target.Handle != "" && !session.ValidHandle(req.Target.Handle) {
		return errorf(http.StatusBadRequest, codeBadRequest, "target.handle must be 64 lowercase hex characters")
	}
	// The frame's data is an object, or null when the request had none:
	// clients can rely on one shape.
	if !isJSONObjectOrNull(req.Data) {
		return errorf(http.StatusBadRequest, codeBadRequest, `"data" must be a JSON object (or null or absent)`)
	}
	// Every event goes into a history stream: the user's (a session's
	// events too: the session's user is looked up), or the broadcast one.
	stream := history.Broadcast
	switch t := req.Target; {
	case t.UserID != "":
		stream = history.UserStream(t.UserID)
	case t.Handle != "":
		sess, ok, err := s.d.Store.Get(c.Request().Context(), t.Handle)
		if err != nil {
			return s.storeError("get session", err)
		}
		if !ok {
			return errorf(http.StatusNotFound, codeNotFound, "no such session")
		}
		stream = history.UserStream(sess.UserID)
	}
	id := pubsub.NewEventID()
	res := s.publishMessage(c.Request().Context(), pubsub.Event{
		Kind: pubsub.KindMessage, ID: id, Target: req.Target, Name: req.Event, Data: req.Data,
	}, stream)
	if !res.ok {
		return errorf(http.StatusServiceUnavailable, codeUnavailable, "event bus unavailable; delivered to this instance only")
	}
	out := publishResponse{ID: id, DeliveredLocal: res.delivered}
	if res.pos.Offset > 0 {
		out.Stream, out.Epoch, out.Offset = wireStream(stream), res.pos.Epoch, res.pos.Offset
	}
	return c.JSON(http.StatusAccepted, out)
}

type clusterResponse struct {
	Self      string                `json:"self"`
	Instances []pubsub.InstanceView `json:"instances"`
}

func (s *Server) apiCluster(c echo.Context) error {
	return c.JSON(http.StatusOK, clusterResponse{Self: s.cfg.InstanceID, Instances: s.cluster.View()})
}
