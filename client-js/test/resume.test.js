// Resume across reconnects (docs/PROTOCOL.md, Positions): resume_* on the
// handshake, the welcome's recovered/lost, deduplication by (stream, epoch,
// offset), against a real scripted WebSocket server (ws package).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { collect, testClient as newClient, testServer as server, PATIENCE } from '../testutil/server.js';

const NAMES = ['state', 'welcome', 'recovered', 'recoveryFailed', 'event', 'revoked', 'expired', 'unauthorized', 'closed', 'error'];

const U = 'a1b2c3d4e5f60718'; // epoch of the user stream
const A = '0f0e0d0c0b0a0908'; // epoch of the broadcast stream

// positions builds a welcome's positions field.
function positions(user, all) {
  const p = {};
  if (user) p.user = { epoch: user[0], offset: user[1] };
  if (all) p.all = { epoch: all[0], offset: all[1] };
  return p;
}

// send sends an event frame with a position; its id and data name it.
function send(conn, stream, epoch, offset) {
  const id = `${stream}:${epoch}:${offset}`;
  conn.send({ type: 'event', id, event: 'n', data: { id }, stream, epoch, offset });
}

// resumeOf returns the resume_* parameters of an accepted connection's
// handshake (absent ones as null).
function resumeOf(conn) {
  const q = new URL(conn.req.url, 'http://x').searchParams;
  return { user: q.get('resume_user'), all: q.get('resume_all'), count: [...q.keys()].filter((k) => k.startsWith('resume_')).length };
}

// delivered returns the ids of the events the app saw, in order.
function delivered(ev) { return ev.of('event').map((e) => e.id); }

// openWith connects c, welcomes its first connection with pos and waits
// for open.
async function openWith(srv, c, ev, pos, extra = {}) {
  c.connect();
  const conn = await srv.next();
  conn.welcome({ positions: pos, ...extra });
  await ev.until(() => c.state === 'open' && c.connId === `c${conn.index}`, PATIENCE, 'open');
  return conn;
}

test('resume parameters are sent on every reconnect, not on the first connect', async (t) => {
  const srv = await server(t);
  const c = newClient(t, srv, { url: srv.url + '?app=x%20y' });
  const ev = collect(c, NAMES);
  const first = await openWith(srv, c, ev, positions([U, 5], [A, 2]));
  assert.deepEqual(resumeOf(first), { user: null, all: null, count: 0 }, 'first connect: nothing to resume');
  assert.deepEqual(c.positions, { user: { epoch: U, offset: 5 }, all: { epoch: A, offset: 2 } }, 'taken from the welcome');
  send(first, 'user', U, 6);
  await ev.until(() => delivered(ev).length === 1, PATIENCE, 'event');
  first.close(1001, 'drain');

  const second = await srv.next();
  assert.deepEqual(resumeOf(second), { user: `${U}:6`, all: `${A}:2`, count: 2 });
  assert.equal(new URL(second.req.url, 'http://x').search.split('&')[0], '?app=x%20y', "the caller's query is kept as it was");
  second.close(1011); // closed before its welcome: the next attempt asks again

  const third = await srv.next();
  assert.deepEqual(resumeOf(third), { user: `${U}:6`, all: `${A}:2`, count: 2 });
  assert.equal(ev.of('recovered').length + ev.of('recoveryFailed').length, 0, 'no welcome answered a resume yet');
});

test('without history (no positions) nothing is resumed and events are as before', async (t) => {
  const srv = await server(t);
  const c = newClient(t, srv);
  const ev = collect(c, NAMES);
  const first = await openWith(srv, c, ev, undefined);
  first.event('e1', 'chat', { a: 1 });
  first.event('e1', 'chat', { a: 1 }); // no position: never deduplicated
  await ev.until(() => delivered(ev).length === 2, PATIENCE, 'events');
  assert.deepEqual(ev.of('event')[0], { id: 'e1', event: 'chat', data: { a: 1 } }, 'no stream/epoch/offset fields');
  assert.deepEqual(c.positions, {});
  first.close(1001);
  const second = await srv.next();
  assert.deepEqual(resumeOf(second), { user: null, all: null, count: 0 });
  second.welcome();
  await ev.until(() => c.state === 'open' && c.connId === 'c2', PATIENCE, 'reopen');
  assert.equal(ev.of('recovered').length + ev.of('recoveryFailed').length, 0);
});

