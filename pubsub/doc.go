// Package pubsub is sessiongate's cross-instance event bus.
//
// It carries versioned JSON [Event]s (session and user revocations, messages
// for connections, instance heartbeats) between gateway instances over Redis
// pub/sub ([RedisBus]) or inside one process ([LocalBus]), and keeps a view of
// the cluster from the heartbeats ([Cluster]).
//
// Redis pub/sub is lossy: a subscriber that reconnects, or that falls behind,
// misses events. The bus never hides that: [RedisBus.OnGap] and
// [RedisBus.OnSubscribed] tell the user when events may have been lost, and
// [Cluster.Live] tells whether this instance's own heartbeat still comes back
// through the bus. The gateway reacts by reconciling its connections against
// the session store.
//
// The package knows nothing of sessions or WebSocket connections: it hands
// every event to a [Handler] the user supplies.
package pubsub
