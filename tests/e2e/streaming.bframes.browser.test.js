// RTMP publishes with B-frames (x264 `-bf 2`, OBS's default) watched in Chromium with janus.js:
// every picture is decoded, at the published rate (≥ 25 of 30 fps, counted against the RTP
// clock so that a busy machine cannot fake or break it), and shown in display order (the RTP
// timestamps of the pictures Chromium presents never go back). A publish without B-frames
// next to it stays on the relay (the gateway logs no re-encode for it).

import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import {
  startStreamingGateway, addKey, publish, startViewerSite, launchChromium, openViewer, waitInPage, waitLive,
  stopAll,
} from './lib/streaming.js';

/** Records, in the page, the RTP timestamp of every picture the <video> presents. */
async function watchPresentedFrames(page) {
  await waitInPage(page, () => !!document.querySelector('video'), (v) => v, '<video> element', 20000);
  await page.evaluate(() => {
    window.presented = [];
    const v = document.querySelector('video');
    const cb = (_now, md) => { window.presented.push(md.rtpTimestamp); v.requestVideoFrameCallback(cb); };
    v.requestVideoFrameCallback(cb);
  });
}

/** Decoded frames and the RTP time (s) they span between two samples, and presentation order. */
async function measure(page, seconds) {
  const sample = () => page.evaluate(async () => ({ stats: await window.inboundStats(), ts: window.presented.at(-1), n: window.presented.length }));
  const a = await sample();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const b = await sample();
  const presented = await page.evaluate(([from, to]) => window.presented.slice(from, to), [a.n, b.n]);
  let backwards = 0;
  for (let i = 1; i < presented.length; i++) if (((presented[i] - presented[i - 1]) | 0) < 0) backwards++;
  const mediaSeconds = ((b.ts - a.ts) >>> 0) / 90000;
  const decoded = b.stats.video.framesDecoded - a.stats.video.framesDecoded;
  return { decoded, mediaSeconds, fps: decoded / mediaSeconds, wallFps: decoded / seconds, backwards, presented: presented.length, before: a.stats.video, after: b.stats.video };
}

describe('streaming: B-frames play at full frame rate in Chromium', () => {
  let gw;
  let site;
  let browser;
  const publishers = [];

  before(async () => {
    gw = await startStreamingGateway('streaming-bframes');
    site = await startViewerSite();
    browser = await launchChromium();
  });
  after(async () => {
    await stopAll(publishers);
    await browser?.close();
    await site?.close();
    await gw?.stop();
  });
  afterEach(() => stopAll(publishers));

  for (const bframes of [2, 0]) {
    it(`-bf ${bframes}: every picture decoded at 30 fps, in display order`, async () => {
      const key = addKey(gw, `bf${bframes}`);
      const pub = publish(key.url, { bframes });
      publishers.push(pub);
      await waitLive(gw, key.mountpoint);
      const page = await openViewer(browser, site, gw.wsUrl, key.mountpoint);
      await waitInPage(page, () => window.e2e, (st) => st.webrtcup || st.errors.length > 0, 'webrtcup');
      const first = await waitInPage(page, () => window.inboundStats(), (s) => s.video?.framesDecoded > 0, 'first frame', 20000);
      const { firstFrameMs } = await page.evaluate(() => window.e2e);
      await watchPresentedFrames(page);
      // Past the start (jitter buffer, first GOP), measure over 8 s.
      await waitInPage(page, () => window.inboundStats(), (s) => s.video?.framesDecoded > first.video.framesDecoded + 30, '30 more frames', 20000);
      const m = await measure(page, 8);
      console.log(`# -bf ${bframes}: first frame ${firstFrameMs} ms after watch; ${m.decoded} frames decoded over ${m.mediaSeconds.toFixed(2)} s of RTP time = ${m.fps.toFixed(1)} fps (${m.wallFps.toFixed(1)} fps wall clock); presented ${m.presented}, backwards ${m.backwards}; framesDropped ${m.after.framesDropped ?? '-'} freezes ${m.after.freezeCount} pli ${m.after.pliCount} size ${m.after.frameWidth}x${m.after.frameHeight}`);
      assert.ok(m.mediaSeconds > 4, `RTP time advanced ${m.mediaSeconds} s`);
      assert.ok(m.fps >= 25, `${m.fps.toFixed(1)} fps decoded: ${JSON.stringify(m)}`);
      assert.equal(m.backwards, 0, 'pictures presented in display order');
      assert.equal(m.after.frameWidth, 640);
      assert.equal(m.after.frameHeight, 360);
      const log = fs.readFileSync(gw.logFile, 'utf8').split('\n').filter((l) => l.includes(`mountpoint=${key.mountpoint}`));
      const reencoded = log.some((l) => l.includes('re-encoded to H.264 constrained baseline'));
      assert.equal(reencoded, bframes > 0, bframes ? 'a B-frame publish is re-encoded' : 'a B-frame-free publish stays on the relay');
      await page.evaluate(() => window.hangup());
      await page.close();
      await pub.stop();
    });
  }
});
