// The issue-3 flow, scripted with a non-Go WebSocket client (Node + ws):
// log in -> connect with the cookie -> receive an event published through the
// server API -> log out -> see the socket closed with 4500.
// Usage: node flow.mjs <base http url> <api key>. Prints JSON lines; exits 0 on success.
import WebSocket from '../../client-js/node_modules/ws/wrapper.mjs';

const [base, apiKey] = process.argv.slice(2);
const fail = (msg) => { console.log(JSON.stringify({ ok: false, error: msg })); process.exit(1); };
const step = (name, extra = {}) => console.log(JSON.stringify({ step: name, ...extra }));
setTimeout(() => fail('timed out'), 50000).unref(); // a hang detector (the Go side allows 60 s)

const login = await fetch(base + '/auth/login', {
  method: 'POST', headers: { 'Content-Type': 'application/json' },
  body: JSON.stringify({ user_id: 'node-user', password: 'x' }),
});
if (login.status !== 200) fail('login status ' + login.status);
const setCookie = login.headers.get('set-cookie') || '';
const cookie = setCookie.split(';')[0];
if (!cookie.includes('=')) fail('no session cookie');
step('logged in');

const ws = new WebSocket(base.replace(/^http/, 'ws') + '/ws', { headers: { Cookie: cookie, Origin: base } });
const frames = [];
let waiter = null;
ws.on('message', (data) => {
  const f = JSON.parse(data.toString());
  if (f.type === 'ping') { ws.send(JSON.stringify({ type: 'pong' })); return; }
  frames.push(f);
  if (waiter) waiter();
});
const next = () => new Promise((resolve) => {
  if (frames.length) return resolve(frames.shift());
  waiter = () => { waiter = null; resolve(frames.shift()); };
});
const closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
ws.on('unexpected-response', (_req, res) => fail('upgrade refused: ' + res.statusCode));

const welcome = await next();
if (welcome.type !== 'welcome' || welcome.user_id !== 'node-user') fail('bad welcome ' + JSON.stringify(welcome));
step('welcome', { instance: welcome.instance });

const pub = await fetch(base + '/api/v1/publish', {
  method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: 'Bearer ' + apiKey },
  body: JSON.stringify({ target: { user_id: 'node-user' }, event: 'greeting', data: { from: 'node' } }),
});
if (pub.status !== 202) fail('publish status ' + pub.status);
const ev = await next();
if (ev.type !== 'event' || ev.event !== 'greeting' || ev.data.from !== 'node') fail('bad event ' + JSON.stringify(ev));
step('event', { id: ev.id });

const logout = await fetch(base + '/auth/logout', { method: 'POST', headers: { Cookie: cookie, Origin: base } });
if (logout.status !== 204) fail('logout status ' + logout.status);
const c = await closed;
if (c.code !== 4500) fail('close code ' + c.code);
step('closed', c);
console.log(JSON.stringify({ ok: true }));
process.exit(0);
