package logschema

import (
	"strings"

	"go.uber.org/zap/zapcore"

	"github.com/sessiongate/sessiongate/config"
)

// Level names as zap writes them.
const (
	Debug = "debug"
	Info  = "info"
	Warn  = "warn"
	Error = "error"
)

// fields parses "name:kind ..." (kinds s, n, b, t, o, a, any) into a map.
func fields(spec string) map[string]Kind {
	m := map[string]Kind{}
	for _, f := range strings.Fields(spec) {
		name, k, _ := strings.Cut(f, ":")
		m[name] = map[string]Kind{"s": String, "n": Number, "b": Bool, "t": Time, "o": Object, "a": Array, "any": Any}[k]
	}
	return m
}

func ev(msg string, levels []string, required, optional, doc string) Event {
	return Event{Msg: msg, Levels: levels, Required: fields(required), Optional: fields(optional), Doc: doc}
}

var (
	info     = []string{Info}
	warn     = []string{Warn}
	errorLvl = []string{Error}
	debug    = []string{Debug}
)

// Events returns the schema: every event a sessiongate process logs, by
// message. Each call returns a new map.
func Events() map[string]Event {
	list := []Event{
		// Lifecycle.
		ev("starting sessiongate", info, "", startupFields(), "the process starts; the configuration, secrets redacted (`secrets` says set, example, ephemeral or unset)"),
		ev("ephemeral secrets", warn, "detail:s", "", "development without SESSION_SECRET/SESSION_ENCRYPTION_KEY: random ones, sessions do not survive a restart"),
		ev("example secrets", warn, "detail:s", "", "development with the secrets of .env.example"),
		ev("demo page enabled in production", warn, "", "", "DEMO_ENABLED=true in production"),
		ev("memory store fallback", errorLvl, "detail:s redis:s", "", "development could not reach Redis within the connect budget and runs on the memory store; /readyz is degraded"),
		ev("listening", info, "addr:s", "", "the HTTP listener is up"),
		ev("metrics listening", info, "metrics_addr:s", "", "the separate /metrics listener (GATEWAY_METRICS_ADDR) is up"),
		ev("pprof listening", info, "debug_addr:s", "", "the loopback pprof listener (GATEWAY_DEBUG_ADDR) is up"),
		ev("draining", info, "connections:n drain_window:n", "", "SIGTERM/SIGINT: /readyz turns 503, connections close over the drain window"),
		ev("draining connections", info, "connections:n window:n", "", "the connection manager starts its spread of 1001 closes"),
		ev("drained", info, "", "", "every connection closed; the process exits 0"),
		ev("event bus stopped", errorLvl, "", "", "the bus's Run returned unexpectedly"),

		// HTTP.
		ev("http request", info, "method:s path:s status:n duration:n ip:s request_id:s", "", "one line per HTTP request except health, metrics and successful upgrades; path and method clipped to 256 bytes, a session token in the path replaced by (token)"),
		ev("request failed", errorLvl, "request_id:s method:s path:s", "", "a handler failed with an unexpected 5xx"),
		ev("panic in handler", errorLvl, "stack:s request_id:s", "", "a handler panicked; the client got a JSON 500"),
		ev("rate limited", warn, "ip:s path:s", "", "a login or upgrade refused by the per-IP rate limit (429)"),
		ev("API key refused", warn, "ip:s path:s", "", "a server API call with a missing or wrong key (401)"),

		// Admin console (docs/ADMIN.md): the client address, never the key, cookie or session id.
		ev("admin login", info, "ip:s", "", "an operator logged in to the admin console with a server API key"),
		ev("admin login refused", warn, "ip:s", "", "an admin console login with a wrong API key (401)"),
		ev("admin login rate limited", warn, "ip:s", "", "too many admin console logins from one address (429)"),
		ev("admin logout", info, "ip:s", "", "an operator logged out of the admin console; the admin session is deleted"),
		ev("admin request refused", warn, "reason:s ip:s", "", "an admin console request refused: reason is not https (production), origin or csrf (403)"),
		ev("admin session store failed", errorLvl, "", "", "the admin session store (Redis or memory) failed; the console answered 503"),

		// Sessions.
		ev("login", info, "user_id:s handle:s", "ip:s origin:s", "a browser logged in; the session was created"),
		ev("login refused", info, "ip:s", "", "the authenticator refused the credentials (401)"),
		ev("login upstream failed", errorLvl, "", "", "the webhook authenticator failed (502)"),
		ev("cross-site login refused", warn, "origin:s ip:s", "", "a login from a foreign origin (403)"),
		ev("cross-site logout refused", warn, "origin:s ip:s", "", "a logout from a foreign origin (403)"),
		ev("session created via API", info, "user_id:s handle:s", "", "POST /api/v1/sessions"),
		ev("session store failed", errorLvl, "op:s", "", "a store call failed; the client got a 503"),
		ev("session revoked", info, "handle:s reason:s status:s existed:b closed_local:n", "", "this instance revoked a session (logout, login rotation, API, a revocation undone by the store); status is done or pending"),
		ev("user revoked", info, "user_id:s reason:s status:s sessions:n closed_local:n", "", "this instance revoked every session of a user"),
		ev("session revoked by peer", info, "handle:s origin:s closed_local:n", "", "another instance's revocation closed connections here"),
		ev("user revoked by peer", info, "user_id:s origin:s sessions:n closed_local:n", "", "another instance's user revocation closed connections here"),
		ev("revocation queued", warn, "kind:s reason:s merged:b", "handle:s user_id:s", "the store or the bus could not confirm a revocation: local connections closed, retried until confirmed (202 pending)"),
		ev("revocation retry failed", debug, "kind:s attempts:n", "handle:s user_id:s", "one more failed attempt at a queued revocation"),
		ev("revocation confirmed", info, "kind:s reason:s pending_for:n attempts:n", "handle:s user_id:s existed:b sessions:n", "a queued revocation reached the store and the bus"),
		ev("revocations abandoned", errorLvl, "pending:n", "", "the instance stopped with revocations still queued"),
		ev("reconciled", []string{Debug, Info}, "reason:s sessions_checked:n sessions_closed:n connections_closed:n revocations_undone:n sessions_unindexed:n duration:n", "", "a pass checked every locally held session against the store and closed what is gone, checked that the sessions revoked in the last tombstone lifetime are still gone, and that the logins made here in that time are still in their user's index (info when it closed or revoked something or was not a routine sweep)"),
		ev("session unindexed", warn, "handle:s", "", "a login made here lost its user-index entry in a Redis failover while its session survived (revoking the user could not find it): the session is revoked"),
		ev("revocation undone", warn, "handle:s", "", "a session revoked here or by a peer is in the store again (a delete lost in a Redis failover): it is revoked again"),
		ev("reconcile failed", []string{Debug, Warn}, "reason:s failures:n retry_in:n", "", "a pass could not reach the store; warn once per outage, then debug"),
		ev("reconcile recovered", info, "failed_passes:n", "", "passes work again after an outage"),
		ev("session store reset", errorLvl, "reason:s sessions_lost:n connections_closed:n", "", "the store's data set was replaced (Redis restarted without persistence, FLUSHALL): sessions lost, closed with 4504"),

		// Connections.
		ev("connection opened", info, "conn_id:s user_id:s handle:s remote:s", "", "a WebSocket was upgraded and registered"),
		ev("connection closed", info, "conn_id:s user_id:s handle:s code:n reason:s duration:n remote:s", "", "a WebSocket closed, with the close code the server decided (client-chosen codes are recorded as 1000/1001)"),
		ev("connection refused", info, "reason:s user_id:s", "conn_id:s code:n remote:s handle:s ip:s", "a connection cap refused a handshake (HTTP 429/503) or a registration (4009)"),
		ev("cross-origin websocket refused", warn, "origin:s ip:s", "", "a WebSocket handshake from a foreign origin (403)"),
		ev("websocket upgrade failed", debug, "", "", "the WebSocket library refused the handshake"),
		ev("connection write failed", debug, "conn_id:s", "", ""),
		ev("connection read failed", debug, "conn_id:s", "", ""),
		ev("close handshake incomplete", debug, "conn_id:s", "", ""),
		ev("inbound rate exceeded", debug, "conn_id:s", "", "closed with 4008"),
		ev("binary frame from client", debug, "conn_id:s", "", "closed with 4503"),
		ev("bad client frame", debug, "conn_id:s", "", "closed with 4503"),

		// Redis.
		ev("redis connected", info, "redis:s", "attempt:n latency:n redis_version:s", "the first PING succeeded"),
		ev("redis connect attempt failed", warn, "redis:s attempt:s next_delay:n", "", "a start-up PING failed; attempt is n/N"),
		ev("redis unavailable", errorLvl, "redis:s attempt:s", "", "the start-up connect budget is spent"),
		ev("redis unsupported", errorLvl, "redis:s redis_version:s min_version:s", "", "Redis is older than 6.2; the process exits"),
		ev("redis version unknown", warn, "redis:s reason:s min_version:s", "", "INFO server was refused; running without the version check"),
		ev("redis reconnecting", warn, "redis:s attempt:s backoff:n", "", "a runtime health check failed; retrying within the budget"),
		ev("redis down", errorLvl, "redis:s attempt:s outage:n probe_interval:n", "", "the runtime budget is spent; probing every probe_interval"),
		ev("redis still down", debug, "redis:s failed_checks:n", "", ""),
		ev("go-redis", debug, "detail:s", "", "a message of the Redis client library itself (e.g. a pool dial failure); redisconn logs the state changes"),
		ev("redis recovered", info, "redis:s outage:n failed_checks:n", "", "Redis answers again after an outage"),

		// Pub/sub and cluster.
		ev("pub/sub subscribed", info, "", "attempts:n bus:s channel:s shard:n", "the subscription is confirmed"),
		ev("pub/sub resubscribed", info, "channel:s attempts:n down:n", "shard:n", "the subscription is back after an outage"),
		ev("pub/sub subscription lost", warn, "channel:s up:n", "shard:n", "once per outage; the gateway reconciles"),
		ev("pub/sub subscribe failed", warn, "channel:s attempt:n backoff:n down:n", "shard:n", "the first failed attempt of an outage, then at most every 30 s"),
		ev("pub/sub resubscribe skipped", debug, "channel:s backlog:n", "shard:n", "own heartbeats are late but events wait for the handler: the subscription delivers, so it is kept"),
		ev("pub/sub resubscribing", debug, "channel:s attempt:n backoff:n", "shard:n", ""),
		ev("pub/sub connection dropped", warn, "channel:s reason:s", "idle:n shard:n", "the health check replaced a subscriber connection (unresponsive, subscribe not confirmed, ping failed, own heartbeat not seen)"),
		ev("pub/sub event skipped", warn, "channel:s bytes:n prefix:s suppressed:n total:n", "shard:n", "a malformed event was skipped (rate-limited line)"),
		ev("pub/sub event dropped", errorLvl, "channel:s kind:s buffer:n suppressed:n total:n", "shard:n", "the handler fell behind and the buffer overflowed: a gap on a subscription that stays, so the gateway reconciles and then closes with 4010 the connections of streams that moved"),
		ev("pub/sub shard live", info, "shard:n resubscribes:n", "", "a shard channel's subscription is confirmed and this instance's own ping on it came back (sharded pub/sub on Redis Cluster)"),
		ev("pub/sub shard not live", warn, "shard:n timeout:n", "", "this instance's ping on a shard channel did not come back in time, or its subscription was lost; /readyz is 503 until it is live again"),
		ev("pub/sub shard ping failed", warn, "shard:n", "", "the SPUBLISH of a shard's ping failed (once per outage)"),
		ev("pub/sub shard ping recovered", info, "shard:n", "", "a shard's ping is published again"),
		ev("event publish failed", errorLvl, "kind:s", "", "an event could not be published; the reconciler catches up"),
		ev("history positions failed", warn, "user_id:s handle:s", "", "the history could not give a new connection its streams' positions; its welcome has none"),
		ev("history read failed", errorLvl, "op:s", "", "the history API could not read a stream; it answered 503"),
		ev("events missed", warn, "stream:s user_id:s cause:s last_offset:n offset:n epoch_changed:b closed:n", "", "this instance missed events of a stream (a hole in the offsets, or the history moved on while pub/sub was cut); the stream's local connections were closed with 4010 to resume"),
		ev("inbound enqueue failed", warn, "user_id:s conn_id:s", "", "a client message could not be queued (Redis unreachable); the client got an unavailable error"),
		ev("inbound dead letters redriven", info, "redriven:n asked:n", "", "an operator queued dead letters again (asked 0: all)"),
		ev("inbound admin failed", warn, "op:s", "", "the inbound admin API could not reach the queue; it answered 503"),
		ev("inbound worker started", info, "worker:s concurrency:n", "", "a worker (the embedded example worker, or cmd/worker) reads the inbound queue"),
		ev("inbound worker stopping", info, "worker:s", "", ""),
		ev("inbound worker stop timed out", errorLvl, "worker:s timeout:n", "", "handlers still running at the stop timeout were cancelled; their messages stay pending for redelivery"),
		ev("inbound worker stopped", info, "worker:s", "", ""),
		ev("inbound handler failed", warn, "worker:s msg_id:s event:s deliveries:n user_id:s handle:s", "", "a handler returned an error; the message is retried with backoff or dead-lettered"),
		ev("inbound retry failed", warn, "worker:s msg_id:s event:s deliveries:n user_id:s handle:s", "", ""),
		ev("inbound message lost", warn, "worker:s msg_id:s event:s deliveries:n user_id:s handle:s reason:s", "", "another worker claimed a message this worker held (it was too slow to extend its visibility)"),
		ev("inbound extend failed", warn, "worker:s msg_id:s event:s deliveries:n user_id:s handle:s", "", ""),
		ev("inbound ack failed", errorLvl, "worker:s msg_id:s event:s deliveries:n user_id:s handle:s", "", "the message will be delivered again"),
		ev("inbound dead letter failed", errorLvl, "worker:s msg_id:s event:s deliveries:n user_id:s handle:s", "", ""),
		ev("inbound message dead-lettered", warn, "worker:s msg_id:s event:s deliveries:n user_id:s handle:s", "", "a message failed INBOUND_MAX_DELIVERIES times, or permanently; it is in the dead letters with its error"),
		ev("inbound read failed", warn, "worker:s attempt:n", "", "the worker could not read the queue; it retries with backoff"),
		ev("inbound release failed", warn, "worker:s messages:n", "", ""),
		ev("inbound worker ended", errorLvl, "worker:s", "", "the gateway's in-process worker (webhook forwarder or example) ended with an error"),
		ev("inbound webhook posted", debug, "msg_id:s event:s handle:s status:n duration:n", "", "the forwarder POSTed one message to INBOUND_WEBHOOK_URL"),
		ev("resume read failed", warn, "user_id:s handle:s stream:s", "", "a reconnecting client's stream could not be read; its welcome says the stream was not recovered"),
		ev("history event unreadable", errorLvl, "stream:s offset:n", "", "an event in the history is not a message event; the replay skips it"),
		ev("pub/sub liveness established", info, "", "", "this instance's first own heartbeat came back"),
		ev("pub/sub liveness lost", warn, "timeout:n", "last_own_heartbeat:t", "this instance's heartbeats stopped coming back"),
		ev("pub/sub liveness restored", info, "", "", "own heartbeats come back again"),
		ev("heartbeat publish failed", warn, "kind:s", "", ""),
		ev("heartbeat publish recovered", info, "", "", ""),
		ev("instance joined", info, "peer:s addr:s self:b", "", "an instance's heartbeat was seen (again)"),
		ev("instance draining", info, "peer:s self:b", "", "an instance announced its drain"),
		ev("instance gone", []string{Info, Warn}, "peer:s addr:s draining:b silent:n", "", "an instance missed three heartbeats (warn unless it was draining)"),
		ev("duplicate instance id", errorLvl, "addr:s started_at:t", "", "another process uses this instance's id"),
		ev("presence flush failed", warn, "users:n", "", "this instance's changed users could not be written to the presence store (first failure of an outage; retried every flush)"),
		ev("presence flush recovered", info, "users:n", "", ""),
		ev("presence records lost", warn, "peer:s", "", "this instance's presence records were purged by another instance or expired; it writes them all again"),
		ev("presence purged", info, "peer:s users_offline:n", "", "the presence records of a gone instance were removed; users_offline had no other instance"),
		ev("presence purge failed", warn, "peer:s", "", "a gone instance's (or, at start and stop, this instance's own) presence records could not be removed; retried every heartbeat interval"),
		ev("presence events dropped", errorLvl, "dropped:n", "", "more presence events waited for the inbound queue than the tracker keeps; the oldest were dropped (logged once per outage; sessiongate_presence_events_dropped_total counts them all)"),
		ev("presence events not queued", warn, "waiting:n", "", "presence events could not be queued (first failure of an outage); they are retried at every flush"),
		ev("presence events queued again", info, "queued:n", "", ""),
		ev("presence read failed", warn, "", "", "the presence API could not read the store; it answered 503"),
	}
	m := make(map[string]Event, len(list))
	for _, e := range list {
		m[e.Msg] = e
	}
	return m
}

// startupFields are the fields of the start-up line: the configuration's
// log view.
func startupFields() string {
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range (config.Config{}).LogFields() {
		f.AddTo(enc)
	}
	var b strings.Builder
	for k := range enc.Fields {
		b.WriteString(k + ":any ")
	}
	return b.String()
}
