// Client messages (docs/PROTOCOL.md, client -> server "message"): send()
// returns a promise settled by the gateway's ack or error frame, a timeout,
// or the connection's end; messages sent while not connected are held and
// sent after the next welcome. Against a real scripted WebSocket server (ws).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SendErrorCodes } from '../src/index.js';
import { collect, testClient as newClient, testServer as server, PATIENCE } from '../testutil/server.js';

// The id syntax the gateway accepts for a client message.
const ID = /^[A-Za-z0-9_.:-]{1,64}$/;

// send calls c.send and checks it returned a promise (the old send
// returned a boolean), with a rejection handler attached at once so that a
// promise the test has not awaited yet never counts as unhandled.
function send(c, data, opts) {
  const p = c.send(data, opts);
  assert.ok(p instanceof Promise, `send returned ${typeof p}, not a Promise`);
  p.catch(() => {});
  return p;
}

// settled reports how p has settled so far ('pending', 'resolved',
// 'rejected:<code>'). setImmediate runs once every queued promise reaction
// has run, so a promise settled before the call is never seen as pending:
// an ordering barrier, not a wait for time to pass (and not a mocked timer).
async function settled(p) {
  let state = 'pending';
  p.then(() => { state = 'resolved'; }, (e) => { state = `rejected:${e.code}`; });
  await new Promise((resolve) => setImmediate(resolve));
  return state;
}

// open connects c and waits for the first connection's welcome.
async function open(srv, c, ev) {
  c.connect();
  const conn = await srv.next();
  conn.welcome();
  await ev.until(() => c.state === 'open' && c.connId === `c${conn.index}`, PATIENCE, 'open');
  return conn;
}

// reconnecting closes conn from the server and waits until the client has
// noticed: from now on it holds what it is given.
async function reconnecting(c, ev, conn, code = 1001) {
  const n = ev.of('closed').length;
  conn.close(code, 'bye');
  await ev.until(() => ev.of('closed').length === n + 1, PATIENCE, 'closed');
  assert.notEqual(c.state, 'open');
}

// noFrameBefore proves that conn received nothing before this point: the
// client answers a ping at once, so a frame it sent earlier would arrive
// before the pong (one TCP connection keeps order).
async function noFrameBefore(conn) {
  conn.ping();
  assert.deepEqual(await conn.nextMessage(), { type: 'pong' });
}

test('an ack resolves send with the message id and the queue id', async (t) => {
  const srv = await server(t);
  const c = newClient(t, srv);
  const ev = collect(c);
  const conn = await open(srv, c, ev);

  const p1 = send(c, { text: 'hello', n: [1, 2] }, { event: 'echo' });
  const p2 = send(c, 'plain string');
  const m1 = await conn.nextMessage();
  const m2 = await conn.nextMessage();
  assert.match(m1.id, ID);
  assert.match(m2.id, ID);
  assert.notEqual(m1.id, m2.id, 'ids are unique per client');
  assert.deepEqual(m1, { type: 'message', id: m1.id, event: 'echo', data: { text: 'hello', n: [1, 2] } });
  assert.deepEqual(m2, { type: 'message', id: m2.id, data: 'plain string' }, 'no event key without an event');

  conn.send({ type: 'ack', id: m2.id, msg_id: '3-1700000000000-1' }); // acks in any order
  conn.send({ type: 'ack', id: m1.id, msg_id: '3-1700000000000-0' });
  assert.deepEqual(await p2, { id: m2.id, msgId: '3-1700000000000-1' });
  assert.deepEqual(await p1, { id: m1.id, msgId: '3-1700000000000-0' });
  assert.equal(ev.of('error').length, 0);
});

test('ids of two clients differ (random prefix), both in the gateway syntax', async (t) => {
  const srv = await server(t);
  const ids = [];
  for (let i = 0; i < 2; i++) {
    const c = newClient(t, srv);
    const ev = collect(c);
    const conn = await open(srv, c, ev);
    send(c, { i });
    ids.push((await conn.nextMessage()).id);
  }
  assert.notEqual(ids[0], ids[1]);
  for (const id of ids) assert.match(id, ID);
});

