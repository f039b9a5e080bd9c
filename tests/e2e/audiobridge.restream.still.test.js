// `[egress] audio_only_video = "still"`: the RTMP egress of an audio-only mountpoint (an audio
// bridge room restreamed with `mountpoint: true`, a plain-RTP participant sending a 700 Hz
// PCMU tone) carries a still H.264 picture with the AAC: ffprobe of what `ffmpeg -listen 1`
// received shows H.264 + AAC, every picture decodes, the pictures (5 fps, an IDR every 2 s)
// are spread over the whole duration, and video starts with the audio.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import AudioBridgePlugin from 'janode/plugins/audiobridge';
import { startGateway, freePorts } from './lib/gateway.js';
import { connect } from './lib/janode.js';
import { adminStreaming } from './lib/streaming.js';
import { rtmpReceiver, probeFlv, decodeErrors, waitEgressState } from './lib/egress.js';
import {
  startRtpReceiver, sendPcmuTone, adminBridge,
} from './lib/audiobridge.js';

const ROOM = 5250;

/** The packets of `file`'s `kind` stream (`v` or `a`): times (s) and keyframe flags. */
function packets(file, kind) {
  const r = spawnSync('ffprobe', ['-v', 'error', '-select_streams', kind, '-show_entries',
    'packet=pts_time,flags', '-of', 'json', file], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout).packets.map((p) => ({ t: Number(p.pts_time), key: p.flags.startsWith('K') }));
}

describe('audio-only egress with a still picture', () => {
  let gw;
  let conn;
  const procs = [];
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bifrons-e2e-ab-still-'));

  before(async () => {
    gw = await startGateway({ name: 'audiobridge-still', env: { BIFRONS_EGRESS_AUDIO_ONLY_VIDEO: 'still' } });
    conn = await connect(gw.wsUrl);
  });
  after(async () => {
    for (const p of procs) await p.stop();
    await conn?.close().catch(() => {});
    await gw?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('sends H.264 pictures spread over the AAC duration', async (t) => {
    const created = await adminBridge(gw, {
      request: 'create', room: ROOM, sampling_rate: 16000, allow_rtp_participants: true, mountpoint: true,
    });
    assert.equal(created.mountpoint, ROOM, JSON.stringify(created));
    const session = await conn.create();
    const back = await startRtpReceiver();
    const phone = await (await session.attach(AudioBridgePlugin)).join({
      room: ROOM, display: 'phone', codec: 'pcmu', rtp_participant: { ip: '127.0.0.1', port: back.port, payload_type: 0 },
    });
    const tone = sendPcmuTone(phone.rtp_participant.port, 700, 14);

    const [port] = await freePorts(1);
    const file = path.join(tmp, 'still.flv');
    const rx = rtmpReceiver(port, file);
    procs.push(rx);
    await sleep(500);
    const started = await adminStreaming(gw, {
      request: 'egress_start', id: ROOM, url: `rtmp://127.0.0.1:${port}/app`, key: 'k1',
    });
    assert.equal(started.streaming, 'egress_started', JSON.stringify(started));
    assert.equal(started.egress.video, 'still');
    await waitEgressState(gw, started.egress.id, 'live');
    const liveAt = Date.now();
    await sleep(8000);
    const listed = await waitEgressState(gw, started.egress.id, 'live');
    await adminStreaming(gw, { request: 'egress_stop', egress_id: started.egress.id });
    const ranMs = Date.now() - liveAt;
    await Promise.race([rx.exited, sleep(15000)]);
    await tone;
    await back.close();

    const { video, audio, duration } = probeFlv(file);
    assert.equal(video?.codec_name, 'h264', JSON.stringify(video));
    assert.equal(audio?.codec_name, 'aac', JSON.stringify(audio));
    assert.ok(Math.abs(duration * 1000 - ranMs) < ranMs * 0.1, `duration ${duration} s for ${ranMs} ms`);
    assert.equal(decodeErrors(file), '', 'every frame decodes');

    const v = packets(file, 'v');
    const a = packets(file, 'a');
    const gaps = v.slice(1).map((p, i) => p.t - v[i].t);
    const keys = v.filter((p) => p.key).map((p) => p.t);
    t.diagnostic(`still: ${v.length} pictures (${video.nb_read_frames} decoded, ${video.width}x${video.height}) over ${duration.toFixed(2)} s, `
      + `first at ${v[0].t.toFixed(3)} s (audio ${a[0].t.toFixed(3)} s), last at ${v.at(-1).t.toFixed(3)} s (audio ${a.at(-1).t.toFixed(3)} s), `
      + `largest gap ${Math.max(...gaps).toFixed(3)} s, ${keys.length} keyframes, ${listed.video_frames_transcoded} sent`);
    assert.ok(v.length >= duration * 5 * 0.8, `${v.length} pictures in ${duration} s at 5 fps`);
    assert.equal(Number(video.nb_read_frames), v.length, 'every picture decoded');
    assert.ok(Math.abs(v[0].t - a[0].t) < 0.1, `video starts with the audio: ${v[0].t} vs ${a[0].t}`);
    assert.ok(a.at(-1).t - v.at(-1).t < 0.5, `video lasts as long as the audio: ${v.at(-1).t} vs ${a.at(-1).t}`);
    assert.ok(Math.max(...gaps) < 0.5, `pictures spread evenly: largest gap ${Math.max(...gaps)} s`);
    assert.ok(keys.length >= Math.floor(duration / 2), `an IDR every 2 s: ${keys.length} in ${duration} s`);
    assert.ok(Math.max(...keys.slice(1).map((k, i) => k - keys[i])) <= 2.1, `IDRs at ${keys.join(', ')}`);
  });
});
