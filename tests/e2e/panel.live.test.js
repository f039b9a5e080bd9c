// The admin panel's live parts against real peers, in Debian's Chromium: a trunk created in
// the trunk form registers at a kamailio started here on its own (no browser registers any
// account) and shows "registered" in the live view page; a trunk with a wrong password shows
// "failed 401"; "Test now" answers the live REGISTER result in the trunk's row; disabling
// and deleting a trunk unregisters it; a stream key created in the page is published to with
// ffmpeg, the publisher shows in the live view and its viewer count goes to 1 while a janus.js
// viewer watches; a WHIP publisher (werift + ffmpeg, Opus + H.264) shows with its protocol,
// codecs and remote address and goes when it sends DELETE. The registry poll is set to an hour, so every change is applied by the
// panel's own notification. Egress targets: created in their page, a non-RTMP URL refused
// (422), the key never shown. Screenshots: panel-live-*.png, panel-trunks-test.png,
// panel-egress.png.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TARGET, freePorts } from './lib/gateway.js';
import { addUser } from './lib/panel.js';
import { startKamailio } from './lib/sip.js';
import {
  startStreamingGateway, publish, startViewerSite, openViewer, launchChromium, addKey,
} from './lib/streaming.js';
import { whipPublish } from './lib/whip_client.js';

const SHOTS = process.env.E2E_SCREENSHOT_DIR || fs.mkdtempSync(path.join(os.tmpdir(), 'bifrons-shots-'));
const ADMIN = { username: 'admin', password: 'e2e-admin-password' };
const WRONG_PASSWORD = 'not-bobs-password-e2e';
const EGRESS_KEY = 'egress-key-e2e-Kestrel-3';