test('an error frame rejects send with its code; the connection stays open', async (t) => {
  const srv = await server(t);
  const c = newClient(t, srv);
  const ev = collect(c);
  const conn = await open(srv, c, ev);
  for (const code of ['too_large', 'rate_limited', 'queue_full', 'unavailable', 'invalid']) {
    const p = send(c, { code });
    const m = await conn.nextMessage();
    conn.send({ type: 'error', id: m.id, code, message: `refused: ${code}` });
    await assert.rejects(p, (err) => {
      assert.equal(err.code, code);
      assert.equal(err.id, m.id);
      assert.match(err.message, new RegExp(`refused: ${code}`));
      return true;
    });
  }
  assert.equal(c.state, 'open');
  assert.equal(ev.of('closed').length, 0);
  assert.equal(ev.of('error').length, 0, 'a refusal that settles a send is not also an error event');
  assert.equal(SendErrorCodes.QUEUE_FULL, 'queue_full');
});

test('an error frame without a pending id fires error; late answers are ignored', async (t) => {
  const srv = await server(t);
  const c = newClient(t, srv);
  const ev = collect(c);
  const conn = await open(srv, c, ev);
  const p = send(c, { n: 1 }, { timeout: 1 });
  const m = await conn.nextMessage();
  await assert.rejects(p, { code: 'timeout' });
  conn.send({ type: 'ack', id: m.id, msg_id: 'late' }); // after the timeout: ignored
  conn.send({ type: 'error', id: m.id, code: 'queue_full', message: 'late' }); // ignored too
  conn.send({ type: 'error', code: 'invalid', message: 'bad frame' });
  await ev.until(() => ev.of('error').length === 1, PATIENCE, 'error event');
  assert.deepEqual(ev.of('error'), [{ message: 'sessiongate: server error invalid: bad frame', errorCode: 'invalid' }]);
  assert.equal(c.state, 'open');
});

// The timeout runs on node:test's fake timers, enabled once the connection
// is open (the client's watchdog and the ws package keep their real ones).
test('no answer: send rejects with timeout after sendTimeout (default 10 s), or the per-call timeout', async (t) => {
  const srv = await server(t);
  const cases = [
    { name: 'default', opts: {}, call: undefined, ms: 10000 },
    { name: 'sendTimeout option', opts: { sendTimeout: 2500 }, call: undefined, ms: 2500 },
    { name: 'per-call timeout', opts: { sendTimeout: 2500 }, call: { timeout: 700 }, ms: 700 },
  ];
  for (const tc of cases) {
    await t.test(tc.name, async (t) => {
      const c = newClient(t, srv, tc.opts);
      const ev = collect(c);
      const conn = await open(srv, c, ev);
      t.mock.timers.enable({ apis: ['setTimeout'] });
      try {
        const p = send(c, { q: 1 }, tc.call);
        const m = await conn.nextMessage();
        t.mock.timers.tick(tc.ms - 1);
        assert.equal(await settled(p), 'pending', `still waiting at ${tc.ms - 1} ms`);
        t.mock.timers.tick(1);
        assert.equal(await settled(p), 'rejected:timeout');
        await assert.rejects(p, (err) => err.code === 'timeout' && err.id === m.id);
      } finally {
        t.mock.timers.reset();
      }
      assert.equal(c.state, 'open', 'a timeout does not close the connection');
    });
  }
});

test('the connection closing before the ack rejects with disconnected; nothing is resent', async (t) => {
  for (const [name, end] of [['close 1001', (conn) => conn.close(1001, 'drain')], ['dropped TCP', (conn) => conn.drop()]]) {
    await t.test(name, async (t) => {
      const srv = await server(t);
      const c = newClient(t, srv);
      const ev = collect(c);
      const first = await open(srv, c, ev);
      const p = send(c, { n: 1 }, { event: 'echo' });
      const m = await first.nextMessage();
      end(first);
      await assert.rejects(p, (err) => {
        assert.equal(err.code, 'disconnected');
        assert.equal(err.id, m.id);
        assert.match(err.message, /may or may not have been queued/);
        return true;
      });
      const second = await srv.next();
      second.welcome();
      await ev.until(() => c.state === 'open' && c.connId === 'c2', PATIENCE, 'reopen');
      const p2 = send(c, { n: 2 });
      const m2 = await second.nextMessage();
      assert.deepEqual(m2.data, { n: 2 }, 'the unacked message was not resent by the client');
      second.send({ type: 'ack', id: m2.id, msg_id: 'q2' });
      assert.equal((await p2).msgId, 'q2');
    });
  }
});

