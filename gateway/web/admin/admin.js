// sessiongate admin console. Plain ES module, no dependencies, no build.
// Everything shown comes from the gateway's /admin/api routes; text is
// always set with textContent, never as HTML. The API key typed at login
// is sent once and never stored: the console lives on its HttpOnly
// session cookie and the CSRF token the server hands back.

const $ = (id) => document.getElementById(id);
const POLL_MS = 2000;

const state = {
  csrf: '',
  pollTimer: 0,
  presenceCursor: '',
  user: '',
  tail: null,
  paused: false,
};

// ---- HTTP -----------------------------------------------------------------

class APIError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// api calls an /admin/api route and returns its JSON (null for 204). A 401
// anywhere means the admin session is gone: back to the login form.
async function api(method, path, body) {
  const headers = {};
  if (method !== 'GET') headers['X-CSRF-Token'] = state.csrf;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch('/admin/api' + path, {
    method,
    headers,
    credentials: 'same-origin',
    cache: 'no-store',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  const text = await res.text();
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
  if (!res.ok) {
    const err = data && data.error ? data.error : { code: 'http_' + res.status, message: res.statusText };
    if (res.status === 401 && path !== '/login') showLogin('Your admin session ended: log in again.');
    throw new APIError(res.status, err.code, err.message);
  }
  return data;
}

// ---- helpers ----------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('data-')) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) e.append(c);
  return e;
}

function flash(message, kind = 'ok') {
  const f = $('flash');
  f.textContent = message;
  f.className = kind;
  f.hidden = false;
  clearTimeout(flash.timer);
  flash.timer = setTimeout(() => { f.hidden = true; }, kind === 'error' ? 10000 : 4000);
}

function fmtTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime()) || d.getFullYear() < 2000) return '';
  return d.toLocaleString();
}

function ago(iso) {
  const d = new Date(iso).getTime();
  if (!d) return '';
  const s = Math.max(0, Math.round((Date.now() - d) / 1000));
  return s < 60 ? `${s}s ago` : s < 3600 ? `${Math.round(s / 60)}m ago` : `${Math.round(s / 3600)}h ago`;
}

function shortHandle(h) { return h ? h.slice(0, 12) + '…' : ''; }

function targetText(t) {
  if (!t) return '';
  if (t.all) return 'all';
  if (t.user_id) return 'user ' + t.user_id;
  if (t.handle) return 'session ' + shortHandle(t.handle);
  return '';
}

// ---- login ------------------------------------------------------------------

function showLogin(message) {
  stopConsole();
  $('console').hidden = true;
  $('whoami').hidden = true;
  $('login').hidden = false;
  const e = $('login-error');
  e.textContent = message || '';
  e.hidden = !message;
  $('login-key').focus();
}

function showConsole(info) {
  state.csrf = info.csrf_token;
  $('login').hidden = true;
  $('console').hidden = false;
  $('whoami').hidden = false;
  $('served-by').textContent = 'logged in via ' + info.instance;
  $('expires').textContent = 'until ' + fmtTime(info.expires_at);
  startConsole();
}

async function login(ev) {
  ev.preventDefault();
  const input = $('login-key');
  const key = input.value;
  input.value = ''; // the key is not kept, not even in the form
  $('login-btn').disabled = true;
  try {
    showConsole(await api('POST', '/login', { api_key: key }));
  } catch (err) {
    showLogin(err.status === 429 ? 'Too many attempts: wait a minute.' : err.message);
  } finally {
    $('login-btn').disabled = false;
  }
}

async function logout() {
  try {
    await api('POST', '/logout');
  } catch (err) {
    if (err.status !== 401) { flash('Logout failed: ' + err.message, 'error'); return; }
  }
  state.csrf = '';
  showLogin('Logged out.');
}

// ---- cluster ----------------------------------------------------------------

