// Headless Chromium for the browser tests: the system browser through
// playwright-core (no browser download), in a throwaway profile.

import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

export const executablePath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

/**
 * launchChromium starts headless Chromium for test t and returns its
 * context, closed (then its profile removed) when t ends. A missing Chromium
 * fails the test (never skips it): a run that could not reach the real
 * browser must not pass.
 */
export async function launchChromium(t) {
  assert.ok(existsSync(executablePath), `no Chromium at ${executablePath}: install the Debian package chromium (\`make deps\`) or set CHROMIUM_PATH`);
  const userDataDir = mkdtempSync(path.join(tmpdir(), 'sessiongate-chromium-'));
  // One hook, in order: the browser must have exited before its profile is
  // removed (a loaded machine may still be flushing it); retries cover the
  // last writes of its helper processes.
  let context;
  t.after(async () => {
    try {
      if (context) await context.close();
    } finally {
      rmSync(userDataDir, { recursive: true, force: true, maxRetries: 20, retryDelay: 100 });
    }
  });
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
    timeout: 60000,
  });
  return context;
}
