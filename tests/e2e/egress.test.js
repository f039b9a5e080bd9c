// RTMP egress of mountpoints: the gateway re-publishes a mountpoint to an RTMP server on
// loopback (`ffmpeg -listen 1`, writing what it receives to an FLV file that ffprobe reads).
// - ffmpeg publishes H.264 + AAC over RTMP into a mountpoint; `egress_start` through the Admin
//   API: the received file has H.264 (passed through: no re-encode, per the counters) + AAC,
//   the duration published, every frame decodable, audio and video starting within 40 ms.
// - an RTP mountpoint fed VP8 (320x240, 30 fps) + Opus by ffmpeg; `egress_start` of a registry target from a
//   janode handle (events on the handle): H.264 (transcoded) + AAC received.
// - an Opus-only RTP mountpoint (a room mix) goes out as audio-only FLV.
// - the receiving server killed → `reconnecting`, started again → `live` again.
// - a wrong key (the gateway's own RTMP server refuses it) → `failed` with the reason; a second
//   egress to the same target, a URL that is not RTMP → refused; other sessions unaffected.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePorts } from './lib/gateway.js';
import { rtmpReceiver, probeFlv, decodeErrors, waitEgressState } from './lib/egress.js';
import Handle from 'janode/handle';
import { connect } from './lib/janode.js';
import {
  startStreamingGateway, addKey, publish, waitLive, adminStreaming, spawnProcess, BIN,
} from './lib/streaming.js';

/** A janode handle keeping the plugin's events (the plugin data of each `event`). */
class StreamingHandle extends Handle {
  constructor(session, id) {
    super(session, id);
    this.events = [];
  }

