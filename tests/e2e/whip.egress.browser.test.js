// A browser's WHIP publish restreamed over RTMP: Chromium publishes its fake camera (VP8,
// 640x480) + microphone (Opus) over WHIP from /demos/whip.html; `egress_start` through the
// Admin API sends the mountpoint to `ffmpeg -listen 1`. The received FLV holds H.264 (re-encoded:
// no picture passed through, per the egress counters) + AAC-LC 48 kHz, at least 100 pictures,
// the duration of the egress within 10 %, audio and video starting within 100 ms of each other,
// every frame decodable.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePorts } from './lib/gateway.js';
import {
  startStreamingGateway, addKey, launchChromium, waitLive, adminStreaming, whipPublish,
} from './lib/streaming.js';
import { rtmpReceiver, probeFlv, decodeErrors, waitEgressState } from './lib/egress.js';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

describe('WHIP publish restreamed over RTMP', () => {
  let gw;
  let browser;
  const procs = [];
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bifrons-e2e-whip-egress-'));

  before(async () => {
    const [port] = await freePorts(1);
    gw = await startStreamingGateway('whip-egress', {
      BIFRONS_WHEP_ENABLED: 'true', BIFRONS_WHEP_BIND: '127.0.0.1', BIFRONS_WHEP_PORT: String(port),
    });
    browser = await launchChromium();
  });
  after(async () => {
    for (const p of procs) await p.stop();
    await browser?.close();
    await gw?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('VP8 + Opus from Chromium goes out as H.264 + AAC, in sync', async () => {
    const key = addKey(gw, 'whip-restream');
    const page = await whipPublish(browser, gw, key);
    const info = await waitLive(gw, key.mountpoint);
    assert.deepEqual(info.media.map((m) => m.codec), ['opus', 'vp8']);

    const [port] = await freePorts(1);
    const file = path.join(tmp, 'whip.flv');
    const rx = rtmpReceiver(port, file);
    procs.push(rx);
    await sleep(500);
    const started = await adminStreaming(gw, {
      request: 'egress_start', id: key.mountpoint, url: `rtmp://127.0.0.1:${port}/app`, key: 'k1',
    });
    assert.equal(started.streaming, 'egress_started', JSON.stringify(started));
    assert.equal(started.egress.video, 'transcoded');
    const id = started.egress.id;
    await waitEgressState(gw, id, 'live');
    const liveAt = Date.now();
    // At least 8 s and 150 re-encoded pictures (a busy machine takes longer; no timing is asserted).
    const until = Date.now() + 120000;
    for (;;) {
      const e = (await adminStreaming(gw, { request: 'egress_list' })).list.find((x) => x.id === id);
      if (Date.now() - liveAt >= 8000 && e?.video_frames_transcoded >= 150) break;
      if (Date.now() > until) throw new Error(`too few pictures re-encoded: ${JSON.stringify(e)}`);
      await sleep(250);
    }
    const stopped = await adminStreaming(gw, { request: 'egress_stop', egress_id: id });
    assert.equal(stopped.streaming, 'egress_stopped', JSON.stringify(stopped));
    const sent = (Date.now() - liveAt) / 1000;
    assert.equal(stopped.egress.video_frames_passed, 0, 'VP8 is never passed through');
    const exit = await Promise.race([rx.exited, sleep(15000).then(() => null)]);
    assert.ok(exit, `the receiver ended with the unpublish: ${rx.stderr()}`);

    const { video, audio, duration } = probeFlv(file);
    assert.equal(video?.codec_name, 'h264');
    assert.equal(audio?.codec_name, 'aac');
    assert.equal(Number(audio.sample_rate), 48000);
    assert.equal(video.width, 640);
    assert.equal(video.height, 480);
    const frames = Number(video.nb_read_frames);
    assert.ok(frames >= 100, `${frames} video frames`);
    assert.ok(Math.abs(duration - sent) <= sent * 0.1, `duration ${duration} s for ${sent.toFixed(2)} s of egress`);
    const offset = Math.abs(Number(video.start_time) - Number(audio.start_time)) * 1000;
    assert.ok(offset < 100, `A/V start offset ${offset} ms`);
    assert.equal(decodeErrors(file), '', 'every frame decodes');
    console.log(`# WHIP VP8+Opus -> RTMP H.264+AAC: ${frames} pictures, ${audio.nb_read_frames} AAC frames, ${duration} s for ${sent.toFixed(2)} s of egress, A/V start offset ${offset.toFixed(1)} ms`);

    // The publish went on untouched.
    assert.equal(await page.evaluate(() => window.demo.state), 'publishing');
  });
});
