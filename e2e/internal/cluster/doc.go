// Package cluster starts and stops a local sessiongate cluster made of real
// processes: Redis (one redis-server; or, with [Options.Redis], a Redis
// Cluster of three masters with a replica each, or a master, a replica and
// three redis-sentinel processes, with helpers to fail them over), N gateway instances built from ./cmd/gateway,
// optionally M example workers built from ./cmd/worker (consuming the
// inbound queue of client messages) and a load balancer in front of the
// instances (round robin, no stickiness): haproxy, or nginx (Options.LB),
// each configured like deploy/ tells operators to. The end-to-end tests and
// `make cluster` (e2e/cmd/cluster) both use it.
//
// Every process writes its stdout and stderr to one log file in the
// cluster's directory (appending across restarts), so tests can grep them
// afterwards. A Cluster's methods may be called from one goroutine at a time.
package cluster
