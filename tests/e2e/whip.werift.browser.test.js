// WHIP ingest from a client that is not a browser: werift (an independent WebRTC stack, from
// the npm registry) publishes what OBS sends, Opus + H.264 constrained baseline
// (packetization-mode 1) encoded by ffmpeg, with the bearer token of a key made by the CLI.
// Chromium watches the mountpoint over janus.js: frames decoded at the published size, audio
// not silent. The client reads Location and ETag and ends the publish with DELETE.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { freePorts } from './lib/gateway.js';
import {
  startStreamingGateway, addKey, launchChromium, waitInPage, waitLive, adminStreaming, startViewerSite, openViewer,
} from './lib/streaming.js';
import { whipPublish } from './lib/whip_client.js';

describe('WHIP ingest from werift + ffmpeg (an OBS-like client)', () => {
  let gw;
  let browser;
  let site;
  let whip;
  const publishes = [];

  before(async () => {
    const [port] = await freePorts(1);
    gw = await startStreamingGateway('whip-werift', {
      BIFRONS_WHEP_ENABLED: 'true', BIFRONS_WHEP_BIND: '127.0.0.1', BIFRONS_WHEP_PORT: String(port),
    });
    whip = `http://127.0.0.1:${port}/whip`;
    browser = await launchChromium();
    site = await startViewerSite();
  });
  after(async () => {
    for (const p of publishes) await p.stop();
    await browser?.close();
    await site?.close();
    await gw?.stop();
  });

  it('werift publishes Opus + H.264; Chromium decodes it over janus.js; DELETE ends it', async () => {
    const key = addKey(gw, 'werift-cam');
    const refused = await whipPublish(`${whip}/${key.mountpoint}`, '0'.repeat(64));
    assert.equal(refused.status, 401, refused.answer);

    const pub = await whipPublish(`${whip}/${key.mountpoint}`, key.key);
    publishes.push(pub);
    assert.equal(pub.status, 201, pub.answer);
    assert.match(pub.location, new RegExp(`^/whip/${key.mountpoint}/[0-9a-f]{16}$`));
    assert.match(pub.etag, /^"[0-9a-f]+"$/);
    assert.match(pub.answer, /a=rtpmap:\d+ H264\/90000/);
    assert.match(pub.answer, /a=rtpmap:\d+ opus\/48000\/2/);
    await pub.connected;
    const info = await waitLive(gw, key.mountpoint, 30000);
    assert.equal(info.source, 'webrtc');
    assert.deepEqual(info.media.map((m) => m.codec), ['opus', 'h264']);

    const viewer = await openViewer(browser, site, gw.httpUrl, key.mountpoint);
    const stats = await waitInPage(viewer, () => window.inboundStats(),
      (s) => s.video?.framesDecoded > 60 && s.audio?.totalAudioEnergy > 0.01, 'frames decoded and audio heard', 45000);
    assert.equal(stats.video.frameWidth, 640);
    assert.equal(stats.video.frameHeight, 360);
    assert.ok(stats.codecs.some((c) => /H264/.test(c)), JSON.stringify(stats.codecs));
    assert.ok(stats.codecs.some((c) => /opus/.test(c)), JSON.stringify(stats.codecs));
    console.log(`# werift -> janus.js: video ${JSON.stringify(stats.video)} audio ${JSON.stringify(stats.audio)}`);

    assert.equal(await pub.stop(), 200, 'DELETE of the Location');
    await waitInPage(viewer, () => window.e2e.statuses, (s) => s.includes('stopped'), 'viewer told stopped', 10000);
    assert.equal((await adminStreaming(gw, { request: 'info', id: key.mountpoint })).info.live, false);
    assert.equal((await fetch(new URL(pub.location, whip), { method: 'DELETE' })).status, 404, 'the publish is gone');
    await viewer.close();
  });
});
