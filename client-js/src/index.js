// @sessiongate/client: the client side of the sessiongate WebSocket protocol
// (see docs/PROTOCOL.md). One file, no runtime dependencies;
// runs in browsers and in Node 20+ (pass `WebSocket` from the `ws` package on
// Node < 22, or to send a Bearer token).

/**
 * Close codes the gateway uses, with the client's reaction. Codes not listed
 * here (1000, 1006, 1011, 1012, ...) are treated as transient: reconnect.
 */
export const CloseCodes = Object.freeze({
  NORMAL: 1000,
  GOING_AWAY: 1001,
  ABNORMAL: 1006,
  TOO_BIG: 1009,
  INTERNAL: 1011,
  SLOW_CONSUMER: 4000,
  HEARTBEAT_TIMEOUT: 4001,
  RATE_LIMITED: 4008,
  CONNECTION_LIMIT: 4009,
  EVENTS_MISSED: 4010,
  REVOKED: 4500,
  EXPIRED: 4501,
  UNAUTHORIZED: 4502,
  PROTOCOL_ERROR: 4503,
  SESSION_LOST: 4504,
});

// Terminal close codes -> the event the client fires (null: only `error`).
// Codes by which the server asks the client to slow down: they reconnect,
// but never reset the backoff, however long the connection had been open.
const SLOW_DOWN = new Set([CloseCodes.RATE_LIMITED, CloseCodes.CONNECTION_LIMIT]);

const TERMINAL = new Map([
  [CloseCodes.REVOKED, 'revoked'],
  [CloseCodes.EXPIRED, 'expired'],
  [CloseCodes.UNAUTHORIZED, 'unauthorized'],
  [CloseCodes.PROTOCOL_ERROR, null],
  // The store lost every session (not a revocation): like an expiry, the
  // user must log in again; detail.code tells them apart.
  [CloseCodes.SESSION_LOST, 'expired'],
  [CloseCodes.TOO_BIG, null],
]);

/**
 * isTerminalCode reports whether a close code means "do not reconnect".
 * @param {number} code
 * @returns {boolean}
 */
export function isTerminalCode(code) {
  return TERMINAL.has(code);
}

const DEFAULTS = Object.freeze({
  reconnect: Object.freeze({ minDelay: 500, maxDelay: 30000, factor: 2 }),
  stableAfter: 10000,
  pingGrace: 10000,
  pingInterval: 25000,
  connectTimeout: 10000,
  authProbeAfter: 3,
  probeTimeout: 10000,
  sessionUrl: '/auth/session',
  sendTimeout: 10000,
  maxPending: 100,
});

/**
 * Codes a send() promise rejects with (`err.code`). The server's refusals
 * (its `error` frame) keep the server's code: too_large, rate_limited,
 * queue_full, unavailable, invalid. The client adds its own: timeout,
 * disconnected (sent, fate unknown), closed (never sent), backpressure
 * (too many held), and invalid for data it cannot send.
 */
export const SendErrorCodes = Object.freeze({
  TOO_LARGE: 'too_large',
  RATE_LIMITED: 'rate_limited',
  QUEUE_FULL: 'queue_full',
  UNAVAILABLE: 'unavailable',
  INVALID: 'invalid',
  TIMEOUT: 'timeout',
  DISCONNECTED: 'disconnected',
  CLOSED: 'closed',
  BACKPRESSURE: 'backpressure',
});

// setTimeout's largest delay; a longer one would fire at once.
const MAX_TIMER = 2 ** 31 - 1;

const HANDSHAKE_STATUS = /Unexpected server response: (\d{3})/;

// The history streams a connection reads (docs/PROTOCOL.md, Positions): the
// user's own stream and the broadcast stream. The client resumes these and
// only these; a frame of a stream it does not know is delivered untracked.
const STREAMS = Object.freeze(['user', 'all']);

// A position's epoch, as the gateway accepts it in resume_* parameters.
const EPOCH = /^[0-9a-f]{1,64}$/;

// CustomEvent is global in browsers and Node >= 19; keep a fallback for
// runtimes that only have Event.
const DetailEvent =
  typeof globalThis.CustomEvent === 'function'
    ? globalThis.CustomEvent
    : class DetailEvent extends Event {
        constructor(type, init) {
          super(type);
          this.detail = init && 'detail' in init ? init.detail : null;
        }
      };

const now =
  typeof globalThis.performance?.now === 'function'
    ? () => globalThis.performance.now()
    : () => Date.now();

