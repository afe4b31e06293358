// Reconnect policy, backoff, heartbeat watchdog and the session probe,
// against a real scripted WebSocket server (ws package).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CloseCodes } from '../src/index.js';
import { collect, counting, fakeNow, timersUpTo, OpaqueWebSocket, testClient as newClient, testServer as server, PATIENCE } from '../testutil/server.js';

// No test here sleeps and hopes: "nothing happened" is checked after an
// ordering barrier (timersUpTo) by counting WebSocket constructions, and
// what the client measures (stableAfter, the heartbeat watchdog) runs on a
// fake performance.now moved by hand (fakeNow).

// maxDelay of testClient: no reconnect it schedules waits longer.
const MAX_DELAY = 100;

// sequence returns a random() that yields the given values in turn.
function sequence(values) {
  let i = 0;
  return () => {
    if (i >= values.length) throw new Error('random() called more often than expected');
    return values[i++];
  };
}

test('transient close codes reconnect', async (t) => {
  const cases = [
    { name: 'going away (drain)', code: 1001 },
    { name: 'internal error', code: 1011 },
    { name: 'slow consumer', code: 4000 },
    { name: 'heartbeat timeout', code: 4001 },
    { name: 'rate limited', code: 4008 },
    { name: 'connection limit', code: 4009 },
    { name: 'events missed (resume)', code: 4010 },
    { name: 'abnormal (dropped TCP)', code: 1006, drop: true },
    { name: 'normal close from server', code: 1000 },
  ];
  for (const tc of cases) {
    await t.test(tc.name, async (t) => {
      const srv = await server(t);
      const c = newClient(t, srv);
      const ev = collect(c);
      c.connect();
      const first = await srv.next();
      first.welcome({ conn_id: 'first' });
      await ev.until(() => c.state === 'open', PATIENCE, 'open');
      if (tc.drop) first.drop();
      else first.close(tc.code, 'bye');
      const second = await srv.next();
      second.welcome({ conn_id: 'second' });
      await ev.until(() => c.connId === 'second' && c.state === 'open', PATIENCE, 'reopen');
      const closed = ev.of('closed');
      assert.equal(closed.length, 1);
      assert.equal(closed[0].code, tc.code);
      assert.equal(closed[0].terminal, false);
      assert.deepEqual(ev.of('state').map((s) => s.state), ['connecting', 'open', 'reconnecting', 'connecting', 'open']);
      const rec = ev.of('state')[2];
      assert.equal(rec.code, tc.code);
      assert.equal(rec.attempt, 1);
    });
  }
});

test('terminal close codes stop the client and fire their event', async (t) => {
  const cases = [
    { name: 'revoked', code: 4500, event: 'revoked' },
    { name: 'expired', code: 4501, event: 'expired' },
    { name: 'unauthorized', code: 4502, event: 'unauthorized' },
    { name: 'protocol error', code: 4503, event: 'error' },
    { name: 'session lost', code: 4504, event: 'expired' },
    { name: 'message too big', code: 1009, event: 'error' },
  ];
  for (const tc of cases) {
    await t.test(tc.name, async (t) => {
      const srv = await server(t);
      const ws = counting();
      const c = newClient(t, srv, { WebSocket: ws.WebSocket }); // random 0: a reconnect would be immediate
      const ev = collect(c);
      c.connect();
      const conn = await srv.next();
      conn.welcome();
      await ev.until(() => c.state === 'open', PATIENCE, 'open');
      conn.close(tc.code, 'server says no');
      await ev.until(() => c.state === 'closed', PATIENCE, 'closed');
      await timersUpTo(MAX_DELAY); // any reconnect scheduled has run by now
      assert.equal(ws.n, 1, 'no reconnect');
      assert.equal(c.state, 'closed');
      assert.deepEqual(ev.of('closed'), [{ code: tc.code, reason: 'server says no', terminal: true }]);
      const fired = ev.of(tc.event);
      assert.equal(fired.length, 1);
      assert.equal(fired[0].code, tc.code);
      for (const other of ['revoked', 'expired', 'unauthorized'].filter((n) => n !== tc.event)) {
        assert.equal(ev.of(other).length, 0, `${other} must not fire`);
      }
      assert.deepEqual(ev.of('state').map((s) => s.state), ['connecting', 'open', 'closed']);
      assert.equal(ev.log.at(-1).type, 'state', 'state closed comes last');
    });
  }
});