async function refreshCluster() {
  try {
    const [cluster, ready] = await Promise.all([
      api('GET', '/cluster'),
      api('GET', '/readyz').catch((err) => ({ status: 'unavailable', reason: err.message, checks: {} })),
    ]);
    renderCluster(cluster);
    renderReady(ready);
    $('cluster-updated').textContent = 'updated ' + new Date().toLocaleTimeString();
  } catch (err) {
    if (err.status !== 401) $('cluster-updated').textContent = 'update failed: ' + err.message;
  }
}

function renderCluster(c) {
  const body = $('cluster').tBodies[0];
  const rows = (c.instances || []).slice().sort((a, b) => a.id.localeCompare(b.id)).map((i) => {
    const st = !i.alive ? 'gone' : i.draining ? 'draining' : 'alive';
    const name = el('td', {}, el('span', { class: 'mono', text: i.id }));
    if (i.self) name.append(el('span', { class: 'badge self', text: 'this' }));
    return el('tr', { 'data-instance': i.id, 'data-state': st },
      name,
      el('td', {}, el('span', { class: 'badge ' + st, text: st })),
      el('td', { class: 'num', text: String(i.connections) }),
      el('td', { class: 'num', text: String(i.sessions) }),
      el('td', { class: 'num', text: i.redis_latency_ms ? i.redis_latency_ms.toFixed(2) + ' ms' : '—' }),
      el('td', { text: ago(i.last_seen) }),
      el('td', { text: fmtTime(i.started_at) }),
      el('td', { class: 'mono', text: i.addr || '' }));
  });
  body.replaceChildren(...rows);
}

function renderReady(r) {
  const p = $('ready');
  const parts = [el('span', { class: 'badge ' + (r.status === 'ok' ? 'ok' : 'degraded'), text: r.status })];
  let text = ` ${r.instance || 'this instance'}`;
  if (r.reason) text += ` — ${r.reason}`;
  const redis = r.checks && r.checks.redis;
  if (redis) text += ` · Redis ${redis.status}${redis.latency_ms !== undefined ? ' ' + Number(redis.latency_ms).toFixed(2) + ' ms' : ''}`;
  const store = r.checks && r.checks.store;
  if (store) text += ` · store ${store.status}`;
  const ps = r.checks && r.checks.pubsub;
  if (ps) text += ` · pub/sub ${ps.status}`;
  parts.push(document.createTextNode(text));
  p.replaceChildren(...parts);
}

// ---- presence -----------------------------------------------------------------

async function loadPresence(more = false) {
  const status = $('presence-status');
  const body = $('presence').tBodies[0];
  const q = new URLSearchParams({ limit: '50' });
  if (more && state.presenceCursor) q.set('cursor', state.presenceCursor);
  try {
    const res = await api('GET', '/presence?' + q);
    const rows = (res.users || []).map((u) => el('tr', { 'data-user': u.user_id },
      el('td', { class: 'mono', text: u.user_id }),
      el('td', { class: 'num', text: String(u.connections) }),
      el('td', { class: 'num', text: String(u.sessions) }),
      el('td', { class: 'mono', text: (u.instances || []).join(', ') }),
      el('td', {}, el('button', { type: 'button', class: 'secondary', text: 'Sessions', onclick: () => showUser(u.user_id) }))));
    if (more) body.append(...rows); else body.replaceChildren(...rows);
    state.presenceCursor = res.next_cursor || '';
    $('presence-more').hidden = !state.presenceCursor;
    status.textContent = body.rows.length ? '' : 'Nobody is online.';
    $('presence').hidden = !body.rows.length;
  } catch (err) {
    if (err.status === 401) return;
    body.replaceChildren();
    $('presence').hidden = true;
    $('presence-more').hidden = true;
    status.textContent = err.status === 404
      ? 'Presence unavailable: this gateway has no presence API. Look a user up below.'
      : 'Presence unavailable: ' + err.message;
  }
}

// ---- a user's sessions ----------------------------------------------------------

