// Package redisconn owns the one [redis.UniversalClient] of a sessiongate
// process: it builds it from a [Config] (a single Redis from a redis:// or
// rediss:// URL, Sentinel with MasterName and Addrs, or Redis Cluster with
// several Addrs), connects with a start-up retry budget and exponential
// backoff, watches the connection at runtime (connected, reconnecting, down,
// recovered — each transition logged once), and reports live [Health] for
// /readyz.
//
// The client is never replaced: go-redis reconnects its pool by itself, and
// the [Manager] only observes and reports. Every package that talks to Redis
// shares [Manager.Client].
//
// Passwords never appear in logs, errors or [Health]: use [Config.Redacted]
// to show where the client points.
package redisconn