  handleMessage(message) {
    const data = message.plugindata?.data;
    if (message.janus === 'event' && data) this.events.push(data);
    return data || null;
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bifrons-e2e-egress-'));

/** `bifrons egress ...` against the gateway's registry; `key` is typed on stdin. */
function egressCli(gw, args, key) {
  const r = spawnSync(BIN, ['egress', ...args, ...(key ? ['--key'] : [])], {
    env: { ...process.env, BIFRONS_DATABASE_URL: gw.dbUrl },
    input: key ? `${key}\n` : undefined,
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`bifrons egress ${args.join(' ')}: ${r.status} ${r.stderr}`);
  return r.stdout;
}

describe('RTMP egress of mountpoints', () => {
  let gw;
  const procs = [];

  before(async () => {
    gw = await startStreamingGateway('egress');
  });
  after(async () => {
    for (const p of procs) await p.stop();
    await gw?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('H.264 + AAC from an RTMP publisher goes out passed through, in sync (Admin API)', async () => {
    const key = addKey(gw, 'egress-cam');
    const pub = publish(key.url, { gop: 30 });
    procs.push(pub);
    await waitLive(gw, key.mountpoint);
    const [port] = await freePorts(1);
    const file = path.join(tmp, 'passthrough.flv');
    const rx = rtmpReceiver(port, file);
    procs.push(rx);
    await sleep(500);
    const started = await adminStreaming(gw, {
      request: 'egress_start', id: key.mountpoint, url: `rtmp://127.0.0.1:${port}/app`, key: 'k1',
    });
    assert.equal(started.streaming, 'egress_started', JSON.stringify(started));
    assert.ok(!JSON.stringify(started).includes('k1'), 'the key is not returned');
    const id = started.egress.id;
    await waitEgressState(gw, id, 'live');
    // A second egress to the same target is refused, the first one unharmed.
    const again = await adminStreaming(gw, {
      request: 'egress_start', id: key.mountpoint, url: `rtmp://127.0.0.1:${port}/app/k1`,
    });
    assert.equal(again.error_code, 460, JSON.stringify(again));
    assert.match(again.error, /already running/);
    const notRtmp = await adminStreaming(gw, {
      request: 'egress_start', id: key.mountpoint, url: 'http://127.0.0.1/app', key: 'x',
    });
    assert.equal(notRtmp.error_code, 454, JSON.stringify(notRtmp));
    const liveAt = Date.now();
    // A second target joins the running job mid-GOP (the publisher sends a keyframe a second):
    // it starts at the next keyframe, audio and video together.
    await sleep(1500);
    const [port2] = await freePorts(1);
    const file2 = path.join(tmp, 'passthrough-joined.flv');
    const rx2 = rtmpReceiver(port2, file2);
    procs.push(rx2);
    await sleep(500);
    const joined = await adminStreaming(gw, {
      request: 'egress_start', id: key.mountpoint, url: `rtmp://127.0.0.1:${port2}/app`, key: 'k1',
    });
    assert.equal(joined.streaming, 'egress_started', JSON.stringify(joined));
    await sleep(6000);
    const listed = await waitEgressState(gw, id, 'live');
    assert.equal(listed.video, 'passthrough');
    assert.ok(listed.video_frames_passed > 100, JSON.stringify(listed));
    assert.equal(listed.video_frames_transcoded, 0, 'no video re-encode');
    await adminStreaming(gw, { request: 'egress_stop', egress_id: joined.egress.id });
    const stopped = await adminStreaming(gw, { request: 'egress_stop', egress_id: id });
    assert.equal(stopped.streaming, 'egress_stopped', JSON.stringify(stopped));
    const sent = (Date.now() - liveAt) / 1000;
    assert.ok(await Promise.race([rx2.exited, sleep(15000).then(() => null)]), `the second receiver ended: ${rx2.stderr()}`);
    const second = probeFlv(file2);
    const joinOffset = Math.abs(Number(second.video.start_time) - Number(second.audio.start_time)) * 1000;
    assert.ok(joinOffset <= 40, `A/V start offset of the target that joined: ${joinOffset} ms`);
    assert.equal(decodeErrors(file2), '', 'every frame of the joined target decodes');
    console.log(`# passthrough, target joined mid-GOP: ${second.video.nb_read_frames} frames, A/V start offset ${joinOffset.toFixed(1)} ms`);
    const exit = await Promise.race([rx.exited, sleep(15000).then(() => null)]);
    assert.ok(exit, `the receiver ended with the unpublish: ${rx.stderr()}`);
    const { video, audio, duration } = probeFlv(file);
    assert.equal(video?.codec_name, 'h264');
    assert.equal(audio?.codec_name, 'aac');
    assert.equal(Number(audio.sample_rate), 48000);
    assert.equal(video.width, 640);
    assert.ok(Number(video.nb_read_frames) > 200, `${video.nb_read_frames} video frames`);
    assert.ok(duration > sent * 0.8 && duration < sent * 1.3, `duration ${duration} s for ${sent} s live`);
    const offset = Math.abs(Number(video.start_time) - Number(audio.start_time)) * 1000;
    assert.ok(offset <= 40, `A/V start offset ${offset} ms`);
    assert.equal(decodeErrors(file), '', 'every frame decodes');
    console.log(`# passthrough: ${video.nb_read_frames} frames, ${audio.nb_read_frames} AAC frames, ${duration} s for ${sent.toFixed(1)} s, A/V start offset ${offset.toFixed(1)} ms`);
    assert.equal((await adminStreaming(gw, { request: 'egress_list' })).list.length, 0);
  });

  it('VP8 + Opus from an RTP mountpoint goes out as H.264 + AAC (registry target, janode handle)', async () => {
    const [vport, aport, port] = await freePorts(3);
    const created = await adminStreaming(gw, {
      request: 'create', type: 'rtp', id: 7001, name: 'studio',
      media: [
        { type: 'video', mid: 'v', port: vport, pt: 100, codec: 'vp8' },
        { type: 'audio', mid: 'a', port: aport, pt: 111, codec: 'opus' },
      ],
    });
    assert.equal(created.streaming, 'created', JSON.stringify(created));
    procs.push(spawnProcess('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-re',
      '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=30', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
      '-map', '0:v', '-c:v', 'libvpx', '-deadline', 'realtime', '-cpu-used', '8', '-b:v', '300k', '-g', '30',
      '-payload_type', '100', '-f', 'rtp', `rtp://127.0.0.1:${vport}?pkt_size=1200`,
      '-map', '1:a', '-c:a', 'libopus', '-b:a', '64k', '-payload_type', '111', '-f', 'rtp', `rtp://127.0.0.1:${aport}`]));
    await waitLive(gw, 7001);
    egressCli(gw, ['add', 'studio-out', '--url', `rtmp://127.0.0.1:${port}/app`, '--mountpoint', 'studio'], 'k2');
    const listed = egressCli(gw, ['list']);
    assert.ok(!listed.includes('k2'), 'the CLI never shows the key');
    const file = path.join(tmp, 'transcoded.flv');
    const rx = rtmpReceiver(port, file, 'k2');
    procs.push(rx);
    await sleep(500);

    const janode = await connect(gw.wsUrl);
    const session = await janode.create();
    const handle = await session.attach({ id: 'janus.plugin.streaming', Handle: StreamingHandle });
    const { events } = handle;
    const started = (await handle.message({ request: 'egress_start', egress: 'studio-out', video_bitrate: 500000 })).plugindata.data;
    assert.equal(started.streaming, 'egress_started', JSON.stringify(started));
    assert.equal(started.egress.name, 'studio-out');
    assert.equal(started.egress.video, 'transcoded');
    const id = started.egress.id;
    const liveAt = Date.now();
    const deadline = Date.now() + 30000;
    while (!events.some((e) => e.result?.event === 'egress' && e.result.id === id && e.result.state === 'live')) {
      if (Date.now() > deadline) throw new Error(`no live event: ${JSON.stringify(events)}`);
      await sleep(100);
    }
    // Until 150 pictures are re-encoded (a busy machine takes longer; no timing is asserted).
    const until = Date.now() + 120000;
    for (;;) {
      const list = (await handle.message({ request: 'egress_list', id: 7001 })).plugindata.data.list;
      if (list[0]?.video_frames_transcoded >= 150) break;
      if (Date.now() > until) throw new Error(`too few frames transcoded: ${JSON.stringify(list)}`);
      await sleep(500);
    }
    const stopped = (await handle.message({ request: 'egress_stop', egress_id: id })).plugindata.data;
    assert.equal(stopped.streaming, 'egress_stopped', JSON.stringify(stopped));
    assert.equal(stopped.egress.video_frames_passed, 0, 'VP8 is never passed through');
    const sent = (Date.now() - liveAt) / 1000;
    await session.destroy();
    await janode.close();
    const exit = await Promise.race([rx.exited, sleep(15000).then(() => null)]);
    assert.ok(exit, `the receiver ended with the unpublish: ${rx.stderr()}`);
    const { video, audio, duration } = probeFlv(file);
    assert.equal(video?.codec_name, 'h264');
    assert.equal(audio?.codec_name, 'aac');
    assert.equal(video.width, 320);
    assert.equal(video.height, 240);
    const frames = Number(video.nb_read_frames);
    assert.ok(frames >= 100, `${frames} video frames`);
    // Timestamps follow the source's 30 fps clock: as many seconds as pictures say.
    assert.ok(duration >= (frames / 30) * 0.9 && duration <= (frames / 30) * 1.3 + 0.5,
      `duration ${duration} s for ${frames} pictures at 30 fps`);
    const offset = Math.abs(Number(video.start_time) - Number(audio.start_time)) * 1000;
    assert.ok(offset <= 40, `A/V start offset ${offset} ms`);
    assert.equal(decodeErrors(file), '', 'every frame decodes');
    console.log(`# VP8→H.264: ${frames} frames, ${duration} s (${sent.toFixed(1)} s live), A/V start offset ${offset.toFixed(1)} ms`);
  });

  it('an audio-only mountpoint goes out as audio-only FLV (AAC)', async () => {
    const [aport, port] = await freePorts(2);
    const created = await adminStreaming(gw, {
      request: 'create', type: 'rtp', id: 7002,
      media: [{ type: 'audio', mid: 'a', port: aport, pt: 111, codec: 'opus' }],
    });
    assert.equal(created.streaming, 'created', JSON.stringify(created));
    procs.push(spawnProcess('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-re',
      '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000', '-c:a', 'libopus', '-b:a', '64k',
      '-payload_type', '111', '-f', 'rtp', `rtp://127.0.0.1:${aport}`]));
    await waitLive(gw, 7002);
    const file = path.join(tmp, 'audio-only.flv');
    const rx = rtmpReceiver(port, file);
    procs.push(rx);
    await sleep(500);
    const started = await adminStreaming(gw, {
      request: 'egress_start', id: 7002, url: `rtmp://127.0.0.1:${port}/app`, key: 'k1',
    });
    assert.equal(started.egress?.video, 'none', JSON.stringify(started));
    const until = Date.now() + 60000;
    for (;;) {
      const e = (await adminStreaming(gw, { request: 'egress_list', id: 7002 })).list[0];
      if (e?.audio_frames >= 200) break;
      if (Date.now() > until) throw new Error(`too few AAC frames: ${JSON.stringify(e)}`);
      await sleep(300);
    }
    await adminStreaming(gw, { request: 'egress_stop', egress_id: started.egress.id });
    await Promise.race([rx.exited, sleep(15000)]);
    const { video, audio, duration } = probeFlv(file);
    assert.equal(video, undefined, 'no video stream');
    assert.equal(audio?.codec_name, 'aac');
    assert.ok(Number(audio.nb_read_frames) >= 150, `${audio.nb_read_frames} AAC frames`);
    assert.ok(duration > 3, `duration ${duration}`);
    assert.equal(decodeErrors(file), '');
  });

  it('the receiving server going away → reconnecting, back → live again', async () => {
    const key = addKey(gw, 'egress-flaky');
    procs.push(publish(key.url, { gop: 30 }));
    await waitLive(gw, key.mountpoint);
    const [port] = await freePorts(1);
    const first = rtmpReceiver(port, path.join(tmp, 'first.flv'));
    procs.push(first);
    await sleep(500);
    const started = await adminStreaming(gw, {
      request: 'egress_start', id: key.mountpoint, url: `rtmp://127.0.0.1:${port}/app`, key: 'k1',
    });
    const id = started.egress.id;
    await waitEgressState(gw, id, 'live');
    await sleep(1000);
    await first.stop();
    const down = await waitEgressState(gw, id, 'reconnecting');
    assert.ok(down.reason, JSON.stringify(down));
    const file = path.join(tmp, 'second.flv');
    const second = rtmpReceiver(port, file);
    procs.push(second);
    await waitEgressState(gw, id, 'live');
    await sleep(3000);
    await adminStreaming(gw, { request: 'egress_stop', egress_id: id });
    await Promise.race([second.exited, sleep(15000)]);
    const { video, audio } = probeFlv(file);
    assert.equal(video?.codec_name, 'h264');
    assert.equal(audio?.codec_name, 'aac');
    assert.equal(decodeErrors(file), '', 'the stream after the reconnect decodes from its first frame');
  });

  it('a wrong key → failed with the reason; other mountpoints and viewers unaffected', async () => {
    const key = addKey(gw, 'egress-src');
    procs.push(publish(key.url, { gop: 30 }));
    await waitLive(gw, key.mountpoint);
    // The gateway's own RTMP server refuses a key it does not know.
    const started = await adminStreaming(gw, {
      request: 'egress_start', id: key.mountpoint, url: `rtmp://127.0.0.1:${gw.rtmpPort}/live`, key: 'no-such-key',
    });
    assert.equal(started.streaming, 'egress_started', JSON.stringify(started));
    const failed = await waitEgressState(gw, started.egress.id, 'failed');
    assert.match(failed.reason, /refused/, JSON.stringify(failed));
    assert.ok(!JSON.stringify(failed).includes('no-such-key'));
    const info = await adminStreaming(gw, { request: 'info', id: key.mountpoint });
    assert.equal(info.info.live, true, 'the source is still live');
    const stopped = await adminStreaming(gw, { request: 'egress_stop', egress_id: started.egress.id });
    assert.equal(stopped.streaming, 'egress_stopped');
    const unknown = await adminStreaming(gw, { request: 'egress_stop', egress_id: 424242 });
    assert.equal(unknown.error_code, 460, JSON.stringify(unknown));
    const noTarget = await adminStreaming(gw, { request: 'egress_start', egress: 'nope' });
    assert.equal(noTarget.error_code, 460, JSON.stringify(noTarget));
    const missing = await adminStreaming(gw, { request: 'egress_start', id: key.mountpoint });
    assert.equal(missing.error_code, 453, JSON.stringify(missing));
    const gone = await adminStreaming(gw, { request: 'egress_start', id: 99999, url: 'rtmp://127.0.0.1:1/app', key: 'x' });
    assert.equal(gone.error_code, 455, JSON.stringify(gone));
  });
});
