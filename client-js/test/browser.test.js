// The library itself in real headless Chromium (system /usr/bin/chromium via
// playwright-core; no browser download). One Node server on a free port
// serves the page, src/index.js, a cookie login and the session endpoint, and
// a scripted WebSocket endpoint /ws that rejects upgrades without the cookie
// with HTTP 401, like the gateway.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startServer } from '../testutil/server.js';
import { launchChromium } from '../testutil/chromium.js';

const LIB = readFileSync(new URL('../src/index.js', import.meta.url));
const COOKIE = 'sg_session';
const COOKIE_VALUE = 'opaque-test-session-value';

const PAGE = `<!doctype html>
<meta charset="utf-8"><title>sessiongate client test</title>
<script type="module">
import { SessionGateClient } from '/index.js';
window.SessionGateClient = SessionGateClient;
// Count WebSocket constructions: a reconnect shows the moment its timer
// fires, before any network round trip.
const NativeWebSocket = window.WebSocket;
window.WebSocket = class extends NativeWebSocket {
  constructor(...args) { super(...args); window.wsCount++; }
};
const names = ['state', 'welcome', 'event', 'revoked', 'expired', 'unauthorized', 'closed', 'error'];
window.start = (opts = {}) => {
  const c = new SessionGateClient({ reconnect: { minDelay: 20, maxDelay: 200, factor: 2 }, random: () => 0.5, ...opts });
  window.log = [];
  window.wsCount = 0;
  for (const n of names) c.addEventListener(n, (e) => window.log.push({ type: n, detail: e.detail }));
  window.client = c;
  c.connect();
  return c.url;
};
window.count = (type) => window.log.filter((e) => e.type === type).length;
window.ready = true;
</script>`;

function hasCookie(req) {
  return (req.headers.cookie ?? '').split(/;\s*/).includes(`${COOKIE}=${COOKIE_VALUE}`);
}