/**
 * SessionGateClient keeps one WebSocket to a sessiongate gateway open:
 * it answers pings, dispatches events, watches the heartbeat and reconnects
 * with full-jitter exponential backoff until a terminal close code, a
 * rejected session or close().
 *
 * Events (all CustomEvent, payload in `detail`): state, welcome, recovered,
 * recoveryFailed, event, revoked, expired, unauthorized, closed, error.
 * `on(name, fn)` is a shortcut that calls fn(detail, event) and returns an
 * unsubscribe function.
 *
 * With history on, it resumes each stream from the last event it delivered
 * when it reconnects and drops the events it already delivered, so the app
 * sees each event once, in order per stream; `recoveryFailed` says when the
 * gateway could not replay what was missed.
 *
 * The token (non-browser clients) is held only in a private field of this
 * object: never written to localStorage, sessionStorage or document.cookie.
 */
export class SessionGateClient extends EventTarget {
  #url;
  #token;
  #WS;
  #random;
  #fetch;
  #minDelay;
  #maxDelay;
  #factor;
  #stableAfter;
  #pingGrace;
  #connectTimeout;
  #authProbeAfter;
  #probeTimeout;
  #sessionUrl;
  #wsOptions;

  #state = 'closed';
  #ws = null;
  #gen = 0; // bumped whenever the current socket/timer/probe is abandoned
  #stopped = true;
  #attempt = 0;
  #failuresBeforeOpen = 0;
  #transportOpen = false;
  #openedAt = 0;
  #lastRx = 0;
  #pingInterval = DEFAULTS.pingInterval;
  #watchdog = null;
  #reconnectTimer = null;
  #probeAbort = null;
  #handshakeStatus = 0;

  #connId = null;
  #userId = null;
  #instance = null;
  #lastEventId = null;

  // Per stream ('user', 'all'): {epoch, offset} of the last event delivered
  // to the app, or of the welcome when nothing was delivered since. Kept
  // across reconnects (sent as resume_*), dropped on a terminal close.
  #positions = new Map();
  // Streams the current connection's handshake asked to resume.
  #asked = [];
  #duplicates = 0;

  // Client messages (send()). Every unsettled one is in #sends by id; those
  // not yet written to a socket are also in #held, in send() order. A
  // written one waits for its ack on the connection it was written to.
  #sendTimeout;
  #maxPending;
  #idPrefix = randomPrefix();
  #idSeq = 0;
  #sends = new Map();
  #held = [];

