package revocation

import "errors"

// ErrInvalidConfig reports a [Config] or [Deps] that cannot work: a missing
// dependency or instance id, or a negative duration or bound.
var ErrInvalidConfig = errors.New("revocation: invalid config")
