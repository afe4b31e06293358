// The gateway's demo page (gateway/web/index.html, which the gateway serves
// at /) in real headless Chromium, with this library as /client.js and a
// scripted WebSocket endpoint: it shows each event's stream and offset, the
// client's positions, and after a reconnect whether it was recovered.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startServer } from '../testutil/server.js';
import { launchChromium } from '../testutil/chromium.js';

const LIB = readFileSync(new URL('../src/index.js', import.meta.url));
const DEMO = readFileSync(new URL('../../gateway/web/index.html', import.meta.url));

const U = 'a1b2c3d4e5f60718';
const A = '0f0e0d0c0b0a0908';
const U2 = '00000000deadbeef';

// demoServer serves the demo page, the library and a valid session, and
// scripts /ws; closed when t ends.
async function demoServer(t) {
  const srv = await startServer({
    http: (req, res) => {
      switch (new URL(req.url, 'http://x').pathname) {
        case '/':
          res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(DEMO);
          return;
        case '/client.js':
          res.writeHead(200, { 'Content-Type': 'text/javascript; charset=utf-8' }).end(LIB);
          return;
        case '/auth/session':
          res.writeHead(200, { 'Content-Type': 'application/json' })
            .end(JSON.stringify({ user_id: 'alice', handle: 'f'.repeat(64), expires_at: '2030-01-01T00:00:00Z' }));
          return;
        default:
          res.writeHead(404).end();
      }
    },
  });
  t.after(() => srv.close());
  return srv;
}

test('demo page: offsets, positions and the recovered badge', { timeout: 120000 }, async (t) => {
  const srv = await demoServer(t);
  const context = await launchChromium(t);
  const page = context.pages()[0] ?? (await context.newPage());
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  // A hang detector, not a speed bound.
  const until = (fn, arg) => page.waitForFunction(fn, arg, { timeout: 30000 });
  const shown = () => page.evaluate(() => {
    const b = document.getElementById('recovered-badge');
    const p = document.getElementById('positions');
    return {
      badge: { hidden: b.hidden, text: b.textContent, recovered: b.dataset.recovered, lost: b.dataset.lost ?? '' },
      positions: { user: p.dataset.user, all: p.dataset.all, text: p.textContent },
      offsets: window.sg.events.map((e) => [e.stream, e.offset]),
    };
  });

  await page.goto(`${srv.origin}/`); // the page finds the session and connects
  const first = await srv.next(30000);
  assert.equal(new URL(first.req.url, 'http://x').search, '', 'the first connect resumes nothing');
  first.welcome({ positions: { user: { epoch: U, offset: 4 }, all: { epoch: A, offset: 0 } } });
  await until(() => document.getElementById('positions').dataset.user !== '');
  let s = await shown();
  assert.deepEqual(s.positions, { user: `${U}:4`, all: `${A}:0`, text: `user ${U}:4 · all ${A}:0` });
  assert.equal(s.badge.hidden, true, 'no badge before a reconnect');

  first.send({ type: 'event', id: 'e5', event: 'greeting', data: { n: 1 }, stream: 'user', epoch: U, offset: 5 });
  await until(() => document.getElementById('log').textContent.includes('event greeting {"n":1}  [user 5]'));
  assert.equal((await shown()).positions.user, `${U}:5`);
  first.drop();

  const second = await srv.next(30000);
  assert.equal(new URL(second.req.url, 'http://x').searchParams.get('resume_user'), `${U}:5`);
  second.welcome({ positions: { user: { epoch: U, offset: 6 }, all: { epoch: A, offset: 0 } }, recovered: true });
  for (const n of [6, 6]) second.send({ type: 'event', id: `e${n}`, event: 'replayed', data: null, stream: 'user', epoch: U, offset: n });
  second.send({ type: 'event', id: 'b1', event: 'live', data: null, stream: 'all', epoch: A, offset: 1 });
  await until(() => window.sg.events.length === 3);
  s = await shown();
  assert.deepEqual(s.badge, { hidden: false, text: 'recovered', recovered: 'true', lost: '' });
  const badgeColor = () => page.evaluate(() => getComputedStyle(document.getElementById('recovered-badge')).backgroundColor);
  assert.equal(await badgeColor(), 'rgb(23, 114, 69)', 'green');
  assert.deepEqual(s.offsets, [['user', 5], ['user', 6], ['all', 1]], 'the duplicate is not shown');
  assert.deepEqual(s.positions, { user: `${U}:6`, all: `${A}:1`, text: `user ${U}:6 · all ${A}:1` });

  second.close(1001, 'draining');
  const third = await srv.next(30000);
  third.welcome({ positions: { user: { epoch: U2, offset: 9 }, all: { epoch: A, offset: 1 } }, recovered: false, lost: ['user'] });
  await until(() => document.getElementById('recovered-badge').dataset.recovered === 'false');
  s = await shown();
  assert.deepEqual(s.badge, { hidden: false, text: 'not recovered: refetch', recovered: 'false', lost: 'user' });
  assert.deepEqual(s.positions, { user: `${U2}:9`, all: `${A}:1`, text: `user ${U2}:9 · all ${A}:1` });
  assert.equal(await badgeColor(), 'rgb(176, 0, 32)', 'red');

  assert.deepEqual(pageErrors, []);
});

test('demo page: the message button sends "echo", logs the ack or the error code and the reply event', { timeout: 120000 }, async (t) => {
  const srv = await demoServer(t);
  const context = await launchChromium(t);
  const page = context.pages()[0] ?? (await context.newPage());
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  const until = (fn, arg) => page.waitForFunction(fn, arg, { timeout: 30000 }); // a hang detector
  const logged = (text) => until((t) => document.getElementById('log').textContent.includes(t), text);

  await page.goto(`${srv.origin}/`);
  const conn = await srv.next(30000);
  conn.welcome();
  await until(() => !document.getElementById('send-btn').disabled);

  await page.fill('#msg', '{"text":"hi"}');
  await page.click('#send-btn');
  const m1 = await conn.nextMessage();
  assert.deepEqual(m1, { type: 'message', id: m1.id, event: 'echo', data: { text: 'hi' } });
  conn.send({ type: 'ack', id: m1.id, msg_id: '3-1700000000000-0' });
  await logged('ack 3-1700000000000-0');
  // The example worker's reply is an ordinary event.
  conn.send({ type: 'event', id: 'r1', event: 'echo.reply', data: { text: 'hi' } });
  await logged('event echo.reply {"text":"hi"}');

  await page.click('#send-btn');
  const m2 = await conn.nextMessage();
  assert.notEqual(m2.id, m1.id);
  conn.send({ type: 'error', id: m2.id, code: 'queue_full', message: 'the queue is full' });
  await logged('error queue_full');
  assert.deepEqual(await page.evaluate(() => window.sg.sends), [
    { id: m1.id, msgId: '3-1700000000000-0' },
    { id: m2.id, code: 'queue_full' },
  ]);

  // While the client reconnects the button's message is held, then sent
  // after the welcome.
  conn.drop();
  await until(() => window.sg.client.state !== 'open');
  await page.fill('#msg', '{"n":3}');
  await page.click('#send-btn');
  const second = await srv.next(30000);
  second.welcome();
  const m3 = await second.nextMessage();
  assert.deepEqual(m3, { type: 'message', id: m3.id, event: 'echo', data: { n: 3 } });
  second.send({ type: 'ack', id: m3.id, msg_id: 'q3' });
  await logged('ack q3');

  await page.fill('#msg', 'not json');
  await page.click('#send-btn');
  await logged('not JSON');
  assert.deepEqual(pageErrors, []);
});
