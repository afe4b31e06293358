// A scripted sessiongate-like server for tests: a real HTTP server with a
// real WebSocket endpoint (the `ws` package) on a free loopback port. Tests
// drive each accepted connection by hand (send welcome, events, pings,
// close with a code) and read what the client sent.

import http from 'node:http';
import WebSocket, { WebSocketServer } from 'ws';
import { SessionGateClient } from '../src/index.js';

/**
 * PATIENCE (ms) bounds every wait for something that must happen: long
 * enough that a loaded machine never hits it, so it only catches a hang.
 * The tests assert order, never speed.
 */
export const PATIENCE = 30000;

/** Queue is an async FIFO: push values, await shift(). */
export class Queue {
  #items = [];
  #waiters = [];

  push(v) {
    const w = this.#waiters.shift();
    if (w) w.resolve(v);
    else this.#items.push(v);
  }

  /** shift resolves with the next value, or rejects after timeoutMs. */
  shift(timeoutMs = PATIENCE, what = 'value') {
    if (this.#items.length) return Promise.resolve(this.#items.shift());
    return new Promise((resolve, reject) => {
      const w = {
        resolve: (v) => { clearTimeout(timer); resolve(v); },
      };
      const timer = setTimeout(() => {
        const i = this.#waiters.indexOf(w);
        if (i >= 0) this.#waiters.splice(i, 1);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      this.#waiters.push(w);
    });
  }

  get length() { return this.#items.length; }
}

/** Conn is the server side of one accepted WebSocket. */
export class Conn {
  constructor(ws, req, index) {
    this.ws = ws;
    this.req = req;
    this.index = index;
    this.messages = new Queue();
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
    });
    ws.on('message', (data, isBinary) => {
      this.messages.push(isBinary ? data : JSON.parse(data.toString()));
    });
  }

  send(obj) { this.ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj)); }

  welcome(extra = {}) {
    this.send({
      type: 'welcome',
      conn_id: `c${this.index}`,
      user_id: 'alice',
      instance: 'gw-1',
      ping_interval_ms: 25000,
      ...extra,
    });
  }

  event(id, event, data) { this.send({ type: 'event', id, event, data }); }

  ping() { this.send({ type: 'ping' }); }

  close(code, reason = '') { this.ws.close(code, reason); }

  /** drop ends the TCP connection without a close frame (client sees 1006). */
  drop() { this.ws.terminate(); }

  nextMessage(timeoutMs = PATIENCE) { return this.messages.shift(timeoutMs, `message on connection ${this.index}`); }
}

/**
 * startServer listens on 127.0.0.1:0.
 * @param {object} [opts]
 * @param {(req: http.IncomingMessage) => number} [opts.authorize] HTTP status
 *   for an upgrade request: 101 accepts, anything else rejects before upgrade.
 * @param {http.RequestListener} [opts.http] plain HTTP handler (default 404).
 */
