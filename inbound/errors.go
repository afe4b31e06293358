package inbound

import "errors"

// ErrFull is returned by Enqueue when the sender's partition is at its
// length cap: backpressure, the client is told "queue_full".
var ErrFull = errors.New("inbound: queue full")
