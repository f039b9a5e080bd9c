// A room's mix restreamed as an audio-only mountpoint (Bifrons extension `mountpoint`): two
// Chromium participants (janus.js, tones of 440 and 1000 Hz) in a room created with
// `mountpoint: true`; a third Chromium watches the mountpoint through janus.plugin.streaming
// and hears both tones; `egress_start` of that mountpoint to `ffmpeg -listen 1` gives an
// audio-only FLV (AAC) lasting as long as the egress ran and holding both tones. The
// `mountpoint` request removes and adds it again; bad requests get the audio bridge's codes.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startGateway, freePorts } from './lib/gateway.js';
import { adminStreaming } from './lib/streaming.js';
import { rtmpReceiver, probeFlv, waitEgressState } from './lib/egress.js';
import {
  startPageServer, launchChromium, waitInPage, joinPage, toneShare, adminBridge,
} from './lib/audiobridge.js';

const ROOM = 5150;
const SECRET = 'restream-secret';
const TONES = [440, 1000];
const QUIET = 3000;

describe('an audio bridge room restreamed as a mountpoint', () => {
  let gw;
  let site;
  const browsers = [];
  const procs = [];
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bifrons-e2e-ab-restream-'));

  before(async () => {
    gw = await startGateway({ name: 'audiobridge-restream' });
    site = await startPageServer();
    for (let i = 0; i < 3; i++) browsers.push(await launchChromium());
  });
  after(async () => {
    for (const p of procs) await p.stop();
    for (const b of browsers) await b?.close();
    await site?.close();
    await gw?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('a viewer hears both participants; the egress carries the mix as AAC', async (t) => {
    const created = await adminBridge(gw, {
      request: 'create', room: ROOM, secret: SECRET, sampling_rate: 16000, description: 'radio show', mountpoint: true,
    });
    assert.equal(created.audiobridge, 'created', JSON.stringify(created));
    assert.equal(created.mountpoint, ROOM, 'the mountpoint takes the room id');
    const listed = (await adminBridge(gw, { request: 'list' })).list.find((r) => r.room === ROOM);
    assert.equal(listed.mountpoint, ROOM);

    const a = await joinPage(browsers[0], site.url, gw.wsUrl, ROOM, 'alice', TONES[0]);
    const b = await joinPage(browsers[1], site.url, gw.httpUrl, ROOM, 'bob', TONES[1]);
    for (const p of [a, b]) {
      await waitInPage(p.page, () => window.e2e, (s) => s.webrtcup || s.errors.length > 0, `${p.display} webrtcup`);
      assert.deepEqual((await p.page.evaluate(() => window.e2e)).errors, [], p.display);
    }

    const info = (await adminStreaming(gw, { request: 'info', id: ROOM })).info;
    assert.equal(info.source, 'audiobridge', JSON.stringify(info));
    assert.deepEqual(info.media.map((m) => [m.type, m.codec]), [['audio', 'opus']]);
    assert.equal(info.description, 'radio show');

    // The third Chromium watches the mountpoint with janus.js.
    const viewer = await browsers[2].newPage();
    await viewer.goto(site.url);
    await viewer.waitForFunction(() => typeof window.watchMountpoint === 'function');
    await viewer.evaluate(([s, id]) => window.watchMountpoint(s, id), [gw.wsUrl, created.mountpoint]);
    await waitInPage(viewer, () => window.e2e, (s) => s.webrtcup || s.errors.length > 0, 'viewer webrtcup');
    assert.deepEqual((await viewer.evaluate(() => window.e2e)).errors, []);
    const heard = await waitInPage(viewer, (f) => window.hearing(f), (h) => h !== null && h.rms > 0.01
      && TONES.every((f) => h.levels[f] > h.levels[QUIET] + 20), 'viewer hears both tones', [...TONES, QUIET]);
    t.diagnostic(`viewer: rms ${heard.rms.toFixed(4)}, ${TONES.map((f) => `${f} Hz ${heard.levels[f].toFixed(1)} dB`).join(', ')}, ${QUIET} Hz ${heard.levels[QUIET].toFixed(1)} dB`);

    // RTMP egress of the mountpoint: audio-only FLV, AAC, as long as it ran, both tones in it.
    const [port] = await freePorts(1);
    const file = path.join(tmp, 'room.flv');
    const rx = rtmpReceiver(port, file);
    procs.push(rx);
    await sleep(500);
    const started = await adminStreaming(gw, {
      request: 'egress_start', id: created.mountpoint, url: `rtmp://127.0.0.1:${port}/app`, key: 'k1',
    });
    assert.equal(started.streaming, 'egress_started', JSON.stringify(started));
    assert.equal(started.egress.video, 'none');
    await waitEgressState(gw, started.egress.id, 'live');
    const liveAt = Date.now();
    await sleep(8000);
    const frames = (await waitEgressState(gw, started.egress.id, 'live')).audio_frames;
    await adminStreaming(gw, { request: 'egress_stop', egress_id: started.egress.id });
    const ranMs = Date.now() - liveAt;
    await Promise.race([rx.exited, sleep(15000)]);
    const { audio, video, duration } = probeFlv(file);
    t.diagnostic(`egress: ${frames} AAC frames sent, file ${duration.toFixed(2)} s for ${ranMs} ms live, ${audio?.nb_read_frames} frames read`);
    assert.equal(video, undefined, 'audio-only FLV');
    assert.equal(audio?.codec_name, 'aac');
    assert.ok(Math.abs(duration * 1000 - ranMs) < ranMs * 0.1, `duration ${duration} s for ${ranMs} ms`);
    const raw = execFileSync('ffmpeg', ['-v', 'error', '-i', file, '-f', 's16le', '-ac', '1', '-ar', '16000', '-']);
    const pcm = Array.from(new Int16Array(raw.buffer, raw.byteOffset, Math.floor(raw.length / 2)));
    t.diagnostic(`egress tones: ${TONES.map((f) => `${f} Hz ${toneShare(pcm, f, 16000).toFixed(2)}`).join(', ')}`);
    for (const f of TONES) assert.ok(toneShare(pcm, f, 16000) > 0.1, `${f} Hz in the egress: ${toneShare(pcm, f, 16000)}`);

    // Bad requests: wrong secret, no such room, missing `enable`, an id another room's
    // mountpoint holds; the room keeps mixing.
    assert.equal((await adminBridge(gw, { request: 'mountpoint', room: ROOM, secret: 'nope', enable: false })).error_code, 489);
    assert.equal((await adminBridge(gw, { request: 'mountpoint', room: 999, enable: true })).error_code, 485);
    assert.equal((await adminBridge(gw, { request: 'mountpoint', room: ROOM, secret: SECRET })).error_code, 483);
    assert.equal((await adminBridge(gw, { request: 'mountpoint', room: ROOM, secret: SECRET, enable: 'yes' })).error_code, 484);
    const clash = await adminBridge(gw, { request: 'create', room: ROOM + 1, mountpoint: true, mountpoint_id: ROOM });
    assert.equal(clash.error_code, 490, JSON.stringify(clash));
    assert.equal((await adminBridge(gw, { request: 'exists', room: ROOM + 1 })).exists, false, 'the refused room is not left behind');

    // Removed: the viewer is told, the mountpoint is gone; added again under the same id.
    const off = await adminBridge(gw, { request: 'mountpoint', room: ROOM, secret: SECRET, enable: false });
    assert.equal(off.mountpoint, null, JSON.stringify(off));
    await waitInPage(viewer, () => window.e2e, (s) => s.hangup !== null, 'viewer hung up');
    assert.equal((await adminStreaming(gw, { request: 'info', id: ROOM })).error_code, 455);
    const on = await adminBridge(gw, { request: 'mountpoint', room: ROOM, secret: SECRET, enable: true });
    assert.equal(on.mountpoint, ROOM, JSON.stringify(on));
    const again = await adminStreaming(gw, { request: 'info', id: ROOM });
    assert.equal(again.info?.source, 'audiobridge');

    // Destroying the room takes its mountpoint along.
    await adminBridge(gw, { request: 'destroy', room: ROOM, secret: SECRET });
    assert.equal((await adminStreaming(gw, { request: 'info', id: ROOM })).error_code, 455);
    for (const p of [a, b]) await p.page.close();
    await viewer.close();
  });
});
