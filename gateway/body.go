package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"

	"github.com/labstack/echo/v4"
)

// readJSONObject reads the whole request body and checks that it is exactly
// one JSON object, with nothing but whitespace after it: two concatenated
// objects or trailing bytes are a 400, not a silently ignored tail. The body
// is bounded by the BodyLimit middleware (413) and the server's read
// timeout (408).
func readJSONObject(c echo.Context) ([]byte, error) {
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		return nil, bodyReadError(err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, errorf(http.StatusBadRequest, codeBadRequest, "request body is empty: a JSON object is required")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	var first json.RawMessage
	if err := dec.Decode(&first); err != nil {
		return nil, errorf(http.StatusBadRequest, codeBadRequest, "invalid JSON body: "+err.Error())
	}
	if len(bytes.TrimSpace(body[dec.InputOffset():])) > 0 {
		return nil, errorf(http.StatusBadRequest, codeBadRequest, "invalid JSON body: unexpected data after the JSON object")
	}
	if first[0] != '{' {
		return nil, errorf(http.StatusBadRequest, codeBadRequest, "invalid JSON body: must be a JSON object")
	}
	return body, nil
}

// bodyReadError maps a failed body read to its answer: the BodyLimit
// middleware's 413 as is, the server's read deadline as a 408 (the client
// may no longer be listening, but the access log records it), anything
// else as a 400.
func bodyReadError(err error) error {
	var he *echo.HTTPError
	if errors.As(err, &he) {
		return he
	}
	var ne net.Error
	if errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return errorf(http.StatusRequestTimeout, codeRequestTimeout, "request body not received in time")
	}
	return errorf(http.StatusBadRequest, codeBadRequest, "cannot read request body")
}
