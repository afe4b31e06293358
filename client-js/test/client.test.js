// Protocol basics against a real scripted WebSocket server (ws package).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { SessionGateClient, CloseCodes, isTerminalCode } from '../src/index.js';
import { collect, testClient as newClient, testServer as server, PATIENCE } from '../testutil/server.js';

test('welcome sets identity, fires welcome then state open', async (t) => {
  const srv = await server(t);
  const c = newClient(t, srv);
  const ev = collect(c);
  assert.equal(c.state, 'closed');
  c.connect();
  assert.equal(c.state, 'connecting');
  const conn = await srv.next();
  conn.welcome({ conn_id: 'conn-42', user_id: 'bob', instance: 'gw-7', ping_interval_ms: 1234 });
  await ev.until(() => c.state === 'open', PATIENCE, 'state open');
  assert.equal(c.connId, 'conn-42');
  assert.equal(c.userId, 'bob');
  assert.equal(c.instance, 'gw-7');
  assert.deepEqual(ev.of('welcome'), [{ connId: 'conn-42', userId: 'bob', instance: 'gw-7', pingIntervalMs: 1234 }]);
  assert.deepEqual(ev.of('state').map((s) => s.state), ['connecting', 'open']);
  const types = ev.log.map((e) => e.type);
  assert.ok(types.indexOf('welcome') < types.lastIndexOf('state'), 'welcome fires before state open');
});

test('events are dispatched in order and lastEventId follows them', async (t) => {
  const srv = await server(t);
  const c = newClient(t, srv);
  const ev = collect(c);
  const viaOn = [];
  const off = c.on('event', (detail) => viaOn.push(detail.id));
  c.connect();
  const conn = await srv.next();
  conn.welcome();
  conn.event('1-0', 'chat', { text: 'hi' });
  conn.event('2-0', 'notice', { n: 2 });
  conn.send({ type: 'future-frame', x: 1 }); // unknown types are ignored
  conn.event('3-0', 'chat', null);
  await ev.until((l) => l.filter((e) => e.type === 'event').length === 3, PATIENCE, '3 events');
  assert.deepEqual(ev.of('event'), [
    { id: '1-0', event: 'chat', data: { text: 'hi' } },
    { id: '2-0', event: 'notice', data: { n: 2 } },
    { id: '3-0', event: 'chat', data: null },
  ]);
  assert.equal(c.lastEventId, '3-0');
  assert.deepEqual(viaOn, ['1-0', '2-0', '3-0']);
  off();
  conn.event('4-0', 'chat', {});
  await ev.until((l) => l.filter((e) => e.type === 'event').length === 4, PATIENCE, '4th event');
  assert.deepEqual(viaOn, ['1-0', '2-0', '3-0'], 'unsubscribed listener is not called');
});

test('every ping is answered with a pong', async (t) => {
  const srv = await server(t);
  const c = newClient(t, srv);
  c.connect();
  const conn = await srv.next();
  conn.welcome();
  for (let i = 0; i < 3; i++) {
    conn.ping();
    assert.deepEqual(await conn.nextMessage(), { type: 'pong' });
  }
  assert.equal(conn.messages.length, 0);
});

test('send wraps data in a message frame with an id; refused with closed when the client is closed', async (t) => {
  const srv = await server(t);
  const c = newClient(t, srv);
  const ev = collect(c);
  await assert.rejects(c.send({ a: 1 }), { code: 'closed' }, 'before connect');
  c.connect();
  const conn = await srv.next();
  conn.welcome();
  await ev.until(() => c.state === 'open', PATIENCE, 'open');
  const sent = c.send({ text: 'hello', n: [1, 2] });
  const m = await conn.nextMessage();
  assert.deepEqual(m, { type: 'message', id: m.id, data: { text: 'hello', n: [1, 2] } });
  conn.send({ type: 'ack', id: m.id, msg_id: 'q1' });
  assert.deepEqual(await sent, { id: m.id, msgId: 'q1' });
  c.close();
  await assert.rejects(c.send({ a: 1 }), { code: 'closed' }, 'after close');
});

test('malformed frames fire error and do not break the connection', async (t) => {
  const srv = await server(t);
  const c = newClient(t, srv);
  const ev = collect(c);
  c.connect();
  const conn = await srv.next();
  conn.welcome();
  conn.send('{not json');
  conn.send('42');
  conn.ws.send(Buffer.from([1, 2, 3]), { binary: true });
  conn.event('e1', 'ok', {});
  await ev.until((l) => l.some((e) => e.type === 'event'), PATIENCE, 'event after junk');
  assert.equal(ev.of('error').length, 2, 'non-JSON and binary frames are reported');
  assert.equal(c.state, 'open');
});

