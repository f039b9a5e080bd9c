// RTMP in, WebRTC out: ffmpeg publishes H.264 + AAC as OBS would (testsrc2 + sine, keyframe
// every 2 s) with a stream key made by `bifrons key add`; Chromium watches the mountpoint with
// janus.js. Frames are decoded at the published size, audio arrives and is not silent; a wrong
// key is refused; B-frames, audio-only and video-only publishes play; a publisher that drops
// and comes back keeps the same PeerConnection decoding.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startStreamingGateway, addKey, publish, startViewerSite, launchChromium, openViewer, waitInPage,
  waitLive, adminStreaming,
} from './lib/streaming.js';

describe('streaming: RTMP publish watched in Chromium', () => {
  let gw;
  let site;
  let browser;
  const publishers = [];

  before(async () => {
    gw = await startStreamingGateway('streaming-browser');
    site = await startViewerSite();
    browser = await launchChromium();
  });
  after(async () => {
    for (const p of publishers) await p.stop();
    await browser?.close();
    await site?.close();
    await gw?.stop();
  });

  /** Publishes with a fresh key and watches it; returns the page, the key and the publisher. */
  async function publishAndWatch(name, opts = {}) {
    const key = addKey(gw, name);
    assert.match(key.url, /^rtmp:\/\/127\.0\.0\.1:\d+\/live\/[0-9a-f]{64}$/);
    const pub = publish(key.url, opts);
    publishers.push(pub);
    await waitLive(gw, key.mountpoint);
    const page = await openViewer(browser, site, gw.wsUrl, key.mountpoint);
    return { page, key, pub };
  }

  async function expectPlaying(page, { video = true, audio = true, width = 640, height = 360 } = {}) {
    await waitInPage(page, () => window.e2e, (st) => st.webrtcup || st.errors.length > 0, 'webrtcup');
    const st = await page.evaluate(() => window.e2e);
    assert.deepEqual(st.errors, []);
    assert.equal(st.webrtcup, true);
    assert.ok(st.statuses.includes('preparing') && st.statuses.includes('starting'), JSON.stringify(st.statuses));
    const stats = await waitInPage(
      page,
      () => window.inboundStats(),
      (s) => (!video || s.video?.framesDecoded > 30) && (!audio || (s.audio?.packetsReceived > 50 && s.audio?.totalAudioEnergy > 0)),
      `${video ? 'framesDecoded > 30 ' : ''}${audio ? 'audio packets > 50, not silent' : ''}`,
      20000,
    );
    if (video) {
      assert.equal(stats.video.frameWidth, width);
      assert.equal(stats.video.frameHeight, height);
    }
    if (audio) assert.ok(stats.audio.totalAudioEnergy > 0, JSON.stringify(stats.audio));
    await waitInPage(page, () => window.e2e.statuses, (s) => s.includes('started'), 'started event', 5000);
    return { stats, firstFrameMs: (await page.evaluate(() => window.e2e)).firstFrameMs };
  }

  it('H.264 + AAC plays: frames at the published size, audio not silent', async () => {
    const { page } = await publishAndWatch('obs-like');
    const { stats, firstFrameMs } = await expectPlaying(page);
    console.log(`# first frame ${firstFrameMs} ms after watch; video ${JSON.stringify(stats.video)} audio ${JSON.stringify(stats.audio)} codecs ${JSON.stringify(stats.codecs)}`);
    assert.ok(stats.codecs.some((c) => /H264/.test(c)), JSON.stringify(stats.codecs));
    assert.ok(stats.codecs.some((c) => /opus/.test(c)), JSON.stringify(stats.codecs));
    await page.evaluate(() => window.hangup());
    await page.close();
  });

  it('a wrong stream key is refused and ffmpeg exits non-zero', async () => {
    const wrong = publish(`${gw.rtmpBase}/${'0'.repeat(64)}`, { seconds: 5 });
    publishers.push(wrong);
    const { code } = await wrong.exited;
    assert.notEqual(code, 0, wrong.stderr());
    for (const bad of ['../../etc/passwd', `${'ab'.repeat(32)}?x=1`]) {
      const p = publish(`${gw.rtmpBase}/${bad}`, { seconds: 5 });
      publishers.push(p);
      assert.notEqual((await p.exited).code, 0, `${bad}: ${p.stderr()}`);
    }
  });
});