test('duplicates (same epoch, offset <= position) are dropped and counted; a new epoch is delivered', async (t) => {
  const srv = await server(t);
  const c = newClient(t, srv);
  const ev = collect(c, NAMES);
  const conn = await openWith(srv, c, ev, positions([U, 5], [A, 0]));
  const E2 = 'ffff000011112222';
  const frames = [
    ['user', U, 5], // the welcome's position: already seen
    ['user', U, 6],
    ['user', U, 6], // again
    ['all', A, 1], // another stream: its own position
    ['user', U, 4], // behind
    ['user', U, 7],
    ['all', A, 1], // again
    ['user', E2, 1], // a new epoch: delivered, becomes the position
    ['user', E2, 1], // again
    ['user', U, 8], // the old epoch after the new one: a different history, delivered
    ['user', U, 9],
  ];
  for (const f of frames) send(conn, ...f);
  await ev.until(() => delivered(ev).includes(`user:${U}:9`), PATIENCE, 'last event');
  assert.deepEqual(delivered(ev), [`user:${U}:6`, `all:${A}:1`, `user:${U}:7`, `user:${E2}:1`, `user:${U}:8`, `user:${U}:9`]);
  assert.equal(c.duplicates, 5);
  assert.deepEqual(ev.of('event')[1], { id: `all:${A}:1`, event: 'n', data: { id: `all:${A}:1` }, stream: 'all', epoch: A, offset: 1 });
  assert.equal(c.lastEventId, `user:${U}:9`);
  assert.deepEqual(c.positions, { user: { epoch: U, offset: 9 }, all: { epoch: A, offset: 1 } });
});

test('recovered:true keeps the client position: a reconnect right after resends it, not the welcome one', async (t) => {
  const srv = await server(t);
  const c = newClient(t, srv);
  const ev = collect(c, NAMES);
  const first = await openWith(srv, c, ev, positions([U, 5], [A, 2]));
  send(first, 'user', U, 6);
  await ev.until(() => delivered(ev).length === 1, PATIENCE, 'event');
  first.close(1001);

  const second = await srv.next();
  assert.deepEqual(resumeOf(second), { user: `${U}:6`, all: `${A}:2`, count: 2 });
  second.welcome({ positions: positions([U, 10], [A, 4]), recovered: true });
  await ev.until(() => c.state === 'open' && c.connId === 'c2', PATIENCE, 'reopen');
  assert.deepEqual(ev.of('recovered'), [{ streams: ['user', 'all'] }]);
  assert.equal(ev.of('recoveryFailed').length, 0);
  assert.deepEqual(c.positions, { user: { epoch: U, offset: 6 }, all: { epoch: A, offset: 2 } }, 'own positions kept');
  const types = ev.log.map((e) => e.type);
  const at = types.lastIndexOf('recovered');
  assert.deepEqual(types.slice(at - 1, at + 2), ['welcome', 'recovered', 'state'], 'welcome, recovered, then state open');

  second.close(1001); // before the replay arrived
  const third = await srv.next();
  assert.deepEqual(resumeOf(third), { user: `${U}:6`, all: `${A}:2`, count: 2 });
});

test('recovered:false adopts the welcome position of each lost stream and fires recoveryFailed', async (t) => {
  const srv = await server(t);
  const c = newClient(t, srv);
  const ev = collect(c, NAMES);
  const first = await openWith(srv, c, ev, positions([U, 5], [A, 2]));
  send(first, 'user', U, 6);
  await ev.until(() => delivered(ev).length === 1, PATIENCE, 'event');
  first.close(1001);

  const E2 = '00000000deadbeef';
  const second = await srv.next();
  second.welcome({ positions: positions([E2, 3], [A, 9]), recovered: false, lost: ['user'] });
  await ev.until(() => c.state === 'open' && c.connId === 'c2', PATIENCE, 'reopen');
  const want = { user: { epoch: E2, offset: 3 }, all: { epoch: A, offset: 2 } }; // all was recovered: kept
  assert.deepEqual(ev.of('recoveryFailed'), [{ lost: ['user'], positions: want }]);
  assert.equal(ev.of('recovered').length, 0);
  assert.deepEqual(c.positions, want);

  send(second, 'user', E2, 3); // at the adopted position: already covered by the refetch
  send(second, 'user', E2, 4);
  await ev.until(() => delivered(ev).length === 2, PATIENCE, 'event after refetch');
  assert.deepEqual(delivered(ev), [`user:${U}:6`, `user:${E2}:4`]);
  second.close(1001);
  const third = await srv.next();
  assert.deepEqual(resumeOf(third), { user: `${E2}:4`, all: `${A}:2`, count: 2 });
});

test('a welcome that does not answer the resume counts as not recovered', async (t) => {
  const cases = [
    { name: 'no recovered field (a gateway without resume)', extra: {}, lost: ['user', 'all'] },
    { name: 'recovered:false without lost', extra: { recovered: false }, lost: ['user', 'all'] },
    { name: 'recovered:false, lost names a stream not asked for', extra: { recovered: false, lost: ['other'] }, lost: ['user', 'all'] },
  ];
  for (const tc of cases) {
    await t.test(tc.name, async (t) => {
      const srv = await server(t);
      const c = newClient(t, srv);
      const ev = collect(c, NAMES);
      const first = await openWith(srv, c, ev, positions([U, 5], [A, 2]));
      first.close(1001);
      const second = await srv.next();
      second.welcome({ positions: positions([U, 8], [A, 3]), ...tc.extra });
      await ev.until(() => c.state === 'open' && c.connId === 'c2', PATIENCE, 'reopen');
      const want = { user: { epoch: U, offset: 8 }, all: { epoch: A, offset: 3 } };
      assert.deepEqual(ev.of('recoveryFailed'), [{ lost: tc.lost, positions: want }]);
      assert.deepEqual(c.positions, want);
    });
  }
});

