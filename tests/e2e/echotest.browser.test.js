// janus.js in headless Chromium with fake camera and microphone: the echo test reaches webrtcup,
// audio and video come back (decoded frames, received packets) and a data-channel message returns.
// Run once over WebSocket and once over HTTP long poll.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchChromium } from './lib/browser.js';
import { startGateway } from './lib/gateway.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const FILES = {
  '/': ['pages/echotest.html', 'text/html'],
  '/adapter.js': ['node_modules/webrtc-adapter/out/adapter.js', 'text/javascript'],
  '/janus.js': ['node_modules/janus-gateway/npm/dist/janus.es.js', 'text/javascript'],
};

/** Serves the test page and its two scripts from node_modules on a free loopback port. */
async function startStaticServer() {
  const server = http.createServer((req, res) => {
    const entry = FILES[new URL(req.url, 'http://x').pathname];
    if (!entry) {
      res.writeHead(req.url === '/favicon.ico' ? 204 : 404).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': entry[1], 'Cache-Control': 'no-store' });
    res.end(fs.readFileSync(path.join(here, entry[0])));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${server.address().port}/`, close: () => new Promise((r) => server.close(r)) };
}

/** Polls `fn` in the page until `check` accepts its value; the deadline is a hang guard only. */
async function waitInPage(page, fn, check, what, timeoutMs = 60000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await page.evaluate(fn);
    if (check(last)) return last;
    if (Date.now() > deadline) {
      const st = await page.evaluate(() => window.e2e);
      throw new Error(`${what} not reached within ${timeoutMs} ms; last ${JSON.stringify(last)}; page state ${JSON.stringify(st)}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe('echo test in Chromium with janus.js', () => {
  let gw;
  let site;
  let browser;

  /** Admin API `handle_info` over HTTP: the `info` object. */
  async function handleInfo(sessionId, handleId) {
    const res = await fetch(`${gw.adminHttpUrl}/${sessionId}/${handleId}`, {
      method: 'POST',
      body: JSON.stringify({ janus: 'handle_info', transaction: 'hi', admin_secret: gw.adminSecret }),
    });
    const reply = await res.json();
    assert.equal(reply.janus, 'success', JSON.stringify(reply));
    return reply.info;
  }

  before(async () => {
    gw = await startGateway({ name: 'browser' });
    site = await startStaticServer();
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await site?.close();
    await gw?.stop();
  });

  for (const transport of ['websocket', 'http']) {
    it(`echoes audio, video and data over ${transport}`, async () => {
      const page = await browser.newPage();
      const consoleLines = [];
      page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
      page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));
      try {
        await page.goto(site.url);
        await page.waitForFunction(() => typeof window.startEcho === 'function');
        const server = transport === 'websocket' ? gw.wsUrl : gw.httpUrl;
        const ids = await page.evaluate((s) => window.startEcho(s), server);
        assert.ok(Number.isSafeInteger(ids.sessionId) && Number.isSafeInteger(ids.handleId));

        await waitInPage(page, () => window.e2e, (st) => st.webrtcup || st.errors.length > 0 || st.hangup, 'webrtcup');
        const st = await page.evaluate(() => window.e2e);
        assert.deepEqual(st.errors, []);
        assert.equal(st.hangup, null);
        assert.equal(st.webrtcup, true);
        assert.equal(st.answers, 1, 'one JSEP answer from the plugin');
        assert.ok(st.messages.some((m) => m.echotest === 'event' && m.result === 'ok'), JSON.stringify(st.messages));

        const stats = await waitInPage(
          page,
          () => window.inboundStats(),
          (s) => s.video?.framesDecoded > 30 && s.audio?.packetsReceived > 50,
          'inbound video framesDecoded > 30 and audio packetsReceived > 50',
        );
        assert.ok(stats.video.framesDecoded > 30);
        assert.ok(stats.audio.packetsReceived > 50);
        // Inside run's loopback-only network namespace every candidate pair must be loopback.
        if (process.env.E2E_NETNS === '1') {
          assert.ok(stats.pair, 'a nominated candidate pair');
          assert.match(String(stats.pair.remote), /^(127\.0\.0\.1|::1)$/, `loopback pair, got ${JSON.stringify(stats.pair)}`);
        }

        await waitInPage(page, () => window.e2e.dataOpen, (v) => v === true, 'data channel open');
        const text = `e2e-${transport}-${Date.now()}`;
        await page.evaluate((t) => window.sendData(t), text);
        // Janus' EchoTest answers "Janus EchoTest here! You wrote: <text>"; a verbatim echo is fine too.
        const back = await waitInPage(page, () => window.e2e.dataIn, (d) => d.some((m) => String(m).includes(text)), 'data-channel echo');
        assert.ok(back.some((m) => m === text || m === `Janus EchoTest here! You wrote: ${text}`), JSON.stringify(back));

        // Admin handle_info on the live PeerConnection: the parts Janus and Bifrons share.
        const info = await handleInfo(ids.sessionId, ids.handleId);
        const webrtc = info.webrtc;
        assert.ok(['connected', 'ready'].includes(webrtc?.ice?.state), JSON.stringify(webrtc?.ice));
        assert.match(String(webrtc.ice['selected-pair']), / <-> /, JSON.stringify(webrtc.ice));
        assert.ok(webrtc.ice['local-candidates']?.length > 0 && webrtc.ice['remote-candidates']?.length > 0);
        assert.equal(webrtc.dtls['dtls-state'], 'connected', JSON.stringify(webrtc.dtls));
        const media = Object.values(webrtc.media ?? {});
        for (const type of ['audio', 'video', 'data']) {
          const m = media.find((x) => x.type === type);
          assert.ok(m, `${type} medium in ${JSON.stringify(webrtc.media)}`);
          assert.ok(m.stats.in.packets > 0 && m.stats.in.bytes > 0, `${type} in: ${JSON.stringify(m.stats)}`);
          assert.ok(m.stats.out.packets > 0 && m.stats.out.bytes > 0, `${type} out: ${JSON.stringify(m.stats)}`);
        }

        const final = await page.evaluate(() => window.e2e);
        assert.ok(final.remoteTracks.some((t) => t.kind === 'video' && t.on));
        assert.ok(final.remoteTracks.some((t) => t.kind === 'audio' && t.on));
        // `media` events (janus.js mediaState) report both kinds arriving at the server.
        assert.ok(final.media.some((m) => m.type === 'audio' && m.receiving === true), JSON.stringify(final.media));
        assert.ok(final.media.some((m) => m.type === 'video' && m.receiving === true), JSON.stringify(final.media));
        await page.evaluate(() => window.stopEcho());
      } catch (err) {
        err.message += `\n--- browser console (last 40 lines) ---\n${consoleLines.slice(-40).join('\n')}`;
        throw err;
      } finally {
        await page.close();
      }
    });
  }
});