async function showUser(userID) {
  $('user-id').value = userID;
  state.user = userID;
  if ($('pub-target').value === 'user' && !$('pub-value').value) $('pub-value').value = userID;
  resetRevokeAll();
  const enc = encodeURIComponent(userID);
  try {
    const res = await api('GET', `/users/${enc}/sessions`);
    renderSessions(res);
  } catch (err) {
    $('user-result').hidden = true;
    if (err.status !== 401) flash(err.message, 'error');
    return;
  }
  try {
    const p = await api('GET', `/users/${enc}/presence`);
    $('user-presence').textContent = p.online
      ? `online: ${p.connections} connection(s) on ${(p.instances || []).map((i) => i.id).join(', ')}`
      : 'offline';
  } catch {
    $('user-presence').textContent = '';
  }
}

function renderSessions(res) {
  $('user-result').hidden = false;
  $('user-title').textContent = `User ${res.user_id}: ${res.sessions.length} session(s)`;
  const rows = res.sessions.map((s) => el('tr', { 'data-handle': s.handle },
    el('td', { class: 'mono', title: s.handle, text: shortHandle(s.handle) }),
    el('td', { text: fmtTime(s.created_at) }),
    el('td', { text: fmtTime(s.expires_at) }),
    el('td', { class: 'num', text: String(s.connections_local ?? 0) }),
    el('td', { class: 'mono', text: s.data ? JSON.stringify(s.data).slice(0, 80) : '' }),
    el('td', {}, el('button', { type: 'button', class: 'danger', 'data-revoke': s.handle, text: 'Revoke', onclick: (ev) => revokeSession(s.handle, ev.target) }))));
  $('sessions').tBodies[0].replaceChildren(...rows);
  $('sessions').hidden = !rows.length;
  $('sessions-empty').hidden = !!rows.length;
  $('revoke-all').disabled = !rows.length;
}

async function revokeSession(handle, button) {
  button.disabled = true;
  try {
    const res = await api('DELETE', `/sessions/${handle}`);
    flash(res && res.status === 'pending'
      ? `Session ${shortHandle(handle)}: revocation queued (Redis unavailable); its connections here are closed.`
      : `Session ${shortHandle(handle)} revoked.`);
  } catch (err) {
    if (err.status !== 401) flash(`Revoking ${shortHandle(handle)} failed: ${err.message}`, 'error');
  }
  if (state.user) showUser(state.user);
}

// revoke-all takes two clicks: the first arms it, the second revokes.
// Showing a user (another one, or the same again) disarms it.
function resetRevokeAll() {
  const b = $('revoke-all');
  b.classList.remove('confirm');
  b.dataset.armed = '';
  b.textContent = 'Revoke all sessions';
}

async function revokeAll() {
  const b = $('revoke-all');
  const user = state.user;
  if (!user) return;
  if (b.dataset.armed !== 'true') {
    b.dataset.armed = 'true';
    b.classList.add('confirm');
    b.textContent = `Click again to revoke every session of ${user}`;
    return;
  }
  resetRevokeAll();
  b.disabled = true;
  try {
    const res = await api('DELETE', `/users/${encodeURIComponent(user)}/sessions`);
    flash(res && res.status === 'pending'
      ? `Revocation of ${user}'s sessions queued (Redis unavailable).`
      : `Revoked ${res ? res.revoked : 0} session(s) of ${user}.`);
  } catch (err) {
    if (err.status !== 401) flash(`Revoking ${user}'s sessions failed: ${err.message}`, 'error');
  }
  showUser(user);
}

// ---- publish --------------------------------------------------------------------

function updatePublishTarget() {
  const kind = $('pub-target').value;
  const v = $('pub-value');
  v.hidden = kind === 'all';
  v.required = kind !== 'all';
  v.placeholder = kind === 'user' ? 'user id' : '64-hex session handle';
}

