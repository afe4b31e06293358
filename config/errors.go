package config

import "errors"

// ErrInvalid is the first error joined into the error returned by [Load]
// and [Config.Validate]; the problems follow it, one per line.
var ErrInvalid = errors.New("config: invalid configuration")