test('backoff delays follow full jitter: random * min(max, min * factor^n)', async (t) => {
  const srv = await server(t);
  const rs = [0.5, 1, 0.25, 0.999, 0.1, 0.75];
  const c = newClient(t, srv, {
    random: sequence(rs),
    reconnect: { minDelay: 8, maxDelay: 50, factor: 2 },
    stableAfter: 60000,
  });
  const ev = collect(c);
  c.connect();
  for (let i = 0; i < rs.length; i++) {
    const conn = await srv.next();
    conn.welcome();
    conn.close(4000, 'slow');
  }
  const last = await srv.next();
  last.welcome();
  await ev.until(() => c.state === 'open' && ev.of('closed').length === rs.length, PATIENCE, 'last open');
  const caps = [8, 16, 32, 50, 50, 50];
  const rec = ev.of('state').filter((s) => s.state === 'reconnecting');
  assert.deepEqual(rec.map((s) => s.attempt), [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(rec.map((s) => s.delay), rs.map((r, i) => Math.floor(r * caps[i])));
  for (const [i, s] of rec.entries()) {
    assert.ok(s.delay >= 0 && s.delay <= caps[i], `delay ${s.delay} within [0, ${caps[i]}]`);
  }
});

test('default random keeps delays within the full-jitter bounds', async (t) => {
  const srv = await server(t);
  const c = newClient(t, srv, { random: undefined, reconnect: { minDelay: 4, maxDelay: 20, factor: 3 }, stableAfter: 60000 });
  const ev = collect(c);
  c.connect();
  for (let i = 0; i < 5; i++) (await srv.next()).close(4000);
  await srv.next();
  const rec = ev.of('state').filter((s) => s.state === 'reconnecting');
  const caps = [4, 12, 20, 20, 20];
  assert.equal(rec.length, 5);
  for (const [i, s] of rec.entries()) {
    assert.ok(Number.isInteger(s.delay) && s.delay >= 0 && s.delay <= caps[i], `attempt ${i + 1}: ${s.delay} in [0, ${caps[i]}]`);
  }
});

// grownThenStable makes three short-lived connections (backoff grows to
// attempt 3), then one that stays open past stableAfter on a clock the test
// moves (connection lifetimes do not depend on the machine's speed), and
// returns it open with the server, the events and the client.
async function grownThenStable(t) {
  const clock = fakeNow(t);
  const srv = await server(t);
  const c = newClient(t, srv, {
    random: () => 1,
    reconnect: { minDelay: 5, maxDelay: 1000, factor: 2 },
    stableAfter: 300,
  });
  const ev = collect(c);
  c.connect();
  for (let i = 0; i < 3; i++) {
    const conn = await srv.next();
    conn.welcome();
    conn.close(4000); // short-lived: backoff grows
  }
  const stable = await srv.next();
  stable.welcome();
  await ev.until(() => c.state === 'open' && ev.of('closed').length === 3, PATIENCE, 'stable open');
  clock.advance(600); // well past stableAfter
  return { srv, ev, stable };
}

test('backoff resets after a connection stayed open for stableAfter', async (t) => {
  const { srv, ev, stable } = await grownThenStable(t);
  stable.close(1001, 'drain');
  const after = await srv.next();
  after.welcome();
  after.close(1001, 'drain again'); // short-lived again: grows from the reset
  await srv.next();
  const rec = ev.of('state').filter((s) => s.state === 'reconnecting');
  assert.deepEqual(rec.map((s) => [s.attempt, s.delay]), [[1, 5], [2, 10], [3, 20], [1, 5], [2, 10]]);
});

test('a rate-limited or over-cap close never resets backoff', async (t) => {
  for (const code of [CloseCodes.RATE_LIMITED, CloseCodes.CONNECTION_LIMIT]) {
    await t.test(String(code), async (t) => {
      const { srv, ev, stable } = await grownThenStable(t); // any other code would reset now
      stable.close(code, 'slow down');
      await srv.next();
      const rec = ev.of('state').filter((s) => s.state === 'reconnecting');
      assert.deepEqual(rec.map((s) => [s.attempt, s.delay]), [[1, 5], [2, 10], [3, 20], [4, 40]]);
    });
  }
});

test('a connection that never got its welcome does not reset backoff', async (t) => {
  const clock = fakeNow(t);
  const srv = await server(t);
  const c = newClient(t, srv, { random: () => 1, reconnect: { minDelay: 5, maxDelay: 1000, factor: 2 }, stableAfter: 30 });
  const ev = collect(c);
  c.connect();
  (await srv.next()).close(4000);
  const silent = await srv.next();
  silent.ping(); // answered: the client has seen the transport open
  assert.deepEqual(await silent.nextMessage(), { type: 'pong' });
  clock.advance(100); // open at the transport level only, past stableAfter
  silent.close(4000);
  await srv.next();
  const rec = ev.of('state').filter((s) => s.state === 'reconnecting');
  assert.deepEqual(rec.map((s) => s.attempt), [1, 2]);
});

// The watchdog's window is 20 fake ms (ping interval 20, no grace); its real
// timers fire every few ms, each deciding on the fake clock, which the test
// moves in lockstep with the frames it sends: never 20 ms without a frame
// while the server is lively, 1000 ms at once when it goes silent.
test('heartbeat watchdog reconnects when the server goes silent, not while it pings', async (t) => {
  const clock = fakeNow(t);
  const srv = await server(t);
  const ws = counting();
  const c = newClient(t, srv, { pingGrace: 0, WebSocket: ws.WebSocket });
  const ev = collect(c);
  c.connect();
  const silent = await srv.next();
  silent.welcome({ ping_interval_ms: 20 });
  await ev.until(() => c.state === 'open', PATIENCE, 'open');
  clock.advance(1000); // then nothing: dead
  const lively = await srv.next(PATIENCE);
  const silentClosed = await silent.closed;
  assert.equal(silentClosed.code, 1006, 'client dropped the dead socket');
  assert.deepEqual(ev.of('closed'), [{ code: CloseCodes.HEARTBEAT_TIMEOUT, reason: 'heartbeat timeout', terminal: false }]);

  lively.welcome({ ping_interval_ms: 20 });
  await ev.until(() => c.state === 'open' && c.connId === 'c2', PATIENCE, 'lively open');
  for (let i = 0; i < 50; i++) { // 25 watchdog windows
    clock.advance(10);
    lively.ping();
    assert.deepEqual(await lively.nextMessage(), { type: 'pong' }, `pong ${i + 1}`);
    if (i % 10 === 9) await timersUpTo(20); // let the watchdog's real timer decide
  }
  assert.equal(ws.n, 2, 'no reconnect while pings flow');
  assert.equal(ev.of('closed').length, 1);
  assert.equal(c.state, 'open');
});

test('any frame keeps the watchdog happy, not only pings', async (t) => {
  const clock = fakeNow(t);
  const srv = await server(t);
  const ws = counting();
  const c = newClient(t, srv, { pingGrace: 0, WebSocket: ws.WebSocket });
  const ev = collect(c);
  c.connect();
  const conn = await srv.next();
  conn.welcome({ ping_interval_ms: 20 });
  await ev.until(() => c.state === 'open', PATIENCE, 'open');
  for (let n = 1; n <= 50; n++) { // 25 watchdog windows
    clock.advance(10);
    conn.event(String(n), 'tick', {});
    await ev.until(() => ev.of('event').length === n, PATIENCE, `event ${n}`);
    if (n % 10 === 0) await timersUpTo(20); // let the watchdog's real timer decide
  }
  assert.equal(ws.n, 1);
  assert.equal(ev.of('closed').length, 0);
  // And the same client does time out once the frames stop.
  clock.advance(1000);
  await ev.until(() => ev.of('closed').length === 1, PATIENCE, 'heartbeat timeout');
  assert.equal(ev.of('closed')[0].code, CloseCodes.HEARTBEAT_TIMEOUT);
});

test('connect timeout abandons a hanging handshake and retries', async (t) => {
  let n = 0;
  const srv = await server(t, { authorize: () => (++n === 1 ? 0 : 101) });
  const c = newClient(t, srv, { connectTimeout: 100 });
  const ev = collect(c);
  c.connect();
  const conn = await srv.next();
  conn.welcome();
  await ev.until(() => c.state === 'open', PATIENCE, 'open');
  assert.equal(srv.hung.length, 1);
  assert.deepEqual(ev.of('closed'), [{ code: CloseCodes.ABNORMAL, reason: 'connect timeout', terminal: false }]);
});

test('repeated failures before open probe the session: 401 is terminal', async (t) => {
  const probes = [];
  const srv = await server(t, {
    authorize: () => 401,
    http: (req, res) => {
      probes.push({ url: req.url, method: req.method });
      res.writeHead(req.url === '/auth/session' ? 401 : 404, { 'Content-Type': 'application/json' }).end('{}');
    },
  });
  const ws = counting(OpaqueWebSocket);
  const c = newClient(t, srv, { WebSocket: ws.WebSocket, authProbeAfter: 3 });
  const ev = collect(c);
  c.connect();
  await ev.until((l) => l.some((e) => e.type === 'unauthorized'), PATIENCE, 'unauthorized');
  await timersUpTo(MAX_DELAY); // any reconnect scheduled has run by now
  assert.equal(ws.n, 3, 'three handshakes, then the probe, then nothing');
  assert.equal(srv.rejected.length, 3);
  assert.deepEqual(probes, [{ url: '/auth/session', method: 'GET' }]);
  assert.equal(c.state, 'closed');
  assert.deepEqual(ev.of('closed').map((d) => [d.code, d.terminal]), [[1006, false], [1006, false], [1006, false], [4502, true]]);
  assert.ok(ev.of('state').some((s) => s.state === 'reconnecting' && s.probing === true));
});

test('a probe that finds the session valid keeps reconnecting', async (t) => {
  const probes = [];
  const srv = await server(t, {
    authorize: () => 401,
    http: (req, res) => {
      probes.push(req.url);
      res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"user_id":"alice"}');
    },
  });
  const c = newClient(t, srv, { WebSocket: OpaqueWebSocket, authProbeAfter: 2, sessionUrl: '/custom/session?x=1' });
  const ev = collect(c);
  c.connect();
  await ev.until(() => srv.rejected.length >= 5, PATIENCE, 'five rejected handshakes');
  c.close();
  assert.ok(probes.length >= 2, `probed every 2 failures (${probes.length})`);
  assert.ok(probes.every((p) => p === '/custom/session?x=1'));
  assert.equal(ev.of('unauthorized').length, 0);
});

test('a listener may call close() from closed: no reconnect follows', async (t) => {
  const srv = await server(t);
  const ws = counting();
  const c = newClient(t, srv, { WebSocket: ws.WebSocket });
  const ev = collect(c);
  c.on('closed', (d) => { if (!d.terminal) c.close(); });
  c.connect();
  const conn = await srv.next();
  conn.welcome();
  conn.close(1001);
  await ev.until(() => c.state === 'closed', PATIENCE, 'closed');
  await timersUpTo(MAX_DELAY); // any reconnect scheduled has run by now
  assert.equal(ws.n, 1);
  assert.deepEqual(ev.of('closed').map((d) => [d.code, d.terminal]), [[1001, false], [1000, true]]);
});

test('close() stops reconnecting; connect() starts afresh after a terminal close', async (t) => {
  const srv = await server(t);
  const ws = counting();
  const c = newClient(t, srv, { WebSocket: ws.WebSocket, random: () => 1, reconnect: { minDelay: 50, maxDelay: 1000, factor: 2 } });
  const ev = collect(c);
  c.connect();
  const conn = await srv.next();
  conn.welcome();
  conn.close(1001);
  await ev.until(() => c.state === 'reconnecting', PATIENCE, 'reconnecting');
  c.close();
  assert.equal(c.state, 'closed');
  await timersUpTo(50); // the cancelled reconnect was due within 50 ms
  assert.equal(ws.n, 1, 'the pending reconnect was cancelled');
  c.connect();
  const again = await srv.next();
  again.welcome();
  again.close(4500, 'revoked');
  await ev.until((l) => l.some((e) => e.type === 'revoked'), PATIENCE, 'revoked');
  c.connect();
  (await srv.next()).welcome({ conn_id: 'third' });
  await ev.until(() => c.connId === 'third' && c.state === 'open', PATIENCE, 'third open');
  c.close();
  assert.equal(c.attempt, 0);
});
