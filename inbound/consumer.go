package inbound

import (
	"context"
	"time"
)

// Consumer is the consumers' side of the queue, what a [Worker] reads
// through. [Redis] and [Memory] implement it; their methods are safe for
// concurrent use. consumer names one consumer of the group (a worker
// process, e.g. host and pid): what it reads is held by it until acked,
// released, or claimed by another consumer after the visibility timeout.
type Consumer interface {
	// Config returns the queue's configuration, defaults applied.
	Config() Config
	// EnsureGroup creates the consumer group on every partition where it
	// does not exist yet, reading from the start of the partition.
	EnsureGroup(ctx context.Context) error
	// Read returns messages for consumer: first the messages pending
	// longer than the visibility timeout, to any consumer, which it now
	// claims, then new messages, at most count of each kind per partition;
	// messages of one partition in queue order. With none at hand it waits
	// up to block for new ones (not past ctx). Each message's Deliveries
	// counts this delivery. A claimed message already delivered
	// MaxDeliveries times goes to the dead letters with
	// [ErrTooManyDeliveries] instead.
	Read(ctx context.Context, consumer string, count int, block time.Duration) ([]Message, error)
	// Ack marks messages done: they leave the queue for good. Acking a
	// message that is no longer there is not an error.
	Ack(ctx context.Context, ids ...string) error
	// Extend restarts m's visibility timeout (a long handler keeps its
	// message). It returns [ErrNotHeld] when consumer no longer holds m.
	Extend(ctx context.Context, consumer string, m *Message) error
	// Retry records another delivery of m to consumer (a retry in
	// process): m.Deliveries and the queue's count grow by one and the
	// visibility timeout restarts. It returns [ErrNotHeld] when consumer
	// no longer holds m.
	Retry(ctx context.Context, consumer string, m *Message) error
	// Release gives back messages consumer read but did not start (a
	// stopping worker): they become claimable at once, and the delivery
	// that did not happen is not counted. Messages no longer held are
	// skipped.
	Release(ctx context.Context, consumer string, ms []Message) error
	// DeadLetter moves m to the dead letters with cause and its delivery
	// count, then acks it. Should the ack fail after the dead letter was
	// written, m is delivered again and may be dead-lettered twice.
	DeadLetter(ctx context.Context, m *Message, cause error) error
}

// Admin is the operators' side of the queue. [Redis] and [Memory]
// implement it; their methods are safe for concurrent use.
type Admin interface {
	// Stats reports the queue's length, pending and lag per partition and
	// the number of dead letters.
	Stats(ctx context.Context) (Stats, error)
	// DeadLetters lists at most count dead letters, oldest first, after
	// the dead letter id after ("" for the first).
	DeadLetters(ctx context.Context, after string, count int) ([]DeadLetter, error)
	// Redrive queues the dead letters ids again, each as a new message in
	// its user's partition (a new ID, deliveries from zero), and removes
	// them from the dead letters. It returns how many it moved; ids that
	// are not dead letters are skipped. A full partition stops it with an
	// error wrapping [ErrFull].
	Redrive(ctx context.Context, ids ...string) (int, error)
}

// DeadLetter is a message that was given up on.
type DeadLetter struct {
	// ID is the dead letter's id (for Redrive), not the message's.
	ID string `json:"id"`
	// Message is the message as it was last delivered; its ID is the one
	// it had in the queue.
	Message Message `json:"message"`
	// Error is the last error its handler returned.
	Error string `json:"error"`
	// Deliveries is how many times it was delivered.
	Deliveries int `json:"deliveries"`
	// Failed is when it was moved to the dead letters.
	Failed time.Time `json:"failed"`
}

// Stats is a snapshot of the queue.
type Stats struct {
	// Partitions are the partitions' figures, by partition number.
	Partitions []PartitionStats `json:"partitions"`
	// Length is the sum of the partitions' lengths.
	Length int64 `json:"length"`
	// Pending is the sum of the partitions' pending messages.
	Pending int64 `json:"pending"`
	// Lag is the sum of the partitions' lags, or -1 when one is unknown.
	Lag int64 `json:"lag"`
	// Dead is the number of dead letters.
	Dead int64 `json:"dead"`
	// Redelivered counts, since the queue was created, the deliveries
	// after the first: claims of messages a consumer left past the
	// visibility timeout, and retries in process.
	Redelivered int64 `json:"redelivered"`
}

// PartitionStats are one partition's figures.
type PartitionStats struct {
	// Partition is the partition's number.
	Partition int `json:"partition"`
	// Length is how many messages it holds that are not done: never
	// delivered, or delivered and not yet acknowledged.
	Length int64 `json:"length"`
	// Pending is how many of them are delivered and not acknowledged.
	Pending int64 `json:"pending"`
	// Lag is how many were never delivered to the group, or -1 when
	// Redis cannot tell (before Redis 7).
	Lag int64 `json:"lag"`
}

// total fills s's sums from its partitions.
func (s *Stats) total() {
	s.Length, s.Pending, s.Lag = 0, 0, 0
	for _, p := range s.Partitions {
		s.Length += p.Length
		s.Pending += p.Pending
		if p.Lag < 0 || s.Lag < 0 {
			s.Lag = -1
		} else {
			s.Lag += p.Lag
		}
	}
}

var (
	_ Producer = (*Redis)(nil)
	_ Consumer = (*Redis)(nil)
	_ Admin    = (*Redis)(nil)
	_ Producer = (*Memory)(nil)
	_ Consumer = (*Memory)(nil)
	_ Admin    = (*Memory)(nil)
)