test('messages sent while connecting or reconnecting are held and sent after the welcome, in order', async (t) => {
  const srv = await server(t);
  const c = newClient(t, srv);
  const ev = collect(c);
  c.connect();
  const early = send(c, { n: 0 }); // before the first welcome
  const first = await srv.next();
  await noFrameBefore(first);
  first.welcome();
  const m0 = await first.nextMessage();
  assert.deepEqual(m0.data, { n: 0 });
  first.send({ type: 'ack', id: m0.id, msg_id: 'q0' });
  assert.equal((await early).msgId, 'q0');

  await reconnecting(c, ev, first);
  const held = [send(c, { n: 1 }, { event: 'a' }), send(c, { n: 2 })];
  const second = await srv.next();
  held.push(send(c, { n: 3 }, { event: 'c' })); // connecting, no welcome yet
  await noFrameBefore(second);
  // A listener sending as the connection opens goes after the held ones.
  const fromListener = [];
  const off = c.on('state', ({ state }) => { if (state === 'open') fromListener.push(send(c, { n: 4 })); });
  second.welcome();
  const got = [];
  for (let i = 0; i < 4; i++) got.push(await second.nextMessage());
  off();
  assert.deepEqual(got.map((m) => [m.event ?? null, m.data.n]), [['a', 1], [null, 2], ['c', 3], [null, 4]]);
  for (const m of got) second.send({ type: 'ack', id: m.id, msg_id: `q${m.data.n}` });
  const results = await Promise.all([...held, ...fromListener]);
  assert.deepEqual(results.map((r) => r.msgId), ['q1', 'q2', 'q3', 'q4']);
  assert.equal(new Set(got.map((m) => m.id)).size, 4);
});

test('held messages are bounded by maxPending: over it send rejects at once with backpressure', async (t) => {
  const srv = await server(t);
  const c = newClient(t, srv, { maxPending: 3 });
  const ev = collect(c);
  const first = await open(srv, c, ev);
  await reconnecting(c, ev, first);
  const held = [1, 2, 3].map((n) => send(c, { n }));
  const over = send(c, { n: 4 });
  assert.equal(await settled(over), 'rejected:backpressure', 'rejected at once');
  await assert.rejects(over, { code: 'backpressure' });
  const second = await srv.next();
  second.welcome();
  const got = [];
  for (let i = 0; i < 3; i++) got.push(await second.nextMessage());
  assert.deepEqual(got.map((m) => m.data.n), [1, 2, 3]);
  for (const m of got) second.send({ type: 'ack', id: m.id, msg_id: `q${m.data.n}` });
  assert.deepEqual((await Promise.all(held)).map((r) => r.msgId), ['q1', 'q2', 'q3']);
  // Open again: the bound is on held messages only, not on those in flight.
  const inFlight = [5, 6, 7, 8, 9].map((n) => send(c, { n }));
  for (let i = 0; i < inFlight.length; i++) {
    const m = await second.nextMessage();
    second.send({ type: 'ack', id: m.id, msg_id: `q${m.data.n}` });
  }
  assert.equal((await Promise.all(inFlight)).length, 5);
});

test('maxPending 0 never holds, and still sends while open', async (t) => {
  const srv = await server(t);
  const c = newClient(t, srv, { maxPending: 0 });
  const ev = collect(c);
  c.connect();
  await assert.rejects(send(c, { n: 0 }), { code: 'backpressure' });
  const conn = await srv.next();
  conn.welcome();
  await ev.until(() => c.state === 'open', PATIENCE, 'open');
  const p = send(c, { n: 1 });
  const m = await conn.nextMessage();
  assert.deepEqual(m.data, { n: 1 });
  conn.send({ type: 'ack', id: m.id, msg_id: 'q1' });
  assert.equal((await p).msgId, 'q1');
});