/** Retries `fn` until it returns a truthy value; the deadline is a hang guard only. */
async function eventually(fn, what, timeoutMs = 40000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e.message;
    }
    if (Date.now() > deadline) throw new Error(`${what} not reached in ${timeoutMs} ms; last: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe('admin panel live view with real peers', { skip: TARGET !== 'bifrons' && 'Bifrons pages' }, () => {
  let kamailio;
  let gw;
  let browser;
  let page;
  let site;
  let panel;
  const cleanups = [];

  before(async () => {
    kamailio = await startKamailio();
    const [whepPort] = await freePorts(1);
    gw = await startStreamingGateway('panel-live', {
      BIFRONS_SIP_REGISTRY_POLL: '3600', BIFRONS_SIP_TIMER_T1_MS: '100',
      BIFRONS_WHEP_ENABLED: 'true', BIFRONS_WHEP_BIND: '127.0.0.1', BIFRONS_WHEP_PORT: String(whepPort),
    });
    gw.whip = `http://127.0.0.1:${whepPort}/whip`;
    await addUser(gw.dbUrl, ADMIN.username, 'admin', ADMIN.password);
    panel = `http://127.0.0.1:${gw.ports.adminHttp}/panel/`;
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const lines = [];
    page.on('console', (m) => lines.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => lines.push(`pageerror: ${e.message}`));
    page.on('dialog', (d) => d.accept());
    page.consoleLines = lines;
    site = await startViewerSite();
  });

  after(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => {});
    await browser?.close();
    await site?.close();
    await gw?.stop();
    await kamailio?.stop();
  });

  /** Runs `fn`, adding the panel page's console and kamailio's log tail to a failure. */
  async function step(fn) {
    try {
      await fn();
    } catch (err) {
      err.message += `\n--- browser console (last 20 lines) ---\n${page.consoleLines.slice(-20).join('\n')}`;
      err.message += `\n--- kamailio (last 20 lines) ---\n${kamailio.log().split('\n').slice(-20).join('\n')}`;
      throw err;
    }
  }

  async function shot(name) {
    await page.screenshot({ path: path.join(SHOTS, `panel-${name}.png`) });
  }

  /** The text of the live view's SIP registration row of `trunk`, '' when there is none. */
  async function registrationRow(trunk) {
    const rows = page.locator('#live-data table').filter({ has: page.locator('caption', { hasText: 'SIP registrations' }) })
      .locator('tbody tr').filter({ has: page.getByRole('cell', { name: trunk, exact: true }) });
    return (await rows.count()) ? (await rows.first().innerText()).replace(/\s+/g, ' ') : '';
  }

  async function createTrunk(name, user, password) {
    await page.goto(panel + '#/trunks');
    await page.locator('#f-new-trunk-name').waitFor();
    await page.fill('#f-new-trunk-name', name);
    await page.fill('#f-new-trunk-registrar_uri', kamailio.registrar);
    await page.fill('#f-new-trunk-username', user);
    await page.fill('#f-new-trunk-password', password);
    await page.fill('#f-new-trunk-register_expiry_s', '120');
    await page.getByRole('button', { name: 'Create trunk' }).click();
    await page.getByRole('cell', { name, exact: true }).waitFor();
  }

  it('logs in', () => step(async () => {
    await page.goto(panel);
    await page.locator('#login').waitFor({ state: 'visible' });
    await page.fill('#login-username', ADMIN.username);
    await page.fill('#login-password', ADMIN.password);
    await page.keyboard.press('Enter');
    await page.locator('#top').waitFor({ state: 'visible' });
  }));

  it('shows a trunk made in the form registered at kamailio in the live view, with its expiry', () => step(async () => {
    await createTrunk('kam', 'alice', 'alicepw');
    await page.goto(panel + '#/live');
    const row = await eventually(async () => {
      const r = await registrationRow('kam');
      return /registered/.test(r) && !/unregistered/.test(r) && r;
    }, 'trunk kam registered in the live view');
    assert.match(row, /kam trunk registered 200 OK 120 s/);
    // kamailio saw the gateway's REGISTER for alice, which no browser asked for.
    assert.match(kamailio.log(), /REQ REGISTER sip:127\.0\.0\.1:\d+ from alice/);
    await shot('live-sip');
  }));

  it('shows a trunk with a wrong password as failed 401', () => step(async () => {
    await createTrunk('kam-wrong', 'bob', WRONG_PASSWORD);
    await page.goto(panel + '#/live');
    const row = await eventually(async () => {
      const r = await registrationRow('kam-wrong');
      return /failed/.test(r) && r;
    }, 'trunk kam-wrong failed in the live view');
    assert.match(row, /kam-wrong trunk failed 401 Unauthorized/);
  }));

  it('"Test now" shows the live REGISTER result in the trunk row', () => step(async () => {
    await page.goto(panel + '#/trunks');
    const ok = page.locator('output.trunk-test[data-trunk="kam"]');
    await page.getByRole('row').filter({ has: page.getByRole('cell', { name: 'kam', exact: true }) })
      .getByRole('button', { name: 'Test now' }).click();
    await eventually(async () => /^ok: REGISTER 200 OK in \d+ ms, expires 120 s$/.test(await ok.textContent()), 'test of kam');
    const bad = page.locator('output.trunk-test[data-trunk="kam-wrong"]');
    await page.getByRole('row').filter({ has: page.getByRole('cell', { name: 'kam-wrong', exact: true }) })
      .getByRole('button', { name: 'Test now' }).click();
    await eventually(async () => /^failed: REGISTER 401 Unauthorized in \d+ ms$/.test(await bad.textContent()), 'test of kam-wrong');
    assert.ok(!(await page.content()).includes('alicepw'));
    await shot('trunks-test');
  }));

  it('unregisters a trunk that is disabled, re-registers it when enabled, forgets a deleted one', () => step(async () => {
    const api = (method, p, body) => page.evaluate(async ({ method, p, body }) => {
      const me = await (await fetch('/panel/api/v1/me')).json();
      const res = await fetch('/panel/api/v1' + p, {
        method,
        headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': me.csrf_token },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: res.status, body: res.status === 204 ? null : await res.json() };
    }, { method, p, body });
    const trunks = (await api('GET', '/trunks')).body;
    const kam = trunks.find((t) => t.name === 'kam');
    const wrong = trunks.find((t) => t.name === 'kam-wrong');
    const edit = (enabled) => api('PUT', `/trunks/${kam.id}`, {
      name: 'kam', registrar_uri: kam.registrar_uri, username: 'alice', register_expiry_s: 120, enabled,
    });
    assert.equal((await edit(false)).status, 200);
    await page.goto(panel + '#/live');
    await eventually(async () => /kam trunk unregistered trunk disabled/.test(await registrationRow('kam')), 'kam unregistered');
    // The registration was removed at kamailio: a REGISTER with Expires: 0 for alice.
    assert.equal((await edit(true)).status, 200);
    await eventually(async () => /kam trunk registered 200 OK/.test(await registrationRow('kam')), 'kam registered again');
    assert.equal((await api('DELETE', `/trunks/${wrong.id}`)).status, 204);
    await eventually(async () => (await registrationRow('kam-wrong')) === '', 'kam-wrong gone from the live view');
  }));

  it('shows a publisher of a stream key made in the page, its viewer count going to 1', () => step(async () => {
    await page.goto(panel + '#/stream-keys');
    await page.fill('#f-new-stream-key-name', 'live-cam');
    await page.getByRole('button', { name: 'Create stream key' }).click();
    const keyEl = page.locator('[data-secret="key"]');
    await keyEl.waitFor();
    const key = await keyEl.textContent();
    const publishUrl = await page.locator('[data-secret="publish-url"]').textContent();
    assert.equal(publishUrl, `rtmp://127.0.0.1:${gw.rtmpPort}/live/${key}`);
    await page.getByRole('button', { name: 'I saved it' }).click();
    const keys = await page.evaluate(async () => (await fetch('/panel/api/v1/stream-keys')).json());
    const mountpoint = keys.find((k) => k.name === 'live-cam').id;

    const ffmpeg = publish(publishUrl, { size: '320x180' });
    cleanups.push(ffmpeg.stop);
    await page.goto(panel + '#/live');
    const publishers = page.locator('#live-data table').filter({ has: page.locator('caption', { hasText: 'publishers' }) });
    const row = publishers.locator('tbody tr').filter({ has: page.getByRole('cell', { name: 'live-cam', exact: true }) });
    const rowText = async () => ((await row.count()) ? (await row.first().innerText()).replace(/\s+/g, ' ') : '');
    await eventually(async () => new RegExp(`^${mountpoint} RTMP live-cam 0 `).test(await rowText()), 'publisher with 0 viewers');

    const viewer = await openViewer(browser, site, gw.httpUrl, mountpoint);
    cleanups.push(async () => { await viewer.evaluate(() => window.hangup()); await viewer.close(); });
    await eventually(() => viewer.evaluate(() => window.e2e.webrtcup), 'viewer WebRTC up');
    await eventually(async () => new RegExp(`^${mountpoint} RTMP live-cam 1 \\d`).test(await rowText()), 'publisher with 1 viewer');
    await shot('live-publisher');
    await viewer.evaluate(() => window.hangup());
    await eventually(async () => new RegExp(`^${mountpoint} RTMP live-cam 0 `).test(await rowText()), 'viewer count back to 0');
    await ffmpeg.stop();
    await eventually(async () => (await rowText()) === '', 'publisher gone after ffmpeg stopped');
  }));

  it('shows a WHIP publisher with its codecs and remote address until it sends DELETE', () => step(async () => {
    const key = addKey(gw, 'whip-live');
    const pub = await whipPublish(`${gw.whip}/${key.mountpoint}`, key.key, { size: '320x180' });
    cleanups.push(pub.stop);
    assert.equal(pub.status, 201, pub.answer);
    await page.goto(panel + '#/live');
    const publishers = page.locator('#live-data table').filter({ has: page.locator('caption', { hasText: 'publishers' }) });
    const row = publishers.locator('tbody tr').filter({ has: page.getByRole('cell', { name: 'whip-live', exact: true }) });
    const rowText = async () => ((await row.count()) ? (await row.first().innerText()).replace(/\s+/g, ' ') : '');
    const shown = await eventually(async () => {
      const t = await rowText();
      return new RegExp(`^${key.mountpoint} WHIP whip-live 0 [1-9][\\d.]* kbit/s opus \\+ h264 127\\.0\\.0\\.1:\\d+ `).test(t) && t;
    }, 'WHIP publisher with its bitrate, codecs and remote address');
    console.log(`# live view row: ${shown}`);
    const snapshot = await page.evaluate(async () => (await fetch('/panel/api/v1/live')).json());
    const p = snapshot.publishers.find((x) => x.mountpoint === String(key.mountpoint));
    assert.equal(p.protocol, 'whip');
    assert.deepEqual(p.codecs, ['opus', 'h264']);
    assert.ok(!JSON.stringify(snapshot).includes(key.key), 'the key itself is never shown');
    await shot('live-whip');
    assert.equal(await pub.stop(), 200);
    await eventually(async () => (await rowText()) === '', 'WHIP publisher gone after DELETE');
  }));

  it('manages egress targets in their page: a non-RTMP URL refused, the key never shown, "not started"', () => step(async () => {
    await page.goto(panel + '#/egress');
    await page.getByText('No egress targets yet.').waitFor();
    await page.fill('#f-new-egress-target-name', 'cdn');
    await page.fill('#f-new-egress-target-url', 'https://cdn.example/live');
    await page.fill('#f-new-egress-target-key', EGRESS_KEY);
    await page.fill('#f-new-egress-target-mountpoint', 'live-cam');
    await page.getByRole('button', { name: 'Create egress target' }).click();
    await page.getByRole('alert').filter({ hasText: 'unprocessable' }).waitFor();
    assert.equal(await page.evaluate(() => document.activeElement.id), 'f-new-egress-target-url');
    await page.fill('#f-new-egress-target-url', 'rtmp://cdn.example/live');
    await page.getByRole('button', { name: 'Create egress target' }).click();
    const row = page.getByRole('row').filter({ has: page.getByRole('cell', { name: 'cdn', exact: true }) });
    await row.waitFor();
    assert.match((await row.innerText()).replace(/\s+/g, ' '), /cdn rtmp:\/\/cdn\.example\/live set live-cam yes not started/);
    assert.ok(!(await page.content()).includes(EGRESS_KEY));
    const listed = await page.evaluate(async () => (await fetch('/panel/api/v1/egress-targets')).text());
    assert.ok(listed.includes('"has_key":true') && !listed.includes(EGRESS_KEY));
    await shot('egress');
  }));

  it('never wrote a trunk password or an egress key to the gateway log', () => {
    const log = fs.readFileSync(gw.logFile, 'utf8');
    assert.ok(log.includes('trunk registered'), 'the log tells about the registration');
    for (const secret of ['alicepw', WRONG_PASSWORD, EGRESS_KEY]) assert.ok(!log.includes(secret), `${secret} in the log`);
  });
});
