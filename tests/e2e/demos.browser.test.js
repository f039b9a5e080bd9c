// The demo pages as a visitor sees them, served by the gateway alone: no [web] janus_js /
// adapter_js paths are configured, so janus.js and webrtc-adapter come from the binary.
// The index lists the server's plugins; the echo test page runs Start → Stop → Start with the
// remote video playing each time; /demos/config.json gives the configured ports.
// Screenshots (640x400) go to E2E_SCREENSHOT_DIR, or a temporary folder.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { launchChromium } from './lib/browser.js';
import { startGateway, TARGET } from './lib/gateway.js';

const SHOTS = process.env.E2E_SCREENSHOT_DIR || fs.mkdtempSync(path.join(os.tmpdir(), 'bifrons-shots-'));

/** Polls `fn` in the page until `check` accepts its value; the deadline is a hang guard only. */
async function waitInPage(page, fn, check, what, timeoutMs = 60000, arg = undefined) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await page.evaluate(fn, arg);
    if (check(last)) return last;
    if (Date.now() > deadline) {
      const st = await page.evaluate(() => ({ demo: window.demo, error: document.getElementById('error')?.textContent }));
      throw new Error(`${what} not reached within ${timeoutMs} ms; last ${JSON.stringify(last)}; page ${JSON.stringify(st)}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Frames the remote <video> element has presented so far (0 when it shows nothing). */
const remoteFrames = () => {
  const v = document.getElementById('remote');
  return { frames: v.getVideoPlaybackQuality().totalVideoFrames, width: v.videoWidth, paused: v.paused };
};

/** Waits until the remote video shows at least 15 new frames: it is playing, not black. */
async function remoteVideoPlays(page, what) {
  const before = await page.evaluate(remoteFrames);
  return waitInPage(page, remoteFrames, (s) => s.width > 0 && !s.paused && s.frames >= before.frames + 15, what);
}

describe('demo pages served by the gateway alone', { skip: TARGET !== 'bifrons' && 'Bifrons pages' }, () => {
  let gw;
  let browser;
  let base;

  before(async () => {
    // Empty overrides: the built-in copies, whatever the environment says.
    gw = await startGateway({ name: 'demos', env: { BIFRONS_WEB_JANUS_JS: '', BIFRONS_WEB_ADAPTER_JS: '' } });
    base = `http://127.0.0.1:${gw.ports.http}`;
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await gw?.stop();
  });

  async function newPage() {
    const page = await browser.newPage({ viewport: { width: 640, height: 400 } });
    const lines = [];
    page.on('console', (m) => lines.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => lines.push(`pageerror: ${e.message}`));
    page.consoleLines = lines;
    return page;
  }

  async function withConsole(page, fn) {
    try {
      await fn();
    } catch (err) {
      err.message += `\n--- browser console (last 40 lines) ---\n${page.consoleLines.slice(-40).join('\n')}`;
      throw err;
    } finally {
      await page.close();
    }
  }

  it('serves /demos/config.json with the configured ports and paths', async () => {
    const res = await fetch(`${base}/demos/config.json`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^application\/json/);
    const config = await res.json();
    assert.deepEqual(config.http, { enabled: true, port: gw.ports.http, path: '/janus' });
    assert.equal(config.websocket.enabled, true);
    assert.equal(config.websocket.port, gw.ports.ws);
    assert.equal(config.websocket.path, '/');
  });

  it('serves the built-in janus.js and adapter.js as JavaScript', async () => {
    for (const [file, marker] of [['janus.js', 'export { Janus as default }'], ['adapter.js', 'BSD-style license']]) {
      const res = await fetch(`${base}/demos/${file}`);
      assert.equal(res.status, 200, file);
      assert.match(res.headers.get('content-type'), /^text\/javascript/, file);
      assert.ok((await res.text()).includes(marker), `${file} contains ${marker}`);
    }
  });

  it('the index lists the demos and the plugins the server has', async () => {
    const page = await newPage();
    await withConsole(page, async () => {
      await page.goto(`${base}/demos/`);
      await waitInPage(page, () => window.demo?.state, (s) => s === 'ready' || s === 'broken', 'index ready');
      assert.equal(await page.locator('#error').isHidden(), true, await page.locator('#error').textContent());
      const plugins = await page.evaluate(() => window.demo.plugins);
      assert.ok(plugins.includes('janus.plugin.echotest'), JSON.stringify(plugins));
      const listed = await page.locator('#plugins li').allTextContents();
      assert.ok(listed.some((t) => t.includes('janus.plugin.echotest')), JSON.stringify(listed));
      const row = page.locator('#demos tr[data-plugin="janus.plugin.echotest"]');
      assert.equal(await row.locator('a').getAttribute('href'), '/demos/echotest.html');
      assert.equal(await row.locator('.have').textContent(), 'loaded');
      await page.screenshot({ path: path.join(SHOTS, 'demos-index.png') });
    });
  });

  it('the echo test plays the remote video after Start, and again after Stop then Start', async () => {
    const page = await newPage();
    await withConsole(page, async () => {
      await page.goto(`${base}/demos/echotest.html`);
      await waitInPage(page, () => window.demo?.state, (s) => s === 'idle' || s === 'broken', 'page ready');
      assert.equal(await page.locator('#error').isHidden(), true, await page.locator('#error').textContent());
      // The WebSocket URL comes from config.json, not a fixed 8188.
      await page.click('#start');
      await waitInPage(page, () => window.demo.state, (s) => s === 'running', 'first call running');
      assert.equal(await page.locator('#server').textContent(), `ws://127.0.0.1:${gw.ports.ws}/`);
      await remoteVideoPlays(page, 'remote video playing (first call)');
      const stats = await waitInPage(
        page,
        () => window.demo.stats,
        (s) => s?.['in-video']?.kbps > 0 && s?.['out-video']?.kbps > 0 && s?.['in-audio']?.codec !== undefined,
        'bitrates in the stats',
      );
      assert.match(stats['in-video'].codec, /^(VP8|VP9|H264|AV1)$/i, JSON.stringify(stats));
      assert.match(stats['in-audio'].codec, /^opus$/i, JSON.stringify(stats));
      assert.match(await page.locator('#stats').textContent(), /in video \S+ \d+ kbit\/s/);

      await page.click('#stop');
      await waitInPage(page, () => window.demo.state, (s) => s === 'idle', 'idle after Stop');
      assert.equal(await page.isEnabled('#start'), true);
      await page.click('#start');
      await waitInPage(page, () => window.demo.state, (s) => s === 'running', 'second call running');
      await remoteVideoPlays(page, 'remote video playing again after Stop → Start');
      assert.equal(await page.locator('#error').isHidden(), true, await page.locator('#error').textContent());
      // Let the stats line fill in before the picture.
      await waitInPage(page, () => window.demo.stats, (s) => s?.['in-video']?.kbps > 0, 'stats of the second call');
      await page.screenshot({ path: path.join(SHOTS, 'echotest-restarted.png') });
      await page.click('#stop');
    });
  });

  it('the echo test shows a connection error and lets Start be pressed again', async () => {
    const page = await newPage();
    await withConsole(page, async () => {
      // A config.json pointing at a port nobody listens on: the server is unreachable.
      await page.route('**/demos/config.json', (route) => route.fulfill({
        contentType: 'application/json',
        body: JSON.stringify({ http: { enabled: true, port: 9, path: '/janus' }, websocket: { enabled: true, port: 9, path: '/' } }),
      }));
      await page.goto(`${base}/demos/echotest.html`);
      await waitInPage(page, () => window.demo?.state, (s) => s === 'idle', 'page ready');
      await page.click('#start');
      await waitInPage(page, () => !document.getElementById('error').hidden, (v) => v === true, 'visible error', 30000);
      assert.match(await page.locator('#error').textContent(), /unreachable/);
      await waitInPage(page, () => !document.getElementById('start').disabled, (v) => v === true, 'Start enabled again', 10000);
      assert.equal(await page.isDisabled('#stop'), true);
    });
  });

  it('the echo test shows a refused camera and lets Start be pressed again', async () => {
    const page = await newPage();
    await withConsole(page, async () => {
      await page.addInitScript(() => {
        navigator.mediaDevices.getUserMedia = () => Promise.reject(new DOMException('Permission denied', 'NotAllowedError'));
      });
      await page.goto(`${base}/demos/echotest.html`);
      await waitInPage(page, () => window.demo?.state, (s) => s === 'idle', 'page ready');
      await page.click('#start');
      await waitInPage(page, () => !document.getElementById('error').hidden, (v) => v === true, 'visible error', 30000);
      assert.match(await page.locator('#error').textContent(), /Camera\/microphone.*NotAllowedError/);
      await waitInPage(page, () => !document.getElementById('start').disabled, (v) => v === true, 'Start enabled again', 10000);
    });
  });

  it('a page whose script cannot load says so', async () => {
    const page = await newPage();
    await withConsole(page, async () => {
      await page.route('**/demos/janus.js', (route) => route.fulfill({ status: 404, body: 'gone' }));
      await page.goto(`${base}/demos/echotest.html`);
      await waitInPage(page, () => window.demo?.state, (s) => s === 'broken', 'page broken');
      assert.match(await page.locator('#error').textContent(), /janus\.js/);
      assert.equal(await page.isDisabled('#start'), true);
    });
  });

  it('the index says when the gateway cannot be asked', async () => {
    const page = await newPage();
    await withConsole(page, async () => {
      await page.route('**/janus/info', (route) => route.abort());
      await page.goto(`${base}/demos/`);
      await waitInPage(page, () => window.demo?.state, (s) => s === 'broken', 'index broken');
      assert.equal(await page.locator('#error').isVisible(), true);
    });
  });
});

after(() => console.log(`# screenshots in ${SHOTS}`));
