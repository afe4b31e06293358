// Command loadgen measures a sessiongate gateway over its real protocol and
// puts every figure next to a floor: a bare coder/websocket server doing the
// same job, a raw Redis PUBLISH->SUBSCRIBE hop, or (for the event history)
// a raw XADD+PUBLISH pipelined to a SUBSCRIBE.
//
// The "revocation" phase revokes, through gateway A's API, sessions whose
// connections live on gateway B (10,000 other connections open there), one
// at a time, timed from the DELETE to the close frame. Its floors: the raw
// hop, and the revocation path floor: the same revocations through two bare
// floor servers (DELETE -> PUBLISH + DEL on A', SUBSCRIBE -> close 4500 on
// B', the same connections open on B').
//
// The "gateway" and "floor" phases run the same steps against each server:
// open every memory level of idle connections, reading memory at each
// before anything else runs (fan-out buffers and GC headroom would inflate a
// later reading); heartbeat CPU at the largest (gateway only); fan-out to
// all at every level of at least 10,000 connections (the small profile: its
// only level), largest first, closing the most recently opened connections
// down to the next level and waiting for the server's
// sessiongate_connections_open gauge in between. Each level runs two modes:
// one event at a time (each waited for until every connection has it) and
// 32 in flight (published back to back, then waited for together), each
// judged as its own goal against the floor's run at the same level and
// mode. Publish to user runs at the largest level, then the handshake rate.
//
// The "resume" phase kills a gateway holding N connections and measures
// their resume storm on another.
// The "inbound" phase sends client messages through a gateway into the
// inbound queue and through bin/worker processes back to the clients, next
// to a raw XADD / XADD+XREADGROUP+XACK floor on the same redis-server.
//
// It orchestrates everything itself: a redis-server on a free port, the
// gateway instances (bin/gateway), worker processes (bin/worker), the floor server (its own subcommand,
// "loadgen floor-server"), measures, stops them all, prints a table and
// writes bench-results/<profile>.json. On a machine with two or more cores
// the servers are pinned to core 0 and the generator to core 1 (taskset), so
// the generator is never the bottleneck and both sides' CPU is reported.
//
// Usage:
//
//	loadgen -profile small|full [-gateway bin/gateway] [-worker bin/worker]
//	        [-out bench-results] [-no-pin]
//	        [-phases gateway,floor,revocation,history,resume,inbound]
//	        [-storm-cpuprofile file] [-inbound-workers n] [-inbound-cpuprofile file]
//	loadgen floor-server -addr 127.0.0.1:0 [-redis addr]   (started by loadgen itself)
//
// The client side is a minimal hand-written WebSocket client over net.Conn
// (HTTP/1.1 upgrade, masked frames out, unmasked frames in), spreading its
// source addresses over 127.0.0.2..127.0.0.254 so ephemeral ports never run
// out. See docs/BENCHMARKS.md.
package main
