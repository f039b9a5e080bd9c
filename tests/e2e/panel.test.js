// The admin panel in Debian's Chromium against a gateway started once for this file:
// log in with the keyboard, create a trunk and an account through the forms, create a stream
// key (shown once), watch a live echo-test call in the live view, play the recording that call
// made until the <audio> element ends, delete it (file and row gone), check phone width, and
// validate the OpenAPI document with swagger-parser. Screenshots of each page go to
// E2E_SCREENSHOT_DIR (committed ones: screenshots/panel-*.png), or a temporary folder.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { launchChromium } from './lib/browser.js';
import SwaggerParser from '@apidevtools/swagger-parser';
import { startGateway, TARGET } from './lib/gateway.js';
import { addUser, startEchotestRecording, stopRecording, hangup } from './lib/panel.js';

const SHOTS = process.env.E2E_SCREENSHOT_DIR || fs.mkdtempSync(path.join(os.tmpdir(), 'bifrons-shots-'));
const ADMIN = { username: 'admin', password: 'e2e-admin-password' };
const VIEWER = { username: 'viewer', password: 'e2e-viewer-password' };

/** Retries `fn` until it returns a truthy value; the deadline is a hang guard only. */
async function eventually(fn, what, timeoutMs = 30000) {
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

describe('admin panel', { skip: TARGET !== 'bifrons' && 'Bifrons pages' }, () => {
  let gw;
  let browser;
  let dir;
  let recordingsDir;
  let panel;
  let janusBase;
  let page;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bifrons-panel-e2e-'));
    recordingsDir = path.join(dir, 'recordings');
    const databaseUrl = `sqlite://${path.join(dir, 'bifrons.db')}`;
    await addUser(databaseUrl, ADMIN.username, 'admin', ADMIN.password);
    await addUser(databaseUrl, VIEWER.username, 'viewer', VIEWER.password);
    gw = await startGateway({
      name: 'panel',
      env: {
        BIFRONS_DATABASE_URL: databaseUrl,
        BIFRONS_RECORDINGS_DIR: recordingsDir,
        BIFRONS_PANEL_MAX_FAILED_LOGINS: '3',
      },
    });
    panel = `http://127.0.0.1:${gw.ports.adminHttp}/panel/`;
    janusBase = `http://127.0.0.1:${gw.ports.http}`;
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const lines = [];
    page.on('console', (m) => lines.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => lines.push(`pageerror: ${e.message}`));
    page.on('dialog', (d) => d.accept());
    page.consoleLines = lines;
  });

  after(async () => {
    await browser?.close();
    await gw?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Runs `fn`, adding the panel page's console to a failure. */
  async function step(fn) {
    try {
      await fn();
    } catch (err) {
      err.message += `\n--- browser console (last 30 lines) ---\n${page.consoleLines.slice(-30).join('\n')}`;
      throw err;
    }
  }

  /** The panel API from inside the page (its cookie and CSRF token). */
  function apiInPage(method, p, body) {
    return page.evaluate(async ({ method, p, body }) => {
      const me = await (await fetch('/panel/api/v1/me')).json();
      const res = await fetch('/panel/api/v1' + p, {
        method,
        headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': me.csrf_token },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: res.status, body: res.status === 204 ? null : await res.json() };
    }, { method, p, body });
  }

  async function shot(name, target = page) {
    await target.screenshot({ path: path.join(SHOTS, `panel-${name}.png`) });
  }

  it('logs in with the keyboard alone, after a wrong password is shown as an error', () => step(async () => {
    await page.goto(panel);
    await page.locator('#login').waitFor({ state: 'visible' });
    assert.equal(await page.evaluate(() => document.activeElement.id), 'login-username');
    await shot('login');
    await page.keyboard.type(ADMIN.username);
    await page.keyboard.press('Tab');
    await page.keyboard.type('wrong password');
    await page.keyboard.press('Enter');
    await page.locator('#login-error').waitFor({ state: 'visible' });
    assert.equal(await page.locator('#login-error').textContent(), 'Wrong username or password.');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'login-password');
    await page.keyboard.press('Control+A');
    await page.keyboard.type(ADMIN.password);
    await page.keyboard.press('Enter');
    await page.locator('#top').waitFor({ state: 'visible' });
    assert.equal(await page.locator('#who').textContent(), 'admin (admin)');
    assert.equal(await page.locator('#view').getAttribute('data-view'), 'live');
    const cookies = await page.context().cookies();
    const session = cookies.find((c) => c.name === 'bifrons_panel');
    assert.ok(session, 'session cookie set');
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, 'Strict');
    assert.equal(await page.evaluate(() => document.cookie), '', 'no script can read the session');
    // Following a navigation link with the keyboard puts the focus on the new page's heading.
    await page.focus('#nav a[data-view="trunks"]');
    await page.keyboard.press('Enter');
    await eventually(() => page.evaluate(() => document.activeElement.tagName === 'H1'
      && document.activeElement.textContent === 'SIP trunks'), 'focus on the Trunks heading', 5000);
  }));

  it('creates a trunk and an account through the forms', () => step(async () => {
    await page.goto(panel + '#/trunks');
    await page.getByText('No trunks yet.').waitFor();
    await page.fill('#f-new-trunk-name', 'office-pbx');
    await page.fill('#f-new-trunk-registrar_uri', 'sip:pbx.office.example');
    await page.fill('#f-new-trunk-username', 'bifrons');
    await page.fill('#f-new-trunk-password', 'trunk-e2e-secret');
    await page.getByRole('button', { name: 'Create trunk' }).click();
    await page.getByRole('cell', { name: 'office-pbx' }).waitFor();
    assert.equal(await page.getByText('trunk-e2e-secret').count(), 0);
    await shot('trunks');

    await page.goto(panel + '#/accounts');
    await page.getByText('No accounts yet.').waitFor();
    // A refused value is shown next to the form, and nothing is created.
    await page.fill('#f-new-account-extension', '1001');
    await page.fill('#f-new-account-sip_uri', 'mailto:nope');
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.getByRole('alert').filter({ hasText: 'invalid_input' }).waitFor();
    await page.fill('#f-new-account-sip_uri', 'sip:1001@pbx.office.example');
    await page.fill('#f-new-account-display_name', 'Front desk');
    await page.check('#f-new-account-voicemail_enabled');
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.getByRole('cell', { name: 'Front desk' }).waitFor();
    const accounts = await apiInPage('GET', '/accounts');
    assert.equal(accounts.body.length, 1);
    assert.equal(accounts.body[0].extension, '1001');
    assert.equal(accounts.body[0].voicemail_enabled, true);
    await shot('accounts');
  }));

  it('creates a stream key that is shown once, with its RTMP URL', () => step(async () => {
    await page.goto(panel + '#/stream-keys');
    await page.getByText('No stream keys yet.').waitFor();
    await page.fill('#f-new-stream-key-name', 'studio-a');
    await page.getByRole('button', { name: 'Create stream key' }).click();
    const keyEl = page.locator('[data-secret="key"]');
    await keyEl.waitFor();
    const key = await keyEl.textContent();
    assert.match(key, /^[0-9a-f]{64}$/);
    assert.equal(await page.locator('[data-secret="rtmp-url"]').textContent(), 'rtmp://127.0.0.1:1935/live');
    assert.equal(await page.locator('[data-secret="publish-url"]').textContent(), `rtmp://127.0.0.1:1935/live/${key}`);
    await shot('stream-keys');
    await page.getByRole('cell', { name: 'studio-a' }).waitFor();
    assert.equal(await page.locator('#f-new-stream-key-name').inputValue(), '', 'the form is cleared');
    await page.getByRole('button', { name: 'I saved it' }).click();
    await page.getByRole('cell', { name: 'studio-a' }).waitFor();
    assert.equal(await page.locator('[data-secret="key"]').count(), 0);
    assert.ok(!(await page.content()).includes(key), 'the key is gone from the page');
    const list = await apiInPage('GET', '/stream-keys');
    assert.equal(list.body[0].name, 'studio-a');
    assert.ok(!JSON.stringify(list.body).includes(key), 'the API never shows it again');

    // Egress lives on the Egress page only: a key has no egress list or button of its own.
    assert.equal(list.body[0].egress, undefined);
    assert.equal(await page.getByRole('row', { name: /studio-a/ }).getByRole('button', { name: 'Egress' }).count(), 0);
  }));

  it('shows a live echo-test call, then plays its recording to the end and deletes it', () => step(async () => {
    const caller = await browser.newPage();
    try {
      await caller.goto(`${janusBase}/demos/`);
      const call = await startEchotestRecording(caller, 'panel-e2e');

      // The live view shows the call's session and handle with ICE and DTLS up and a bitrate.
      await page.goto(panel + '#/live');
      const row = page.locator('#live-data tr', { hasText: String(call.handleId) });
      await eventually(async () => {
        const text = await row.textContent({ timeout: 1000 });
        return text.includes('echotest') && /connected.*connected/.test(text) && /in \d+(\.\d+)? kbit\/s/.test(text);
      }, 'live row with echotest, ICE and DTLS connected and a bitrate');
      assert.match(await page.locator('.live-status').textContent(), /^Live · updated/);
      await shot('live');

      await new Promise((r) => setTimeout(r, 2500));
      await stopRecording(caller);
      await hangup(caller);
    } finally {
      await caller.close();
    }

    const rec = await eventually(async () => {
      const r = await apiInPage('GET', '/recordings?kind=echotest');
      const found = r.body.recordings[0];
      return found && found.duration_ms > 1500 && found.size_bytes > 0 ? found : null;
    }, 'the echo-test recording registered with its duration');
    const file = path.join(recordingsDir, rec.file);
    assert.ok(fs.existsSync(file), `${file} exists`);
    assert.equal(rec.heard, false);

    await page.goto(panel + '#/recordings');
    const recRow = page.locator('tbody tr', { hasText: 'echotest' });
    await recRow.waitFor();
    await recRow.getByRole('button', { name: 'Play' }).click();
    const audio = page.locator(`audio[data-recording="${rec.id}"]`);
    await audio.waitFor();
    await eventually(() => audio.evaluate((a) => a.dataset.ended === 'true' && a.ended), 'the audio element ended', 30000);
    const played = await audio.evaluate((a) => ({ duration: a.duration, error: a.error && a.error.code }));
    assert.equal(played.error, null);
    assert.ok(Math.abs(played.duration * 1000 - rec.duration_ms) < 500, `duration ${played.duration} s vs ${rec.duration_ms} ms`);
    // Playing to the end marks it heard.
    await eventually(async () => (await apiInPage('GET', `/recordings/${rec.id}`)).body.heard, 'marked heard');
    assert.equal(await page.locator(`[data-heard="${rec.id}"]`).textContent(), 'yes');
    await page.goto(panel + '#/recordings');
    await recRow.waitFor();
    await recRow.getByRole('button', { name: 'Play' }).click();
    await audio.waitFor();
    await shot('recordings');

    await recRow.getByRole('button', { name: 'Delete' }).click();
    await page.getByText('No recordings yet.').waitFor();
    assert.equal(fs.existsSync(file), false, 'file removed');
    const gone = await apiInPage('GET', `/recordings/${rec.id}`);
    assert.equal(gone.status, 404);
    assert.equal(gone.body.error.code, 'not_found');
  }));

  it('shows the users page to admins only', () => step(async () => {
    await page.goto(panel + '#/users');
    await page.getByRole('cell', { name: 'admin (you)' }).waitFor();
    await page.getByRole('cell', { name: 'viewer', exact: true }).first().waitFor();
    await shot('users');

    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const viewerPage = await ctx.newPage();
    try {
      await viewerPage.goto(panel);
      await viewerPage.fill('#login-username', VIEWER.username);
      await viewerPage.fill('#login-password', VIEWER.password);
      await viewerPage.press('#login-password', 'Enter');
      await viewerPage.locator('#top').waitFor({ state: 'visible' });
      assert.equal(await viewerPage.getByRole('link', { name: 'Users' }).isVisible(), false);
      await viewerPage.goto(panel + '#/trunks');
      await viewerPage.getByRole('cell', { name: 'office-pbx' }).waitFor();
      assert.equal(await viewerPage.getByRole('button', { name: 'Create trunk' }).count(), 0, 'no forms for viewers');
      assert.equal(await viewerPage.getByRole('button', { name: 'Delete' }).count(), 0);
      const write = await viewerPage.evaluate(async () => {
        const me = await (await fetch('/panel/api/v1/me')).json();
        const res = await fetch('/panel/api/v1/trunks', {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': me.csrf_token },
          body: JSON.stringify({ name: 'x', registrar_uri: 'sip:x.example' }),
        });
        return { status: res.status, body: await res.json() };
      });
      assert.deepEqual([write.status, write.body.error.code], [403, 'forbidden']);
    } finally {
      await ctx.close();
    }
  }));

  it('sends the live view back to the login form when its session ends elsewhere', () => step(async () => {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const watcher = await ctx.newPage();
    try {
      await watcher.goto(panel);
      await watcher.fill('#login-username', VIEWER.username);
      await watcher.fill('#login-password', VIEWER.password);
      await watcher.press('#login-password', 'Enter');
      await watcher.locator('.live-status.up').waitFor();
      // Another tab of the same browser logs out.
      const other = await ctx.newPage();
      await other.goto(panel + 'index.html#/trunks');
      const out = await other.evaluate(async () => {
        const me = await (await fetch('/panel/api/v1/me')).json();
        return (await fetch('/panel/api/v1/logout', { method: 'POST', headers: { 'X-CSRF-Token': me.csrf_token } })).status;
      });
      assert.equal(out, 204);
      await watcher.locator('#login').waitFor({ state: 'visible', timeout: 15000 });
      assert.equal(await watcher.locator('#top').isHidden(), true);
    } finally {
      await ctx.close();
    }
  }));

  it('fits a phone screen', () => step(async () => {
    const ctx = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 1 });
    const phone = await ctx.newPage();
    try {
      await phone.goto(panel);
      await phone.fill('#login-username', ADMIN.username);
      await phone.fill('#login-password', ADMIN.password);
      await phone.press('#login-password', 'Enter');
      await phone.locator('#top').waitFor({ state: 'visible' });
      for (const view of ['live', 'trunks', 'stream-keys', 'recordings', 'users', 'accounts']) {
        await phone.goto(panel + '#/' + view);
        await eventually(() => phone.evaluate((v) => document.getElementById('view').dataset.view === v
          && !!document.querySelector('#view h1'), view), `${view} rendered`, 10000);
        const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        assert.ok(overflow <= 0, `${view}: no horizontal scrolling (${overflow} px too wide)`);
      }
      await phone.getByText('Front desk').waitFor();
      await shot('phone-accounts', phone);
    } finally {
      await ctx.close();
    }
  }));

  it('ran every page without a script error or a Content-Security-Policy violation', () => {
    const bad = page.consoleLines.filter((l) => l.startsWith('pageerror:')
      || /Content Security Policy|Refused to (load|execute|apply)/i.test(l));
    assert.deepEqual(bad, []);
  });

  it('serves a valid OpenAPI document listing every route the pages use', async () => {
    const res = await fetch(`http://127.0.0.1:${gw.ports.adminHttp}/panel/api/openapi.json`);
    assert.equal(res.status, 200);
    const doc = await res.json();
    await SwaggerParser.validate(structuredClone(doc));
    // The validator does refuse a broken document.
    const broken = structuredClone(doc);
    broken.paths['/panel/api/v1/trunks'].get.responses = 'none';
    await assert.rejects(SwaggerParser.validate(broken));

    const routes = [
      ['post', '/panel/api/v1/login'], ['post', '/panel/api/v1/logout'], ['get', '/panel/api/v1/me'],
      ['get', '/panel/api/v1/users'], ['post', '/panel/api/v1/users'], ['patch', '/panel/api/v1/users/{id}'],
      ['delete', '/panel/api/v1/users/{id}'],
      ['get', '/panel/api/v1/trunks'], ['post', '/panel/api/v1/trunks'], ['get', '/panel/api/v1/trunks/{id}'],
      ['put', '/panel/api/v1/trunks/{id}'], ['delete', '/panel/api/v1/trunks/{id}'],
      ['post', '/panel/api/v1/trunks/{id}/test'],
      ['get', '/panel/api/v1/accounts'], ['post', '/panel/api/v1/accounts'], ['get', '/panel/api/v1/accounts/{id}'],
      ['put', '/panel/api/v1/accounts/{id}'], ['delete', '/panel/api/v1/accounts/{id}'],
      ['post', '/panel/api/v1/accounts/{id}/access-token'], ['put', '/panel/api/v1/accounts/{id}/voicemail-pin'],
      ['get', '/panel/api/v1/accounts/{id}/mailbox'], ['put', '/panel/api/v1/accounts/{id}/mailbox'],
      ['put', '/panel/api/v1/accounts/{id}/mailbox/greeting'], ['delete', '/panel/api/v1/accounts/{id}/mailbox/greeting'],
      ['get', '/panel/api/v1/stream-keys'], ['post', '/panel/api/v1/stream-keys'],
      ['patch', '/panel/api/v1/stream-keys/{id}'], ['delete', '/panel/api/v1/stream-keys/{id}'],
      ['get', '/panel/api/v1/egress-targets'], ['post', '/panel/api/v1/egress-targets'],
      ['get', '/panel/api/v1/egress-targets/{id}'], ['put', '/panel/api/v1/egress-targets/{id}'],
      ['delete', '/panel/api/v1/egress-targets/{id}'],
      ['post', '/panel/api/v1/egress-targets/{id}/start'], ['post', '/panel/api/v1/egress-targets/{id}/stop'],
      ['get', '/panel/api/v1/recordings'], ['get', '/panel/api/v1/recordings/{id}'],
      ['patch', '/panel/api/v1/recordings/{id}'], ['delete', '/panel/api/v1/recordings/{id}'],
      ['get', '/panel/api/v1/recordings/{id}/file'],
      ['get', '/panel/api/v1/live'], ['get', '/panel/api/v1/live/events'],
    ];
    const documented = [];
    for (const [p, item] of Object.entries(doc.paths)) {
      for (const m of Object.keys(item)) if (['get', 'post', 'put', 'patch', 'delete'].includes(m)) documented.push(`${m} ${p}`);
    }
    assert.deepEqual(documented.sort(), routes.map(([m, p]) => `${m} ${p}`).sort());
    // Each documented route is served: without a session it answers 401 in the error shape.
    for (const [m, p] of routes.filter(([, p]) => !p.endsWith('/login'))) {
      const r = await fetch(`http://127.0.0.1:${gw.ports.adminHttp}${p.replace('{id}', '1')}`, {
        method: m.toUpperCase(),
        headers: { 'Content-Type': 'application/json' },
        body: m === 'get' || m === 'delete' ? undefined : '{}',
      });
      assert.equal(r.status, 401, `${m} ${p}`);
      assert.equal((await r.json()).error.code, 'unauthenticated', `${m} ${p}`);
    }
  });
});
