// The admin panel's Egress page driving a real restream, in Debian's Chromium: ffmpeg publishes
// H.264 + AAC over RTMP into a mountpoint; in the page an admin creates a target pointing at an
// `ffmpeg -listen 1` receiver for that mountpoint, presses Start, sees the state go to `live`,
// presses Stop, sees "not started" again; the file the receiver wrote decodes with ffprobe
// (H.264 + AAC, more than 100 pictures). The form's refusals of a key-less target and of an
// `https://` URL name the field. Screenshot: panel-egress-live.png.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TARGET, freePorts } from './lib/gateway.js';
import { addUser } from './lib/panel.js';
import { startStreamingGateway, addKey, publish, waitLive, adminStreaming, launchChromium } from './lib/streaming.js';
import { rtmpReceiver, probeFlv, decodeErrors } from './lib/egress.js';

const SHOTS = process.env.E2E_SCREENSHOT_DIR || fs.mkdtempSync(path.join(os.tmpdir(), 'bifrons-shots-'));
const ADMIN = { username: 'admin', password: 'e2e-admin-password' };
const TARGET_KEY = 'panel-egress-key-Heron-5';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

describe('admin panel: egress start and stop with a real receiver', { skip: TARGET !== 'bifrons' && 'Bifrons pages' }, () => {
  let gw;
  let browser;
  let page;
  let panel;
  const procs = [];
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bifrons-e2e-panel-egress-'));

  before(async () => {
    gw = await startStreamingGateway('panel-egress');
    await addUser(gw.dbUrl, ADMIN.username, 'admin', ADMIN.password);
    panel = `http://127.0.0.1:${gw.ports.adminHttp}/panel/`;
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const lines = [];
    page.on('console', (m) => lines.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => lines.push(`pageerror: ${e.message}`));
    page.on('dialog', (d) => d.accept());
    page.consoleLines = lines;
  });

  after(async () => {
    for (const p of procs) await p.stop();
    await browser?.close();
    await gw?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  /** Runs `fn`, adding the page's console to a failure. */
  async function step(fn) {
    try {
      await fn();
    } catch (err) {
      err.message += `\n--- browser console (last 20 lines) ---\n${page.consoleLines.slice(-20).join('\n')}`;
      throw err;
    }
  }

  const row = (name) => page.getByRole('row').filter({ has: page.getByRole('cell', { name, exact: true }) });
  const stateOf = async (name) => (await row(name).locator('.badge').innerText()).trim();

  it('logs in', () => step(async () => {
    await page.goto(panel);
    await page.locator('#login').waitFor({ state: 'visible' });
    await page.fill('#login-username', ADMIN.username);
    await page.fill('#login-password', ADMIN.password);
    await page.keyboard.press('Enter');
    await page.locator('#top').waitFor({ state: 'visible' });
  }));

  it('creates a target, starts it to live, stops it; the receiver got a decodable stream', () => step(async () => {
    const key = addKey(gw, 'panel-egress-cam');
    procs.push(publish(key.url, { gop: 30 }));
    await waitLive(gw, key.mountpoint);
    const [port] = await freePorts(1);
    const file = path.join(tmp, 'received.flv');
    const rx = rtmpReceiver(port, file, TARGET_KEY);
    procs.push(rx);

    await page.goto(panel + '#/egress');
    await page.getByText('No egress targets yet.').waitFor();
    await page.fill('#f-new-egress-target-name', 'restream');
    await page.fill('#f-new-egress-target-url', `rtmp://127.0.0.1:${port}/app`);
    await page.fill('#f-new-egress-target-mountpoint', String(key.mountpoint));
    // No key and no stream name in the URL: refused at creation, naming the key field.
    await page.getByRole('button', { name: 'Create egress target' }).click();
    const refusal = page.getByRole('alert').filter({ hasText: 'stream key is needed' });
    await refusal.waitFor();
    assert.equal(await page.evaluate(() => document.activeElement.id), 'f-new-egress-target-key');
    await page.fill('#f-new-egress-target-key', TARGET_KEY);
    await page.getByRole('button', { name: 'Create egress target' }).click();
    await row('restream').waitFor();
    assert.equal(await stateOf('restream'), 'not started');
    assert.ok(!(await page.content()).includes(TARGET_KEY), 'the key is never shown');

    await row('restream').getByRole('button', { name: 'Start' }).click();
    // The page looks again while connecting; the deadline is a hang guard only.
    const deadline = Date.now() + 60000;
    while ((await stateOf('restream')) !== 'live') {
      if (Date.now() > deadline) throw new Error(`not live: ${await row('restream').innerText()}`);
      await sleep(250);
    }
    await shot('egress-live');
    const until = Date.now() + 60000;
    for (;;) {
      const e = (await adminStreaming(gw, { request: 'egress_list' })).list[0];
      if (e?.video_frames_passed >= 150) break;
      if (Date.now() > until) throw new Error(`too few frames sent: ${JSON.stringify(e)}`);
      await sleep(300);
    }
    await row('restream').getByRole('button', { name: 'Stop' }).click();
    await page.getByText('Egress restream: stopped.').waitFor();
    await row('restream').getByRole('button', { name: 'Start' }).waitFor();
    assert.equal(await stateOf('restream'), 'not started');
    assert.equal((await adminStreaming(gw, { request: 'egress_list' })).list.length, 0);

    const exit = await Promise.race([rx.exited, sleep(15000).then(() => null)]);
    assert.ok(exit, `the receiver ended with the unpublish: ${rx.stderr()}`);
    const { video, audio, duration } = probeFlv(file);
    assert.equal(video?.codec_name, 'h264');
    assert.equal(audio?.codec_name, 'aac');
    assert.ok(Number(video.nb_read_frames) > 100, `${video.nb_read_frames} video frames`);
    assert.equal(decodeErrors(file), '', 'every frame decodes');
    console.log(`# panel egress: ${video.nb_read_frames} H.264 frames, ${audio.nb_read_frames} AAC frames, ${duration} s`);
  }));

  it('refuses a URL that is not RTMP, naming the URL field', () => step(async () => {
    await page.fill('#f-new-egress-target-name', 'web');
    await page.fill('#f-new-egress-target-url', 'https://cdn.example/live');
    await page.fill('#f-new-egress-target-key', 'x');
    await page.fill('#f-new-egress-target-mountpoint', 'later');
    await page.getByRole('button', { name: 'Create egress target' }).click();
    await page.getByRole('alert').filter({ hasText: 'rtmp:// or rtmps://' }).waitFor();
    assert.equal(await page.evaluate(() => document.activeElement.id), 'f-new-egress-target-url');
    // A mountpoint that does not exist yet is accepted; starting it says why it cannot run.
    await page.fill('#f-new-egress-target-url', 'rtmps://cdn.example/live');
    await page.getByRole('button', { name: 'Create egress target' }).click();
    await row('web').waitFor();
    await row('web').getByRole('button', { name: 'Start' }).click();
    await page.locator('#notice').filter({ hasText: 'no such mountpoint later' }).waitFor();
    assert.equal(await stateOf('web'), 'not started');
  }));

  async function shot(name) {
    await page.screenshot({ path: path.join(SHOTS, `panel-${name}.png`) });
  }
});
