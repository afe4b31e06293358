// Package inbound carries what clients send to the application: a durable,
// partitioned queue of client messages (Redis Streams with consumer groups,
// or an in-process queue with the same semantics), and the worker library
// an application imports to consume it.
//
// The gateway is the producer: each accepted {"type":"message"} frame is
// appended with who sent it ([Message]) and the client is acked once it
// is durably queued. Applications are consumers: a [Worker] reads through
// a consumer group, runs a handler per event name, acks what succeeded,
// retries what failed with backoff, claims what a dead worker left pending
// past the visibility timeout, and moves a message delivered
// MaxDeliveries times to the dead-letter stream with its last error.
//
// Delivery to handlers is at least once: a worker killed after its handler
// ran but before the ack sees the message again elsewhere. Handlers that
// must not repeat an effect use [Message.ID] as an idempotency key.
// A handler error wrapped with [Permanent] skips the retries.
//
// [Redis] (Redis Streams) and [Memory] (in process) are the queue; both
// implement [Producer], [Consumer] and [Admin]. A [Replier] answers the
// sender's session; [RedisReplier] publishes like the gateway's publish
// API. docs/INBOUND.md describes the keys, semantics and costs.
package inbound
