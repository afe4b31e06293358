// driver.mjs drives one headless Chromium for the Go end-to-end tests. It
// reads one JSON command per line on stdin ({"id":1,"op":"eval",...}) and
// answers one JSON line per command on stdout ({"id":1,"ok":true,"result":...}
// or {"id":1,"ok":false,"error":"..."}). Diagnostics go to stderr.
//
// Environment: CHROMIUM (executable path, default /usr/bin/chromium),
// SG_IGNORE_TLS=1 (accept the throwaway certificate of the TLS test).
import readline from 'node:readline';
import { chromium } from '../../client-js/node_modules/playwright-core/index.mjs';

// Every page records its WebSockets at the transport level, whatever code
// opens them (the client library or an attacker's script): url, open,
// welcome, events, close code and reason.
const INIT_SCRIPT = `(() => {
  const Native = window.WebSocket;
  const log = [];
  Object.defineProperty(window, '__ws', { value: log });
  class RecordingWebSocket extends Native {
    constructor(url, protocols) {
      super(url, protocols);
      const rec = { url: String(url), t0: Date.now(), opened: false, error: false,
        welcome: null, events: [], closed: null };
      log.push(rec);
      this.addEventListener('open', () => { rec.opened = true; });
      this.addEventListener('error', () => { rec.error = true; });
      this.addEventListener('message', (e) => {
        let m; try { m = JSON.parse(e.data); } catch { return; }
        if (m && m.type === 'welcome') rec.welcome = m;
        else if (m && m.type === 'event') {
          rec.events.push({ id: m.id, event: m.event, data: m.data, stream: m.stream, epoch: m.epoch, offset: m.offset });
        }
      });
      this.addEventListener('close', (e) => {
        rec.closed = { code: e.code, reason: e.reason, wasClean: e.wasClean, t: Date.now() };
      });
    }
  }
  window.WebSocket = RecordingWebSocket;
})();`;

const ignoreTLS = process.env.SG_IGNORE_TLS === '1';
const args = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
if (ignoreTLS) args.push('--ignore-certificate-errors');

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  // Playwright passes --headless itself and gives every launch a fresh
  // temporary profile (it refuses --user-data-dir with launch()).
  args: args.filter((a) => a !== '--headless'),
});

const contexts = new Map();
const pages = new Map();

function need(map, id, what) {
  const v = map.get(id);
  if (!v) throw new Error(`no ${what} ${id}`);
  return v;
}

const ops = {
  // clock installs Playwright's fake clock in the context: time flows as
  // usual until runTimers jumps it forward, firing every timer due.
  async newContext({ ctx, clock }) {
    const c = await browser.newContext({ ignoreHTTPSErrors: ignoreTLS });
    if (clock) await c.clock.install();
    await c.addInitScript(INIT_SCRIPT);
    contexts.set(ctx, c);
    return null;
  },
  async newPage({ ctx, page }) {
    const p = await need(contexts, ctx, 'context').newPage();
    p.on('console', (m) => process.stderr.write(`[${page} console.${m.type()}] ${m.text()}\n`));
    p.on('pageerror', (e) => process.stderr.write(`[${page} pageerror] ${e.message}\n`));
    pages.set(page, p);
    return null;
  },
  async goto({ page, url }) {
    const res = await need(pages, page, 'page').goto(url, { waitUntil: 'load', timeout: 30000 });
    return res ? res.status() : 0;
  },
  async reload({ page }) {
    const res = await need(pages, page, 'page').reload({ waitUntil: 'load', timeout: 30000 });
    return res ? res.status() : 0;
  },
  async eval({ page, expr }) {
    return await need(pages, page, 'page').evaluate(expr);
  },
  // waitFor polls with evaluate (CDP Runtime.evaluate) instead of
  // waitForFunction, whose string predicates need 'unsafe-eval', which the
  // demo page's Content-Security-Policy rightly forbids.
  async waitFor({ page, expr, timeoutMs }) {
    const p = need(pages, page, 'page');
    const deadline = Date.now() + timeoutMs;
    let last;
    for (;;) {
      try {
        last = await p.evaluate(expr);
        if (last) return last;
      } catch (err) {
        // A navigation in progress destroys the context: try again.
        if (!/context was destroyed|navigat/i.test(String(err && err.message))) throw err;
      }
      if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms (last value ${JSON.stringify(last)})`);
      await new Promise((r) => setTimeout(r, 50));
    }
  },
  async click({ page, selector }) {
    await need(pages, page, 'page').click(selector, { timeout: 30000 });
    return null;
  },
  // fill types text into an input, as a person would (the admin console's
  // forms).
  async fill({ page, selector, text }) {
    await need(pages, page, 'page').fill(selector, text, { timeout: 5000 });
    return null;
  },
  // screenshot saves the page as a PNG (diagnostics of a failed test).
  async screenshot({ page, path }) {
    await need(pages, page, 'page').screenshot({ path, fullPage: true });
    return null;
  },
  // runTimers advances the context's fake clock by ms, running every timer
  // callback due meanwhile (a pending reconnect, say), without waiting.
  async runTimers({ ctx, ms }) {
    await need(contexts, ctx, 'context').clock.runFor(ms);
    return null;
  },
  async cookies({ ctx, urls }) {
    return await need(contexts, ctx, 'context').cookies(urls);
  },
  async closePage({ page }) {
    await need(pages, page, 'page').close();
    pages.delete(page);
    return null;
  },
};

async function shutdown() {
  try { await browser.close(); } catch { /* already gone */ }
}

const rl = readline.createInterface({ input: process.stdin });
let queue = Promise.resolve();
rl.on('line', (line) => {
  queue = queue.then(async () => {
    let cmd;
    try { cmd = JSON.parse(line); } catch { return; }
    let out;
    try {
      const fn = ops[cmd.op];
      if (!fn) throw new Error(`unknown op ${cmd.op}`);
      const result = await fn(cmd);
      out = { id: cmd.id, ok: true, result: result === undefined ? null : result };
    } catch (err) {
      out = { id: cmd.id, ok: false, error: String(err && err.message || err) };
    }
    process.stdout.write(JSON.stringify(out) + '\n');
  });
});
rl.on('close', () => { queue.then(shutdown).then(() => process.exit(0)); });
process.stdout.write(JSON.stringify({ id: 0, ok: true, result: 'ready' }) + '\n');
