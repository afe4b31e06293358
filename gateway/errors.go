package gateway

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"
)

// Error codes used in JSON error bodies. Clients may switch on them.
const (
	codeBadRequest       = "bad_request"
	codeUnauthorized     = "unauthorized"
	codeForbidden        = "forbidden"
	codeNotFound         = "not_found"
	codeMethodNotAllowed = "method_not_allowed"
	codeTooLarge         = "body_too_large"
	codeRateLimited      = "rate_limited"
	codeUnavailable      = "unavailable"
	codeBadGateway       = "bad_gateway"
	codeInternal         = "internal"
	codeUnsupportedMedia = "unsupported_media_type"
	codeRequestTimeout   = "request_timeout"
	codeUpgradeRequired  = "upgrade_required"
)

// apiError is the body of every error response:
// {"error":{"code":"...","message":"..."}}.
type apiError struct {
	Error apiErrorBody `json:"error"`
}

type apiErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// httpError is returned by handlers; the error handler renders it.
type httpError struct {
	status  int
	code    string
	message string
}

func (e *httpError) Error() string { return e.code + ": " + e.message }

func errorf(status int, code, message string) error {
	return &httpError{status: status, code: code, message: message}
}

func codeForStatus(status int) string {
	switch status {
	case http.StatusBadRequest:
		return codeBadRequest
	case http.StatusUnauthorized:
		return codeUnauthorized
	case http.StatusForbidden:
		return codeForbidden
	case http.StatusNotFound:
		return codeNotFound
	case http.StatusMethodNotAllowed:
		return codeMethodNotAllowed
	case http.StatusRequestEntityTooLarge:
		return codeTooLarge
	case http.StatusTooManyRequests:
		return codeRateLimited
	case http.StatusServiceUnavailable:
		return codeUnavailable
	case http.StatusBadGateway, http.StatusGatewayTimeout:
		return codeBadGateway
	case http.StatusUnsupportedMediaType:
		return codeUnsupportedMedia
	case http.StatusRequestTimeout:
		return codeRequestTimeout
	case http.StatusUpgradeRequired:
		return codeUpgradeRequired
	}
	if status >= 500 {
		return codeInternal
	}
	return codeBadRequest
}

// errorHandler renders every error, echo's own included (404, 405, 413,
// 429), as a JSON error body with the right status.
func (s *Server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	status := http.StatusInternalServerError
	body := apiErrorBody{Code: codeInternal, Message: "internal error"}
	var he *httpError
	var ee *echo.HTTPError
	switch {
	case errors.As(err, &he):
		status, body = he.status, apiErrorBody{Code: he.code, Message: he.message}
	case errors.As(err, &ee):
		status = ee.Code
		body.Code = codeForStatus(status)
		if msg, ok := ee.Message.(string); ok && status < 500 {
			body.Message = msg
		} else {
			body.Message = http.StatusText(status)
		}
		if status == http.StatusRequestEntityTooLarge {
			body.Message = "request body too large"
		}
	}
	// A deliberate 502/503 (store or bus down, draining) was logged where
	// it was decided, or is expected; anything else at 5xx is a failure.
	if status >= 500 && (he == nil || status == http.StatusInternalServerError) {
		s.log.Error("request failed", zap.Error(err),
			zap.String("request_id", c.Response().Header().Get(echo.HeaderXRequestID)),
			zap.String("method", c.Request().Method), zap.String("path", c.Path()))
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(status)
		return
	}
	_ = c.JSON(status, apiError{Error: body})
}