test('a replay then live events reach the app once each, in order', async (t) => {
  const srv = await server(t);
  const c = newClient(t, srv);
  const ev = collect(c, NAMES);
  const first = await openWith(srv, c, ev, positions([U, 0], [A, 0]));
  send(first, 'user', U, 1);
  send(first, 'user', U, 2);
  await ev.until(() => delivered(ev).length === 2, PATIENCE, 'two events');
  first.drop(); // events 3..5 are published while the client is away

  const second = await srv.next();
  assert.deepEqual(resumeOf(second), { user: `${U}:2`, all: `${A}:0`, count: 2 });
  second.welcome({ positions: positions([U, 5], [A, 0]), recovered: true });
  for (const n of [3, 4, 5]) send(second, 'user', U, n); // the replay
  for (const n of [4, 5, 6, 7]) send(second, 'user', U, n); // live, overlapping it (a race)
  send(second, 'all', A, 1);
  await ev.until(() => delivered(ev).includes(`all:${A}:1`), PATIENCE, 'last event');
  assert.deepEqual(delivered(ev), [1, 2, 3, 4, 5, 6, 7].map((n) => `user:${U}:${n}`).concat(`all:${A}:1`));
  assert.equal(c.duplicates, 2);
  assert.deepEqual(ev.of('recovered'), [{ streams: ['user', 'all'] }]);
  const firstReplayed = ev.log.findIndex((e) => e.type === 'event' && e.detail.id === `user:${U}:3`);
  assert.ok(ev.log.findIndex((e) => e.type === 'recovered') < firstReplayed, 'recovered fires before the replay');
});

test('close() then connect() resumes; a terminal close forgets the positions', async (t) => {
  const srv = await server(t);
  const c = newClient(t, srv);
  const ev = collect(c, NAMES);
  await openWith(srv, c, ev, positions([U, 5], [A, 2]));
  c.close();
  c.connect();
  const second = await srv.next();
  assert.deepEqual(resumeOf(second), { user: `${U}:5`, all: `${A}:2`, count: 2 });
  second.welcome({ positions: positions([U, 5], [A, 2]), recovered: true });
  await ev.until(() => c.state === 'open' && c.connId === 'c2', PATIENCE, 'reopen');
  second.close(4500, 'revoked');
  await ev.until(() => c.state === 'closed', PATIENCE, 'revoked');
  assert.deepEqual(c.positions, {});
  c.connect(); // a new session, maybe another user: nothing to resume
  const third = await srv.next();
  assert.deepEqual(resumeOf(third), { user: null, all: null, count: 0 });
});

test('positions is a copy; caller resume_* parameters are replaced by the client', async (t) => {
  const srv = await server(t);
  const c = newClient(t, srv, { url: srv.url + '?resume_user=ffff:1&keep=1' });
  assert.equal(c.url, srv.url + '?keep=1');
  const ev = collect(c, NAMES);
  const first = await openWith(srv, c, ev, positions([U, 5], null));
  assert.deepEqual(resumeOf(first), { user: null, all: null, count: 0 });
  const p = c.positions;
  p.user.offset = 99;
  p.all = { epoch: A, offset: 1 };
  assert.deepEqual(c.positions, { user: { epoch: U, offset: 5 } });
  first.close(1001);
  const second = await srv.next();
  assert.deepEqual(resumeOf(second), { user: `${U}:5`, all: null, count: 1 });
});

test('malformed positions are ignored: the event is delivered untracked', async (t) => {
  const srv = await server(t);
  const c = newClient(t, srv);
  const ev = collect(c, NAMES);
  const conn = await openWith(srv, c, ev, { user: { epoch: 'NOT-HEX', offset: 1 }, all: { epoch: A, offset: -1 } });
  assert.deepEqual(c.positions, {});
  const bad = [
    { stream: 'user', epoch: U, offset: 2 ** 53 }, // past exact JS integers
    { stream: 'user', epoch: U, offset: 1.5 },
    { stream: 'user', epoch: U, offset: '3' },
    { stream: 'user', epoch: '', offset: 0 },
    { stream: 'user', epoch: 'x'.repeat(3), offset: 1 },
    { stream: 'user', epoch: 'a'.repeat(65), offset: 1 },
  ];
  for (const [i, b] of bad.entries()) conn.send({ type: 'event', id: `b${i}`, event: 'n', data: null, ...b });
  await ev.until(() => delivered(ev).length === bad.length, PATIENCE, 'events');
  for (const d of ev.of('event')) assert.equal(d.stream, undefined, `${d.id} delivered without a position`);
  assert.deepEqual(c.positions, {});
  assert.equal(c.duplicates, 0);
});
