// The janus.js SIP test page (`pages/sip.html`: one janus.js session, named phones on the SIP
// plugin, each keeping its events) served on its own origin, and the waits the SIP browser
// tests share.

import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

const E2E_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const FILES = {
  '/': ['pages/sip.html', 'text/html'],
  '/adapter.js': ['node_modules/webrtc-adapter/out/adapter.js', 'text/javascript'],
  '/janus.js': ['node_modules/janus-gateway/npm/dist/janus.es.js', 'text/javascript'],
};

/** Microphone constraints that keep the fake device's tone as it is (no processing). */
export const MIC = { echoCancellation: false, noiseSuppression: false, autoGainControl: false };

/**
 * Serves the SIP test page, adapter.js and janus.js on 127.0.0.1.
 * @returns {Promise<{url: string, close: () => Promise<void>}>}
 */
export async function startSipSite() {
  const server = http.createServer((req, res) => {
    const entry = FILES[new URL(req.url, 'http://x').pathname];
    if (!entry) { res.writeHead(req.url === '/favicon.ico' ? 204 : 404).end(); return; }
    res.writeHead(200, { 'Content-Type': entry[1], 'Cache-Control': 'no-store' });
    res.end(fs.readFileSync(path.join(E2E_DIR, entry[0])));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${server.address().port}/`, close: () => new Promise((r) => server.close(r)) };
}

/** Polls `fn(arg)` in the page until `check` accepts it; the deadline is a hang guard only. */
export async function waitInPage(page, fn, arg, check, what, timeoutMs = 30000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await page.evaluate(fn, arg);
    if (check(last)) return last;
    if (Date.now() > deadline) throw new Error(`${what} not reached within ${timeoutMs} ms; last ${JSON.stringify(last)}`);
    await sleep(200);
  }
}

/** Waits for phone `name`'s event named `event` (or an error) after its first `from` events. */
export async function waitEvent(page, name, event, timeoutMs = 30000, from = 0) {
  const events = await waitInPage(page, (n) => window.eventsOf(n), name,
    (evs) => evs.slice(from).some((e) => e.event === event || e.error_code), `${name}: ${event}`, timeoutMs);
  const got = events.slice(from).find((e) => e.event === event || e.error_code);
  assert.equal(got.event, event, `expected ${event}, got ${JSON.stringify(got)}; all: ${JSON.stringify(events)}`);
  return got;
}

/** How many events phone `name` has received so far. */
export const eventCount = (page, name) => page.evaluate((n) => window.eventsOf(n).length, name);