async function publish(ev) {
  ev.preventDefault();
  const kind = $('pub-target').value;
  const value = $('pub-value').value.trim();
  const target = kind === 'all' ? { all: true } : kind === 'user' ? { user_id: value } : { handle: value };
  let data;
  const raw = $('pub-data').value.trim();
  if (raw) {
    try { data = JSON.parse(raw); } catch (err) { $('pub-result').textContent = 'Data is not JSON: ' + err.message; return; }
  }
  $('pub-btn').disabled = true;
  try {
    const res = await api('POST', '/publish', { target, event: $('pub-event').value.trim(), data });
    $('pub-result').textContent = `Published ${res.id}` + (res.offset ? ` at ${res.stream} ${res.offset}` : '') + ` (${res.delivered_local} connection(s) on ${$('served-by').textContent.replace('logged in via ', '')}).`;
  } catch (err) {
    if (err.status !== 401) $('pub-result').textContent = 'Failed: ' + err.message;
  } finally {
    $('pub-btn').disabled = false;
  }
}

// ---- live tail --------------------------------------------------------------------

const MAX_TAIL_ROWS = 300;

function startTail() {
  stopTail();
  const es = new EventSource('/admin/api/events');
  state.tail = es;
  es.onopen = () => { $('tail-state').textContent = 'connected'; };
  es.onerror = () => { $('tail-state').textContent = 'reconnecting…'; };
  es.addEventListener('dropped', (e) => addTailNote(`${e.data} event(s) dropped: the console fell behind`));
  es.onmessage = (e) => {
    let ev;
    try { ev = JSON.parse(e.data); } catch { return; }
    if (state.paused) return;
    if (!$('tail-heartbeats').checked && ev.kind === 'instance.heartbeat') return;
    addTailRow(ev);
  };
}

function stopTail() {
  if (state.tail) state.tail.close();
  state.tail = null;
}

function tailTarget(ev) {
  switch (ev.kind) {
    case 'message': return targetText(ev.target);
    case 'session.revoked': return 'session ' + shortHandle(ev.handle);
    case 'user.revoked': return `user ${ev.user_id}` + (ev.handles ? ` (${ev.handles} session(s))` : '');
    case 'instance.heartbeat':
    case 'instance.draining': return ev.instance ? `${ev.instance.id}: ${ev.instance.connections} conn` : '';
    default: return '';
  }
}

function addTailRow(ev) {
  const body = $('tail').tBodies[0];
  const row = el('tr', { class: 'kind-' + ev.kind, 'data-kind': ev.kind },
    el('td', { text: new Date(ev.time).toLocaleTimeString() }),
    el('td', { text: ev.kind }),
    el('td', { text: ev.origin }),
    el('td', { text: tailTarget(ev) }),
    el('td', { text: ev.event || '' }),
    el('td', { text: ev.offset ? `${ev.stream} ${ev.offset}` : '' }));
  body.prepend(row);
  while (body.rows.length > MAX_TAIL_ROWS) body.deleteRow(-1);
}

function addTailNote(text) {
  const body = $('tail').tBodies[0];
  const td = el('td', { class: 'error', text });
  td.colSpan = 6;
  body.prepend(el('tr', {}, td));
}

// ---- wiring -----------------------------------------------------------------------

function startConsole() {
  refreshCluster();
  loadPresence();
  clearInterval(state.pollTimer);
  state.pollTimer = setInterval(refreshCluster, POLL_MS);
  startTail();
}

function stopConsole() {
  clearInterval(state.pollTimer);
  state.pollTimer = 0;
  stopTail();
}

function init() {
  $('login-form').addEventListener('submit', login);
  $('logout-btn').addEventListener('click', logout);
  $('user-form').addEventListener('submit', (ev) => { ev.preventDefault(); showUser($('user-id').value.trim()); });
  $('revoke-all').addEventListener('click', revokeAll);
  $('presence-refresh').addEventListener('click', () => loadPresence());
  $('presence-more').addEventListener('click', () => loadPresence(true));
  $('pub-target').addEventListener('change', updatePublishTarget);
  $('publish-form').addEventListener('submit', publish);
  $('tail-pause').addEventListener('click', () => {
    state.paused = !state.paused;
    $('tail-pause').textContent = state.paused ? 'Resume' : 'Pause';
  });
  $('tail-clear').addEventListener('click', () => $('tail').tBodies[0].replaceChildren());
  updatePublishTarget();
  api('GET', '/session').then(showConsole, () => showLogin(''));
}

init();
