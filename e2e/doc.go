// Package e2e holds sessiongate's end-to-end tests (build tag "e2e"): the
// built gateway binary runs as three real processes against a real
// redis-server behind haproxy (the scenarios that exercise the load
// balancer also behind nginx, both configured from deploy/), and real
// Chromium drives the browser client (client-js) through the load balancer. The inbound tests add the example
// worker (cmd/worker) as real processes consuming the queue of client
// messages. The topology tests (topo_*_test.go) run three instances on a
// Redis Cluster and behind Sentinel through failovers (docs/SCALING.md).
// Run them with `make test-e2e`.
//
// Needs redis-server, redis-cli, redis-sentinel, haproxy, nginx, chromium, node and client-js/node_modules
// (`make deps js-deps`; `make test-e2e` runs both first). A missing program
// fails every test with a message naming what to install: the suite never
// skips, on a developer's machine or in CI alike.
package e2e