test('token is sent as a Bearer header, alongside webSocketOptions headers', async (t) => {
  const seen = [];
  const srv = await server(t, {
    authorize: (req) => {
      seen.push({ auth: req.headers.authorization, extra: req.headers['x-extra'] });
      return req.headers.authorization === 'Bearer s3cret-token' ? 101 : 401;
    },
  });
  const c = newClient(t, srv, { token: 's3cret-token', webSocketOptions: { headers: { 'X-Extra': 'yes' } } });
  const ev = collect(c);
  c.connect();
  const conn = await srv.next();
  conn.welcome();
  await ev.until(() => c.state === 'open', PATIENCE, 'open');
  assert.deepEqual(seen, [{ auth: 'Bearer s3cret-token', extra: 'yes' }]);
});

test('no Authorization header without a token', async (t) => {
  const seen = [];
  const srv = await server(t, { authorize: (req) => { seen.push(req.headers.authorization); return 101; } });
  const c = newClient(t, srv);
  c.connect();
  await srv.next();
  assert.deepEqual(seen, [undefined]);
});

test('a 401 handshake with a token is terminal: unauthorized, no retry', async (t) => {
  const srv = await server(t, { authorize: () => 401 });
  const c = newClient(t, srv, { token: 'wrong' });
  const ev = collect(c);
  c.connect();
  await ev.until((l) => l.some((e) => e.type === 'unauthorized'), PATIENCE, 'unauthorized');
  assert.equal(c.state, 'closed');
  assert.equal(srv.rejected.length, 1);
  assert.deepEqual(ev.of('closed').at(-1), { code: CloseCodes.UNAUTHORIZED, reason: 'handshake rejected with HTTP 401', terminal: true });
  assert.ok(ev.of('error').some((e) => e.status === 401));
});

test('constructor validates options', () => {
  const cases = [
    { name: 'no url outside a browser', opts: { WebSocket }, err: TypeError },
    { name: 'bad scheme', opts: { WebSocket, url: 'ftp://x/ws' }, err: TypeError },
    { name: 'empty token', opts: { WebSocket, url: 'ws://x/ws', token: '' }, err: TypeError },
    { name: 'negative delay', opts: { WebSocket, url: 'ws://x/ws', reconnect: { minDelay: -1 } }, err: RangeError },
    { name: 'max below min', opts: { WebSocket, url: 'ws://x/ws', reconnect: { minDelay: 10, maxDelay: 5 } }, err: RangeError },
    { name: 'factor below 1', opts: { WebSocket, url: 'ws://x/ws', reconnect: { factor: 0.5 } }, err: RangeError },
    { name: 'zero connect timeout', opts: { WebSocket, url: 'ws://x/ws', connectTimeout: 0 }, err: RangeError },
    { name: 'zero send timeout', opts: { WebSocket, url: 'ws://x/ws', sendTimeout: 0 }, err: RangeError },
    { name: 'send timeout past setTimeout', opts: { WebSocket, url: 'ws://x/ws', sendTimeout: 2 ** 31 }, err: RangeError },
    { name: 'negative maxPending', opts: { WebSocket, url: 'ws://x/ws', maxPending: -1 }, err: RangeError },
    { name: 'webSocketOptions not an object', opts: { WebSocket, url: 'ws://x/ws', webSocketOptions: 'x' }, err: TypeError },
  ];
  for (const tc of cases) {
    assert.throws(() => new SessionGateClient(tc.opts), tc.err, tc.name);
  }
});

test('url accepts http(s) and normalises to ws(s)', () => {
  const cases = [
    { name: 'ws', in: 'ws://h:1/ws', want: 'ws://h:1/ws' },
    { name: 'http', in: 'http://h/ws', want: 'ws://h/ws' },
    { name: 'https', in: 'https://h/ws?x=1#frag', want: 'wss://h/ws?x=1' },
  ];
  for (const tc of cases) {
    assert.equal(new SessionGateClient({ WebSocket, url: tc.in }).url, tc.want, tc.name);
  }
});

test('close codes: terminal set matches the protocol', () => {
  const cases = [
    { name: 'going away', code: 1001, terminal: false },
    { name: 'abnormal', code: 1006, terminal: false },
    { name: 'internal', code: 1011, terminal: false },
    { name: 'slow consumer', code: 4000, terminal: false },
    { name: 'heartbeat timeout', code: 4001, terminal: false },
    { name: 'too big', code: 1009, terminal: true },
    { name: 'revoked', code: 4500, terminal: true },
    { name: 'expired', code: 4501, terminal: true },
    { name: 'unauthorized', code: 4502, terminal: true },
    { name: 'protocol error', code: 4503, terminal: true },
    { name: 'session lost', code: 4504, terminal: true },
  ];
  for (const tc of cases) assert.equal(isTerminalCode(tc.code), tc.terminal, tc.name);
});
