// WHEP playback: a mountpoint fed by ffmpeg over RTMP, played by the gateway's /demos/whep.html
// (a plain RTCPeerConnection, no janus.js) in Chromium: 201 + answer + Location, frames
// decoded at the published size, audio, DELETE ends the session. The HTTP answers to bad
// requests: 404, 415, 400, 401 (with a PIN), 405 for PATCH.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { freePorts } from './lib/gateway.js';
import {
  startStreamingGateway, addKey, publish, launchChromium, waitInPage, waitLive, adminStreaming,
} from './lib/streaming.js';

describe('WHEP playback in Chromium', () => {
  let gw;
  let browser;
  let whep;
  const publishers = [];

  before(async () => {
    const [port] = await freePorts(1);
    gw = await startStreamingGateway('whep', {
      BIFRONS_WHEP_ENABLED: 'true', BIFRONS_WHEP_BIND: '127.0.0.1', BIFRONS_WHEP_PORT: String(port),
    });
    whep = `http://127.0.0.1:${port}/whep`;
    browser = await launchChromium();
  });
  after(async () => {
    for (const p of publishers) await p.stop();
    await browser?.close();
    await gw?.stop();
  });

  it('plays a mountpoint with a plain RTCPeerConnection and deletes the session', async () => {
    const key = addKey(gw, 'whep-cam');
    const pub = publish(key.url);
    publishers.push(pub);
    await waitLive(gw, key.mountpoint);
    const page = await browser.newPage();
    await page.goto(gw.httpUrl.replace(/\/janus$/, `/demos/whep.html?id=${key.mountpoint}`));
    await waitInPage(page, () => window.demo.state, (s) => s === 'idle' || s === 'broken', 'page ready', 10000);
    await page.click('#play');
    const demo = await waitInPage(
      page,
      () => window.demo,
      (d) => d.stats?.framesDecoded > 30 && d.stats.audioPackets > 50,
      'frames decoded and audio over WHEP',
      20000,
    );
    assert.equal(demo.status, 201);
    assert.match(demo.location, new RegExp(`^/whep/${key.mountpoint}/[0-9a-f]+$`));
    assert.equal(demo.stats.width, 640);
    assert.equal(demo.stats.height, 360);
    assert.match(demo.stats.videoCodec, /H264/);
    assert.match(demo.stats.audioCodec, /opus/);
    const viewers = (await adminStreaming(gw, { request: 'info', id: key.mountpoint })).info;
    assert.equal(viewers.live, true);
    console.log(`# WHEP: ${JSON.stringify(demo.stats)}`);
    await page.click('#stop');
    await waitInPage(page, () => window.demo.deleted, (s) => s !== undefined, 'DELETE answered', 5000);
    assert.equal(await page.evaluate(() => window.demo.deleted), 200);
    const again = await fetch(new URL(demo.location, whep), { method: 'DELETE' });
    assert.equal(again.status, 404, 'a deleted session is gone');
    await page.close();
  });

  it('answers bad requests with the right statuses', async () => {
    const sdp = { 'Content-Type': 'application/sdp' };
    assert.equal((await fetch(`${whep}/987654`, { method: 'POST', headers: sdp, body: 'v=0\r\n' })).status, 404);
    assert.equal((await fetch(`${whep}/abc`, { method: 'POST', headers: sdp, body: 'v=0\r\n' })).status, 404);
    assert.equal((await fetch(`${whep}/1`, { method: 'POST', headers: { 'Content-Type': 'text/plain' }, body: 'v=0' })).status, 415);
    const created = await adminStreaming(gw, {
      request: 'create', type: 'rtp', id: 8100, pin: 's3cret',
      media: [{ type: 'audio', mid: 'a', port: 0, pt: 111, codec: 'opus' }],
    });
    assert.equal(created.streaming, 'created');
    const noToken = await fetch(`${whep}/8100`, { method: 'POST', headers: sdp, body: 'v=0\r\n' });
    assert.equal(noToken.status, 401);
    assert.equal(noToken.headers.get('www-authenticate'), 'Bearer');
    const wrong = await fetch(`${whep}/8100`, { method: 'POST', headers: { ...sdp, Authorization: 'Bearer nope' }, body: 'v=0\r\n' });
    assert.equal(wrong.status, 401);
    const garbage = await fetch(`${whep}/8100`, { method: 'POST', headers: { ...sdp, Authorization: 'Bearer s3cret' }, body: 'v=0\r\nnot an offer' });
    assert.equal(garbage.status, 400, await garbage.text());
    assert.equal((await fetch(`${whep}/8100`, { method: 'POST', headers: sdp, body: 'hello' })).status, 400);
    assert.equal((await fetch(`${whep}/8100/xyz`, { method: 'PATCH', body: 'a=candidate' })).status, 405);
    const preflight = await fetch(`${whep}/8100`, { method: 'OPTIONS' });
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers.get('access-control-allow-origin'), '*');
  });

  it('a browser without H.264 gets VP8 transcoded once for the mountpoint', async () => {
    const key = addKey(gw, 'whep-vp8');
    const pub = publish(key.url);
    publishers.push(pub);
    await waitLive(gw, key.mountpoint);
    const page = await browser.newPage();
    // Play a browser that cannot decode H.264: its offer lists VP8 only.
    await page.addInitScript(() => {
      const add = RTCPeerConnection.prototype.addTransceiver;
      RTCPeerConnection.prototype.addTransceiver = function (kind, init) {
        const t = add.call(this, kind, init);
        if (kind === 'video') {
          t.setCodecPreferences(RTCRtpReceiver.getCapabilities('video').codecs.filter((c) => c.mimeType === 'video/VP8'));
        }
        return t;
      };
    });
    await page.goto(gw.httpUrl.replace(/\/janus$/, `/demos/whep.html?id=${key.mountpoint}`));
    await waitInPage(page, () => window.demo.state, (s) => s === 'idle' || s === 'broken', 'page ready', 10000);
    await page.click('#play');
    const demo = await waitInPage(
      page,
      () => window.demo,
      (d) => d.stats?.framesDecoded > 30 && d.stats.audioPackets > 50,
      'VP8 frames decoded and audio',
      20000,
    );
    assert.equal(demo.status, 201);
    assert.match(demo.stats.videoCodec, /VP8/);
    assert.equal(demo.stats.width, 640);
    assert.equal(demo.stats.height, 360);
    console.log(`# WHEP VP8: ${JSON.stringify(demo.stats)}`);
    await page.click('#stop');
    await waitInPage(page, () => window.demo.deleted, (s) => s === 200, 'DELETE answered', 5000);
    await page.close();
  });
});