  /**
   * @param {import('./index.d.ts').SessionGateClientOptions} [options]
   */
  constructor(options = {}) {
    super();
    const o = options ?? {};
    this.#WS = o.WebSocket ?? globalThis.WebSocket;
    if (typeof this.#WS !== 'function') {
      throw new TypeError('sessiongate: no WebSocket implementation: pass options.WebSocket (e.g. from the "ws" package)');
    }
    this.#url = resolveWsUrl(o.url);
    if (o.token != null) {
      if (typeof o.token !== 'string' || o.token === '') {
        throw new TypeError('sessiongate: token must be a non-empty string');
      }
      if (isBrowser() && this.#WS === globalThis.WebSocket) {
        // A browser WebSocket cannot send headers; the session cookie is the
        // browser's credential. Refuse rather than leak the token elsewhere.
        throw new TypeError('sessiongate: token is for non-browser clients; browsers authenticate with the session cookie');
      }
      this.#token = o.token;
    }
    if (o.webSocketOptions != null) {
      if (typeof o.webSocketOptions !== 'object') throw new TypeError('sessiongate: webSocketOptions must be an object');
      if (isBrowser() && this.#WS === globalThis.WebSocket) {
        throw new TypeError('sessiongate: webSocketOptions is for non-browser WebSocket implementations');
      }
      this.#wsOptions = o.webSocketOptions;
    }
    const r = o.reconnect ?? {};
    this.#minDelay = nonNegative(r.minDelay, DEFAULTS.reconnect.minDelay, 'reconnect.minDelay');
    this.#maxDelay = nonNegative(r.maxDelay, DEFAULTS.reconnect.maxDelay, 'reconnect.maxDelay');
    this.#factor = nonNegative(r.factor, DEFAULTS.reconnect.factor, 'reconnect.factor');
    if (this.#factor < 1) throw new RangeError('sessiongate: reconnect.factor must be >= 1');
    if (this.#maxDelay < this.#minDelay) throw new RangeError('sessiongate: reconnect.maxDelay must be >= minDelay');
    this.#stableAfter = nonNegative(o.stableAfter, DEFAULTS.stableAfter, 'stableAfter');
    this.#pingGrace = nonNegative(o.pingGrace, DEFAULTS.pingGrace, 'pingGrace');
    this.#connectTimeout = positive(o.connectTimeout, DEFAULTS.connectTimeout, 'connectTimeout');
    this.#authProbeAfter = nonNegative(o.authProbeAfter, DEFAULTS.authProbeAfter, 'authProbeAfter');
    this.#probeTimeout = positive(o.probeTimeout, DEFAULTS.probeTimeout, 'probeTimeout');
    this.#sessionUrl = o.sessionUrl ?? DEFAULTS.sessionUrl;
    this.#random = typeof o.random === 'function' ? o.random : Math.random;
    this.#fetch = o.fetch ?? globalThis.fetch?.bind(globalThis) ?? null;
    this.#sendTimeout = positive(o.sendTimeout, DEFAULTS.sendTimeout, 'sendTimeout');
    if (this.#sendTimeout > MAX_TIMER) throw new RangeError(`sessiongate: sendTimeout must be <= ${MAX_TIMER}`);
    this.#maxPending = nonNegative(o.maxPending, DEFAULTS.maxPending, 'maxPending');
  }

  /** The ws(s) URL this client connects to. */
  get url() { return this.#url; }
  /** connecting | open | reconnecting | closed. */
  get state() { return this.#state; }
  /** Connection id from the current (or last) welcome, or null. */
  get connId() { return this.#connId; }
  /** User id from the current (or last) welcome, or null. */
  get userId() { return this.#userId; }
  /** Gateway instance id from the current (or last) welcome, or null. */
  get instance() { return this.#instance; }
  /** Id of the last event delivered to the app, kept across reconnects, or null. */
  get lastEventId() { return this.#lastEventId; }
  /**
   * Position of the last event delivered per stream, e.g.
   * `{user: {epoch, offset}, all: {epoch, offset}}` (streams without one are
   * absent; `{}` with history off). A fresh copy on every read.
   */
  get positions() { return this.#positionsCopy(); }
  /** Number of event frames dropped as duplicates (already delivered). */
  get duplicates() { return this.#duplicates; }
  /** Number of reconnect attempts since the last stable connection. */
  get attempt() { return this.#attempt; }

  /**
   * connect starts connecting (and keeps reconnecting). It is a no-op unless
   * the client is closed; after close() or a terminal close it starts afresh.
   * @returns {this}
   */
  connect() {
    if (this.#state !== 'closed') return this;
    this.#stopped = false;
    this.#attempt = 0;
    this.#failuresBeforeOpen = 0;
    this.#open();
    return this;
  }

  /**
   * close closes the socket and stops every timer and pending reconnect. The
   * client fires `closed` (terminal) and `state` closed unless already closed.
   * @param {number} [code=1000]
   * @param {string} [reason='client closed']
   */
  close(code = CloseCodes.NORMAL, reason = 'client closed') {
    if (this.#state === 'closed') return;
    this.#stopped = true;
    this.#abandon(code, reason);
    this.#finish(code, reason, null, false);
  }

  /**
   * send sends a client message `{"type":"message","id","event","data"}`
   * and resolves with `{id, msgId}` once the gateway acked it (durably
   * queued). It rejects with an Error whose `code` is one of
   * {@link SendErrorCodes}: the server's refusal, `timeout`, `disconnected`
   * (the connection closed before the ack: it may or may not have been
   * queued), `closed` (never sent), `backpressure` or `invalid`. While the
   * client is connecting or reconnecting the message is held (at most
   * `maxPending`) and sent after the next welcome, in order.
   * @param {unknown} data any JSON value but null (serialised now)
   * @param {{event?: string, timeout?: number}} [options]
   * @returns {Promise<{id: string, msgId: string | null}>}
   */
  send(data, options) {
    const o = options ?? {};
    if (data === undefined || data === null) {
      return Promise.reject(sendError('invalid', 'sessiongate: send needs data (not null or undefined)'));
    }
    if (o.event != null && (typeof o.event !== 'string' || o.event === '')) {
      return Promise.reject(sendError('invalid', 'sessiongate: send: event must be a non-empty string'));
    }
    let timeout = this.#sendTimeout;
    if (o.timeout != null) {
      timeout = Number(o.timeout);
      if (!Number.isFinite(timeout) || timeout <= 0 || timeout > MAX_TIMER) {
        return Promise.reject(sendError('invalid', `sessiongate: send: timeout must be a number in (0, ${MAX_TIMER}]`));
      }
    }
    // Serialised now: the app may change data afterwards, and a value JSON
    // cannot carry (undefined, a function, a cycle, a BigInt; null, which
    // the gateway refuses) is refused here rather than by the server.
    let json;
    try {
      json = JSON.stringify(data);
    } catch (err) {
      return Promise.reject(sendError('invalid', `sessiongate: send: data is not JSON: ${errMessage(err)}`));
    }
    if (json === undefined || json === 'null') {
      return Promise.reject(sendError('invalid', 'sessiongate: send: data must be a JSON value other than null'));
    }
    if (this.#state === 'closed') {
      return Promise.reject(sendError('closed', 'sessiongate: send: the client is closed'));
    }
    // The bound is on messages waiting for a connection; one that can go
    // out at once never counts against it (maxPending 0: never hold).
    const direct = this.#state === 'open' && this.#held.length === 0;
    if (!direct && this.#held.length >= this.#maxPending) {
      return Promise.reject(sendError('backpressure', `sessiongate: send: ${this.#held.length} messages already wait for a connection`));
    }
    const id = `${this.#idPrefix}-${++this.#idSeq}`;
    const head = { type: 'message', id };
    if (o.event != null) head.event = o.event;
    const frame = `${JSON.stringify(head).slice(0, -1)},"data":${json}}`;
    return new Promise((resolve, reject) => {
      const entry = { id, frame, resolve, reject, timer: null, sent: false };
      entry.timer = setTimeout(() => {
        this.#settle(entry, sendError('timeout', `sessiongate: send: no answer within ${timeout} ms`, id));
      }, timeout);
      this.#sends.set(id, entry);
      this.#held.push(entry);
      if (this.#state === 'open') this.#flush();
    });
  }

  /**
   * on adds a listener called as fn(detail, event).
   * @param {string} name event name
   * @param {(detail: any, event: CustomEvent) => void} fn
   * @returns {() => void} unsubscribe
   */
  on(name, fn) {
    const listener = (ev) => fn(ev.detail, ev);
    this.addEventListener(name, listener);
    return () => this.removeEventListener(name, listener);
  }

  // --- connection lifecycle -------------------------------------------------

  #open() {
    const gen = ++this.#gen;
    this.#transportOpen = false;
    this.#openedAt = 0;
    this.#handshakeStatus = 0;
    this.#pingInterval = DEFAULTS.pingInterval;
    this.#setState('connecting');
    if (this.#gen !== gen) return; // a listener called close()

    // Resume every stream the client has a position for: none on the first
    // connect of a client (no welcome yet), each stream's on a reconnect.
    // Appended as text so the rest of the caller's query stays byte for byte.
    this.#asked = [];
    let target = this.#url;
    for (const stream of STREAMS) {
      const p = this.#positions.get(stream);
      if (!p) continue;
      target += `${target.includes('?') ? '&' : '?'}resume_${stream}=${p.epoch}:${p.offset}`;
      this.#asked.push(stream);
    }

    let ws;
    try {
      ws = this.#token || this.#wsOptions
        ? new this.#WS(target, this.#socketOptions())
        : new this.#WS(target);
    } catch (err) {
      // Synchronous failures (bad URL, CSP, mixed content) will not heal.
      this.#emit('error', { message: `sessiongate: cannot create WebSocket: ${errMessage(err)}`, error: err });
      if (this.#gen === gen) this.#finish(CloseCodes.ABNORMAL, errMessage(err), null, false);
      return;
    }
    this.#ws = ws;
    ws.onopen = () => { if (this.#gen === gen) this.#onTransportOpen(); };
    ws.onmessage = (ev) => { if (this.#gen === gen) this.#onMessage(ev.data); };
    ws.onerror = (ev) => { if (this.#gen === gen) this.#onError(ev); };
    ws.onclose = (ev) => { if (this.#gen === gen) this.#onClose(ev.code, ev.reason); };
    this.#armWatchdog(gen, this.#connectTimeout, true);
  }

  #onTransportOpen() {
    this.#transportOpen = true;
    this.#failuresBeforeOpen = 0;
    this.#lastRx = now();
    this.#armWatchdog(this.#gen, this.#pingInterval + this.#pingGrace, false);
  }

  #onMessage(raw) {
    this.#lastRx = now();
    if (typeof raw !== 'string') {
      this.#emit('error', { message: 'sessiongate: ignored a binary frame' });
      return;
    }
    let msg;
    try {
      msg = JSON.parse(raw);
    } catch {
      this.#emit('error', { message: 'sessiongate: ignored a frame that is not JSON' });
      return;
    }
    if (msg === null || typeof msg !== 'object') return;
    switch (msg.type) {
      case 'ping':
        this.#write({ type: 'pong' });
        return;
      case 'welcome':
        this.#onWelcome(msg);
        return;
      case 'event':
        this.#onEvent(msg);
        return;
      case 'ack':
        this.#onAck(msg);
        return;
      case 'error':
        this.#onServerError(msg);
        return;
      default:
        // Unknown frame types are ignored: newer gateways may send more.
        return;
    }
  }

  #onWelcome(msg) {
    this.#connId = msg.conn_id ?? null;
    this.#userId = msg.user_id ?? null;
    this.#instance = msg.instance ?? null;
    const interval = Number(msg.ping_interval_ms);
    if (Number.isFinite(interval) && interval > 0) this.#pingInterval = interval;
    this.#openedAt = now();
    const gen = this.#gen;
    this.#armWatchdog(gen, this.#pingInterval + this.#pingGrace, false);
    const recovery = this.#takeWelcomePositions(msg);
    this.#emit('welcome', {
      connId: this.#connId,
      userId: this.#userId,
      instance: this.#instance,
      pingIntervalMs: this.#pingInterval,
    });
    if (this.#gen !== gen) return;
    if (recovery) {
      this.#emit(recovery[0], recovery[1]);
      if (this.#gen !== gen) return;
    }
    this.#setState('open');
    // Held messages go now, after the welcome: a send() from a listener
    // of state 'open' has flushed the older ones before its own already.
    if (this.#gen === gen) this.#flush();
  }

  // Applies a welcome's positions; returns the recovery event to fire
  // ([name, detail]) when the handshake asked to resume, else null. A stream
  // the handshake resumed and the welcome does not call lost keeps the
  // client's own position (the missed events follow as frames); every other
  // stream takes the welcome's position, or none with history off.
  #takeWelcomePositions(msg) {
    const asked = this.#asked;
    this.#asked = [];
    const lost = asked.length ? lostStreams(asked, msg) : [];
    const welcomed = msg.positions !== null && typeof msg.positions === 'object' ? msg.positions : {};
    for (const stream of STREAMS) {
      if (asked.includes(stream) && !lost.includes(stream)) continue;
      const p = parsePosition(welcomed[stream]);
      if (p) this.#positions.set(stream, p);
      else this.#positions.delete(stream);
    }
    if (!asked.length) return null;
    if (!lost.length) return ['recovered', { streams: [...asked] }];
    return ['recoveryFailed', { lost, positions: this.#positionsCopy() }];
  }

  // Delivers an event frame unless it is a duplicate: one of a stream whose
  // position it does not pass (same epoch, offset <= it). A new epoch is
  // always delivered: the history was lost, and the gateway closes a
  // connection that may have missed live events, so nothing is skipped.
  #onEvent(msg) {
    const detail = { id: msg.id ?? null, event: msg.event ?? null, data: msg.data ?? null };
    const p = typeof msg.stream === 'string' ? parsePosition(msg) : null;
    if (p) {
      const stream = msg.stream;
      const tracked = STREAMS.includes(stream);
      const have = tracked ? this.#positions.get(stream) : undefined;
      if (have && have.epoch === p.epoch && p.offset <= have.offset) {
        this.#duplicates++;
        return;
      }
      if (tracked) this.#positions.set(stream, p);
      detail.stream = stream;
      detail.epoch = p.epoch;
      detail.offset = p.offset;
    }
    if (msg.id != null) this.#lastEventId = String(msg.id);
    this.#emit('event', detail);
  }

  // --- client messages ------------------------------------------------------

  // Writes the held messages in order while the socket takes them; what a
  // closing socket refuses stays held for the next connection.
  #flush() {
    while (this.#held.length) {
      const entry = this.#held[0];
      if (!this.#writeRaw(entry.frame)) return;
      this.#held.shift();
      entry.sent = true;
    }
  }

  #onAck(msg) {
    const entry = typeof msg.id === 'string' ? this.#sends.get(msg.id) : undefined;
    // An ack of a message this client no longer waits for (timed out) is late: ignored.
    if (!entry || !entry.sent) return;
    this.#settle(entry, null, { id: entry.id, msgId: typeof msg.msg_id === 'string' ? msg.msg_id : null });
  }

  #onServerError(msg) {
    const code = typeof msg.code === 'string' && msg.code ? msg.code : 'unknown';
    const text = typeof msg.message === 'string' && msg.message ? msg.message : code;
    const entry = typeof msg.id === 'string' ? this.#sends.get(msg.id) : undefined;
    if (entry && entry.sent) {
      this.#settle(entry, sendError(code, `sessiongate: message refused: ${text}`, entry.id));
      return;
    }
    if (msg.id != null && typeof msg.id === 'string' && msg.id.startsWith(`${this.#idPrefix}-`)) return; // late: already settled
    this.#emit('error', { message: `sessiongate: server error ${code}: ${text}`, errorCode: code, ...(typeof msg.id === 'string' ? { id: msg.id } : {}) });
  }

  // Settles a send() once: rejects with err, or resolves with value.
  #settle(entry, err, value) {
    if (!this.#sends.delete(entry.id)) return;
    clearTimeout(entry.timer);
    if (!entry.sent) {
      const i = this.#held.indexOf(entry);
      if (i >= 0) this.#held.splice(i, 1);
    }
    if (err) entry.reject(err);
    else entry.resolve(value);
  }

  // The connection the written messages went to is gone: their fate is
  // unknown (the app may retry). Held ones wait for the next connection,
  // unless heldCode says the client stops (terminal close, close()).
  #failSends(heldCode) {
    for (const entry of [...this.#sends.values()]) {
      if (entry.sent) {
        this.#settle(entry, sendError('disconnected', 'sessiongate: send: the connection closed before the ack; the message may or may not have been queued', entry.id));
      } else if (heldCode) {
        this.#settle(entry, sendError(heldCode, 'sessiongate: send: the client closed before the message was sent', entry.id));
      }
    }
  }

  #positionsCopy() {
    const out = {};
    for (const [stream, p] of this.#positions) out[stream] = { epoch: p.epoch, offset: p.offset };
    return out;
  }

  #onError(ev) {
    // ws (Node) reports a rejected handshake as "Unexpected server response:
    // 401"; browsers hide the status, hence the session probe below.
    const m = HANDSHAKE_STATUS.exec(String(ev?.message ?? ev?.error?.message ?? ''));
    if (m) this.#handshakeStatus = Number(m[1]);
    this.#emit('error', {
      message: ev?.message || 'sessiongate: WebSocket error',
      ...(this.#handshakeStatus ? { status: this.#handshakeStatus } : {}),
    });
  }

  #onClose(code, reason) {
    this.#clearWatchdog();
    this.#ws = null;
    this.#lostConnection(code, reason ?? '');
  }

  // A connection is gone (server close, network loss, watchdog): decide
  // between a terminal stop and a reconnect.
  #lostConnection(code, reason) {
    this.#failSends(null);
    if (isTerminalCode(code)) {
      this.#stopped = true;
      this.#positions.clear();
      const specific = TERMINAL.get(code);
      this.#finish(code, reason, specific, !specific);
      return;
    }
    if (this.#handshakeStatus === 401) {
      this.#stopped = true;
      this.#positions.clear();
      this.#finish(CloseCodes.UNAUTHORIZED, 'handshake rejected with HTTP 401', 'unauthorized', false);
      return;
    }
    if (this.#openedAt && now() - this.#openedAt >= this.#stableAfter && !SLOW_DOWN.has(code)) this.#attempt = 0;
    if (!this.#transportOpen) this.#failuresBeforeOpen++;
    const gen = ++this.#gen;
    this.#state = 'reconnecting';
    if (this.#authProbeAfter > 0 && this.#failuresBeforeOpen >= this.#authProbeAfter && this.#fetch) {
      this.#failuresBeforeOpen = 0;
      this.#emit('closed', { code, reason, terminal: false });
      if (this.#gen !== gen) return;
      this.#emit('state', { state: 'reconnecting', code, reason, attempt: this.#attempt + 1, probing: true });
      if (this.#gen !== gen) return;
      this.#probe(gen);
      return;
    }
    const delay = this.#schedule(gen);
    this.#emit('closed', { code, reason, terminal: false });
    if (this.#gen !== gen) return;
    this.#emit('state', { state: 'reconnecting', code, reason, attempt: this.#attempt, delay });
  }

  // Schedules the next attempt; returns its delay (full jitter).
  #schedule(gen) {
    const cap = Math.min(this.#maxDelay, this.#minDelay * this.#factor ** this.#attempt);
    const r = Math.min(Math.max(Number(this.#random()) || 0, 0), 1);
    const delay = Math.floor(r * cap);
    this.#attempt++;
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = null;
      if (this.#gen === gen && !this.#stopped) this.#open();
    }, delay);
    return delay;
  }

  // Several closes before the upgrade completed: a browser cannot see the
  // HTTP status, so ask the session endpoint whether the session is valid.
  async #probe(gen) {
    const ctl = new AbortController();
    this.#probeAbort = ctl;
    const timer = setTimeout(() => ctl.abort(), this.#probeTimeout);
    let status = 0;
    try {
      const headers = this.#token ? { Authorization: `Bearer ${this.#token}` } : undefined;
      const res = await this.#fetch(this.#probeUrl(), {
        method: 'GET',
        credentials: 'include',
        cache: 'no-store',
        headers,
        signal: ctl.signal,
      });
      status = res.status;
      // Drain the body so the connection can be reused/released.
      await res.arrayBuffer?.().catch(() => {});
    } catch (err) {
      if (this.#gen === gen) this.#emit('error', { message: `sessiongate: session probe failed: ${errMessage(err)}` });
    } finally {
      clearTimeout(timer);
      if (this.#probeAbort === ctl) this.#probeAbort = null;
    }
    if (this.#gen !== gen || this.#stopped) return;
    if (status === 401) {
      this.#stopped = true;
      this.#positions.clear();
      this.#finish(CloseCodes.UNAUTHORIZED, 'session probe returned HTTP 401', 'unauthorized', false);
      return;
    }
    // The session is fine (or unknown): keep backing off.
    this.#schedule(gen);
  }

  // Second constructor argument for Node implementations (ws, undici), which
  // accept an options object with headers in place of the protocol list.
  #socketOptions() {
    const o = { ...this.#wsOptions };
    if (this.#token) o.headers = { ...o.headers, Authorization: `Bearer ${this.#token}` };
    return o;
  }

  #probeUrl() {
    const base = new URL(this.#url);
    base.protocol = base.protocol === 'wss:' ? 'https:' : 'http:';
    return new URL(this.#sessionUrl, base).toString();
  }

  // Final stop. Fires closed, then the specific event (revoked, ...) or an
  // error, then state; stops early if a listener calls connect().
  #finish(code, reason, specific, isError) {
    const gen = ++this.#gen;
    this.#clearTimers();
    this.#ws = null;
    this.#state = 'closed';
    this.#failSends('closed');
    const steps = [['closed', { code, reason, terminal: true }]];
    if (specific) steps.push([specific, { code, reason }]);
    if (isError) steps.push(['error', { message: `sessiongate: connection closed with ${code}${reason ? `: ${reason}` : ''}`, code }]);
    steps.push(['state', { state: 'closed', code, reason }]);
    for (const [name, detail] of steps) {
      if (this.#gen !== gen) return;
      this.#emit(name, detail);
    }
  }

  // Detaches from the current socket (its events are ignored from now on)
  // and closes it; the caller decides what happens next.
  #abandon(code, reason, hard = false) {
    ++this.#gen;
    this.#clearTimers();
    const ws = this.#ws;
    this.#ws = null;
    if (!ws) return;
    ws.onopen = ws.onmessage = ws.onclose = null;
    // Keep an error listener: ws (Node) throws on an unhandled 'error', e.g.
    // "closed before the connection was established".
    ws.onerror = noop;
    // A dead peer never completes the close handshake; ws (Node) would keep
    // the socket for its close timeout, so drop it outright when we can.
    if (hard && typeof ws.terminate === 'function') {
      ws.terminate();
      return;
    }
    try {
      ws.close(code, reason);
    } catch {
      try { ws.close(); } catch { /* already closed */ }
    }
  }

  #armWatchdog(gen, windowMs, beforeOpen) {
    this.#clearWatchdog();
    const fire = () => {
      this.#watchdog = null;
      if (this.#gen !== gen) return;
      if (!beforeOpen) {
        // Re-check against the last frame: cheap per frame, and correct when
        // a background tab's timers fire late.
        const idle = now() - this.#lastRx;
        const limit = this.#pingInterval + this.#pingGrace;
        if (idle < limit) {
          this.#watchdog = setTimeout(fire, limit - idle);
          return;
        }
      }
      const code = beforeOpen ? CloseCodes.ABNORMAL : CloseCodes.HEARTBEAT_TIMEOUT;
      const reason = beforeOpen ? 'connect timeout' : 'heartbeat timeout';
      this.#abandon(CloseCodes.HEARTBEAT_TIMEOUT, reason, true);
      this.#lostConnection(code, reason);
    };
    this.#watchdog = setTimeout(fire, windowMs);
  }

  #clearWatchdog() {
    if (this.#watchdog) clearTimeout(this.#watchdog);
    this.#watchdog = null;
  }

  #clearTimers() {
    this.#clearWatchdog();
    if (this.#reconnectTimer) clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = null;
    if (this.#probeAbort) this.#probeAbort.abort();
    this.#probeAbort = null;
  }

  #write(obj) {
    return this.#writeRaw(JSON.stringify(obj));
  }

  #writeRaw(text) {
    const ws = this.#ws;
    if (!ws || ws.readyState !== 1) return false;
    ws.send(text);
    return true;
  }

  #setState(state, extra) {
    this.#state = state;
    this.#emit('state', { state, ...extra });
  }

  #emit(name, detail) {
    this.dispatchEvent(new DetailEvent(name, { detail }));
  }
}

function noop() {}

// sendError is the Error a send() rejects with: code says why, id names
// the message when it had one.
function sendError(code, message, id) {
  const err = new Error(message);
  err.name = 'SendError';
  err.code = code;
  if (id !== undefined) err.id = id;
  return err;
}

// randomPrefix makes message ids unique per client across page loads:
// 8 hex digits, from crypto when the runtime has it.
function randomPrefix() {
  const bytes = new Uint8Array(4);
  if (typeof globalThis.crypto?.getRandomValues === 'function') globalThis.crypto.getRandomValues(bytes);
  else for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

// parsePosition reads {epoch, offset} from o (a welcome's positions entry or
// an event frame), or returns null when o carries no valid position: history
// off, or an offset past 2^53 that a JS number cannot hold exactly.
function parsePosition(o) {
  if (o === null || typeof o !== 'object') return null;
  const { epoch, offset } = o;
  if (typeof epoch !== 'string' || !EPOCH.test(epoch)) return null;
  if (!Number.isSafeInteger(offset) || offset < 0) return null;
  return { epoch, offset };
}

// lostStreams returns the streams a handshake asked to resume that its
// welcome did not recover. recovered:false names them in lost (all of them
// when it does not); a welcome without recovered comes from a gateway that
// does not resume, so nothing was replayed.
function lostStreams(asked, msg) {
  if (msg.recovered === true) return [];
  if (msg.recovered === false && Array.isArray(msg.lost)) {
    const named = asked.filter((s) => msg.lost.includes(s));
    if (named.length) return named;
  }
  return [...asked];
}

function isBrowser() {
  return typeof globalThis.window !== 'undefined' && typeof globalThis.document !== 'undefined';
}

function resolveWsUrl(url) {
  const loc = globalThis.location;
  let u;
  if (url == null) {
    if (!loc?.host) throw new TypeError('sessiongate: options.url is required outside a browser page');
    u = new URL('/ws', loc.href);
  } else {
    u = new URL(String(url), loc?.href);
  }
  if (u.protocol === 'http:') u.protocol = 'ws:';
  else if (u.protocol === 'https:') u.protocol = 'wss:';
  if (u.protocol !== 'ws:' && u.protocol !== 'wss:') {
    throw new TypeError(`sessiongate: url must be ws:, wss:, http: or https:, got ${u.protocol}`);
  }
  u.hash = '';
  // The client owns the resume parameters (the gateway refuses a repeated one).
  for (const stream of STREAMS) {
    if (u.searchParams.has(`resume_${stream}`)) u.searchParams.delete(`resume_${stream}`);
  }
  return u.toString();
}

function nonNegative(v, def, name) {
  if (v == null) return def;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new RangeError(`sessiongate: ${name} must be a finite number >= 0`);
  return n;
}

function positive(v, def, name) {
  const n = nonNegative(v, def, name);
  if (n === 0) throw new RangeError(`sessiongate: ${name} must be > 0`);
  return n;
}

function errMessage(err) {
  return err instanceof Error ? err.message : String(err);
}
