// close() must leave nothing running: a child process that closes its client
// in each state has to exit by itself while the server stays up.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startServer } from '../testutil/server.js';

const child = fileURLToPath(new URL('../testutil/exit-child.js', import.meta.url));

// runChild starts the child; once it reports the state reached and ready()
// holds on the server side, it tells the child to close, then waits for exit.
// timeoutMs is long enough for a loaded machine, and still half the 60 s
// timers the child sets: a leaked one keeps it alive past the bound.
function runChild(url, scenario, ready, timeoutMs = 30000) {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [child, url, scenario], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let told = false;
    const poll = setInterval(() => {
      if (told || !out.includes('reached') || !ready()) return;
      told = true;
      clearInterval(poll);
      p.stdin.end('close\n');
    }, 10);
    p.stdout.on('data', (b) => { out += b; });
    p.stderr.on('data', (b) => { err += b; });
    const timer = setTimeout(() => {
      clearInterval(poll);
      p.kill('SIGKILL');
      reject(new Error(`child (${scenario}) still running after ${timeoutMs} ms (told to close: ${told}): close() left work behind? stdout=${out} stderr=${err}`));
    }, timeoutMs);
    p.on('exit', (code, signal) => {
      clearTimeout(timer);
      clearInterval(poll);
      resolve({ code, signal, out, err, told });
    });
  });
}

test('the process exits after close() in every state', async (t) => {
  const cases = [
    { name: 'open', scenario: 'open', authorize: () => 101, serve: (c) => c.welcome() },
    { name: 'waiting to reconnect', scenario: 'reconnecting', authorize: () => 101, serve: (c) => { c.welcome(); c.close(1001); } },
    { name: 'mid-handshake', scenario: 'connecting', authorize: () => 0 },
    { name: 'probing the session', scenario: 'probing', authorize: () => 401, hangHttp: true },
  ];
  for (const tc of cases) {
    await t.test(tc.name, async (t) => {
      const pending = [];
      const srv = await startServer({
        authorize: tc.authorize,
        http: (req, res) => { if (tc.hangHttp) pending.push(res); else res.writeHead(404).end(); },
      });
      t.after(() => srv.close());
      if (tc.serve) srv.next().then(tc.serve, () => {});
      const ready = {
        open: () => true,
        reconnecting: () => true,
        connecting: () => srv.hung.length === 1, // handshake in flight
        probing: () => pending.length === 1, // probe in flight
      }[tc.scenario];
      const r = await runChild(srv.url, tc.scenario, ready);
      assert.equal(r.err, '');
      const outcome = tc.scenario === 'open' ? 'disconnected' : 'closed'; // in flight, or held
      assert.equal(r.out.trim(), `reached\nclosed in ${tc.scenario}: send ${outcome}`);
      assert.equal(r.code, 0);
    });
  }
});
