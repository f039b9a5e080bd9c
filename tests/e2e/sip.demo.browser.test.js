// The SIP softphone demo page served by the gateway (/demos/siptest.html): linked from the
// index, it registers for a registry account, calls baresip, sends a DTMF key and hangs up,
// driven through its buttons in Chromium.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromium } from 'playwright-core';
import { startGateway, REPO_ROOT } from './lib/gateway.js';
import { startKamailio, startBaresip } from './lib/sip.js';

const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';

async function waitFor(page, fn, check, what, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await page.evaluate(fn);
    if (check(last)) return last;
    if (Date.now() > deadline) throw new Error(`${what} not reached; last ${JSON.stringify(last)}; log: ${await page.locator('#log').textContent()}`);
    await sleep(200);
  }
}

describe('SIP softphone demo page', () => {
  let kamailio;
  let bob;
  let gw;
  let browser;
  let dbDir;

  before(async () => {
    kamailio = await startKamailio();
    bob = await startBaresip({ kamailio, user: 'bob', toneHz: 440, codecs: 'PCMU' });
    dbDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bifrons-e2e-sipdemo-'));
    const dbUrl = `sqlite://${path.join(dbDir, 'registry.db')}`;
    const bin = process.env.BIFRONS_BIN || path.join(REPO_ROOT, 'target', 'debug', 'bifrons');
    for (const [args, input] of [
      [['trunk', 'add', 'kam', '--registrar', kamailio.registrar, '--username', 'dave', '--password'], 'davepw\n'],
      [['account', 'add', '100', '--trunk', 'kam', '--uri', kamailio.uri('dave')], ''],
      [['account', 'set-secret', '100'], 'demo-secret-100\n'],
    ]) {
      const r = spawnSync(bin, args, { input, env: { ...process.env, BIFRONS_DATABASE_URL: dbUrl }, encoding: 'utf8' });
      assert.equal(r.status, 0, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
    }
    gw = await startGateway({ name: 'sipdemo', env: { BIFRONS_DATABASE_URL: dbUrl, BIFRONS_WEB_JANUS_JS: '', BIFRONS_WEB_ADAPTER_JS: '' } });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless=new', '--no-sandbox', '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
        '--allow-loopback-in-peer-connection', '--disable-features=WebRtcHideLocalIpsWithMdns', '--disable-gpu',
        '--autoplay-policy=no-user-gesture-required'],
    });
  });

  after(async () => {
    await browser?.close();
    await gw?.stop();
    await bob?.stop();
    await kamailio?.stop();
    if (dbDir) fs.rmSync(dbDir, { recursive: true, force: true });
  });

  it('is linked from the index, registers an account, calls, sends DTMF and hangs up', async () => {
    const base = `http://127.0.0.1:${gw.ports.http}`;
    const page = await browser.newPage();
    await page.goto(`${base}/demos/`);
    await waitFor(page, () => window.demo?.state, (s) => s === 'ready' || s === 'broken', 'index ready');
    const row = page.locator('#demos tr[data-plugin="janus.plugin.sip"]');
    assert.equal(await row.locator('a').getAttribute('href'), '/demos/siptest.html');
    assert.equal(await row.locator('.have').textContent(), 'loaded');

    await page.goto(`${base}/demos/siptest.html`);
    await waitFor(page, () => window.demo.state, (s) => s === 'ready' || s === 'broken', 'page ready');
    assert.equal(await page.locator('#error').isHidden(), true, await page.locator('#error').textContent());

    // A wrong secret shows the plugin's error; the right one registers.
    await page.fill('#account', '100');
    await page.fill('#websecret', 'not-the-secret');
    await page.click('#register');
    await page.locator('#error').waitFor({ state: 'visible' });
    assert.match(await page.locator('#error').textContent(), /444/);
    await page.fill('#websecret', 'demo-secret-100');
    await page.click('#register');
    await waitFor(page, () => window.demo.registered, (r) => r === true, 'registered');
    assert.match(await page.locator('#regstate').textContent(), /registered as sip:dave@/);

    await page.fill('#uri', kamailio.uri('bob'));
    await page.click('#call');
    await waitFor(page, () => window.demo.call, (c) => c === 'incall', 'in call');
    await sleep(1000);
    await page.click('#pad button:text("5")');
    assert.ok(await bob.waitLog("'5'", 8000), `baresip did not get the digit:\n${bob.log().slice(-1500)}`);
    await page.click('#hangup');
    await waitFor(page, () => window.demo.call, (c) => c === 'idle', 'idle after hangup');
    const events = await page.evaluate(() => window.demo.events.map((e) => e.result?.event).filter(Boolean));
    for (const e of ['registered', 'calling', 'accepted', 'hangingup', 'hangup']) assert.ok(events.includes(e), `${e} in ${events}`);
    await page.click('#unregister');
    await waitFor(page, () => window.demo.registered, (r) => r === false, 'unregistered');
  });
});
