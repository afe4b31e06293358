package redistest

import "errors"

// errExited means redis-server exited before it answered PING, typically
// because its port was taken between FreePort and the bind.
var errExited = errors.New("redis-server exited at start")