test('browser: cookie auth, events, pong, drain reconnect, revoke, 401 probe', { timeout: 90000 }, async (t) => {
  const probes = [];
  const upgrades = [];
  const srv = await startServer({
    authorize: (req) => {
      upgrades.push({ origin: req.headers.origin, cookie: hasCookie(req) });
      return hasCookie(req) ? 101 : 401;
    },
    http: (req, res) => {
      const url = new URL(req.url, 'http://x');
      switch (url.pathname) {
        case '/':
          res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(PAGE);
          return;
        case '/index.js':
          res.writeHead(200, { 'Content-Type': 'text/javascript; charset=utf-8' }).end(LIB);
          return;
        case '/login':
          res.writeHead(204, { 'Set-Cookie': `${COOKIE}=${COOKIE_VALUE}; Path=/; HttpOnly; SameSite=Lax` }).end();
          return;
        case '/auth/session':
          probes.push({ cookie: hasCookie(req) });
          if (hasCookie(req)) res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"user_id":"alice"}');
          else res.writeHead(401, { 'Content-Type': 'application/json' }).end('{"error":{"code":"unauthorized","message":"no session"}}');
          return;
        default:
          res.writeHead(404).end();
      }
    },
  });
  t.after(() => srv.close());

  const context = await launchChromium(t); // fails the test without Chromium
  // A fake clock that flows as usual until runFor jumps it ahead: "no
  // reconnect" is then proven by running every pending timer, not by
  // sleeping and hoping the machine was fast enough.
  await context.clock.install();
  const runAllTimers = () => context.clock.runFor(10 * 60 * 1000);
  const page = context.pages()[0] ?? (await context.newPage());
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(`${srv.origin}/`);
  await page.waitForFunction(() => window.ready === true);
  // A hang detector, not a speed bound.
  const until = (fn, arg) => page.waitForFunction(fn, arg, { timeout: 30000 });

  await t.test('a token is refused in the browser', async () => {
    const name = await page.evaluate(() => {
      try { new window.SessionGateClient({ token: 'x' }); return 'no error'; } catch (e) { return e.name; }
    });
    assert.equal(name, 'TypeError');
  });

  await t.test('without a session: 401 handshakes, then the probe says unauthorized', async () => {
    const url = await page.evaluate(() => window.start({ authProbeAfter: 2 }));
    assert.equal(url, `ws://127.0.0.1:${srv.port}/ws`, 'url derived from location');
    await until(() => window.count('unauthorized') === 1);
    await runAllTimers();
    assert.equal(await page.evaluate(() => window.wsCount), 2, 'no handshake after the probe');
    assert.equal(srv.rejected.length, 2);
    assert.ok(srv.rejected.every((r) => r.status === 401));
    assert.deepEqual(probes, [{ cookie: false }]);
    const st = await page.evaluate(() => ({ state: window.client.state, closed: window.log.filter((e) => e.type === 'closed').map((e) => e.detail) }));
    assert.equal(st.state, 'closed');
    assert.deepEqual(st.closed.map((d) => [d.code, d.terminal]), [[1006, false], [1006, false], [4502, true]]);
  });

  await t.test('with the cookie: welcome, events, pong, send, reconnect after 1001, 4500 is terminal', async () => {
    await page.evaluate(() => fetch('/login', { credentials: 'same-origin' }));
    upgrades.length = 0;
    await page.evaluate(() => window.start());
    const first = await srv.next(30000);
    assert.deepEqual(upgrades, [{ origin: srv.origin, cookie: true }], 'cookie and origin sent on the upgrade');

    first.welcome({ conn_id: 'b1', user_id: 'alice', instance: 'gw-a', ping_interval_ms: 25000 });
    await until(() => window.client.state === 'open');
    first.event('1-0', 'chat', { text: 'hello browser' });
    await until(() => window.count('event') === 1);
    const got = await page.evaluate(() => ({
      event: window.log.find((e) => e.type === 'event').detail,
      connId: window.client.connId,
      userId: window.client.userId,
      instance: window.client.instance,
      lastEventId: window.client.lastEventId,
    }));
    assert.deepEqual(got, {
      event: { id: '1-0', event: 'chat', data: { text: 'hello browser' } },
      connId: 'b1',
      userId: 'alice',
      instance: 'gw-a',
      lastEventId: '1-0',
    });

    first.ping();
    assert.deepEqual(await first.nextMessage(), { type: 'pong' });
    await page.evaluate(() => { window.sent = window.client.send({ n: 1 }, { event: 'echo' }); });
    const msg = await first.nextMessage();
    assert.deepEqual(msg, { type: 'message', id: msg.id, event: 'echo', data: { n: 1 } });
    assert.match(msg.id, /^[A-Za-z0-9_.:-]{1,64}$/, 'id from the browser crypto prefix');
    first.send({ type: 'ack', id: msg.id, msg_id: 'q-1' });
    assert.deepEqual(await page.evaluate(() => window.sent), { id: msg.id, msgId: 'q-1' });

    first.close(1001, 'draining');
    const second = await srv.next(30000);
    second.welcome({ conn_id: 'b2', instance: 'gw-b' });
    await until(() => window.client.connId === 'b2' && window.client.state === 'open');
    const states = await page.evaluate(() => window.log.filter((e) => e.type === 'state').map((e) => e.detail.state));
    assert.deepEqual(states, ['connecting', 'open', 'reconnecting', 'connecting', 'open']);

    second.event('2-0', 'chat', { text: 'after drain' });
    await until(() => window.client.lastEventId === '2-0');
    second.close(4500, 'session revoked');
    await until(() => window.count('revoked') === 1);
    await runAllTimers();
    assert.equal(await page.evaluate(() => window.wsCount), 2, 'no reconnect after 4500');
    assert.equal(srv.connections.length, 2);
    const end = await page.evaluate(() => ({
      state: window.client.state,
      closed: window.log.filter((e) => e.type === 'closed').map((e) => e.detail),
      stored: localStorage.length + sessionStorage.length,
      visibleCookie: document.cookie,
    }));
    assert.equal(end.state, 'closed');
    assert.deepEqual(end.closed, [
      { code: 1001, reason: 'draining', terminal: false },
      { code: 4500, reason: 'session revoked', terminal: true },
    ]);
    assert.equal(end.stored, 0, 'nothing written to web storage');
    assert.equal(end.visibleCookie, '', 'HttpOnly session cookie stays invisible to scripts');
  });

  assert.deepEqual(pageErrors, []);
});
