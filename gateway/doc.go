// Package gateway is sessiongate's HTTP face: the echo server with the browser
// auth endpoints, the authenticated WebSocket upgrade, the server API, health,
// metrics and the embedded demo page.
//
// It wires the other packages together: session (who a cookie belongs to),
// connmgr (the live connections), pubsub (events from and to other instances)
// and redisconn (the Redis client's health). Revocation (tombstones, queued
// revocations, bus revocation events, the reconciler) is package revocation;
// the gateway only calls it.
package gateway