test('a held message that times out is dropped, never sent later', async (t) => {
  const srv = await server(t);
  const c = newClient(t, srv);
  const ev = collect(c);
  const first = await open(srv, c, ev);
  await reconnecting(c, ev, first);
  await assert.rejects(send(c, { n: 1 }, { timeout: 1 }), { code: 'timeout' });
  const kept = send(c, { n: 2 });
  const second = await srv.next();
  second.welcome();
  const m = await second.nextMessage();
  assert.deepEqual(m.data, { n: 2 }, 'the timed-out message was not sent');
  second.send({ type: 'ack', id: m.id, msg_id: 'q2' });
  assert.equal((await kept).msgId, 'q2');
});

test('a terminal close or close() rejects held messages with closed, sent ones with disconnected', async (t) => {
  await t.test('terminal close code while reconnecting', async (t) => {
    const srv = await server(t);
    const c = newClient(t, srv);
    const ev = collect(c);
    const first = await open(srv, c, ev);
    await reconnecting(c, ev, first);
    const held = [send(c, { n: 1 }), send(c, { n: 2 })];
    const second = await srv.next();
    second.close(4500, 'revoked'); // before its welcome: nothing was sent on it
    for (const p of held) await assert.rejects(p, { code: 'closed' });
    assert.equal(c.state, 'closed');
    await assert.rejects(send(c, { n: 3 }), { code: 'closed' }, 'send on a closed client');
  });

  await t.test('terminal close code with a message in flight', async (t) => {
    const srv = await server(t);
    const c = newClient(t, srv);
    const ev = collect(c);
    const conn = await open(srv, c, ev);
    const p = send(c, { n: 1 });
    await conn.nextMessage();
    conn.close(4501, 'expired');
    await assert.rejects(p, { code: 'disconnected' });
  });

  await t.test('close()', async (t) => {
    const srv = await server(t);
    const c = newClient(t, srv);
    const ev = collect(c);
    const conn = await open(srv, c, ev);
    const sent = send(c, { n: 1 });
    await conn.nextMessage();
    await reconnecting(c, ev, conn);
    const inFlightLost = sent; // already rejected by the reconnect
    await assert.rejects(inFlightLost, { code: 'disconnected' });
    const held = send(c, { n: 2 });
    c.close();
    await assert.rejects(held, { code: 'closed' });
    await assert.rejects(send(c, { n: 3 }), { code: 'closed' }, 'before connect() again');
  });
});

test('data that cannot be sent is refused with invalid, nothing is sent', async (t) => {
  const srv = await server(t);
  const c = newClient(t, srv);
  const ev = collect(c);
  const conn = await open(srv, c, ev);
  const cyclic = {};
  cyclic.self = cyclic;
  const cases = [
    { name: 'undefined', data: undefined },
    { name: 'null', data: null },
    { name: 'a function', data: () => 1 },
    { name: 'a cycle', data: cyclic },
    { name: 'a BigInt', data: 1n },
    { name: 'NaN (serialised as null)', data: NaN },
    { name: 'toJSON returning null', data: { toJSON: () => null } },
    { name: 'an empty event', data: { a: 1 }, opts: { event: '' } },
    { name: 'an event that is not a string', data: { a: 1 }, opts: { event: 7 } },
    { name: 'a timeout of 0', data: { a: 1 }, opts: { timeout: 0 } },
  ];
  for (const tc of cases) {
    await assert.rejects(send(c, tc.data, tc.opts), { code: 'invalid' }, tc.name);
  }
  const ok = send(c, { fine: true });
  const m = await conn.nextMessage();
  assert.deepEqual(m.data, { fine: true }, 'no frame for any refused send');
  conn.send({ type: 'ack', id: m.id, msg_id: 'q' });
  await ok;
});

test('data is serialised when send is called', async (t) => {
  const srv = await server(t);
  const c = newClient(t, srv);
  const ev = collect(c);
  const first = await open(srv, c, ev);
  await reconnecting(c, ev, first);
  const data = { n: 1 };
  send(c, data);
  data.n = 2; // changed while the message is held
  const second = await srv.next();
  second.welcome();
  assert.deepEqual((await second.nextMessage()).data, { n: 1 });
});