export async function startServer(opts = {}) {
  const authorize = opts.authorize ?? (() => 101);
  const server = http.createServer(opts.http ?? ((req, res) => { res.writeHead(404).end(); }));
  const wss = new WebSocketServer({ noServer: true });
  const accepted = new Queue();
  const all = [];
  const rejected = [];
  const hung = [];
  const sockets = new Set();
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });

  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url, 'http://x');
    const status = url.pathname === '/ws' ? authorize(req) : 404;
    if (status === 0) {
      hung.push(req); // never answer: the client's connect timeout must act
      return;
    }
    if (status !== 101) {
      rejected.push({ status, req });
      const body = JSON.stringify({ error: { code: 'unauthorized', message: 'no session' } });
      socket.end(
        `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\n` +
          'Content-Type: application/json\r\n' +
          `Content-Length: ${Buffer.byteLength(body)}\r\n` +
          'Connection: close\r\n\r\n' + body,
      );
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const c = new Conn(ws, req, all.length + 1);
      all.push(c);
      accepted.push(c);
    });
  });

  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    port,
    origin: `http://127.0.0.1:${port}`,
    url: `ws://127.0.0.1:${port}/ws`,
    /** every accepted connection so far */
    connections: all,
    /** every rejected upgrade so far: {status, req} */
    rejected,
    /** every upgrade request left unanswered (authorize returned 0) */
    hung,
    /** next accepted connection */
    next(timeoutMs = PATIENCE) { return accepted.shift(timeoutMs, 'a WebSocket connection'); },
    async close() {
      for (const c of all) c.ws.terminate();
      await new Promise((resolve) => wss.close(resolve));
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/**
 * OpaqueWebSocket is the ws client with its error events stripped to a bare
 * Event, as in browsers: a rejected handshake shows only as error + 1006.
 */
export class OpaqueWebSocket extends WebSocket {
  set onerror(fn) { super.onerror = typeof fn === 'function' ? () => fn(new Event('error')) : fn; }
  get onerror() { return super.onerror; }
}

/** collect records a client's events in order as {type, detail}. */
export function collect(client, names = ['state', 'welcome', 'event', 'revoked', 'expired', 'unauthorized', 'closed', 'error']) {
  const log = [];
  const waiters = [];
  for (const name of names) {
    client.addEventListener(name, (ev) => {
      log.push({ type: name, detail: ev.detail });
      for (const w of [...waiters]) {
        if (w.pred()) { waiters.splice(waiters.indexOf(w), 1); w.resolve(); }
      }
    });
  }
  return {
    log,
    of(type) { return log.filter((e) => e.type === type).map((e) => e.detail); },
    /** until resolves once pred(log) holds, or rejects after timeoutMs. */
    until(pred, timeoutMs = PATIENCE, what = 'condition') {
      if (pred(log)) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const w = {
          pred: () => pred(log),
          resolve: () => { clearTimeout(timer); resolve(); },
        };
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(w), 1);
          reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; log: ${JSON.stringify(log.map((e) => e.type + ':' + JSON.stringify(e.detail)))}`));
        }, timeoutMs);
        waiters.push(w);
      });
    },
  };
}

/** sleep waits ms milliseconds. */
export function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }

/**
 * timersUpTo resolves once every timer set before it with a delay of at most
 * ms has run. It is an ordering barrier, not a bet on speed: Node runs
 * timers in order of expiry (equal expiries in the order they were set), so
 * however late the machine is, a reconnect scheduled earlier for <= ms runs
 * first.
 */
export function timersUpTo(ms) { return new Promise((r) => setTimeout(r, ms)); }

/**
 * counting returns a subclass of WebSocket class Base that counts its
 * constructions: a client's reconnect shows the moment its timer fires,
 * before any network round trip.
 */
export function counting(Base = WebSocket) {
  const counter = { n: 0 };
  counter.WebSocket = class extends Base {
    constructor(...args) {
      super(...args);
      counter.n++;
    }
  };
  return counter;
}

/**
 * fakeNow replaces performance.now (the client's clock for stableAfter and
 * the heartbeat watchdog) with a clock the test moves by hand, until t ends.
 * Timers still run on real time; only what the client measures is fake.
 */
export function fakeNow(t) {
  let ms = 1000;
  t.mock.method(globalThis.performance, 'now', () => ms);
  return { advance(d) { ms += d; }, get now() { return ms; } };
}

// testServer starts a scripted server closed when test t ends.
export async function testServer(t, opts) {
  const srv = await startServer(opts);
  t.after(() => srv.close());
  return srv;
}

// testClient makes a client of srv with fast, deterministic reconnects
// (random() = 0), closed when test t ends. opts override the defaults.
export function testClient(t, srv, opts = {}) {
  const c = new SessionGateClient({
    url: srv.url,
    WebSocket,
    random: () => 0,
    reconnect: { minDelay: 10, maxDelay: 100, factor: 2 },
    ...opts,
  });
  t.after(() => c.close());
  return c;
}
