package presence

import "errors"

// ErrBadCursor is returned for a page cursor that this package did not
// produce.
var ErrBadCursor = errors.New("presence: bad cursor")

// ErrBadLimit is returned for a page size outside 1..[MaxPageSize].
var ErrBadLimit = errors.New("presence: bad limit")
